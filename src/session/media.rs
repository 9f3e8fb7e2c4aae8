//! One answered call's media: its RTP session, our media address and the SDP origin
//! (RFC 4566 `o=`, whose version moves on with each changed description, RFC 3264 §8).

use super::keying;
use super::t38::T38Stream;
use crate::rtp::session::{RtpSession, SessionParams};
use crate::sdp::crypto::Agreed;
use crate::sdp::t38::{self, T38Offer, T38Session};
use crate::sdp::{self, Direction, Negotiated, SdpError};
use crate::srtp::Keying;
use std::net::{IpAddr, SocketAddr};

/// What a re-INVITE's offer asks for, as the session layer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reoffer {
    /// Audio we can serve (PCMU/PCMA): the same as now (a refresh), or a new address,
    /// codec or DTMF payload type. The lines are the answer's m= lines (see
    /// [`sdp::negotiate`]).
    Audio(Negotiated, Vec<String>),
    /// A T.38 fax stream (`m=image … udptl t38`), with or without audio beside it: only
    /// a fax application can take it.
    Fax(T38Offer),
    /// Nothing this session can serve.
    Unusable(SdpError),
}

impl Reoffer {
    /// `local` is our media address: an offer whose address it cannot reach is unusable.
    /// Audio is keyed as `keying` allows (`current`: the SRTP agreement in force).
    pub fn read(offer: &[u8], local: IpAddr, keying: Keying, current: Option<&Agreed>) -> Reoffer {
        if sdp::offers_t38(offer) {
            return match t38::read_offer(offer).and_then(|o| sdp::check_family_of(o.remote.ip(), local).map(|()| o)) {
                Ok(o) => Reoffer::Fax(o),
                Err(e) => Reoffer::Unusable(e),
            };
        }
        match audio(offer, local, keying, current) {
            Ok((n, lines)) => Reoffer::Audio(n, lines),
            Err(e) => Reoffer::Unusable(e),
        }
    }
}

/// An audio offer negotiated, its address checked and its keys decided.
fn audio(
    offer: &[u8],
    local: IpAddr,
    keying: Keying,
    current: Option<&Agreed>,
) -> Result<(Negotiated, Vec<String>), SdpError> {
    let (mut n, lines) = sdp::negotiate(offer)?;
    sdp::check_family(&n, local)?;
    keying::answer(&mut n, keying, current)?;
    Ok((n, lines))
}

/// How a new call's offer is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstOffer {
    /// No offer (RFC 3261 §13.2.1): ours goes in the 2xx, the answer comes in the ACK.
    Delayed,
    /// Audio we serve; the lines are the answer's m= lines.
    Audio(Negotiated, Vec<String>),
    /// A T.38 fax stream, for fax reception.
    Fax(T38Offer),
}

/// Which streams of a first offer the call's route can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Audio only (the mailbox menu).
    Audio,
    /// Audio when offered, else T.38 (a voice mailbox, which hands a fax on).
    AudioElseFax,
    /// T.38 when offered, else audio (a fax number, which takes G.711 fax too).
    FaxElseAudio,
}

impl FirstOffer {
    /// `local` is our media address: an offer whose address it cannot reach is refused.
    /// Audio is keyed as `keying` allows; a T.38 stream is UDPTL, as the standard has it.
    pub fn read(offer: &[u8], local: IpAddr, serves: Serves, keying: Keying) -> Result<FirstOffer, Refusal> {
        // A trunk that requires SRTP takes no call without TLS, whatever it offers (a
        // delayed offer, T.38): checked before any stream is read.
        keying::check_transport(keying).map_err(Refusal::Media)?;
        if offer.iter().all(u8::is_ascii_whitespace) {
            return Ok(FirstOffer::Delayed);
        }
        let fax = || {
            let o = t38::read_offer(offer).ok()?;
            sdp::check_family_of(o.remote.ip(), local).is_ok().then_some(FirstOffer::Fax(o))
        };
        if serves == Serves::FaxElseAudio {
            if let Some(f) = fax() {
                return Ok(f);
            }
        }
        match audio(offer, local, keying, None) {
            Ok((n, lines)) => Ok(FirstOffer::Audio(n, lines)),
            Err(e) => match serves {
                Serves::AudioElseFax => fax().ok_or(Refusal::Media(e)),
                Serves::Audio | Serves::FaxElseAudio => Err(Refusal::Media(e)),
            },
        }
    }
}

/// Why a call is refused before it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing in the offer we can serve.
    Media(SdpError),
    /// Every RTP port of the configured range is in use.
    NoMediaPorts,
    ShuttingDown,
}

impl Refusal {
    /// The status and reason phrase that say it (the phrase names the problem).
    pub fn status(&self) -> (u16, String) {
        match self {
            Refusal::Media(e) => (488, format!("Not Acceptable Here ({e})")),
            Refusal::NoMediaPorts => (503, "No Media Ports Available".into()),
            Refusal::ShuttingDown => (503, "Service Unavailable".into()),
        }
    }
}

