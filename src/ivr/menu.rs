//! The mailbox menu (a subscriber calling in) as a sans-IO state machine.
//!
//! Fed key presses, one tick per 20 ms frame (the frame count is the clock), playback
//! completion, the hang-up and the answers to its requests (PIN check, message list,
//! message audio); it answers with [`Action`]s for the call driver. The driver owns all
//! I/O: the store, the sync trigger, the RTP session.
//!
//! Flow: mailbox number (skipped when the caller ID is a mailbox) → PIN → counts →
//! main menu (1 listen, 0 options, * help, # exit) → per message: envelope, audio,
//! options (5 replay, 4 previous, 6 next, 7 delete/undelete, 9 save, 0 mark new; * / # rewind and
//! fast-forward during the audio, # also skipping the envelope, 2 pause; in an e-mail read
//! out * / # go by sentence and 1 / 3 by paragraph). A key press always cuts the prompt
//! playing (barge-in), so the answer to a key starts on the next frame.

use super::keys::{MainKey, MenuKeys, MessageKey};
use super::speech::{self, Say};
use crate::media::prompts::Clip;
pub use crate::model::{GreetingKind, LoginResult, MenuMessage, SpeechMarks, State};
use crate::rtp::FRAME_SAMPLES;
use crate::session::app::{Application, Effect};
use std::sync::Arc;

/// Samples per second of the call audio.
const RATE: usize = 8000;

/// The driver's answers to the menu's requests.
#[derive(Debug)]
pub enum Reply {
    /// To [`Action::CheckPin`].
    Login(LoginResult),
    /// To [`Action::LoadMessages`]: the list, the zone its dates are spoken in, and the
    /// prompts of the mailbox's language when they are not the ones playing.
    Messages(Vec<MenuMessage>, jiff::tz::TimeZone, Option<Say>),
    /// To [`Action::LoadAudio`]. Speech comes in growing parts (the first sentence as
    /// soon as it is rendered, then longer and longer prefixes of the whole, each a
    /// whole number of frames): `true` with the last, or with a recording's only part;
    /// then where the sentences and paragraphs rendered so far start (none for a
    /// recording).
    Audio(i64, Option<Arc<Clip>>, bool, SpeechMarks),
    /// To [`Action::LookupTarget`].
    Target(bool),
    /// To a request that writes (greeting, PIN, forward, reply): it worked.
    Done(bool),
}

/// The menu on the shared call loop: playback and hang-up are the loop's; every other
/// action is a request for the driver.
impl Application for Menu {
    type Request = Action;
    type Reply = Reply;

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
    fn on_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Login(r) => self.handle_login(r),
            Reply::Messages(list, zone, say) => {
                self.set_time_zone(zone);
                if let Some(say) = say {
                    // From here on the subscriber hears their own language.
                    self.say = say;
                }
                self.handle_messages(list)
            }
            Reply::Audio(id, clip, complete, marks) => {
                self.set_marks(id, marks);
                self.handle_audio_part(id, clip, complete);
            }
            Reply::Target(exists) => self.handle_target(exists),
            Reply::Done(ok) => self.handle_done(ok),
        }
    }
    fn poll(&mut self) -> Option<Effect<Action>> {
        Some(match self.poll_action()? {
            Action::Play(clips) => Effect::Play(clips),
            Action::PlayFrom(clip, offset) => Effect::PlayFrom(clip, offset),
            Action::StopPlayback => Effect::StopPlayback,
            Action::Hangup => Effect::Hangup,
            request => Effect::Request(request),
        })
    }
    fn is_done(&self) -> bool {
        Menu::is_done(self)
    }
}

