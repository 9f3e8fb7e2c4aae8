//! One answered call's media: its RTP session, our media address and the SDP origin
//! (RFC 4566 `o=`, whose version moves on with each changed description, RFC 3264 §8).

use crate::rtp::session::{RtpSession, SessionParams};
use crate::sdp::{self, Negotiated, SdpError};
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
    Fax,
    /// Nothing this session can serve.
    Unusable(SdpError),
}

impl Reoffer {
    /// `local` is our media address: an offer whose address it cannot reach is unusable.
    pub fn read(offer: &[u8], local: IpAddr) -> Reoffer {
        if sdp::offers_t38(offer) {
            return Reoffer::Fax;
        }
        match sdp::negotiate(offer).and_then(|(n, lines)| sdp::check_family(&n, local).map(|()| (n, lines))) {
            Ok((n, lines)) => Reoffer::Audio(n, lines),
            Err(e) => Reoffer::Unusable(e),
        }
    }
}

/// How a new call's offer is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstOffer {
    /// No offer (RFC 3261 §13.2.1): ours goes in the 2xx, the answer comes in the ACK.
    Delayed,
    /// Audio we serve; the lines are the answer's m= lines.
    Audio(Negotiated, Vec<String>),
}

impl FirstOffer {
    /// `local` is our media address: an offer whose address it cannot reach is refused.
    pub fn read(offer: &[u8], local: IpAddr) -> Result<FirstOffer, Refusal> {
        if offer.iter().all(u8::is_ascii_whitespace) {
            return Ok(FirstOffer::Delayed);
        }
        let (n, lines) = sdp::negotiate(offer).map_err(Refusal::Media)?;
        sdp::check_family(&n, local).map_err(Refusal::Media)?;
        Ok(FirstOffer::Audio(n, lines))
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

/// An answered call's media.
pub struct MediaSession {
    rtp: RtpSession,
    local: SocketAddr,
    session_id: u64,
    version: u64,
    /// The negotiation in force, to tell a changed offer from a refresh.
    current: Negotiated,
}

impl MediaSession {
    /// `local` is our media address (the RTP port's); `session_id` the `o=` id our first
    /// description carried (its version too).
    pub fn new(current: Negotiated, local: SocketAddr, session_id: u64, params: &SessionParams) -> MediaSession {
        let rtp = RtpSession::new(&current, params);
        if let Some(why) = rtp.unproven_address() {
            tracing::warn!(address = %current.remote, reason = why, "SDP media address not used until the caller's own RTP proves one");
        }
        MediaSession { rtp, local, session_id, version: session_id, current }
    }

    pub fn rtp(&mut self) -> &mut RtpSession {
        &mut self.rtp
    }

    /// Our media address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn rtp_stats(&self) -> crate::rtp::session::SessionStats {
        self.rtp.stats()
    }

    /// Accepts an audio re-offer: the RTP session follows it, and the answer says so —
    /// the same version for a refresh, the next one for a change.
    pub fn accept_audio(&mut self, n: &Negotiated, lines: &[String]) -> Vec<u8> {
        if *n != self.current {
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
        assert_eq!(FirstOffer::read(b" \r\n", v4), Ok(FirstOffer::Delayed));
        let audio = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 8\r\n";
        assert!(matches!(FirstOffer::read(audio, v4), Ok(FirstOffer::Audio(n, _)) if n.codec == sdp::Codec::Pcma));
        let g729 = FirstOffer::read(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 18\r\n", v4).unwrap_err();
        assert_eq!(g729.status(), (488, "Not Acceptable Here (no audio stream with PCMU or PCMA offered)".into()));
        assert_eq!(FirstOffer::read(b"garbage", v4).unwrap_err().status().0, 488);
        let v6 = FirstOffer::read(b"v=0\r\nc=IN IP6 2001:db8::5\r\nm=audio 6000 RTP/AVP 0\r\n", v4).unwrap_err();
        assert_eq!(
            v6.status(),
            (488, "Not Acceptable Here (media address 2001:db8::5 cannot be reached from this server's IPv4 media address)".into())
        );
        assert!(matches!(
            Reoffer::read(b"v=0\r\nc=IN IP6 ::1\r\nm=audio 6000 RTP/AVP 0\r\n", v4),
            Reoffer::Unusable(sdp::SdpError::AddressFamily(..))
        ));
        assert_eq!(Refusal::NoMediaPorts.status(), (503, "No Media Ports Available".into()));
        assert_eq!(Refusal::ShuttingDown.status().0, 503);
    }
}