/// An answered call's media: RTP audio, or a T.38 stream on the same port once a fax
/// offer was accepted (the RTP session then rests).
pub struct MediaSession {
    rtp: RtpSession,
    t38: Option<T38Stream>,
    local: SocketAddr,
    session_id: u64,
    version: u64,
    /// The audio negotiation in force, to tell a changed offer from a refresh.
    current: Negotiated,
    /// For a T.38 stream: the media timeout and the signalling host.
    timeout_ticks: u32,
    signalling: Option<IpAddr>,
    keying: Keying,
}

impl MediaSession {
    /// `local` is our media address (the RTP port's); `session_id` the `o=` id our first
    /// description carried (its version too).
    pub fn new(current: Negotiated, local: SocketAddr, session_id: u64, params: &SessionParams) -> MediaSession {
        let rtp = RtpSession::new(&current, params);
        if let Some(why) = rtp.unproven_address() {
            tracing::warn!(address = %current.remote, reason = why, "SDP media address not used until the caller's own RTP proves one");
        }
        MediaSession {
            rtp,
            t38: None,
            local,
            session_id,
            version: session_id,
            current,
            timeout_ticks: params.timeout_ticks,
            signalling: params.signalling,
            keying: params.keying,
        }
    }

    /// A re-INVITE's offer, read with this call's keying and SRTP agreement.
    pub fn read_reoffer(&self, offer: &[u8]) -> Reoffer {
        Reoffer::read(offer, self.local.ip(), self.keying, self.rtp.srtp_agreed())
    }

    /// A call whose first offer was T.38: the session starts on it (its RTP session
    /// never sends). Returns the answer too.
    pub fn new_t38(
        offer: &T38Offer,
        local: SocketAddr,
        session_id: u64,
        params: &SessionParams,
    ) -> (MediaSession, Vec<u8>) {
        let resting =
            Negotiated { direction: Direction::Inactive, ..Negotiated::plain(offer.remote, sdp::Codec::Pcmu) };
        let mut m = MediaSession::new(resting, local, session_id, params);
        let (answer, _) = m.accept_t38(offer);
        (m, answer)
    }

    /// The T.38 stream, when the call carries one.
    pub fn t38(&mut self) -> Option<&mut T38Stream> {
        self.t38.as_mut()
    }

    pub fn t38_session(&self) -> Option<&T38Session> {
        self.t38.as_ref().map(T38Stream::session)
    }

    /// Accepts a T.38 offer: the answer, and whether the stream is new (the fax engine
    /// starts on T.38). The same offer again (a session-timer refresh) is answered with
    /// the same version and changes nothing; a new far address moves the stream on.
    pub fn accept_t38(&mut self, offer: &T38Offer) -> (Vec<u8>, bool) {
        let (ip, port) = (self.local.ip(), self.local.port());
        if let Some(stream) = &mut self.t38 {
            let (session, answer) = t38::answer(offer, ip, port, self.session_id, self.version);
            if session == *stream.session() {
                return (answer, false);
            }
            self.version += 1;
            let (session, answer) = t38::answer(offer, ip, port, self.session_id, self.version);
            stream.retarget(session);
            return (answer, false);
        }
        self.version += 1;
        let (session, answer) = t38::answer(offer, ip, port, self.session_id, self.version);
        tracing::info!(remote = %session.remote, version = session.version, ec = ?session.error_correction, max_ifp = session.far_max_ifp, "T.38 accepted");
        self.t38 = Some(T38Stream::new(session, self.timeout_ticks, self.signalling));
        (answer, true)
    }

    pub fn rtp(&mut self) -> &mut RtpSession {
        &mut self.rtp
    }

