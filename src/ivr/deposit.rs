//! The voice-mail deposit application as a sans-IO state machine.
//!
//! Fed key presses, received audio frames (one per 20 ms tick — the frame count *is*
//! the clock), playback completion, the outcome of saving and the caller's hang-up; it
//! answers with [`Action`]s for the call driver. Greeting → beep → record until `#`,
//! hang-up, `silence_secs` of silence or `max_secs`; shorter than `min_secs` is discarded;
//! `0` goes to the operator if one is configured. "Message saved" is only played after
//! the driver reports the recording fsynced and its row committed.

use crate::media::prompts::Clip;
use crate::rtp::FRAME_SAMPLES;
use crate::session::app::{AppKind, Application, Effect, ReofferChoice};
use crate::session::media::Reoffer;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DepositParams {
    pub min_frames: usize,
    pub max_frames: usize,
    pub silence_frames: usize,
    pub silence_level: u32,
    pub operator: Option<String>,
    /// Whether a T.38 re-INVITE hands the call to fax reception (else it is refused
    /// with 488 and the deposit goes on).
    pub fax_handover: bool,
    /// Whether a fax calling tone (CNG) in the caller's audio, during the greeting or
    /// the recording, hands the call to fax reception (`[deposit] fax_detect`).
    pub fax_on_cng: bool,
}

impl DepositParams {
    pub fn from_config(c: &crate::config::DepositConfig) -> DepositParams {
        let frames = |secs: f64| (secs * 50.0).round() as usize;
        DepositParams {
            min_frames: frames(c.min_secs),
            max_frames: frames(c.max_secs).max(1),
            silence_frames: frames(c.silence_secs).max(1),
            silence_level: c.silence_level as u32,
            operator: c.operator.clone(),
            fax_handover: c.fax_detect,
            fax_on_cng: c.fax_detect,
        }
    }
}

/// The clips the application plays.
#[derive(Debug, Clone)]
pub struct DepositClips {
    pub greeting: Vec<Arc<Clip>>,
    pub beep: Arc<Clip>,
    pub saved: Arc<Clip>,
    pub too_short: Arc<Clip>,
    pub transfer: Arc<Clip>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Key,
    Hangup,
    Silence,
    MaxLength,
    Operator,
}

/// What the deposit asks of the call loop: play, stop, hang up, transfer, or a
/// [`DepositRequest`] about its recording.
pub type Action = Effect<DepositRequest>;

/// Recorded audio goes to disk while the caller speaks: memory holds at most
/// [`FLUSH_FRAMES`] of it, however long the message.
pub const FLUSH_FRAMES: usize = 50;

/// The deposit's requests of the driver, about the one recording of the call, in order.
#[derive(Debug)]
pub enum DepositRequest {
    /// More of the recording, to append to it on disk (no answer).
    Append(Vec<i16>),
    /// The recording is over: keep it as a message. The answer (saved or not) goes to
    /// [`Deposit::handle_saved`].
    Save(SaveRecording),
    /// The recording is over and too short to keep: throw away what was appended (no
    /// answer).
    Discard,
}

/// The end of a recording: `tail` is appended, then the first `samples` of all that
/// was appended are kept (trailing silence is cut after the fact), made durable, and
/// committed with the message's row.
#[derive(Debug)]
pub struct SaveRecording {
    pub tail: Vec<i16>,
    pub samples: usize,
    pub reason: StopReason,
}

/// The deposit on the shared call loop.
impl Application for Deposit {
    type Request = DepositRequest;
    type Reply = bool;

