//! The call loop every application shares: one [`Application`] on one
//! [`MediaSession`], sans-IO.
//!
//! The driver feeds datagrams ([`CallLoop::handle_datagram`]), the 20 ms tick
//! ([`CallLoop::handle_tick`]: the tick *is* the clock), a re-INVITE's offer, the
//! caller leaving and the answers to the application's requests, and drains
//! [`CallLoop::poll_output`] after each: packets to send, what to tell SIP, work to
//! start. When the application hands the call on, the loop ends with
//! [`LoopOutput::HandOver`]; the media session goes on with the next application
//! ([`CallLoop::into_media`], then [`CallLoop::new`]).

use super::app::{AppKind, Application, Effect, ReofferChoice};
use super::media::{MediaSession, Reoffer};
use crate::rtp::session::Output;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// What the loop asks of the SIP side of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipAction {
    Hangup,
    Transfer(String),
    /// 200 OK to the pending re-INVITE with this answer.
    AcceptReoffer(Vec<u8>),
    /// A final error to the pending re-INVITE; the session stays as it was.
    RefuseReoffer(u16, String),
    /// Our re-INVITE with this offer.
    Reinvite(Vec<u8>),
    /// CANCEL our re-INVITE (no answer in time).
    CancelReinvite,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoopOutput<R> {
    Transmit {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// RTCP: from the RTP port when `muxed`, else from the RTCP port.
    Rtcp {
        to: SocketAddr,
        bytes: Vec<u8>,
        muxed: bool,
    },
    Sip(SipAction),
    /// Work for the driver; its answer goes to [`CallLoop::handle_reply`].
    Request(R),
    /// The application gave the call to `to`: this loop is over. `reoffer` is the
    /// offer the next application answers first, when a re-INVITE caused it.
    HandOver {
        to: AppKind,
        reoffer: Option<Vec<u8>>,
    },
}

pub struct CallLoop<A: Application> {
    media: MediaSession,
    app: A,
    out: VecDeque<LoopOutput<A::Request>>,
    pcm: Vec<i16>,
    handed_over: bool,
    gone: bool,
}

impl<A: Application> CallLoop<A> {
    pub fn new(media: MediaSession, app: A) -> CallLoop<A> {
        let mut l = CallLoop {
            media,
            app,
            out: VecDeque::new(),
            pcm: Vec::with_capacity(crate::rtp::FRAME_SAMPLES),
            handed_over: false,
            gone: false,
        };
        if let Some(session) = l.media.t38_session().cloned() {
            l.app.on_t38(&session);
        }
        l.pump();
        l
    }

    /// One datagram from the media port, arrived at `now`. A key press reaches the
    /// application at once, not at the next tick.
    pub fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        if self.handed_over {
            return;
        }
        if let Some(t38) = self.media.t38() {
            for (seq, ifp) in t38.handle_input(from, bytes) {
                self.app.on_ifp(seq, &ifp);
            }
        } else {
            self.media.rtp().handle_input(from, bytes, now);
            self.drain_media();
        }
        self.pump();
    }

    /// One datagram from the RTCP port.
    pub fn handle_rtcp(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.media.rtp().handle_rtcp(from, bytes);
    }

    /// The caller's ACK arrived: media may go to the address its SDP named.
    pub fn handle_confirmed(&mut self) {
        self.media.rtp().confirm();
    }

    /// The 20 ms tick: one frame of the caller's audio to the application, one frame
    /// of queued audio out.
    pub fn handle_tick(&mut self) {
        if self.handed_over {
            return;
        }
        if let Some(t38) = self.media.t38() {
            if t38.handle_tick() {
                tracing::warn!("no T.38 datagram from the far end for the configured timeout; ending the call");
                self.out.push_back(LoopOutput::Sip(SipAction::Hangup));
                self.handle_hangup();
            } else {
                self.app.on_t38_tick();
            }
        } else {
            self.media.rtp().handle_tick(&mut self.pcm);
            self.app.on_frame(&self.pcm);
            self.drain_media();
        }
        self.pump();
    }

    /// A re-INVITE's offer: the application decides; the answer goes out as
    /// [`SipAction::AcceptReoffer`] / [`SipAction::RefuseReoffer`], or, when it hands
    /// the call on, with the next application.
    pub fn handle_reoffer(&mut self, offer: &[u8]) {
        if self.handed_over {
            return;
        }
        let reoffer = self.media.read_reoffer(offer);
        match self.app.on_reoffer(&reoffer) {
            ReofferChoice::Accept => match &reoffer {
                Reoffer::Audio(n, lines) => {
                    let answer = self.media.accept_audio(n, lines);
                    tracing::info!(codec = n.codec.name(), remote = %n.remote, "re-INVITE accepted");
                    self.out.push_back(LoopOutput::Sip(SipAction::AcceptReoffer(answer)));
                }
                Reoffer::Fax(offer) => {
                    let (answer, started) = self.media.accept_t38(offer);
                    self.out.push_back(LoopOutput::Sip(SipAction::AcceptReoffer(answer)));
                    if let (true, Some(session)) = (started, self.media.t38_session().cloned()) {
                        self.app.on_t38(&session);
                    }
                }
                other => self.refuse(other),
            },
            ReofferChoice::Answer(sdp) => self.out.push_back(LoopOutput::Sip(SipAction::AcceptReoffer(sdp))),
            ReofferChoice::Refuse => self.refuse(&reoffer),
            ReofferChoice::HandOver(to) => {
                tracing::info!(?to, "re-INVITE: handing the call over");
                self.handed_over = true;
                self.out.push_back(LoopOutput::HandOver { to, reoffer: Some(offer.to_vec()) });
            }
        }
        self.pump();
    }

    fn refuse(&mut self, reoffer: &Reoffer) {
        let reason = match reoffer {
            Reoffer::Fax(_) => "Not Acceptable Here (no fax reception on this call)".to_string(),
            Reoffer::Unusable(e) => format!("Not Acceptable Here ({e})"),
            Reoffer::Audio(..) => "Not Acceptable Here".to_string(),
        };
        tracing::info!(%reason, "re-INVITE refused; the call goes on");
        self.out.push_back(LoopOutput::Sip(SipAction::RefuseReoffer(488, reason)));
    }

    /// The far end's answer to our re-INVITE: its SDP, or the status it refused with.
    pub fn handle_reinvite_answer(&mut self, answer: Result<Vec<u8>, u16>) {
        if self.handed_over {
            return;
        }
        match answer.map(|sdp| self.media.accept_t38_answer(&sdp)) {
            Ok(Ok(session)) => self.app.on_t38(&session),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the far end's answer to our T.38 offer has no usable T.38 stream");
                self.app.on_t38_refused(0);
            }
            Err(status) => {
                tracing::info!(status, "the far end refused our T.38 offer");
                self.app.on_t38_refused(status);
            }
        }
        self.pump();
    }

    pub fn handle_reply(&mut self, reply: A::Reply) {
        self.app.on_reply(reply);
        self.pump();
    }

    /// The caller left (or the server is stopping): told to the application once.
    pub fn handle_hangup(&mut self) {
        if self.gone || self.handed_over {
            return;
        }
        self.gone = true;
        self.app.on_hangup();
        self.pump();
    }

    pub fn poll_output(&mut self) -> Option<LoopOutput<A::Request>> {
        self.out.pop_front()
    }

    /// The application finished or handed the call on.
    pub fn is_done(&self) -> bool {
        self.handed_over || self.app.is_done()
    }

    pub fn app(&self) -> &A {
        &self.app
    }

    /// The media session, for the next application after a hand-over.
    pub fn into_media(self) -> MediaSession {
        self.media
    }

    fn drain_media(&mut self) {
        while let Some(o) = self.media.rtp().poll_output() {
            match o {
                Output::Transmit { to, bytes } => self.out.push_back(LoopOutput::Transmit { to, bytes }),
                Output::Rtcp { to, bytes, muxed } => self.out.push_back(LoopOutput::Rtcp { to, bytes, muxed }),
                Output::MediaTimeout => {
                    tracing::warn!("no RTP or RTCP from the caller for the configured timeout; ending the call");
                    self.out.push_back(LoopOutput::Sip(SipAction::Hangup));
                    self.handle_hangup();
                }
                Output::Dtmf(d) => {
                    tracing::debug!(digit = %d, "DTMF");
                    self.app.on_dtmf(d);
                }
                Output::PlaybackDone => self.app.on_playback_done(),
            }
        }
    }

    /// Carries out what the application asked, in order.
    fn pump(&mut self) {
        while !self.handed_over {
            let Some(effect) = self.app.poll() else { break };
            match effect {
                Effect::Play(clips) => {
                    let rtp = self.media.rtp();
                    let codec = rtp.codec();
                    clips.iter().for_each(|c| rtp.play(c.encoded(codec)));
                }
                Effect::PlayFrom(clip, offset) => {
                    let rtp = self.media.rtp();
                    let codec = rtp.codec();
                    rtp.play(clip.encoded(codec).get(offset..).unwrap_or_default());
                }
                Effect::StopPlayback => self.media.rtp().stop_playback(),
                Effect::Hangup => self.out.push_back(LoopOutput::Sip(SipAction::Hangup)),
                Effect::Transfer(to) => self.out.push_back(LoopOutput::Sip(SipAction::Transfer(to))),
                Effect::HandOver(to) => {
                    tracing::info!(?to, "handing the call over");
                    self.handed_over = true;
                    self.out.push_back(LoopOutput::HandOver { to, reoffer: None });
                }
                Effect::SendIfp(ifp, count) => {
                    if let Some(t38) = self.media.t38() {
                        for _ in 0..count {
                            let (to, bytes) = t38.datagram(&ifp);
                            self.out.push_back(LoopOutput::Transmit { to, bytes });
                        }
                    }
                }
                Effect::OfferT38 => {
                    let offer = self.media.t38_offer();
                    tracing::info!("offering T.38 to the far end");
                    self.out.push_back(LoopOutput::Sip(SipAction::Reinvite(offer)));
                }
                Effect::WithdrawT38 => self.out.push_back(LoopOutput::Sip(SipAction::CancelReinvite)),
                Effect::Request(r) => self.out.push_back(LoopOutput::Request(r)),
            }
        }
    }
}
