//! The parts of the menu that record or send: mailbox options (greetings with review, PIN
//! change), forwarding a message to a mailbox or distribution list with a spoken
//! comment, and replying to its sender.

use super::*;
use crate::model::MessageKind;

/// What a recording is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    Greeting(GreetingKind),
    /// A comment for a message forwarded to this mailbox or list.
    Forward(String),
    /// A reply to the sender, or (true) to all of an e-mail's recipients too.
    Reply(bool),
}

impl Menu {
    fn current_message(&self) -> Option<&MenuMessage> {
        self.messages.get(self.current)
    }

    pub(super) fn setup_key(&mut self, key: char) {
        self.interrupt();
        let kind = match key {
            '1' => Some(GreetingKind::Unavailable),
            '2' => Some(GreetingKind::Busy),
            '3' => Some(GreetingKind::Name),
            '4' => Some(GreetingKind::Temporary),
            _ => None,
        };
        if let Some(kind) = kind {
            self.start_recording(Purpose::Greeting(kind));
            return;
        }
        match key {
            '5' => self.ask(Phase::NewPin, &["vm-new-pin"]),
            '6' => {
                self.phase = Phase::Busy;
                self.actions.push_back(Action::DeleteGreeting { kind: GreetingKind::Temporary });
            }
            '*' | '#' => self.ask(Phase::Main, &["vm-main-menu"]),
            _ => self.play_ids(&["vm-invalid", "vm-setup-menu"]),
        }
    }

    /// "Record after the tone" and the beep; recording starts when they have played.
    fn start_recording(&mut self, purpose: Purpose) {
        let intro = match &purpose {
            Purpose::Greeting(GreetingKind::Name) => "vm-record-name",
            Purpose::Greeting(_) => "vm-record-greeting",
            Purpose::Forward(_) => "vm-record-comment",
            Purpose::Reply(_) => "vm-record-reply",
        };
        self.purpose = Some(purpose);
        self.recorder.clear();
        self.recording.clear();
        self.phase = Phase::Recording;
        self.play_ids(&[intro, "beep"]);
    }

    /// The prompt and beep are over (or were cut by a key): from now on frames count.
    pub(super) fn recording_started(&mut self) {
        self.recorder.clear();
    }

    pub(super) fn record_frame(&mut self, pcm: &[i16]) {
        if self.playing {
            return; // still the prompt or the beep
        }
        self.recorder.push(pcm, self.params.silence_level);
        let r = &self.recorder;
        if r.trailing_silence() >= self.params.silence_frames || r.frames() >= self.params.max_record_frames {
            self.stop_recording();
        }
    }

    pub(super) fn recording_key(&mut self, key: char) {
        if self.playing {
            // A key during "record after the tone" skips to the beep... or, for a
            // forward, # sends without a comment.
            self.interrupt();
            if key == '#' && matches!(self.purpose, Some(Purpose::Forward(_))) {
                self.recorder.clear();
                self.recording.clear();
                self.send_recording();
                return;
            }
            self.play_ids(&["beep"]);
            return;
        }
        if key == '#' {
            self.stop_recording();
        } else if key == '*' {
            // Cancel.
            self.recorder.clear();
            self.recording.clear();
            self.purpose = None;
            self.after_send_or_cancel(&["vm-cancelled"]);
        }
    }

    fn stop_recording(&mut self) {
        self.recording = self.recorder.finish();
        match self.purpose {
            Some(Purpose::Greeting(_)) => {
                if self.recording.is_empty() {
                    self.ask(Phase::Setup, &["vm-nothing-recorded", "vm-setup-menu"]);
                } else {
                    self.ask(Phase::Review, &["vm-review"]);
                }
            }
            _ => self.send_recording(),
        }
    }

    pub(super) fn review_key(&mut self, key: char) {
        self.interrupt();
        match key {
            '1' => {
                let Some(Purpose::Greeting(kind)) = self.purpose.clone() else { return };
                self.phase = Phase::Busy;
                self.actions.push_back(Action::SaveGreeting { kind, pcm: self.recording.clone() });
            }
            '2' => {
                let clip = Arc::new(Clip::from_pcm(self.recording.clone(), "your recording"));
                let mut clips = vec![clip];
                clips.extend(self.say.clips(["vm-review".to_string()]));
                self.play(clips);
            }
            '3' => {
                if let Some(p) = self.purpose.clone() {
                    self.start_recording(p);
                }
            }
            '*' => {
                self.recording.clear();
                self.purpose = None;
                self.ask(Phase::Setup, &["vm-cancelled", "vm-setup-menu"]);
            }
            _ => self.play_ids(&["vm-invalid", "vm-review"]),
        }
    }

    fn send_recording(&mut self) {
        let Some(id) = self.current_message().map(|m| m.id) else { return };
        let pcm = std::mem::take(&mut self.recording);
        match self.purpose.clone() {
            Some(Purpose::Forward(to)) => {
                self.phase = Phase::Busy;
                self.actions.push_back(Action::Forward { id, to, comment: pcm });
            }
            Some(Purpose::Reply(_)) if pcm.is_empty() => self.after_send_or_cancel(&["vm-nothing-recorded"]),
            Some(Purpose::Reply(all)) => {
                self.phase = Phase::Busy;
                self.actions.push_back(Action::Reply { id, pcm, all });
            }
            _ => {}
        }
    }

    /// A reply: for an e-mail, to the sender or to all first (the menu does not read
    /// every mail's headers to know whether there are others: the list stays cheap).
    pub(super) fn start_reply(&mut self) {
        let Some(m) = self.current_message() else { return };
        if m.caller.as_deref().is_none_or(str::is_empty) {
            self.play_ids(&["vm-no-reply-address", "vm-message-options"]);
        } else if m.kind == MessageKind::Email {
            self.ask(Phase::ReplyChoice, &["vm-reply-choice"]);
        } else {
            self.start_recording(Purpose::Reply(false));
        }
    }