#[derive(Debug, Clone)]
pub struct MenuParams {
    /// Wrong PINs allowed in one call before it is ended.
    pub max_login_attempts: u32,
    /// Frames of silence after a prompt before entered digits count as complete.
    pub digit_timeout_frames: usize,
    /// Rewind / fast-forward step, in samples.
    pub skip_samples: usize,
    /// The time zone the envelope's dates are spoken in (the server's, until the
    /// mailbox's own is known: [`Menu::set_time_zone`]).
    pub time_zone: jiff::tz::TimeZone,
    /// The time the call started (unix seconds), for "today" / "yesterday".
    pub now_unix: i64,
    /// Shortest new PIN accepted.
    pub min_pin_len: usize,
    /// Longest greeting, comment or reply, in frames.
    pub max_record_frames: usize,
    /// Silence that ends a recording, in frames, and the level below which a frame is silent.
    pub silence_frames: usize,
    pub silence_level: u32,
    /// The keys (from the dialplan route).
    pub keys: MenuKeys,
    /// Messages deleted in the call become D (and are expunged) when it ends; otherwise
    /// they stay M (`\Deleted` in the mail client) until removed there.
    pub purge_on_hangup: bool,
    /// Whether a fax can be sent on to a fax number (`[fax] send_via` is set).
    pub fax_sending: bool,
}

#[derive(Debug)]
pub enum Action {
    /// Queue these clips for playback, after anything already queued.
    Play(Vec<Arc<Clip>>),
    /// Play `clip` from sample `offset` on.
    PlayFrom(Arc<Clip>, usize),
    /// Drop whatever is still queued.
    StopPlayback,
    /// Check the PIN, answer with [`Menu::handle_login`].
    CheckPin {
        mailbox: String,
        pin: String,
    },
    /// Read the mailbox's messages, answer with [`Menu::handle_messages`].
    LoadMessages {
        mailbox: String,
    },
    /// Read a message's audio, answer with [`Menu::handle_audio`].
    LoadAudio {
        id: i64,
    },
    /// Store a new state (and trigger the sync engine).
    SetState {
        id: i64,
        state: State,
    },
    /// The call is over: these messages, deleted during it, become D.
    Purge {
        ids: Vec<i64>,
    },
    /// Store a greeting (durably), answer with [`Menu::handle_done`].
    SaveGreeting {
        kind: GreetingKind,
        pcm: Vec<i16>,
    },
    /// Remove a greeting (the temporary one), answer with [`Menu::handle_done`].
    DeleteGreeting {
        kind: GreetingKind,
    },
    /// Store a new PIN (hashed), answer with [`Menu::handle_done`].
    ChangePin {
        pin: String,
    },
    /// Is `number` a mailbox or a distribution list? Answer with [`Menu::handle_target`].
    LookupTarget {
        number: String,
    },
    /// Forward message `id` to `to` (a mailbox or list), the comment first; answer with
    /// [`Menu::handle_done`].
    Forward {
        id: i64,
        to: String,
        comment: Vec<i16>,
    },
    /// Queue fax message `id` to be sent to the fax number `number` (by the fax jobs);
    /// answer with [`Menu::handle_done`].
    SendFax {
        id: i64,
        number: String,
    },
    /// Reply to the sender of message `id` with this recording (`all`: and to the
    /// e-mail's other recipients); answer with [`Menu::handle_done`] (false: no address
    /// to reply to, or it failed).
    Reply {
        id: i64,
        pcm: Vec<i16>,
        all: bool,
    },
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AskMailbox,
    AskPin,
    Checking,
    Loading,
    Main,
    Envelope,
    Audio,
    Options,
    /// Mailbox options (greetings, PIN).
    Setup,
    Recording,
    Review,
    NewPin,
    ConfirmPin,
    ForwardTo,
    /// A fax's forward: to a mailbox or to a fax machine.
    FaxChoice,
    /// The fax number a fax is sent to.
    FaxNumber,
    /// An e-mail's reply: to the sender or to all.
    ReplyChoice,
    /// Waiting for the driver (a lookup or a save).
    Busy,
    Closing,
    Done,
}

