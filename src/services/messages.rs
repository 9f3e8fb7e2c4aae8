//! What a subscriber does with messages, whoever asks (the phone menu today, the CLI and
//! the web later): send a recording to mailboxes, forward a message, reply to it, change
//! its state. Every change is durable before it is reported, and announced on the change
//! hub once.

use crate::config::DeliveryConfig;
use crate::model::{MarkAction, MenuMessage, MessageKind, SpeechMarks, State};
use crate::notify::{Hub, Origin};
use crate::store::api::SharedStore;
use crate::store::menu::MessageAudio;
use crate::store::MessageRow;
use anyhow::Result;
use std::sync::Arc;
use tokio::sync::Notify;

/// What the caller hears of a message without audio: "An e-mail from Ann. Subject: …".
pub fn description(kind: MessageKind, from: Option<&str>, subject: Option<&str>) -> String {
    let (from, subject) = (from.unwrap_or("an unknown sender"), subject.unwrap_or_default());
    match kind {
        // A fax's subject repeats what the envelope said (sender, pages): the sender once.
        MessageKind::Fax => format!("A fax from {from}."),
        MessageKind::Email => format!("An e-mail from {from}. Subject: {subject}."),
        MessageKind::Voice => format!("A voice message without playable audio from {from}. Subject: {subject}."),
    }
}

/// A message for the phone: a recording, or text to speak sentence by sentence.
pub enum Speech {
    Pcm(Vec<i16>),
    /// Paragraphs of sentences, the voice and its rate (words per minute), and the key
    /// the rendering is cached under (a digest of all three: other rules, another voice
    /// or rate make another key).
    Text {
        paragraphs: Vec<Vec<String>>,
        voice: String,
        rate: u32,
        key: String,
    },
}

impl Speech {
    fn text(paragraphs: Vec<Vec<String>>, voice: String, rate: u32) -> Speech {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(voice.as_bytes());
        h.update(rate.to_le_bytes());
        for p in &paragraphs {
            h.update(b"\x00p");
            for s in p {
                h.update(b"\x00s");
                h.update(s.as_bytes());
            }
        }
        let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Speech::Text { paragraphs, voice, rate, key }
    }
}

/// Renders `paragraphs` with espeak-ng, calling `part(all_so_far, marks, complete)` after
/// the first sentence and then whenever what is rendered has doubled since the last call
/// (`marks`: where each sentence and paragraph rendered so far begins, in samples, for
/// skipping) — so the first audio is ready after one sentence whatever the length, and
/// the copies the parts cost stay linear. Every part but the last is a whole number of
/// 20 ms frames (playback goes on at its end without a seam). It stops, without a last
/// part, as soon as `go_on` says no before a sentence (the caller moved on or hung up:
/// a 5,000-word mail is 17 s of a core) or `part` returns false.
pub fn render_in_parts(
    paragraphs: &[Vec<String>],
    voice: &str,
    rate: u32,
    go_on: impl Fn() -> bool,
    mut part: impl FnMut(&[i16], &SpeechMarks, bool) -> bool,
) -> Result<()> {
    const FRAME: usize = crate::rtp::FRAME_SAMPLES;
    let mut all: Vec<i16> = Vec::new();
    let mut marks = SpeechMarks::default();
    let mut sent = 0usize;
    let total: usize = paragraphs.iter().map(Vec::len).sum();
    let mut done = 0;
    for p in paragraphs {
        for (i, s) in p.iter().enumerate() {
            if !go_on() {
                return Ok(());
            }
            if i == 0 {
                marks.paragraphs.push(all.len());
            }
            marks.sentences.push(all.len());
            all.extend(crate::media::tts::synthesize(s, voice, rate)?);
            done += 1;
            let whole = all.len() / FRAME * FRAME;
            if done < total && whole > 0 && (sent == 0 || whole >= 2 * sent) {
                if !part(&all[..whole], &marks, false) {
                    return Ok(());
                }
                sent = whole;
            }
        }
    }
    part(&all, &marks, true);
    Ok(())
}

/// How much of a cached rendering is handed over first: 30 s (whole frames).
const CACHE_HEAD_SAMPLES: usize = 30 * 8000;

