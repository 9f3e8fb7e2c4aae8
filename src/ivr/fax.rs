//! A fax call: reception, or sending a TIFF (`voxbridge fax send`). On audio (G.711) the caller's frames go to the fax engine,
//! whose answer is played back frame by frame; on T.38 (a first offer, or a re-INVITE
//! to `image/t38` the application accepts) the far end's IFPs go to spandsp's T.38
//! terminal, whose IFPs go out, with time advancing one tick at a time. Either way
//! until T.30 ends or the far end hangs up; then one request: the fax is finished (or
//! cut), with its file and T.30 outcome, for the driver to store or report.
//!
//! A re-INVITE with the T.38 description in force (a session timer's refresh) changes
//! nothing; one back to audio is refused while the T.38 fax runs.

use crate::fax::spandsp::{AudioFax, Job, Outcome, T38Fax};
use crate::media::prompts::Clip;
use crate::rtp::FRAME_SAMPLES;
use crate::sdp::t38::T38Session;
use crate::session::app::{Application, Effect, ReofferChoice};
use crate::session::media::Reoffer;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// What the fax application asks the driver to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaxRequest {
    /// Sending: the far machine confirmed this many pages (MCF) — durable before the
    /// next, so that a job cut by a crash is never sent again after its pages went.
    PagesSent(u32),
    /// The fax is over.
    Finished(Finished),
}

/// The fax is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The TIFF-F spandsp wrote (absent or empty when no page arrived).
    pub path: PathBuf,
    /// T.30's end (phase E); `None` when the call ended first.
    pub outcome: Option<Outcome>,
    /// Call time, in 20 ms frames.
    pub frames: u64,
}

enum Engine {
    Audio(AudioFax),
    T38(T38Fax),
}

impl Engine {
    fn outcome(&self) -> Option<Outcome> {
        match self {
            Engine::Audio(e) => e.outcome(),
            Engine::T38(e) => e.outcome(),
        }
    }

    fn pages_sent_so_far(&self) -> u32 {
        match self {
            Engine::Audio(e) => e.pages_sent_so_far(),
            Engine::T38(e) => e.pages_sent_so_far(),
        }
    }

    fn terminate(&mut self) {
        match self {
            Engine::Audio(e) => e.terminate(),
            Engine::T38(e) => e.terminate(),
        }
    }
}

/// What T.30 does with `path`.
fn job(sending: bool, path: &std::path::Path) -> Job<'_> {
    if sending {
        Job::Send(path)
    } else {
        Job::Receive(path)
    }
}

pub struct FaxCall {
    engine: Engine,
    /// The file received into, or the TIFF sent.
    path: PathBuf,
    /// Whether we send (the calling side of T.30) or receive.
    sending: bool,
    ident: String,
    effects: VecDeque<Effect<FaxRequest>>,
    /// Pages confirmed so far, as last told to the driver (sending).
    pages_told: u32,
    frames: u64,
    /// Longest call before giving up (a fax that never starts or never ends).
    max_frames: u64,
    finished: bool,
    /// Our T.38 offer is out (ticks waited, the most to wait): the audio engine rests
    /// until it is answered, refused or given up.
    offering: Option<(u64, u64)>,
}

impl FaxCall {
    /// Receives into `path` (which spandsp creates); `ident` is our CSI. `offer_t38`:
    /// on an audio call, first offer T.38 and wait this long for the answer.
    pub fn receive(path: PathBuf, ident: &str, max_secs: u64, offer_t38: Option<f64>) -> anyhow::Result<FaxCall> {
        FaxCall::new(false, path, ident, max_secs, offer_t38)
    }

    /// Sends the TIFF at `path` (pages spandsp can send: bilevel, a fax width); on
    /// audio until the far end moves the call to T.38, if it does.
    pub fn send(path: PathBuf, ident: &str, max_secs: u64) -> anyhow::Result<FaxCall> {
        FaxCall::new(true, path, ident, max_secs, None)
    }

    fn new(
        sending: bool,
        path: PathBuf,
        ident: &str,
        max_secs: u64,
        offer_t38: Option<f64>,
    ) -> anyhow::Result<FaxCall> {
        let engine = Engine::Audio(AudioFax::new(sending, job(sending, &path), ident)?);
        Ok(FaxCall {
            offering: offer_t38.map(|secs| (0, (secs * 50.0).round() as u64)),
            engine,
            path,
            sending,
            ident: ident.to_string(),
            effects: VecDeque::new(),
            pages_told: 0,
            frames: 0,
            max_frames: max_secs.saturating_mul(50),
            finished: false,
        })
    }

    fn finish(&mut self, hang_up: bool) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.engine.outcome().is_none() {
            // The far end left first, or the call ran too long: T.30 ends here and
            // says how far it got.
            self.engine.terminate();
        }
        self.tell_pages();
        let outcome = self.engine.outcome();
        let f = Finished { path: self.path.clone(), outcome, frames: self.frames };
        self.effects.push_back(Effect::Request(FaxRequest::Finished(f)));
        if hang_up {
            self.effects.push_back(Effect::Hangup);
        }
    }

    /// Sending: a page newly confirmed is told at once.
    fn tell_pages(&mut self) {
        if !self.sending {
            return;
        }
        let n = self.engine.pages_sent_so_far();
        if n > self.pages_told {
            self.pages_told = n;
            self.effects.push_back(Effect::Request(FaxRequest::PagesSent(n)));
        }
    }

    /// Whether the call is over: T.30 ended, or the call ran too long.
    fn check_end(&mut self) {
        self.tell_pages();
        if self.engine.outcome().is_some() || self.frames >= self.max_frames {
            self.finish(true);
        }
    }

    fn send_ifps(&mut self) {
        if let Engine::T38(e) = &mut self.engine {
            for (ifp, count) in e.take_ifps() {
                self.effects.push_back(Effect::SendIfp(ifp, count));
            }
        }
    }
}

