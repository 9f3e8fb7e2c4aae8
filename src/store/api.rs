//! The store as the services use it: one trait per concern, and [`Backend`] for all of
//! them. SQLite ([`Store`]) is the only backend today; another (PostgreSQL) implements
//! these traits and no service changes. The services hold a [`SharedStore`], whose
//! [`SharedStore::run`] moves each blocking call off the async threads.

use super::db::Store;
use super::fax_jobs::{FaxJob, JobEnd, NewFaxJob};
use super::mailboxes::Mailbox;
use super::menu::{LoginPolicy, MessageAudio};
use super::messages::{MessageRow, NewFaxMessage, NewVoiceMessage};
use super::outgoing::NewReply;
use crate::model::{GreetingKind, LoginResult, MarkAction, SpeechMarks, State};
use crate::sip::digest::Ha1;
use anyhow::{Context, Result};
use std::sync::Arc;

/// Who has a mailbox here.
pub trait Mailboxes {
    fn mailbox(&self, number: &str) -> Result<Option<Mailbox>>;
    /// The mailbox whose own fax number `dialled` is.
    fn mailbox_by_fax_number(&self, dialled: &str) -> Result<Option<Mailbox>>;
    /// The mailbox at a PBX station (its own station, else its number).
    fn mailbox_by_station(&self, station: &str) -> Result<Option<Mailbox>>;
    /// Every mailbox's SIP digest secrets (HA1), for requests about it outside calls.
    fn sip_secrets(&self) -> Result<Vec<(String, Ha1)>>;
    /// The member mailboxes of the distribution list at `number`, if it is one.
    fn list_members(&self, number: &str) -> Result<Option<Vec<String>>>;
}

/// Messages: read, their audio, state changes, new voice messages and their files.
pub trait Messages {
    fn message(&self, id: i64) -> Result<Option<MessageRow>>;
    fn messages(&self, mailbox: &str) -> Result<Vec<MessageRow>>;
    /// A message's audio, or what it is when it has none.
    fn message_audio(&self, id: i64) -> Result<MessageAudio>;
    fn mark(&self, mailbox: &str, id: i64, action: MarkAction) -> Result<Option<State>>;
    /// Writes a recording durably; the one place recordings' file names are decided.
    fn write_recording(&self, mailbox: &str, prefix: &str, pcm: &[i16]) -> Result<(String, u64)>;
    /// Starts a recording written while it is made; the same naming.
    fn start_recording(&self, mailbox: &str, prefix: &str) -> Result<(String, crate::media::wav::WavStream)>;
    /// Commits messages and their deliveries in one transaction.
    fn insert_voice_messages(&self, ms: &[NewVoiceMessage]) -> Result<Vec<i64>>;
    /// Where a fax being received is written (below the store, absolute).
    fn new_fax_file(&self, mailbox: &str) -> Result<(String, std::path::PathBuf)>;
    /// A received fax's file: its pages and size, or `None` (no page; removed).
    fn received_fax_file(&self, rel: &str) -> Result<Option<(i64, i64)>>;
    /// Commits a received fax (file made durable first) and its delivery.
    fn insert_fax_message(&self, m: &NewFaxMessage) -> Result<i64>;
}

/// Voice replies to e-mail senders, waiting for SMTP.
pub trait Replies {
    fn insert_reply(&self, r: &NewReply) -> Result<i64>;
}

/// A subscriber's own settings: PIN check with lockout, PIN, greetings.
pub trait Settings {
    fn check_login(&self, mailbox: &str, pin: &str, now: i64, policy: LoginPolicy) -> Result<LoginResult>;
    fn set_pin(&self, mailbox: &str, pin: &str) -> Result<()>;
    fn save_greeting(&self, mailbox: &str, kind: GreetingKind, pcm: &[i16]) -> Result<()>;
    fn remove_greeting(&self, mailbox: &str, kind: GreetingKind) -> Result<()>;
    /// Substitution rules for reading `mailbox`'s e-mail in `lang`: its own, then the admin's.
    fn substitutions(&self, mailbox: Option<&str>, lang: &str) -> Result<Vec<crate::store::Substitution>>;
    /// `mailbox`'s e-mail filter rules (id, text).
    fn filters(&self, mailbox: &str) -> Result<Vec<(i64, String)>>;
    /// A message as retrieved, when its body is stored.
    fn message_raw(&self, id: i64) -> Result<Option<Vec<u8>>>;
}