pub struct Menu {
    params: MenuParams,
    say: Say,
    phase: Phase,
    mailbox: Option<String>,
    digits: String,
    /// Frames since the last prompt ended with nothing typed.
    idle_frames: usize,
    /// True while a prompt is queued or playing.
    playing: bool,
    reprompts: u32,
    failed_logins: u32,
    messages: Vec<MenuMessage>,
    current: usize,
    /// The current message's audio, once loaded.
    audio: Option<(i64, Arc<Clip>)>,
    /// Whether `audio` is all of the message (speech still rendering: not yet).
    audio_complete: bool,
    /// Playback ran past what was rendered: where to go on when the next part comes.
    resume_at: Option<usize>,
    /// The length of the audio part playing now: where it ends.
    audio_end: usize,
    /// Where the sentences and paragraphs of spoken audio start; none for a recording,
    /// whose skips go by `skip_samples`.
    marks: SpeechMarks,
    /// Paused by the caller: where the audio goes on.
    paused_at: Option<usize>,
    /// Sample offset of the audio at `audio_frame`, and the tick it was (re)started.
    audio_offset: usize,
    audio_frame: u64,
    frames: u64,
    deleted_here: Vec<i64>,
    /// A fax is being queued to a fax number ([`Action::SendFax`], answered by
    /// [`Menu::handle_done`]).
    sending_fax: bool,
    /// Keys pressed while the store was answering, applied once it has.
    typeahead: Vec<char>,
    /// The recording in progress, the finished one under review or being sent, and
    /// what it is for.
    recorder: crate::media::Recorder,
    recording: Vec<i16>,
    purpose: Option<record::Purpose>,
    /// A new PIN waiting for its confirmation.
    new_pin: Option<String>,
    actions: std::collections::VecDeque<Action>,
}

