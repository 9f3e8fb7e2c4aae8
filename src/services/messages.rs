//! What a subscriber does with messages, whoever asks (the phone menu today, the CLI and
//! the web later): send a recording to mailboxes, forward a message, reply to it, change
//! its state. Every change is durable before it is reported, and announced on the change
//! hub once.

use crate::config::{DeliveryConfig, DistributionList};
use crate::model::{MarkAction, MenuMessage, MessageKind, State};
use crate::notify::{Hub, Origin};
use crate::store::api::SharedStore;
use crate::store::menu::MessageAudio;
use crate::store::MessageRow;
use anyhow::Result;
use std::sync::Arc;
use tokio::sync::Notify;

/// What the caller hears of a message without audio: "An e-mail from Ann. Subject: …".
pub fn description(kind: MessageKind, from: Option<&str>, subject: Option<&str>) -> String {
    let what = match kind {
        MessageKind::Fax => "A fax",
        MessageKind::Email => "An e-mail",
        MessageKind::Voice => "A voice message without playable audio",
    };
    format!("{what} from {}. Subject: {}.", from.unwrap_or("an unknown sender"), subject.unwrap_or_default())
}

/// A message for the phone: a recording, or text to speak sentence by sentence.
pub enum Speech {
    Pcm(Vec<i16>),
    Text { sentences: Vec<String>, voice: String },
}

/// Renders `sentences` with espeak-ng, calling `part(all_so_far, sentence_starts,
/// complete)` after the first sentence and then whenever what is rendered has doubled
/// since the last call (`sentence_starts`: where each sentence rendered so far begins, in
/// samples, for skipping by sentence) —
/// so the first audio is ready after one sentence whatever the length, and the copies
/// the parts cost stay linear. Every part but the last is a whole number of 20 ms
/// frames (playback goes on at its end without a seam). `part` returns false to stop
/// (the caller moved on or hung up).
pub fn render_in_parts(
    sentences: &[String],
    voice: &str,
    mut part: impl FnMut(&[i16], &[usize], bool) -> bool,
) -> Result<()> {
    const FRAME: usize = crate::rtp::FRAME_SAMPLES;
    let mut all: Vec<i16> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut sent = 0usize;
    for (i, s) in sentences.iter().enumerate() {
        starts.push(all.len());
        all.extend(crate::media::tts::synthesize(s, voice, 150)?);
        let last = i + 1 == sentences.len();
        let whole = all.len() / FRAME * FRAME;
        if !last && whole > 0 && (sent == 0 || whole >= 2 * sent) {
            if !part(&all[..whole], &starts, false) {
                return Ok(());
            }
            sent = whole;
        }
    }
    part(&all, &starts, true);
    Ok(())
}

/// The message services and what they need.
#[derive(Clone)]
pub struct Messages {
    pub store: SharedStore,
    pub changes: Hub,
    pub delivery: DeliveryConfig,
    /// Distribution lists (`[[menu.list]]`).
    pub lists: Vec<DistributionList>,
    /// espeak-ng voice for messages read out (e-mails, faxes).
    pub tts_voice: String,
    /// What an e-mail is read as (the language's substitution rules and written forms).
    pub reader: Arc<crate::reading::Reader>,
    /// The language e-mails are read in (`[prompts] language`).
    pub lang: String,
    /// Readers (with their voices) for e-mails written in another language.
    pub other_readers: Arc<Vec<(String, crate::reading::Reader, String)>>,
    /// Wakes the outbox when something waits for delivery.
    pub outbox_wake: Arc<Notify>,
}