impl Application for FaxCall {
    type Request = FaxRequest;
    type Reply = ();

    fn on_frame(&mut self, pcm: &[i16]) {
        let Engine::Audio(engine) = &mut self.engine else { return };
        if self.finished {
            return;
        }
        self.frames += 1;
        if let Some((waited, most)) = &mut self.offering {
            if self.frames == 1 {
                self.effects.push_back(Effect::OfferT38);
            }
            *waited += 1;
            if *waited < *most {
                return;
            }
            tracing::info!("no answer to our T.38 offer in time; receiving over G.711");
            self.effects.push_back(Effect::WithdrawT38);
            self.offering = None;
        }
        engine.receive(pcm);
        let mut out = vec![0i16; FRAME_SAMPLES];
        let n = engine.transmit(&mut out);
        out[n..].fill(0);
        self.effects.push_back(Effect::Play(vec![Arc::new(Clip::from_pcm(out, "fax"))]));
        self.check_end();
    }
    /// T.38 now: a new T.30 session on the same file (an audio fax that had begun is
    /// started over, as the far end's gateway does when it switches).
    fn on_t38(&mut self, session: &T38Session) {
        self.offering = None;
        if self.finished {
            return;
        }
        let job = job(self.sending, &self.path);
        match T38Fax::new(self.sending, job, &self.ident, session.version, session.far_max_ifp) {
            Ok(e) => {
                self.engine = Engine::T38(e);
                self.send_ifps();
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot receive over T.38; hanging up");
                self.finish(true);
            }
        }
    }
    fn on_t38_refused(&mut self, status: u16) {
        if self.offering.take().is_some() {
            tracing::info!(status, "T.38 refused; receiving over G.711");
        }
    }
    fn on_ifp(&mut self, seq: u16, ifp: &[u8]) {
        let Engine::T38(engine) = &mut self.engine else { return };
        if self.finished {
            return;
        }
        engine.receive(ifp, seq);
        self.send_ifps();
        self.check_end();
    }
    fn on_t38_tick(&mut self) {
        let Engine::T38(engine) = &mut self.engine else { return };
        if self.finished {
            return;
        }
        self.frames += 1;
        engine.advance(FRAME_SAMPLES);
        self.send_ifps();
        self.check_end();
    }
    fn on_reoffer(&mut self, offer: &Reoffer) -> ReofferChoice {
        match (offer, &self.engine) {
            (Reoffer::Fax(_), _) => ReofferChoice::Accept,
            (Reoffer::Audio(..), Engine::Audio(_)) => ReofferChoice::Accept,
            (Reoffer::Audio(..), Engine::T38(_)) if self.finished => ReofferChoice::Accept,
            _ => ReofferChoice::Refuse,
        }
    }
    fn on_dtmf(&mut self, _digit: char) {}
    fn on_playback_done(&mut self) {}
    fn on_hangup(&mut self) {
        self.finish(false);
    }
    fn on_reply(&mut self, _reply: ()) {}
    fn poll(&mut self) -> Option<Effect<FaxRequest>> {
        self.effects.pop_front()
    }
    fn is_done(&self) -> bool {
        self.finished && self.effects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effects(f: &mut FaxCall) -> Vec<Effect<FaxRequest>> {
        std::iter::from_fn(|| f.poll()).collect()
    }

    #[test]
    fn our_t38_offer_rests_the_audio_engine_until_refused_or_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let silence = [0i16; FRAME_SAMPLES];
        // No answer within the wait (0.1 s = 5 ticks): withdrawn, G.711 begins.
        let mut f = FaxCall::receive(dir.path().join("a.tif"), "vb", 60, Some(0.1)).unwrap();
        f.on_frame(&silence);
        assert!(matches!(effects(&mut f)[..], [Effect::OfferT38]));
        for _ in 0..3 {
            f.on_frame(&silence);
            assert!(effects(&mut f).is_empty(), "the engine rests: nothing played");
        }
        f.on_frame(&silence);
        let e = effects(&mut f);
        assert!(matches!(e[..], [Effect::WithdrawT38, Effect::Play(_)]), "{e:?}");
        // Refused: G.711 at once, no withdrawal.
        let mut f = FaxCall::receive(dir.path().join("b.tif"), "vb", 60, Some(5.0)).unwrap();
        f.on_frame(&silence);
        effects(&mut f);
        f.on_t38_refused(488);
        f.on_frame(&silence);
        assert!(matches!(effects(&mut f)[..], [Effect::Play(_)]));
        // Without the option: G.711 from the first frame.
        let mut f = FaxCall::receive(dir.path().join("c.tif"), "vb", 60, None).unwrap();
        f.on_frame(&silence);
        assert!(matches!(effects(&mut f)[..], [Effect::Play(_)]));
    }
}