/// The message services and what they need.
#[derive(Clone)]
pub struct Messages {
    pub store: SharedStore,
    pub changes: Hub,
    pub delivery: DeliveryConfig,
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
    /// Words per minute per language (`[prompts] rates`).
    pub speech_rates: Arc<std::collections::BTreeMap<String, u32>>,
    /// Bytes of rendered speech the store keeps (`[menu] speech_cache_mb`).
    pub speech_cache_bytes: u64,
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
            tts_voice: cfg.prompts.voice.clone(),
            reader: Arc::new(crate::services::reading::reader(cfg, &cfg.prompts.language).unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "substitution rules not loaded; e-mails are read without them");
                crate::reading::Reader::default()
            })),
            lang: cfg.prompts.language.clone(),
            other_readers: Arc::new(crate::services::reading::other_readers(cfg).unwrap_or_default()),
            outbox_wake: Arc::new(Notify::new()),
            speech_rates: Arc::new(cfg.prompts.rates.clone()),
            speech_cache_bytes: cfg.menu.speech_cache_mb * 1024 * 1024,
        }
    }

    /// Whether `number` can receive: a mailbox or a distribution list.
    pub async fn is_target(&self, number: &str) -> bool {
        let n = number.to_string();
        self.store.run(move |s| Ok(s.mailbox(&n)?.is_some() || s.list_members(&n)?.is_some())).await.unwrap_or(false)
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
                pages: m.pages,
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
        let all = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = all.clone();
        self.speak(
            id,
            || true,
            move |pcm, _, complete| {
                if complete {
                    *keep.lock().unwrap_or_else(|p| p.into_inner()) = pcm.to_vec();
                }
                true
            },
        )
        .await?;
        let pcm = std::mem::take(&mut *all.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(pcm)
    }

    /// A message's audio for the phone, handed to `part` as it becomes ready (see
    /// [`render_in_parts`]; `part` runs on a blocking thread, returns false to stop): a
    /// recording whole; an e-mail from the speech cache when it was heard before with
    /// the same text and voice, else rendered part by part (while `go_on`) and cached
    /// once complete.
    pub async fn speak(
        &self,
        id: i64,
        go_on: impl Fn() -> bool + Send + 'static,
        mut part: impl FnMut(&[i16], &SpeechMarks, bool) -> bool + Send + 'static,
    ) -> Result<()> {
        let (paragraphs, voice, rate, key) = match self.message_speech(id).await? {
            Speech::Pcm(pcm) => {
                tokio::task::spawn_blocking(move || part(&pcm, &SpeechMarks::default(), true)).await?;
                return Ok(());
            }
            Speech::Text { paragraphs, voice, rate, key } => (paragraphs, voice, rate, key),
        };
        let now = jiff::Timestamp::now().as_second();
        // Heard before: its first seconds at once, then all of it (reading and encoding
        // 50 MB of a long mail took 120 ms before the first packet).
        let k2 = key.clone();
        let head = self.store.run(move |s| s.cached_speech_head(id, &k2, now, CACHE_HEAD_SAMPLES)).await?;
        if let Some((head, marks, total)) = head {
            if head.len() == total {
                tokio::task::spawn_blocking(move || part(&head, &marks, true)).await?;
                return Ok(());
            }
            let (back, more) = tokio::task::spawn_blocking(move || {
                let more = part(&head, &marks, false);
                (part, more)
            })
            .await?;
            part = back;
            if !more {
                return Ok(());
            }
            let k2 = key.clone();
            if let Some((pcm, marks, _)) =
                self.store.run(move |s| s.cached_speech_head(id, &k2, now, usize::MAX)).await?
            {
                tokio::task::spawn_blocking(move || part(&pcm, &marks, true)).await?;
                return Ok(());
            }
            // Gone between the two reads (deleted, evicted): rendered as if never heard.
        }
        let cap = self.speech_cache_bytes;
        let rendered = tokio::task::spawn_blocking(move || {
            let mut whole = None;
            render_in_parts(&paragraphs, &voice, rate, go_on, |pcm, marks, complete| {
                let go_on = part(pcm, marks, complete);
                if complete {
                    whole = Some((pcm.to_vec(), marks.clone()));
                }
                go_on
            })?;
            Ok::<_, anyhow::Error>(whole)
        })
        .await??;
        if let (Some((pcm, marks)), true) = (rendered, cap > 0) {
            let kept = self.store.run(move |s| s.cache_speech(id, &key, &pcm, &marks, now, cap)).await;
            if let Err(e) = kept {
                tracing::warn!(message = id, error = %format!("{e:#}"), "rendered speech not cached");
            }
        }
        Ok(())
    }

    /// What a message is to the phone: a recording, or the sentences to speak (and the
    /// voice), rendered by the caller part by part.
    pub async fn message_speech(&self, id: i64) -> Result<Speech> {
        let (voice, reader, lang) = (self.tts_voice.clone(), self.reader.clone(), self.lang.clone());
        let others = self.other_readers.clone();
        let rates = self.speech_rates.clone();
        let rate = move |lang: &str| crate::config::speech_rate(&rates, lang);
        self.store
            .run(move |s| match s.message_audio(id)? {
                MessageAudio::Pcm(pcm) => Ok(Speech::Pcm(pcm)),
                MessageAudio::Describe { kind: MessageKind::Email, raw: Some(raw), mailbox, .. } => {
                    let (code, base, voice) =
                        crate::services::reading::for_mail(&raw, (&lang, &reader, &voice), &others);
                    let stored = s.substitutions(Some(&mailbox), code)?;
                    let reader = crate::services::reading::with_stored(base, &stored);
                    Ok(Speech::text(reader.mail(&raw), voice.to_string(), rate(code)))
                }
                MessageAudio::Describe { kind, from, subject, .. } => {
                    let rate = rate(&lang);
                    Ok(Speech::text(vec![vec![description(kind, from.as_deref(), subject.as_deref())]], voice, rate))
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
        let (t, f) = (to.to_string(), from.to_string());
        let targets: Vec<String> = self
            .store
            .run(move |s| {
                let Some(members) = s.list_members(&t)? else { return Ok(vec![t]) };
                // The sender is not sent their own message; a member the configuration
                // named that is no mailbox (yet) is passed over.
                let mut out = Vec::new();
                for m in members.into_iter().filter(|m| *m != f) {
                    if s.mailbox(&m)?.is_some() {
                        out.push(m);
                    } else {
                        tracing::warn!(list = %t, member = %m, "list member is no mailbox; not sent to it");
                    }
                }
                Ok(out)
            })
            .await?;
        let mut pcm = comment;
        if !pcm.is_empty() {
            pcm.extend(std::iter::repeat_n(0, 3200));
        }
        pcm.extend(self.message_pcm(id).await?);
        self.send_voice(from, &targets, pcm).await?;
        Ok(true)
    }

    /// Reply: to the sender's mailbox when the message came from one; to an e-mail's
    /// sender (its Reply-To, else From) by SMTP — with `all`, to its other recipients too
    /// (To and Cc, not the subscriber's own address).
    pub async fn reply(&self, from: &str, id: i64, pcm: Vec<i16>, all: bool) -> Result<bool> {
        let caller = self.store.run(move |s| Ok(s.message(id)?.and_then(|m| m.caller))).await?;
        let Some(caller) = caller else { return Ok(false) };
        let c2 = caller.clone();
        if self.store.run(move |s| s.mailbox(&c2)).await?.is_some() {
            self.send_voice(from, &[caller], pcm).await?;
            return Ok(true);
        }
        let (f2, cfg) = (from.to_string(), self.delivery.clone());
        let Some(mb) = self.store.run(move |s| s.mailbox(&f2)).await? else { return Ok(false) };
        // Who it goes to, from the mail's own headers when it is stored; else the
        // sender's address as the store has it. Only well-formed addresses are written
        // into the reply's headers and the SMTP envelope.
        let own: Vec<String> = mb.email.iter().cloned().chain([format!("{from}@{}", cfg.from_domain)]).collect();
        let raw = self.store.run(move |s| s.message_raw(id)).await?;
        let to = match raw.as_deref().and_then(|r| crate::mail::reply_to::reply_recipients(r, all, &own)) {
            Some(to) => to,
            None if caller.parse::<lettre::Address>().is_ok() => (caller.clone(), Vec::new()),
            None => {
                tracing::info!(mailbox = from, to = %caller, "reply: the caller has no mailbox here and no usable e-mail address");
                return Ok(false);
            }
        };
        if crate::mail::outbox::reply_server(&mb, &cfg).is_none() {
            tracing::warn!(
                mailbox = from,
                "reply by e-mail needs an SMTP server: set [delivery] smtp_url or the mailbox's --smtp"
            );
            return Ok(false);
        }
        let (f2, domain) = (from.to_string(), cfg.from_domain.clone());
        let (rcpt, cc) = to;
        let copies = cc.len();
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
                    rcpt,
                    cc,
                    message_id: crate::mail::compose::new_message_id(&domain),
                    subject,
                    in_reply_to: Some(original.message_id.clone()),
                    media_path: rel,
                    duration_ms: (pcm.len() / 8) as i64,
                })
            })
            .await?;
        tracing::info!(mailbox = from, reply = queued, copies, "voice reply queued for SMTP");
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
        assert_eq!(description(MessageKind::Fax, None, None), "A fax from an unknown sender.");
        assert_eq!(description(MessageKind::Fax, Some("ACME"), Some("Fax from 555, 2 pages")), "A fax from ACME.");
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

    /// Everything `speak` hands over: (samples, marks, complete) per part.
    async fn spoken(svc: &Messages, id: i64) -> Vec<(Vec<i16>, SpeechMarks, bool)> {
        let parts = Arc::new(Mutex::new(Vec::new()));
        let p2 = parts.clone();
        svc.speak(
            id,
            || true,
            move |pcm, marks, complete| {
                p2.lock().unwrap().push((pcm.to_vec(), marks.clone(), complete));
                true
            },
        )
        .await
        .unwrap();
        let v = parts.lock().unwrap().clone();
        v
    }

    #[tokio::test]
    async fn an_e_mail_is_rendered_once_and_replayed_from_the_speech_cache() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        store.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let mut row = crate::store::RetrievedRow::sample(1, MessageKind::Email);
        row.raw = b"From: Ann <ann@example.com>\r\nSubject: Plans\r\nContent-Type: text/plain\r\n\r\n\
            Hello Bob. The meeting moved.\r\n\r\nSee you on Monday.\r\n"
            .to_vec();
        let id = store.store_retrieved("100", &[row]).unwrap()[0].0;
        let svc = Messages::standalone(store.clone(), &crate::config::Config::default());
        let first = spoken(&svc, id).await;
        let (pcm, marks, complete) = first.last().unwrap().clone();
        assert!(complete && pcm.len() > 8000, "rendered: {} samples", pcm.len());
        // Header, then two paragraphs: three paragraph starts, four sentences or more.
        assert_eq!(marks.paragraphs.len(), 3, "{marks:?}");
        assert!(marks.sentences.len() >= 4 && marks.paragraphs.iter().all(|p| marks.sentences.contains(p)));
        assert_eq!(store.speech_cache_size().unwrap().0, 1, "kept for the next listen");
        // The next listen comes from the cache, whole: plant a rendering under the same
        // key and that is what is heard.
        let Speech::Text { key, .. } = svc.message_speech(id).await.unwrap() else { panic!("text") };
        store.cache_speech(id, &key, &[42, 42], &marks, 5, 1 << 20).unwrap();
        let again = spoken(&svc, id).await;
        assert_eq!(again, vec![(vec![42, 42], marks.clone(), true)]);
        // A long one: its first 30 s at once, then all of it.
        let long: Vec<i16> = (0..40 * 8000).map(|i| (i % 1000) as i16).collect();
        store.cache_speech(id, &key, &long, &marks, 6, 1 << 30).unwrap();
        let parts = spoken(&svc, id).await;
        assert_eq!(parts.len(), 2);
        assert_eq!((&parts[0].0[..], parts[0].2), (&long[..CACHE_HEAD_SAMPLES], false));
        assert_eq!((&parts[1].0, parts[1].2), (&long, true));
        // Another voice is another key: rendered anew.
        let other = Messages { tts_voice: "en-gb".into(), ..svc.clone() };
        let Speech::Text { key: key2, .. } = other.message_speech(id).await.unwrap() else { panic!("text") };
        assert_ne!(key, key2);
        // So is another rate, and it is the rate espeak-ng renders at: slower is longer.
        let slow = Messages { speech_rates: Arc::new([("en".to_string(), 100)].into()), ..svc.clone() };
        let Speech::Text { key: key3, rate, .. } = slow.message_speech(id).await.unwrap() else { panic!("text") };
        assert_ne!(key, key3);
        assert_eq!(rate, 100);
        let (slower, _, _) = spoken(&slow, id).await.pop().unwrap();
        assert!(slower.len() > pcm.len() * 5 / 4, "{} vs {}", slower.len(), pcm.len());
    }
}