impl Menu {
    /// Starts the menu. `mailbox` is the caller's own mailbox when the caller ID matched
    /// one; the PIN is asked either way.
    pub fn new(params: MenuParams, say: Say, mailbox: Option<String>) -> Menu {
        let mut m = Menu {
            params,
            say,
            phase: Phase::AskMailbox,
            mailbox: None,
            digits: String::new(),
            idle_frames: 0,
            playing: false,
            reprompts: 0,
            failed_logins: 0,
            messages: Vec::new(),
            current: 0,
            audio: None,
            audio_offset: 0,
            audio_frame: 0,
            audio_complete: true,
            resume_at: None,
            audio_end: 0,
            marks: SpeechMarks::default(),
            paused_at: None,
            frames: 0,
            deleted_here: Vec::new(),
            sending_fax: false,
            typeahead: Vec::new(),
            recorder: Default::default(),
            recording: Vec::new(),
            purpose: None,
            new_pin: None,
            actions: Default::default(),
        };
        match mailbox {
            Some(mb) => {
                m.mailbox = Some(mb);
                m.ask(Phase::AskPin, &["vm-password"]);
            }
            None => m.ask(Phase::AskMailbox, &["vm-login"]),
        }
        m
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The messages of the logged-in mailbox, as last loaded (and changed since).
    pub fn messages(&self) -> &[MenuMessage] {
        &self.messages
    }

    fn play_ids(&mut self, ids: &[&str]) {
        let clips = self.say.clips(ids.iter().map(|s| s.to_string()));
        self.play(clips);
    }

    fn play(&mut self, clips: Vec<Arc<Clip>>) {
        if clips.is_empty() {
            return;
        }
        self.playing = true;
        self.idle_frames = 0;
        self.actions.push_back(Action::Play(clips));
    }

    fn interrupt(&mut self) {
        if self.playing {
            self.actions.push_back(Action::StopPlayback);
            self.playing = false;
        }
    }

    fn ask(&mut self, phase: Phase, ids: &[&str]) {
        self.phase = phase;
        self.digits.clear();
        self.play_ids(ids);
    }

    fn goodbye(&mut self) {
        self.interrupt();
        self.phase = Phase::Closing;
        self.play_ids(&["vm-goodbye"]);
    }

    pub fn handle_playback_done(&mut self) {
        self.playing = false;
        self.idle_frames = 0;
        match self.phase {
            Phase::Closing => self.finish(true),
            Phase::Envelope => self.start_audio(),
            Phase::Audio => {
                // The part that played ended: go on with a longer one if it came
                // meanwhile (perhaps the last, complete one), else wait for the next,
                // else the message is over.
                let at = self.audio_end;
                match self.audio.clone() {
                    Some((_, clip)) if at < clip.pcm.len() => self.play_audio_from(clip, at),
                    _ if !self.audio_complete => self.resume_at = Some(at),
                    _ => {
                        self.phase = Phase::Options;
                        self.play_ids(&["vm-message-options"]);
                    }
                }
            }
            Phase::Recording => self.recording_started(),
            _ => {}
        }
    }

    /// One tick (20 ms) with the caller's audio of that frame. Drives digit and menu
    /// time-outs, and recordings.
    pub fn handle_frame(&mut self, pcm: &[i16]) {
        self.frames += 1;
        if self.phase == Phase::Recording {
            self.record_frame(pcm);
            return;
        }
        // Nothing times out while a prompt plays, while the store answers, or while a
        // message's audio loads.
        let waiting = matches!(
            self.phase,
            Phase::Checking
                | Phase::Loading
                | Phase::Busy
                | Phase::Closing
                | Phase::Done
                | Phase::Envelope
                | Phase::Audio
        );
        if self.playing || waiting {
            return;
        }
        self.idle_frames += 1;
        if self.idle_frames < self.params.digit_timeout_frames {
            return;
        }
        self.idle_frames = 0;
        match self.phase {
            Phase::AskMailbox
            | Phase::AskPin
            | Phase::NewPin
            | Phase::ConfirmPin
            | Phase::ForwardTo
            | Phase::FaxNumber
                if !self.digits.is_empty() =>
            {
                self.submit()
            }
            _ => {
                self.reprompts += 1;
                if self.reprompts > 2 {
                    self.goodbye();
                } else {
                    self.reprompt();
                }
            }
        }
    }

    fn reprompt(&mut self) {
        match self.phase {
            Phase::AskMailbox => self.play_ids(&["vm-login"]),
            Phase::AskPin => self.play_ids(&["vm-password"]),
            Phase::Main => self.play_ids(&["vm-main-menu"]),
            Phase::Options => self.play_ids(&["vm-message-options"]),
            Phase::Setup => self.play_ids(&["vm-setup-menu"]),
            Phase::Review => self.play_ids(&["vm-review"]),
            Phase::NewPin => self.play_ids(&["vm-new-pin"]),
            Phase::ConfirmPin => self.play_ids(&["vm-reenter-pin"]),
            Phase::ForwardTo => self.play_ids(&["vm-forward-to"]),
            Phase::FaxChoice => self.play_ids(&["vm-fax-forward-choice"]),
            Phase::FaxNumber => self.play_ids(&["vm-fax-number"]),
            Phase::ReplyChoice => self.play_ids(&["vm-reply-choice"]),
            _ => {}
        }
    }

    pub fn handle_dtmf(&mut self, key: char) {
        self.reprompts = 0;
        self.idle_frames = 0;
        match self.phase {
            Phase::AskMailbox
            | Phase::AskPin
            | Phase::NewPin
            | Phase::ConfirmPin
            | Phase::ForwardTo
            | Phase::FaxNumber => {
                // Typing during the prompt cuts it. * starts the login entry over, and
                // cancels the others.
                self.interrupt();
                match key {
                    '#' => self.submit(),
                    '*' if matches!(self.phase, Phase::AskMailbox | Phase::AskPin) => self.digits.clear(),
                    '*' => self.cancel_entry(),
                    d if d.is_ascii_digit() && self.digits.len() < 32 => self.digits.push(d),
                    _ => {}
                }
            }
            Phase::Main => self.main_key(key),
            Phase::Envelope | Phase::Audio | Phase::Options => self.message_key(key),
            Phase::Setup => self.setup_key(key),
            Phase::Recording => self.recording_key(key),
            Phase::Review => self.review_key(key),
            Phase::ReplyChoice => self.reply_choice_key(key),
            Phase::FaxChoice => self.fax_choice_key(key),
            // Callers type ahead (the next mailbox number, "1" to listen) while the
            // store answers; nothing typed is lost.
            Phase::Checking | Phase::Loading if self.typeahead.len() < 32 => self.typeahead.push(key),
            Phase::Checking | Phase::Loading | Phase::Busy | Phase::Closing | Phase::Done => {}
        }
    }

    fn replay_typeahead(&mut self) {
        for key in std::mem::take(&mut self.typeahead) {
            self.handle_dtmf(key);
        }
    }

    /// `#` (or the time-out) after digits: the mailbox, the PIN, or (see `entered`) a new
    /// PIN or a forward target.
    fn submit(&mut self) {
        let typed = std::mem::take(&mut self.digits);
        match self.phase {
            Phase::AskMailbox => {
                if typed.is_empty() {
                    self.play_ids(&["vm-login"]);
                    return;
                }
                self.mailbox = Some(typed);
                self.ask(Phase::AskPin, &["vm-password"]);
            }
            Phase::AskPin => {
                let mailbox = self.mailbox.clone().unwrap_or_default();
                self.phase = Phase::Checking;
                self.actions.push_back(Action::CheckPin { mailbox, pin: typed });
            }
            _ => self.entered(typed),
        }
    }

    /// The store's answer to [`Action::CheckPin`].
    pub fn handle_login(&mut self, result: LoginResult) {
        if self.phase != Phase::Checking {
            return;
        }
        match result {
            LoginResult::Ok => {
                self.phase = Phase::Loading;
                let mailbox = self.mailbox.clone().unwrap_or_default();
                self.actions.push_back(Action::LoadMessages { mailbox });
            }
            LoginResult::Locked => {
                self.phase = Phase::Closing;
                self.play_ids(&["vm-locked", "vm-goodbye"]);
            }
            // "That did not work. Please try again later." — not "incorrect": the PIN
            // may have been right, and it does not count towards a lock.
            LoginResult::Unavailable => {
                self.phase = Phase::Closing;
                self.play_ids(&["vm-failed", "vm-goodbye"]);
            }
            LoginResult::Wrong => {
                self.failed_logins += 1;
                if self.failed_logins >= self.params.max_login_attempts {
                    self.phase = Phase::Closing;
                    self.play_ids(&["vm-incorrect", "vm-goodbye"]);
                } else {
                    // Ask for both again: the mailbox number may be the wrong part.
                    self.mailbox = None;
                    self.ask(Phase::AskMailbox, &["vm-incorrect", "vm-login"]);
                    self.replay_typeahead();
                }
            }
        }
    }

    /// The mailbox's own time zone, once it is known (after login).
    pub fn set_time_zone(&mut self, tz: jiff::tz::TimeZone) {
        self.params.time_zone = tz;
    }

    /// The answer to [`Action::LoadMessages`]: new messages first, then saved, each
    /// oldest first; messages marked for deletion elsewhere are left out.
    pub fn handle_messages(&mut self, mut list: Vec<MenuMessage>) {
        if self.phase != Phase::Loading {
            return;
        }
        list.retain(|m| matches!(m.state, State::U | State::R));
        list.sort_by_key(|m| (m.state != State::U, m.received_at, m.id));
        self.messages = list;
        self.current = 0;
        let counts = speech::counts(&self.messages);
        self.phase = Phase::Main;
        let mut clips = self.say.clips(counts);
        clips.extend(self.say.clips(["vm-main-menu".to_string()]));
        self.play(clips);
        self.replay_typeahead();
    }

    fn main_key(&mut self, key: char) {
        self.interrupt();
        match self.params.keys.main(key) {
            Some(MainKey::Listen) => {
                if self.messages.is_empty() {
                    self.play_ids(&["vm-you-have", "vm-no-messages", "vm-main-menu"]);
                } else {
                    self.current = 0;
                    self.present();
                }
            }
            Some(MainKey::Help) => self.play_ids(&["vm-help", "vm-main-menu"]),
            Some(MainKey::Exit) => self.goodbye(),
            Some(MainKey::Options) => self.ask(Phase::Setup, &["vm-setup-menu"]),
            None => self.play_ids(&["vm-invalid", "vm-main-menu"]),
        }
    }

    /// Plays the current message's envelope and asks for its audio.
    fn present(&mut self) {
        let Some(m) = self.messages.get(self.current).cloned() else {
            self.phase = Phase::Main;
            self.play_ids(&["vm-no-more", "vm-main-menu"]);
            return;
        };
        self.phase = Phase::Envelope;
        if self.audio.as_ref().map(|a| a.0) != Some(m.id) {
            self.audio = None;
            self.marks = SpeechMarks::default();
            self.actions.push_back(Action::LoadAudio { id: m.id });
        }
        let ids = speech::envelope(self.current + 1, &m, self.params.now_unix, &self.params.time_zone);
        let clips = self.say.clips(ids);
        self.play(clips);
    }

    /// The answer to [`Action::LoadAudio`] (`None`: the audio could not be read).
    pub fn handle_audio(&mut self, id: i64, clip: Option<Arc<Clip>>) {
        self.handle_audio_part(id, clip, true)
    }

    /// Where the sentences and paragraphs of message `id`'s spoken audio start.
    pub fn set_marks(&mut self, id: i64, marks: SpeechMarks) {
        if self.audio.as_ref().map(|a| a.0) == Some(id) || self.messages.get(self.current).map(|m| m.id) == Some(id) {
            self.marks = marks;
        }
    }

    /// Where a skip from `pos` lands: for speech the next sentence (or paragraph), or back
    /// to the start of this one (the one before when this one just began, under a second
    /// in); for a recording `skip_samples` either way. Forward past every start known:
    /// `usize::MAX`.
    fn skip_target(&self, pos: usize, forward: bool, paragraph: bool) -> usize {
        let starts = if paragraph { &self.marks.paragraphs } else { &self.marks.sentences };
        if starts.is_empty() {
            let step = self.params.skip_samples;
            return if forward { pos + step } else { pos.saturating_sub(step) };
        }
        if forward {
            return starts.iter().copied().find(|&s| s > pos + FRAME_SAMPLES).unwrap_or(usize::MAX);
        }
        let current = starts.iter().rposition(|&s| s <= pos).unwrap_or(0);
        if pos - starts[current].min(pos) < RATE && current > 0 {
            starts[current - 1]
        } else {
            starts[current]
        }
    }

    /// Plays the current message's audio from `at`: past the end of a complete one the
    /// message options follow; past what is rendered so far of speech, it goes on there
    /// when the next part comes.
    fn go_to(&mut self, at: usize) {
        let Some((_, clip)) = self.audio.clone() else { return };
        if at < clip.pcm.len() {
            self.play_audio_from(clip, at);
        } else if self.audio_complete {
            self.handle_playback_done();
        } else {
            // The next sentence starts where the rendered part ends.
            self.resume_at = Some(at.min(clip.pcm.len()));
        }
    }

    /// A part of a message's audio: the first starts it (after the envelope), a later
    /// one replaces what was rendered so far by a longer prefix; playback that ran out
    /// goes on where it stopped.
    pub fn handle_audio_part(&mut self, id: i64, clip: Option<Arc<Clip>>, complete: bool) {
        if self.messages.get(self.current).map(|m| m.id) != Some(id) {
            return; // the caller moved on
        }
        let first = self.audio.as_ref().map(|a| a.0) != Some(id);
        let clip = clip.unwrap_or_else(|| {
            self.say.clips(["vm-unplayable".to_string()]).into_iter().next().unwrap_or_else(|| Arc::new(silence()))
        });
        self.audio = Some((id, clip.clone()));
        self.audio_complete = complete;
        if first {
            self.resume_at = None;
            if self.phase == Phase::Audio && !self.playing {
                self.start_audio();
            }
        } else if let Some(at) = self.resume_at.take() {
            if self.phase == Phase::Audio && !self.playing {
                self.go_to(at);
            }
        }
    }

    fn start_audio(&mut self) {
        self.phase = Phase::Audio;
        if let Some((_, clip)) = self.audio.clone() {
            self.play_audio_from(clip, 0);
            // Listening makes a new message read.
            if let Some(m) = self.messages.get_mut(self.current) {
                if m.state == State::U {
                    m.state = State::R;
                    self.actions.push_back(Action::SetState { id: m.id, state: State::R });
                }
            }
        }
    }

    fn play_audio_from(&mut self, clip: Arc<Clip>, offset: usize) {
        let offset = offset.min(clip.pcm.len());
        self.audio_end = clip.pcm.len();
        self.audio_offset = offset;
        self.audio_frame = self.frames;
        self.playing = true;
        self.actions.push_back(Action::PlayFrom(clip, offset));
    }

    /// Where the audio playing now is, in samples.
    fn audio_position(&self) -> usize {
        self.audio_offset + (self.frames - self.audio_frame) as usize * FRAME_SAMPLES
    }

    fn message_key(&mut self, key: char) {
        let keys = &self.params.keys;
        // Fast-forward during the envelope: straight to the message itself.
        if self.phase == Phase::Envelope && self.playing && key == keys.fast_forward {
            self.interrupt();
            self.start_audio();
            return;
        }
        // Paused: the pause key goes on where it stopped; any other key means what it
        // means after a message (3 replies, 7 deletes).
        if let Some(at) = self.paused_at.take() {
            if key == keys.pause && self.phase == Phase::Audio {
                self.go_to(at);
                return;
            }
        }
        let in_audio = self.phase == Phase::Audio && self.playing;
        let in_paragraphs = in_audio && !self.marks.paragraphs.is_empty();
        match keys.message(key, in_audio, in_paragraphs) {
            Some(MessageKey::Pause) => {
                let pos = self.audio_position();
                self.interrupt();
                self.paused_at = Some(pos);
            }
            Some(
                k @ (MessageKey::Rewind
                | MessageKey::FastForward
                | MessageKey::ParagraphBack
                | MessageKey::ParagraphForward),
            ) => {
                let pos = self.audio_position();
                let forward = matches!(k, MessageKey::FastForward | MessageKey::ParagraphForward);
                let to = self.skip_target(
                    pos,
                    forward,
                    matches!(k, MessageKey::ParagraphBack | MessageKey::ParagraphForward),
                );
                self.interrupt();
                self.go_to(to);
            }
            Some(MessageKey::Replay) => {
                self.interrupt();
                self.present();
            }
            Some(MessageKey::Previous) => {
                self.interrupt();
                if self.current == 0 {
                    self.phase = Phase::Options;
                    self.play_ids(&["vm-first", "vm-message-options"]);
                } else {
                    self.current -= 1;
                    self.present();
                }
            }
            Some(MessageKey::Next) => {
                self.interrupt();
                self.current += 1;
                self.present();
            }
            Some(MessageKey::Delete) => {
                self.interrupt();
                let Some(m) = self.messages.get_mut(self.current) else { return };
                let (id, undelete) = (m.id, m.state == State::M);
                m.state = if undelete { State::R } else { State::M };
                self.actions.push_back(Action::SetState { id, state: m.state });
                if undelete {
                    self.deleted_here.retain(|d| *d != id);
                    self.phase = Phase::Options;
                    self.play_ids(&["vm-undeleted", "vm-message-options"]);
                } else {
                    self.deleted_here.push(id);
                    self.current += 1;
                    let clips = self.say.clips(["vm-deleted".to_string()]);
                    self.play(clips);
                    self.present();
                }
            }
            Some(MessageKey::Save) => {
                self.interrupt();
                if !self.keep_as(State::R) {
                    return;
                }
                self.current += 1;
                let clips = self.say.clips(["vm-message-saved".to_string()]);
                self.play(clips);
                self.present();
            }
            Some(MessageKey::MarkUnread) => {
                // New again: listed with the new ones next time, unread in the mail client.
                self.interrupt();
                if !self.keep_as(State::U) {
                    return;
                }
                self.phase = Phase::Options;
                self.play_ids(&["vm-marked-new", "vm-message-options"]);
            }
            Some(MessageKey::Forward) => {
                self.interrupt();
                self.start_forward();
            }
            Some(MessageKey::Reply) => {
                self.interrupt();
                self.start_reply();
            }
            Some(MessageKey::MainMenu) => {
                // Back to the main menu.
                self.interrupt();
                self.phase = Phase::Main;
                self.play_ids(&["vm-main-menu"]);
            }
            None if in_audio => {} // stray keys do not cut the message
            None => {
                self.interrupt();
                self.phase = Phase::Options;
                self.play_ids(&["vm-invalid", "vm-message-options"]);
            }
        }
    }

    /// The current message kept in `state` (read, or new again), no longer to be purged
    /// at hang-up; false when there is no current message.
    fn keep_as(&mut self, state: State) -> bool {
        let Some(m) = self.messages.get_mut(self.current) else { return false };
        if m.state != state {
            m.state = state;
            let id = m.id;
            self.actions.push_back(Action::SetState { id, state });
            self.deleted_here.retain(|d| *d != id);
        }
        true
    }

    pub fn handle_hangup(&mut self) {
        self.finish(false);
    }

    fn finish(&mut self, hang_up: bool) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        if self.params.purge_on_hangup && !self.deleted_here.is_empty() {
            self.actions.push_back(Action::Purge { ids: std::mem::take(&mut self.deleted_here) });
        }
        if hang_up {
            self.actions.push_back(Action::Hangup);
        }
    }
}

fn silence() -> Clip {
    Clip::from_pcm(vec![0; RATE / 2], "silence")
}

mod record;

#[cfg(test)]
mod tests;