    fn on_frame(&mut self, pcm: &[i16]) {
        self.handle_frame(pcm)
    }
    fn on_dtmf(&mut self, digit: char) {
        self.handle_dtmf(digit)
    }
    fn on_playback_done(&mut self) {
        self.handle_playback_done()
    }
    fn on_hangup(&mut self) {
        self.handle_hangup()
    }
    fn on_reply(&mut self, saved: bool) {
        self.handle_saved(saved)
    }
    /// Audio changes are taken; a fax (T.38) goes to fax reception when there is one.
    fn on_reoffer(&mut self, offer: &Reoffer) -> ReofferChoice {
        match offer {
            Reoffer::Audio(..) => ReofferChoice::Accept,
            Reoffer::Fax(_) if self.params.fax_handover => ReofferChoice::HandOver(AppKind::FaxReceive),
            Reoffer::Fax(_) | Reoffer::Unusable(_) => ReofferChoice::Refuse,
        }
    }
    fn poll(&mut self) -> Option<Action> {
        self.poll_action()
    }
    fn is_done(&self) -> bool {
        Deposit::is_done(self)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Greeting,
    Recording,
    Saving,
    /// Playing a final prompt; then hang up or transfer.
    Closing,
    Done,
}

pub struct Deposit {
    params: DepositParams,
    clips: DepositClips,
    state: State,
    recording: crate::media::Recorder,
    caller_gone: bool,
    transfer_after: bool,
    cng: crate::media::cng::CngDetector,
    actions: std::collections::VecDeque<Action>,
}

impl Deposit {
    /// Starts the application: the greeting and beep are queued at once.
    pub fn new(params: DepositParams, clips: DepositClips) -> Deposit {
        let mut first = clips.greeting.clone();
        first.push(clips.beep.clone());
        let mut d = Deposit {
            params,
            clips,
            state: State::Greeting,
            recording: Default::default(),
            caller_gone: false,
            transfer_after: false,
            cng: Default::default(),
            actions: Default::default(),
        };
        d.actions.push_back(Action::Play(first));
        d
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn handle_playback_done(&mut self) {
        match self.state {
            State::Greeting => self.state = State::Recording,
            State::Closing => self.finish(),
            _ => {}
        }
    }

    pub fn handle_dtmf(&mut self, digit: char) {
        match (&self.state, digit) {
            (State::Greeting, '#') => {
                // Skip the rest of the greeting, but still give the beep.
                self.actions.push_back(Action::StopPlayback);
                self.actions.push_back(Action::Play(vec![self.clips.beep.clone()]));
            }
            (State::Greeting, '0') if self.params.operator.is_some() => {
                self.actions.push_back(Action::StopPlayback);
                self.transfer_after = true;
                self.close(vec![self.clips.transfer.clone()]);
            }
            (State::Recording, '#') => self.stop(StopReason::Key),
            (State::Recording, '0') if self.params.operator.is_some() => {
                self.transfer_after = true;
                self.stop(StopReason::Operator);
            }
            _ => {}
        }
    }

    /// One received frame (20 ms): listened to for a fax's calling tone during the
    /// greeting and the recording, recorded during the recording.
    pub fn handle_frame(&mut self, pcm: &[i16]) {
        let listening = matches!(self.state, State::Greeting | State::Recording);
        if listening && self.params.fax_on_cng && self.cng.push(pcm) {
            self.hand_to_fax();
            return;
        }
        if self.state != State::Recording {
            return;
        }
        self.recording.push(pcm, self.params.silence_level);
        if self.recording.pending_frames() >= FLUSH_FRAMES {
            self.actions.push_back(Action::Request(DepositRequest::Append(self.recording.take())));
        }
        let frames = self.recording.frames();
        if self.recording.trailing_silence() >= self.params.silence_frames {
            self.stop(StopReason::Silence);
        } else if frames >= self.params.max_frames {
            self.stop(StopReason::MaxLength);
        }
    }

    /// Whether part of the recording already went to disk (a Discard must remove it).
    fn appended(&self) -> bool {
        self.recording.frames() > self.recording.pending_frames()
    }

    /// A fax machine is calling: what was recorded of its tones is thrown away and the
    /// call goes to fax reception, media as it is.
    fn hand_to_fax(&mut self) {
        let appended = self.appended();
        self.recording.clear();
        self.actions.push_back(Action::StopPlayback);
        if appended {
            self.actions.push_back(Action::Request(DepositRequest::Discard));
        }
        self.actions.push_back(Action::HandOver(AppKind::FaxReceive));
        self.state = State::Done;
    }

    pub fn handle_hangup(&mut self) {
        self.caller_gone = true;
        match self.state {
            State::Recording => self.stop(StopReason::Hangup),
            State::Greeting | State::Closing => self.finish(),
            State::Saving | State::Done => {}
        }
    }

    /// The driver's report: `true` once the recording is durable and committed.
    pub fn handle_saved(&mut self, ok: bool) {
        if self.state != State::Saving {
            return;
        }
        let mut clips = Vec::new();
        if ok {
            clips.push(self.clips.saved.clone());
        }
        if self.transfer_after {
            clips.push(self.clips.transfer.clone());
        }
        if clips.is_empty() {
            // Saving failed: say nothing misleading, just end the call.
            self.finish();
        } else {
            self.close(clips);
        }
    }

    fn stop(&mut self, reason: StopReason) {
        // Trailing silence is not part of the message, whatever ended it.
        let samples = self.recording.kept_samples();
        let appended = self.appended();
        let tail = self.recording.take();
        self.recording.clear();
        let frames = samples / FRAME_SAMPLES;
        if frames < self.params.min_frames || frames == 0 {
            if appended {
                self.actions.push_back(Action::Request(DepositRequest::Discard));
            }
            let mut clips = vec![];
            if !self.transfer_after {
                clips.push(self.clips.too_short.clone());
            } else {
                clips.push(self.clips.transfer.clone());
            }
            self.close(clips);
            return;
        }
        self.state = State::Saving;
        self.actions.push_back(Action::Request(DepositRequest::Save(SaveRecording { tail, samples, reason })));
    }

    fn close(&mut self, clips: Vec<Arc<Clip>>) {
        if self.caller_gone {
            self.finish();
            return;
        }
        self.state = State::Closing;
        self.actions.push_back(Action::Play(clips));
    }

    fn finish(&mut self) {
        if self.state == State::Done {
            return;
        }
        self.state = State::Done;
        if self.caller_gone {
            return;
        }
        match (self.transfer_after, &self.params.operator) {
            (true, Some(op)) => self.actions.push_back(Action::Transfer(op.clone())),
            _ => self.actions.push_back(Action::Hangup),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(n: usize) -> Arc<Clip> {
        Arc::new(Clip::from_pcm(vec![0; n], "test"))
    }

    fn params() -> DepositParams {
        DepositParams {
            min_frames: 50,
            max_frames: 500,
            silence_frames: 100,
            silence_level: 200,
            operator: None,
            fax_handover: false,
            fax_on_cng: true,
        }
    }

    fn app(p: DepositParams) -> Deposit {
        let clips = DepositClips {
            greeting: vec![clip(8000)],
            beep: clip(1),
            saved: clip(2),
            too_short: clip(3),
            transfer: clip(4),
        };
        Deposit::new(p, clips)
    }

    fn drain(d: &mut Deposit) -> Vec<Action> {
        std::iter::from_fn(|| d.poll_action()).collect()
    }

    /// The recording's requests folded: the samples appended in chunks (and as the
    /// tail), and what is kept, why — checking no chunk was larger than a second.
    fn saved(acts: Vec<Action>) -> Option<(usize, usize, StopReason)> {
        let mut appended = 0;
        for a in acts {
            match a {
                Action::Request(DepositRequest::Append(pcm)) => {
                    assert!(pcm.len() <= FLUSH_FRAMES * FRAME_SAMPLES, "a chunk of {} samples", pcm.len());
                    appended += pcm.len();
                }
                Action::Request(DepositRequest::Save(s)) => {
                    return Some((appended + s.tail.len(), s.samples, s.reason))
                }
                _ => {}
            }
        }
        None
    }

    const LOUD: [i16; 160] = [3000; 160];

    /// A deposit past its greeting that heard `loud` loud frames, then `quiet` frames of
    /// `level` (silence, or a pause above nothing).
    fn recorded(p: DepositParams, loud: usize, quiet: usize, level: i16) -> Deposit {
        let mut d = app(p);
        drain(&mut d);
        d.handle_playback_done();
        for _ in 0..loud {
            d.handle_frame(&LOUD);
        }
        for _ in 0..quiet {
            d.handle_frame(&[level; 160]);
        }
        d
    }

    #[test]
    fn records_until_pound_then_saves_and_hangs_up() {
        let mut d = app(params());
        assert!(matches!(&drain(&mut d)[..], [Action::Play(c)] if c.len() == 2));
        d.handle_frame(&LOUD); // during the greeting: not recorded
        d.handle_playback_done();
        for _ in 0..200 {
            d.handle_frame(&LOUD);
        }
        d.handle_dtmf('#');
        let acts = drain(&mut d);
        assert_eq!(
            acts.iter().filter(|a| matches!(a, Action::Request(DepositRequest::Append(_)))).count(),
            4,
            "written while recorded, a second at a time"
        );
        assert_eq!(saved(acts), Some((200 * 160, 200 * 160, StopReason::Key)), "exactly the frames after the beep");
        assert!(drain(&mut d).is_empty(), "nothing is said before the save is confirmed");
        d.handle_saved(true);
        assert!(matches!(&drain(&mut d)[..], [Action::Play(c)] if c[0].pcm.len() == 2));
        d.handle_playback_done();
        assert!(matches!(&drain(&mut d)[..], [Action::Hangup]));
        assert!(d.is_done());
    }

    #[test]
    fn silence_stops_and_is_trimmed_short_is_discarded() {
        let mut d = recorded(params(), 60, 100, 0);
        let (written, kept, why) = saved(drain(&mut d)).expect("saved");
        assert_eq!((kept, why), (60 * 160, StopReason::Silence), "the silence is cut");
        assert_eq!(written, 160 * 160, "it was written before it was known to be silence");

        let mut d = recorded(params(), 10, 0, 0);
        d.handle_dtmf('#');
        assert!(matches!(&drain(&mut d)[..], [Action::Play(c)] if c[0].pcm.len() == 3), "too short");

        // Too short once the silence is cut, though a chunk was written: it is discarded.
        let mut d = recorded(params(), 10, 60, 0);
        d.handle_dtmf('#');
        let acts = drain(&mut d);
        assert!(
            matches!(
                &acts[..],
                [Action::Request(DepositRequest::Append(_)), Action::Request(DepositRequest::Discard), Action::Play(_)]
            ),
            "{acts:?}"
        );

        // A pause before # is trimmed too.
        let mut d = recorded(params(), 70, 40, 5);
        d.handle_dtmf('#');
        assert_eq!(saved(drain(&mut d)).map(|s| (s.1, s.2)), Some((70 * 160, StopReason::Key)));
    }

    #[test]
    fn max_length_and_hangup() {
        let mut d = app(DepositParams { max_frames: 100, ..params() });
        drain(&mut d);
        d.handle_playback_done();
        for _ in 0..150 {
            d.handle_frame(&LOUD);
        }
        assert_eq!(saved(drain(&mut d)).map(|s| (s.1, s.2)), Some((100 * 160, StopReason::MaxLength)));

        let mut d = app(params());
        drain(&mut d);
        d.handle_playback_done();
        for _ in 0..80 {
            d.handle_frame(&LOUD);
        }
        d.handle_hangup();
        assert_eq!(saved(drain(&mut d)).map(|s| s.2), Some(StopReason::Hangup));
        d.handle_saved(true);
        assert!(drain(&mut d).is_empty(), "nobody to talk to");
        assert!(d.is_done());
    }

    #[test]
    fn zero_goes_to_operator_only_when_configured() {
        let mut d = app(params());
        drain(&mut d);
        d.handle_dtmf('0');
        assert!(drain(&mut d).is_empty());
        let mut d = app(DepositParams { operator: Some("sip:op@127.0.0.1".into()), ..params() });
        drain(&mut d);
        d.handle_playback_done();
        for _ in 0..80 {
            d.handle_frame(&LOUD);
        }
        d.handle_dtmf('0');
        assert_eq!(saved(drain(&mut d)).map(|s| s.2), Some(StopReason::Operator));
        d.handle_saved(true);
        assert!(matches!(&drain(&mut d)[..], [Action::Play(c)] if c.len() == 2));
        d.handle_playback_done();
        assert!(matches!(&drain(&mut d)[..], [Action::Transfer(t)] if t == "sip:op@127.0.0.1"));
    }

    /// 0.5 s of 1100 Hz (a fax machine's calling tone), frame by frame.
    fn cng() -> Vec<[i16; 160]> {
        (0..25)
            .map(|f| {
                std::array::from_fn(|i| {
                    let t = (f * 160 + i) as f64 / 8000.0;
                    (4000.0 * (2.0 * std::f64::consts::PI * 1100.0 * t).sin()) as i16
                })
            })
            .collect()
    }

    /// What the deposit does while it hears [`cng`].
    fn hearing_cng(d: &mut Deposit) -> Vec<Action> {
        cng()
            .iter()
            .flat_map(|f| {
                d.handle_frame(f);
                drain(d)
            })
            .collect()
    }

    #[test]
    fn a_fax_calling_tone_hands_the_call_to_fax_reception() {
        // During the greeting: the greeting stops, the call goes to fax.
        let mut d = app(params());
        drain(&mut d);
        let acts = hearing_cng(&mut d);
        assert!(matches!(&acts[..], [Action::StopPlayback, Action::HandOver(AppKind::FaxReceive)]), "{acts:?}");
        assert!(d.is_done());
        // During the recording: what was appended of its tones is thrown away.
        let mut d = recorded(params(), 60, 0, 0);
        drain(&mut d);
        let acts = hearing_cng(&mut d);
        assert!(
            matches!(
                &acts[..],
                [
                    ..,
                    Action::StopPlayback,
                    Action::Request(DepositRequest::Discard),
                    Action::HandOver(AppKind::FaxReceive)
                ]
            ),
            "{acts:?}"
        );
        // Turned off: recorded like any sound.
        let mut d = recorded(DepositParams { fax_on_cng: false, ..params() }, 0, 0, 0);
        drain(&mut d);
        for f in cng() {
            d.handle_frame(&f);
        }
        assert!(!drain(&mut d).iter().any(|a| matches!(a, Action::HandOver(_))));
    }
}