impl Messages {
    /// The services for a process without the server's tasks (a CLI command): nobody
    /// listens on its change hub — the running server's next pass or poll sees the
    /// change in the store — and no outbox waits on its wake-up.
    pub fn standalone(store: impl Into<SharedStore>, cfg: &crate::config::Config) -> Messages {
        Messages {
            store: store.into(),
            changes: Hub::new(),
            delivery: cfg.delivery.clone(),
            lists: cfg.menu.list.clone(),
            tts_voice: cfg.prompts.voice.clone(),
            reader: Arc::new(crate::services::reading::reader(cfg, &cfg.prompts.language).unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "substitution rules not loaded; e-mails are read without them");
                crate::reading::Reader::default()
            })),
            lang: cfg.prompts.language.clone(),
            other_readers: Arc::new(crate::services::reading::other_readers(cfg).unwrap_or_default()),
            outbox_wake: Arc::new(Notify::new()),
        }
    }

    /// Whether `number` can receive: a mailbox or a distribution list.
    pub async fn is_target(&self, number: &str) -> bool {
        if self.lists.iter().any(|l| l.number == number) {
            return true;
        }
        let n = number.to_string();
        self.store.run(move |s| s.mailbox(&n)).await.ok().flatten().is_some()
    }

    /// A mailbox's messages as the phone menu lists them, in the order they arrived:
    /// e-mails its filters keep back are not among them (`services::filters`).
    pub async fn menu_list(&self, mailbox: &str) -> Result<Vec<MenuMessage>> {
        let mb = mailbox.to_string();
        let rows = self
            .store
            .run(move |s| {
                let rows = s.messages(&mb)?;
                let filters = crate::services::filters::parse_stored(&s.filters(&mb)?);
                if filters.is_empty() {
                    return Ok(rows);
                }
                let now = crate::store::now_secs();
                let mut kept = Vec::with_capacity(rows.len());
                for m in rows {
                    if m.kind == MessageKind::Email {
                        let facts = crate::services::filters::MailFacts::read(
                            &s.message_raw(m.id)?.unwrap_or_default(),
                            (now - m.received_at) as f64 / 86_400.0,
                            m.state == State::U,
                        );
                        if crate::services::filters::offered(&filters, &facts).is_err() {
                            continue;
                        }
                    }
                    kept.push(m);
                }
                Ok(kept)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|m: MessageRow| MenuMessage {
                id: m.id,
                kind: m.kind,
                state: m.state,
                caller: m.caller,
                received_at: m.received_at,
                duration_ms: m.duration_ms,
            })
            .collect())
    }

    /// Changes messages' states as the subscriber asked (by phone, by CLI), in order, and
    /// announces the change once: the lamps and the sync engine hear of it. Per message
    /// its new state (None: removed at once, it existed only here) or why it failed.
    pub async fn mark(&self, mailbox: &str, changes: Vec<(i64, MarkAction)>) -> Vec<Result<Option<State>>> {
        let mb = mailbox.to_string();
        let n = changes.len();
        let results = self
            .store
            .run(move |s| Ok(changes.into_iter().map(|(id, act)| s.mark(&mb, id, act)).collect::<Vec<_>>()))
            .await
            .unwrap_or_else(|e| (0..n).map(|_| Err(anyhow::anyhow!("{e:#}"))).collect());
        if results.iter().any(Result::is_ok) {
            self.changes.changed(mailbox, Origin::Phone);
        }
        results
    }

    /// The audio of a message as PCM: a recording as it is; an e-mail read out — sender,
    /// subject, what the sender wrote, its attachments (`reading::Reader::mail`); a fax or
    /// an e-mail not stored whole, described. All of it rendered: for the phone, which
    /// starts playing at the first sentence, see [`Messages::message_speech`].
    pub async fn message_pcm(&self, id: i64) -> Result<Vec<i16>> {
        match self.message_speech(id).await? {
            Speech::Pcm(pcm) => Ok(pcm),
            Speech::Text { sentences, voice } => {
                let mut all = Vec::new();
                render_in_parts(&sentences, &voice, |pcm, _, _| {
                    all = pcm.to_vec();
                    true
                })?;
                Ok(all)
            }
        }
    }

    /// What a message is to the phone: a recording, or the sentences to speak (and the
    /// voice), rendered by the caller part by part.
    pub async fn message_speech(&self, id: i64) -> Result<Speech> {
        let (voice, reader, lang) = (self.tts_voice.clone(), self.reader.clone(), self.lang.clone());
        let others = self.other_readers.clone();
        self.store
            .run(move |s| match s.message_audio(id)? {
                MessageAudio::Pcm(pcm) => Ok(Speech::Pcm(pcm)),
                MessageAudio::Describe { kind: MessageKind::Email, raw: Some(raw), mailbox, .. } => {
                    let (code, base, voice) =
                        crate::services::reading::for_mail(&raw, (&lang, &reader, &voice), &others);
                    let stored = s.substitutions(Some(&mailbox), code)?;
                    let reader = crate::services::reading::with_stored(base, &stored);
                    let sentences = reader.mail(&raw).into_iter().flatten().collect();
                    Ok(Speech::Text { sentences, voice: voice.to_string() })
                }
                MessageAudio::Describe { kind, from, subject, .. } => {
                    Ok(Speech::Text { sentences: vec![description(kind, from.as_deref(), subject.as_deref())], voice })
                }
            })
            .await
    }

    /// Starts the recording of a deposit for `mailbox`, written while the caller speaks.
    pub async fn start_recording(&self, mailbox: &str) -> Result<(String, crate::media::wav::WavStream)> {
        let mb = mailbox.to_string();
        self.store.run(move |s| s.start_recording(&mb, "")).await
    }

    /// Commits a deposit whose recording is already on disk (durable) as a new message
    /// with its delivery, then announces it and wakes the outbox.
    pub async fn deposit_recorded(
        &self,
        mailbox: &str,
        caller: Option<String>,
        caller_name: Option<String>,
        recorded: crate::services::deposit::Recorded,
    ) -> Result<i64> {
        let (domain, mb) = (self.delivery.from_domain.clone(), mailbox.to_string());
        let ids = self
            .store
            .run(move |s| {
                let m = crate::services::deposit::voice_message(&domain, &mb, caller, caller_name, recorded);
                s.insert_voice_messages(&[m])
            })
            .await?;
        self.changes.changed(mailbox, Origin::Deposit);
        self.outbox_wake.notify_one();
        ids.first().copied().ok_or_else(|| anyhow::anyhow!("no message stored"))
    }

    /// Saves `pcm` as a new voice message from `from` in every target mailbox, all in one
    /// transaction, and lights their lamps.
    pub async fn send_voice(&self, from: &str, targets: &[String], pcm: Vec<i16>) -> Result<()> {
        let ids = self.commit_voice(targets.to_vec(), Some(from.to_string()), None, pcm).await?;
        for (to, id) in targets.iter().zip(ids) {
            tracing::info!(from, to = %to, message = id, "voice message sent by phone");
        }
        Ok(())
    }

    /// The deposit path for one recording and its mailboxes: the file written durably,
    /// the rows and their deliveries committed in one transaction (all or none, so a
    /// repeated forward never leaves some mailboxes with two copies), then announced and
    /// the outbox woken.
    async fn commit_voice(
        &self,
        mailboxes: Vec<String>,
        caller: Option<String>,
        caller_name: Option<String>,
        pcm: Vec<i16>,
    ) -> Result<Vec<i64>> {
        let (domain, to) = (self.delivery.from_domain.clone(), mailboxes.clone());
        let ids = self
            .store
            .run(move |s| {
                let ms = to
                    .iter()
                    .map(|mb| {
                        crate::services::deposit::new_voice_message(
                            s,
                            &domain,
                            mb,
                            caller.clone(),
                            caller_name.clone(),
                            &pcm,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                s.insert_voice_messages(&ms)
            })
            .await?;
        for mb in &mailboxes {
            self.changes.changed(mb, Origin::Deposit);
        }
        self.outbox_wake.notify_one();
        Ok(ids)
    }

    /// Forward: the comment, a short pause, then the original message.
    pub async fn forward(&self, from: &str, id: i64, to: &str, comment: Vec<i16>) -> Result<bool> {
        let targets: Vec<String> = match self.lists.iter().find(|l| l.number == to) {
            Some(list) => list.members.iter().filter(|m| m.as_str() != from).cloned().collect(),
            None => vec![to.to_string()],
        };
        let mut pcm = comment;
        if !pcm.is_empty() {
            pcm.extend(std::iter::repeat_n(0, 3200));
        }
        pcm.extend(self.message_pcm(id).await?);
        self.send_voice(from, &targets, pcm).await?;
        Ok(true)
    }

    /// Reply: to the sender's mailbox when the message came from one.
    pub async fn reply(&self, from: &str, id: i64, pcm: Vec<i16>) -> Result<bool> {
        let caller = self.store.run(move |s| Ok(s.message(id)?.and_then(|m| m.caller))).await?;
        let Some(caller) = caller else { return Ok(false) };
        let c2 = caller.clone();
        if self.store.run(move |s| s.mailbox(&c2)).await?.is_some() {
            self.send_voice(from, &[caller], pcm).await?;
            return Ok(true);
        }
        // The address came from a mail's From header: only a well-formed one is written
        // into the reply's headers and the SMTP envelope.
        if caller.parse::<lettre::Address>().is_err() {
            tracing::info!(mailbox = from, to = %caller, "reply: the caller has no mailbox here and no usable e-mail address");
            return Ok(false);
        }
        // An e-mail sender: a voice reply by SMTP, through the reply queue.
        let (f2, cfg) = (from.to_string(), self.delivery.clone());
        let Some(mb) = self.store.run(move |s| s.mailbox(&f2)).await? else { return Ok(false) };
        if crate::mail::outbox::reply_server(&mb, &cfg).is_none() {
            tracing::warn!(
                mailbox = from,
                "reply by e-mail needs an SMTP server: set [delivery] smtp_url or the mailbox's --smtp"
            );
            return Ok(false);
        }
        let (f2, domain) = (from.to_string(), cfg.from_domain.clone());
        let queued = self
            .store
            .run(move |s| {
                let original = s.message(id)?.ok_or_else(|| anyhow::anyhow!("message {id} is gone"))?;
                let (rel, _) = s.write_recording(&f2, "reply-", &pcm)?;
                let subject = original.subject.clone().unwrap_or_default();
                let subject =
                    if subject.to_ascii_lowercase().starts_with("re:") { subject } else { format!("Re: {subject}") };
                s.insert_reply(&crate::store::outgoing::NewReply {
                    mailbox: f2.clone(),
                    rcpt: caller.clone(),
                    message_id: crate::mail::compose::new_message_id(&domain),
                    subject,
                    in_reply_to: Some(original.message_id.clone()),
                    media_path: rel,
                    duration_ms: (pcm.len() / 8) as i64,
                })
            })
            .await?;
        tracing::info!(mailbox = from, reply = queued, "voice reply queued for SMTP");
        self.outbox_wake.notify_one();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewMailbox, NewVoiceMessage, Store};
    use std::sync::Mutex;

    #[test]
    fn a_message_without_audio_is_described() {
        assert_eq!(description(MessageKind::Email, Some("Ann"), Some("Lunch")), "An e-mail from Ann. Subject: Lunch.");
        assert_eq!(description(MessageKind::Fax, None, None), "A fax from an unknown sender. Subject: .");
    }

    #[tokio::test]
    async fn a_batch_of_changes_is_durable_then_announced_once() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        store.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let voice = |n: u32| NewVoiceMessage {
            mailbox: "100".into(),
            caller: None,
            caller_name: None,
            received_at: 1,
            duration_ms: 1000,
            media_path: format!("recordings/100/{n}.wav"),
            media_bytes: 44,
            message_id: format!("<m{n}@x>"),
            subject: "Voice message".into(),
        };
        let ids = store.insert_voice_messages(&[voice(1), voice(2)]).unwrap();
        let cfg = crate::config::Config::default();
        let svc = Messages::standalone(store.clone(), &cfg);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h2 = heard.clone();
        svc.changes.add_sink(move |c| h2.lock().unwrap().push((c.mailbox.clone(), c.origin)));
        let r = svc
            .mark("100", vec![(ids[0], MarkAction::Read), (ids[1], MarkAction::Delete), (999, MarkAction::Read)])
            .await;
        assert_eq!(r[0].as_ref().unwrap(), &Some(State::R));
        assert_eq!(r[1].as_ref().unwrap(), &Some(State::M));
        assert!(r[2].is_err(), "no such message");
        assert_eq!(*heard.lock().unwrap(), [("100".to_string(), Origin::Phone)], "announced once, after the writes");
        let states: Vec<State> = store.messages("100").unwrap().iter().map(|m| m.state).collect();
        assert_eq!(states, [State::R, State::M]);
    }
}