/// E-mails rendered to speech, kept for the next listen.
pub trait SpeechCache {
    /// The first `max_samples` of what message `id` was rendered to from the text `key`
    /// names (`usize::MAX`: all of it), its marks and its whole length, if kept.
    fn cached_speech_head(
        &self,
        id: i64,
        key: &str,
        now: i64,
        max_samples: usize,
    ) -> Result<Option<(Vec<i16>, SpeechMarks, usize)>>;
    /// Keeps a rendering, within `cap_bytes` for all of them.
    fn cache_speech(
        &self,
        id: i64,
        key: &str,
        pcm: &[i16],
        marks: &SpeechMarks,
        now: i64,
        cap_bytes: u64,
    ) -> Result<()>;
}

/// Faxes to send (`fax forward`, the menu's forward to a fax number).
pub trait FaxJobs {
    /// Copies the pages into the job's own file, then commits the job.
    fn queue_fax_job(&self, j: &NewFaxJob) -> Result<i64>;
    fn fax_jobs(&self) -> Result<Vec<FaxJob>>;
    /// A due job, marked `sending` with one attempt more.
    fn claim_fax_job(&self, now_ms: i64) -> Result<Option<FaxJob>>;
    fn fax_job_pages(&self, id: i64, pages: i64) -> Result<()>;
    fn finish_fax_job(&self, id: i64, end: &JobEnd, result: &str) -> Result<()>;
    /// Jobs a crash left `sending`: (queued again, finished).
    fn recover_fax_jobs(&self) -> Result<(usize, usize)>;
}

/// Everything the services use of a store.
pub trait Backend: Mailboxes + Messages + Replies + Settings + SpeechCache + FaxJobs + Send + Sync + 'static {}
impl<T: Mailboxes + Messages + Replies + Settings + SpeechCache + FaxJobs + Send + Sync + 'static> Backend for T {}

/// A backend shared by the services.
#[derive(Clone)]
pub struct SharedStore(Arc<dyn Backend>);

impl SharedStore {
    pub fn new(backend: impl Backend) -> SharedStore {
        SharedStore(Arc::new(backend))
    }

    /// Runs `f` on the blocking pool: no async task waits on disk.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T> + Send + 'static,
    {
        let b = self.0.clone();
        tokio::task::spawn_blocking(move || f(&*b)).await.context("store task panicked")?
    }
}

impl From<Store> for SharedStore {
    fn from(s: Store) -> SharedStore {
        SharedStore::new(s)
    }
}

// The SQLite store: each trait method is the inherent method of the same name.
impl Mailboxes for Store {
    fn mailbox(&self, number: &str) -> Result<Option<Mailbox>> {
        Store::mailbox(self, number)
    }
    fn mailbox_by_fax_number(&self, dialled: &str) -> Result<Option<Mailbox>> {
        Store::mailbox_by_fax_number(self, dialled)
    }
    fn mailbox_by_station(&self, station: &str) -> Result<Option<Mailbox>> {
        Store::mailbox_by_station(self, station)
    }
    fn sip_secrets(&self) -> Result<Vec<(String, Ha1)>> {
        Store::sip_secrets(self)
    }
    fn list_members(&self, number: &str) -> Result<Option<Vec<String>>> {
        Ok(Store::list(self, number)?.map(|l| l.members))
    }
}