    /// Our media address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// What the call carries now, for listings: the audio codec, or T.38.
    pub fn carrying(&self) -> &'static str {
        match (&self.t38, self.rtp.srtp_suite(), self.rtp.codec()) {
            (Some(_), ..) => "T.38",
            (None, Some(_), sdp::Codec::Pcmu) => "PCMU/SRTP",
            (None, Some(_), sdp::Codec::Pcma) => "PCMA/SRTP",
            (None, None, codec) => codec.name(),
        }
    }

    /// The SRTP suite protecting the audio, if any (T.38 is UDPTL, never SRTP).
    pub fn srtp_suite(&self) -> Option<crate::srtp::Suite> {
        self.rtp.srtp_suite().filter(|_| self.t38.is_none())
    }

    pub fn rtp_stats(&self) -> crate::rtp::session::SessionStats {
        self.rtp.stats()
    }

    /// Our T.38 offer for a re-INVITE (a fax tone was heard): the next version; the
    /// answer goes to [`MediaSession::accept_t38_answer`].
    pub fn t38_offer(&mut self) -> Vec<u8> {
        self.version += 1;
        t38::offer(self.local.ip(), self.local.port(), self.session_id, self.version)
    }

    /// The far end's answer to [`MediaSession::t38_offer`]: the call carries T.38 from
    /// now on. An answer without a usable T.38 stream is an error; audio goes on.
    pub fn accept_t38_answer(&mut self, answer: &[u8]) -> Result<T38Session, SdpError> {
        let session = t38::read_answer(answer)?;
        sdp::check_family_of(session.remote.ip(), self.local.ip())?;
        tracing::info!(remote = %session.remote, version = session.version, ec = ?session.error_correction, max_ifp = session.far_max_ifp, "T.38 accepted by the far end");
        match &mut self.t38 {
            Some(stream) => stream.retarget(session.clone()),
            None => self.t38 = Some(T38Stream::new(session.clone(), self.timeout_ticks, self.signalling)),
        }
        Ok(session)
    }

    /// Accepts an audio re-offer: the RTP session follows it, and the answer says so —
    /// the same version for a refresh, the next one for a change.
    pub fn accept_audio(&mut self, n: &Negotiated, lines: &[String]) -> Vec<u8> {
        // Back from T.38 (the far end's gateway ends its fax so) is a change too.
        let was_t38 = self.t38.take().is_some();
        if was_t38 || *n != self.current {
            self.version += 1;
            self.rtp.retarget(n);
            self.current = n.clone();
        }
        sdp::answer(n, lines, self.local.ip(), self.local.port(), self.session_id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_offer_is_delayed_served_or_refused_with_its_status() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let read = |o: &[u8], local| FirstOffer::read(o, local, Serves::Audio, Keying::default());
        assert_eq!(read(b" \r\n", v4), Ok(FirstOffer::Delayed));
        let audio = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 8\r\n";
        assert!(matches!(read(audio, v4), Ok(FirstOffer::Audio(n, _)) if n.codec == sdp::Codec::Pcma));
        let g729 = read(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 18\r\n", v4).unwrap_err();
        assert_eq!(g729.status(), (488, "Not Acceptable Here (no audio stream with PCMU or PCMA offered)".into()));
        assert_eq!(read(b"garbage", v4).unwrap_err().status().0, 488);
        let v6 = read(b"v=0\r\nc=IN IP6 2001:db8::5\r\nm=audio 6000 RTP/AVP 0\r\n", v4).unwrap_err();
        assert_eq!(
            v6.status(),
            (488, "Not Acceptable Here (media address 2001:db8::5 cannot be reached from this server's IPv4 media address)".into())
        );
        assert!(matches!(
            Reoffer::read(b"v=0\r\nc=IN IP6 ::1\r\nm=audio 6000 RTP/AVP 0\r\n", v4, Keying::default(), None),
            Reoffer::Unusable(sdp::SdpError::AddressFamily(..))
        ));
        assert_eq!(Refusal::NoMediaPorts.status(), (503, "No Media Ports Available".into()));
        assert_eq!(Refusal::ShuttingDown.status().0, 503);
    }

    #[test]
    fn a_first_offer_of_t38_is_taken_as_the_route_serves_it() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let plain = Keying::default();
        let both = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\nm=image 6002 udptl t38\r\n";
        let fax_only = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=image 6002 udptl t38\r\n";
        let is_fax = |r: Result<FirstOffer, Refusal>| matches!(r, Ok(FirstOffer::Fax(o)) if o.remote.port() == 6002);
        let is_audio = |r: Result<FirstOffer, Refusal>| matches!(r, Ok(FirstOffer::Audio(..)));
        // A fax number prefers T.38; a voice mailbox prefers audio but takes a T.38-only
        // call (a fax for it); the menu takes audio only.
        assert!(is_fax(FirstOffer::read(both, v4, Serves::FaxElseAudio, plain)));
        assert!(is_audio(FirstOffer::read(both, v4, Serves::AudioElseFax, plain)));
        assert!(is_fax(FirstOffer::read(fax_only, v4, Serves::AudioElseFax, plain)));
        assert_eq!(FirstOffer::read(fax_only, v4, Serves::Audio, plain).unwrap_err().status().0, 488);
        // A T.38 stream we cannot reach is no offer: audio, or the refusal.
        let v6_fax =
            b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\nm=image 6002 udptl t38\r\nc=IN IP6 ::1\r\n";
        assert!(is_audio(FirstOffer::read(v6_fax, v4, Serves::FaxElseAudio, plain)));
        assert!(matches!(Reoffer::read(fax_only, v4, plain, None), Reoffer::Fax(_)));
        // Where SRTP is required, no call comes in without TLS: not a fax, not a delayed offer.
        let required = Keying { policy: crate::srtp::Policy::Required, over_tls: false };
        assert_eq!(FirstOffer::read(fax_only, v4, Serves::FaxElseAudio, required).unwrap_err().status().0, 488);
        assert_eq!(FirstOffer::read(b"", v4, Serves::Audio, required).unwrap_err().status().0, 488);
        assert!(matches!(Reoffer::read(&v6_fax[..], v4, plain, None), Reoffer::Unusable(_)));
    }
}