    /// A forward: for a fax (when faxes can be sent), to a mailbox or a fax machine
    /// first.
    pub(super) fn start_forward(&mut self) {
        let fax = self.current_message().is_some_and(|m| m.kind == MessageKind::Fax);
        if fax && self.params.fax_sending {
            self.ask(Phase::FaxChoice, &["vm-fax-forward-choice"]);
        } else {
            self.ask(Phase::ForwardTo, &["vm-forward-to"]);
        }
    }

    /// 1 a mailbox, 2 a fax machine, * back to the message options.
    pub(super) fn fax_choice_key(&mut self, key: char) {
        self.interrupt();
        match key {
            '1' => self.ask(Phase::ForwardTo, &["vm-forward-to"]),
            '2' => self.ask(Phase::FaxNumber, &["vm-fax-number"]),
            '*' => self.ask(Phase::Options, &["vm-message-options"]),
            _ => self.play_ids(&["vm-invalid", "vm-fax-forward-choice"]),
        }
    }

    /// 1 the sender, 2 all, * back to the message options.
    pub(super) fn reply_choice_key(&mut self, key: char) {
        self.interrupt();
        match key {
            '1' => self.start_recording(Purpose::Reply(false)),
            '2' => self.start_recording(Purpose::Reply(true)),
            '*' => self.ask(Phase::Options, &["vm-message-options"]),
            _ => self.play_ids(&["vm-invalid", "vm-reply-choice"]),
        }
    }

    /// Digits entered at the PIN-change and forward-to prompts.
    pub(super) fn entered(&mut self, typed: String) {
        match self.phase {
            Phase::NewPin => {
                if typed.len() < self.params.min_pin_len {
                    self.ask(Phase::NewPin, &["vm-pin-too-short", "vm-new-pin"]);
                } else {
                    self.new_pin = Some(typed);
                    self.ask(Phase::ConfirmPin, &["vm-reenter-pin"]);
                }
            }
            Phase::ConfirmPin => match self.new_pin.take() {
                Some(pin) if pin == typed => {
                    self.phase = Phase::Busy;
                    self.actions.push_back(Action::ChangePin { pin });
                }
                _ => self.ask(Phase::NewPin, &["vm-pin-mismatch", "vm-new-pin"]),
            },
            Phase::ForwardTo if typed.is_empty() => self.after_send_or_cancel(&["vm-cancelled"]),
            Phase::ForwardTo => {
                self.phase = Phase::Busy;
                self.purpose = Some(Purpose::Forward(typed.clone()));
                self.actions.push_back(Action::LookupTarget { number: typed });
            }
            Phase::FaxNumber if typed.is_empty() => self.after_send_or_cancel(&["vm-cancelled"]),
            Phase::FaxNumber => {
                let Some(id) = self.current_message().map(|m| m.id) else { return };
                self.phase = Phase::Busy;
                self.sending_fax = true;
                self.actions.push_back(Action::SendFax { id, number: typed });
            }
            _ => {}
        }
    }

    pub(super) fn cancel_entry(&mut self) {
        self.digits.clear();
        self.new_pin = None;
        match self.phase {
            Phase::ForwardTo | Phase::FaxNumber => self.after_send_or_cancel(&["vm-cancelled"]),
            _ => self.ask(Phase::Setup, &["vm-cancelled", "vm-setup-menu"]),
        }
    }

    /// The answer to [`Action::LookupTarget`].
    pub fn handle_target(&mut self, exists: bool) {
        if self.phase != Phase::Busy {
            return;
        }
        match (exists, self.purpose.clone()) {
            (true, Some(p @ Purpose::Forward(_))) => self.start_recording(p),
            _ => {
                self.purpose = None;
                self.ask(Phase::ForwardTo, &["vm-no-such-mailbox", "vm-forward-to"]);
            }
        }
    }

    /// The answer to a save, PIN change, forward or reply: `ok` once it is durable.
    pub fn handle_done(&mut self, ok: bool) {
        if self.phase != Phase::Busy {
            return;
        }
        if std::mem::take(&mut self.sending_fax) {
            self.after_send_or_cancel(&[if ok { "vm-fax-queued" } else { "vm-failed" }]);
            return;
        }
        let purpose = self.purpose.take();
        self.recording.clear();
        if !ok {
            let back: &[&str] = match purpose {
                Some(Purpose::Reply(_)) => &["vm-reply-failed"],
                _ => &["vm-failed"],
            };
            match purpose {
                Some(Purpose::Forward(_) | Purpose::Reply(_)) => self.after_send_or_cancel(back),
                _ => self.ask(Phase::Setup, &[back[0], "vm-setup-menu"]),
            }
            return;
        }
        match purpose {
            Some(Purpose::Forward(_)) => self.after_send_or_cancel(&["vm-forwarded"]),
            Some(Purpose::Reply(_)) => self.after_send_or_cancel(&["vm-reply-sent"]),
            Some(Purpose::Greeting(_)) => self.ask(Phase::Setup, &["vm-greeting-saved", "vm-setup-menu"]),
            // PIN change or greeting deleted.
            None => self.ask(Phase::Setup, &["vm-setup-done", "vm-setup-menu"]),
        }
    }

    /// Back to the message options after a forward or reply (sent or not).
    fn after_send_or_cancel(&mut self, said: &[&str]) {
        let mut ids = said.to_vec();
        ids.push("vm-message-options");
        self.ask(Phase::Options, &ids);
    }
}