impl Messages for Store {
    fn message(&self, id: i64) -> Result<Option<MessageRow>> {
        Store::message(self, id)
    }
    fn messages(&self, mailbox: &str) -> Result<Vec<MessageRow>> {
        Store::messages(self, mailbox)
    }
    fn message_audio(&self, id: i64) -> Result<MessageAudio> {
        Store::message_audio(self, id)
    }
    fn mark(&self, mailbox: &str, id: i64, action: MarkAction) -> Result<Option<State>> {
        Store::mark(self, mailbox, id, action)
    }
    fn write_recording(&self, mailbox: &str, prefix: &str, pcm: &[i16]) -> Result<(String, u64)> {
        Store::write_recording(self, mailbox, prefix, pcm)
    }
    fn start_recording(&self, mailbox: &str, prefix: &str) -> Result<(String, crate::media::wav::WavStream)> {
        Store::start_recording(self, mailbox, prefix)
    }
    fn insert_voice_messages(&self, ms: &[NewVoiceMessage]) -> Result<Vec<i64>> {
        Store::insert_voice_messages(self, ms)
    }
    fn new_fax_file(&self, mailbox: &str) -> Result<(String, std::path::PathBuf)> {
        Store::new_fax_file(self, mailbox)
    }
    fn received_fax_file(&self, rel: &str) -> Result<Option<(i64, i64)>> {
        Store::received_fax_file(self, rel)
    }
    fn insert_fax_message(&self, m: &NewFaxMessage) -> Result<i64> {
        Store::insert_fax_message(self, m)
    }
}

impl FaxJobs for Store {
    fn queue_fax_job(&self, j: &NewFaxJob) -> Result<i64> {
        Store::queue_fax_job(self, j)
    }
    fn fax_jobs(&self) -> Result<Vec<FaxJob>> {
        Store::fax_jobs(self)
    }
    fn claim_fax_job(&self, now_ms: i64) -> Result<Option<FaxJob>> {
        Store::claim_fax_job(self, now_ms)
    }
    fn fax_job_pages(&self, id: i64, pages: i64) -> Result<()> {
        Store::fax_job_pages(self, id, pages)
    }
    fn finish_fax_job(&self, id: i64, end: &JobEnd, result: &str) -> Result<()> {
        Store::finish_fax_job(self, id, end, result)
    }
    fn recover_fax_jobs(&self) -> Result<(usize, usize)> {
        Store::recover_fax_jobs(self)
    }
}

impl Replies for Store {
    fn insert_reply(&self, r: &NewReply) -> Result<i64> {
        Store::insert_reply(self, r)
    }
}

impl Settings for Store {
    fn check_login(&self, mailbox: &str, pin: &str, now: i64, policy: LoginPolicy) -> Result<LoginResult> {
        Store::check_login(self, mailbox, pin, now, policy)
    }
    fn set_pin(&self, mailbox: &str, pin: &str) -> Result<()> {
        Store::set_pin(self, mailbox, pin)
    }
    fn save_greeting(&self, mailbox: &str, kind: GreetingKind, pcm: &[i16]) -> Result<()> {
        Store::save_greeting(self, mailbox, kind, pcm)
    }
    fn remove_greeting(&self, mailbox: &str, kind: GreetingKind) -> Result<()> {
        Store::set_greeting_of(self, mailbox, kind, None)
    }
    fn substitutions(&self, mailbox: Option<&str>, lang: &str) -> Result<Vec<crate::store::Substitution>> {
        Store::substitutions(self, mailbox, lang)
    }
    fn filters(&self, mailbox: &str) -> Result<Vec<(i64, String)>> {
        Store::filters(self, mailbox)
    }
    fn message_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Store::message_raw(self, id)
    }
}

impl SpeechCache for Store {
    fn cached_speech_head(
        &self,
        id: i64,
        key: &str,
        now: i64,
        max_samples: usize,
    ) -> Result<Option<(Vec<i16>, SpeechMarks, usize)>> {
        Store::cached_speech_head(self, id, key, now, max_samples)
    }
    fn cache_speech(
        &self,
        id: i64,
        key: &str,
        pcm: &[i16],
        marks: &SpeechMarks,
        now: i64,
        cap_bytes: u64,
    ) -> Result<()> {
        Store::cache_speech(self, id, key, pcm, marks, now, cap_bytes)
    }
}
