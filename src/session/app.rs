//! What an application is to the call loop: it hears the caller's audio frame by frame,
//! key presses, the end of playback, the caller leaving, a re-INVITE's offer and the
//! answers to its own requests; it says what to play, which work to start (saving a
//! recording, a PIN check), when to hang up, transfer, or hand the call on.

use super::media::Reoffer;
use crate::media::prompts::Clip;
use std::sync::Arc;

/// The applications a call can be handed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    Deposit,
    Menu,
    /// Fax reception (T.38 or G.711): the target of a deposit that hears a fax.
    FaxReceive,
}

impl AppKind {
    /// Its name in listings (`voxbridge calls`).
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Deposit => "deposit",
            AppKind::Menu => "menu",
            AppKind::FaxReceive => "fax",
        }
    }
}

/// What an application asks of the loop.
#[derive(Debug)]
pub enum Effect<R> {
    /// Queue these clips after whatever is queued.
    Play(Vec<Arc<Clip>>),
    /// Play `clip` from sample `offset` on.
    PlayFrom(Arc<Clip>, usize),
    /// Drop whatever is still queued (barge-in).
    StopPlayback,
    Hangup,
    /// Blind transfer to a SIP URI.
    Transfer(String),
    /// End this application and give the call, media as it is, to another one.
    HandOver(AppKind),
    /// Send this IFP on the call's T.38 stream, `count` times (each its own datagram,
    /// as spandsp asks for its indicators); ignored on an audio call.
    SendIfp(Vec<u8>, u32),
    /// Offer T.38 to the far end (our re-INVITE); the answer comes as
    /// [`Application::on_t38`] or [`Application::on_t38_refused`].
    OfferT38,
    /// Stop waiting for the answer to our T.38 offer (CANCEL).
    WithdrawT38,
    /// Work the driver performs off the media clock (disk, store, mail); its answer
    /// comes back through [`Application::on_reply`].
    Request(R),
}

/// An application's decision on a re-INVITE's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReofferChoice {
    /// Take what is offered — audio (refresh, new address or codec) or T.38 (the
    /// application receives faxes) —; the session layer answers.
    Accept,
    /// Answer with this description (an application that makes its own answer).
    Answer(Vec<u8>),
    /// 488 Not Acceptable Here; the call goes on as it was.
    Refuse,
    /// Give the call to another application, which then answers the same offer.
    HandOver(AppKind),
}

/// An application on the call loop. Sans-IO: every input is a method call, every
/// output an [`Effect`] drained with [`Application::poll`].
pub trait Application {
    /// The work it asks the driver for, and the driver's answers.
    type Request;
    type Reply;

    /// One 20 ms frame of the caller's audio (silence when nothing arrived).
    fn on_frame(&mut self, pcm: &[i16]);
    fn on_dtmf(&mut self, digit: char);
    /// The playback queue ran empty.
    fn on_playback_done(&mut self);
    /// The caller is gone (or the server is shutting down): finish, save what matters.
    fn on_hangup(&mut self);
    fn on_reply(&mut self, reply: Self::Reply);
    /// A re-INVITE's offer. By default audio is taken and anything else refused.
    fn on_reoffer(&mut self, offer: &Reoffer) -> ReofferChoice {
        match offer {
            Reoffer::Audio(..) => ReofferChoice::Accept,
            Reoffer::Fax(_) | Reoffer::Unusable(_) => ReofferChoice::Refuse,
        }
    }
    /// The call carries T.38 from now on (a first offer or a re-offer accepted): the
    /// 20 ms tick comes as [`Application::on_t38_tick`], the far end's IFPs as
    /// [`Application::on_ifp`], and no audio flows.
    fn on_t38(&mut self, _session: &crate::sdp::t38::T38Session) {}
    /// The far end refused our T.38 offer (its status; 408 when nothing answered, 0
    /// when its answer had no usable T.38 stream): audio goes on.
    fn on_t38_refused(&mut self, _status: u16) {}
    /// One IFP from the far end, in sequence order, with its UDPTL sequence number.
    fn on_ifp(&mut self, _seq: u16, _ifp: &[u8]) {}
    /// The 20 ms tick on a T.38 call.
    fn on_t38_tick(&mut self) {}
    fn poll(&mut self) -> Option<Effect<Self::Request>>;
    fn is_done(&self) -> bool;
}
