//! Fax reception on an audio call (G.711): the caller's frames go to the fax engine,
//! whose answer is played back frame by frame, until T.30 ends or the caller hangs up.
//! Then one request: the fax is finished (or cut), with its file and T.30 outcome, for
//! the driver to store. T.38 joins later (a re-INVITE to `image/t38`).

use crate::fax::spandsp::{AudioFax, Job, Outcome};
use crate::media::prompts::Clip;
use crate::rtp::FRAME_SAMPLES;
use crate::session::app::{Application, Effect};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

/// The one request: the fax is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The TIFF-F spandsp wrote (absent or empty when no page arrived).
    pub path: PathBuf,
    /// T.30's end (phase E); `None` when the call ended first.
    pub outcome: Option<Outcome>,
    /// Call time, in 20 ms frames.
    pub frames: u64,
}

pub struct FaxReceive {
    engine: AudioFax,
    path: PathBuf,
    effects: VecDeque<Effect<Finished>>,
    frames: u64,
    /// Longest call before giving up (a fax that never starts or never ends).
    max_frames: u64,
    finished: bool,
}

impl FaxReceive {
    /// Receives into `path` (which spandsp creates); `ident` is our CSI.
    pub fn new(path: PathBuf, ident: &str, max_secs: u64) -> anyhow::Result<FaxReceive> {
        let engine = AudioFax::new(false, Job::Receive(&path), ident)?;
        Ok(FaxReceive {
            engine,
            path,
            effects: VecDeque::new(),
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
        let outcome = self.engine.outcome();
        self.effects.push_back(Effect::Request(Finished { path: self.path.clone(), outcome, frames: self.frames }));
        if hang_up {
            self.effects.push_back(Effect::Hangup);
        }
    }
}

impl Application for FaxReceive {
    type Request = Finished;
    type Reply = ();

    fn on_frame(&mut self, pcm: &[i16]) {
        if self.finished {
            return;
        }
        self.frames += 1;
        self.engine.receive(pcm);
        let mut out = vec![0i16; FRAME_SAMPLES];
        let n = self.engine.transmit(&mut out);
        out[n..].fill(0);
        self.effects.push_back(Effect::Play(vec![Arc::new(Clip::from_pcm(out, "fax"))]));
        if self.engine.outcome().is_some() || self.frames >= self.max_frames {
            self.finish(true);
        }
    }
    fn on_dtmf(&mut self, _digit: char) {}
    fn on_playback_done(&mut self) {}
    fn on_hangup(&mut self) {
        self.finish(false);
    }
    fn on_reply(&mut self, _reply: ()) {}
    fn poll(&mut self) -> Option<Effect<Finished>> {
        self.effects.pop_front()
    }
    fn is_done(&self) -> bool {
        self.finished && self.effects.is_empty()
    }
}
