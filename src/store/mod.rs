//! The store: SQLite (the single anchor of reference) plus media files below one directory.
//!
//! All access is synchronous (rusqlite); async code calls it through [`Store::run`],
//! which moves the work onto tokio's blocking pool so that no call task ever waits on
//! disk while it should be sending RTP.

pub mod menu;
pub mod outgoing;
pub mod pin;
pub mod server_lock;
mod sync;
pub mod trash;

pub use sync::{AccountSync, MarkAction, PassRecord, RetrievedRow};
pub use trash::Removal;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The checkpointer thread (see [`Store::start_checkpointer`]): how often it looks at
/// the WAL, how long writers must have been quiet, and the WAL size that forces it.
const CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(250);
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
const CHECKPOINT_WAL_BYTES: u64 = 256 * 1024 * 1024;
/// Memory map of the database file for short-lived processes (see [`Store::open`]).
const MMAP_BYTES: i64 = 2 << 30;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../sql/001_init.sql"),
    include_str!("../../sql/002_sync.sql"),
    include_str!("../../sql/003_pop3.sql"),
    include_str!("../../sql/004_modseq.sql"),
    include_str!("../../sql/005_body.sql"),
    include_str!("../../sql/006_dirty.sql"),
    include_str!("../../sql/007_outbox_index.sql"),
    include_str!("../../sql/008_lean_rows.sql"),
    include_str!("../../sql/009_login.sql"),
    include_str!("../../sql/010_greetings.sql"),
    include_str!("../../sql/011_outgoing.sql"),
    include_str!("../../sql/012_unlinked_index.sql"),
    include_str!("../../sql/013_body_garbage.sql"),
    include_str!("../../sql/014_sync_log_retention.sql"),
    include_str!("../../sql/015_removal_safety.sql"),
];

/// Shared handle to the database and the media directory.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    root: PathBuf,
}

/// A mailbox as the CLI creates it.
#[derive(Debug, Clone, Default)]
pub struct NewMailbox {
    pub number: String,
    pub pin: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub imap_url: Option<String>,
    pub pop3_url: Option<String>,
    pub smtp_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub number: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub imap_url: Option<String>,
    pub pop3_url: Option<String>,
    pub smtp_url: Option<String>,
    pub greeting_path: Option<String>,
    pub busy_greeting_path: Option<String>,
    pub name_path: Option<String>,
    pub temp_greeting_path: Option<String>,
}

impl Mailbox {
    /// Where a new message for this mailbox is delivered, if anywhere. IMAP wins: it
    /// lets us place the message directly and learn its UID.
    pub fn delivery_target(&self) -> Option<&'static str> {
        if self.imap_url.is_some() {
            Some("imap")
        } else if self.smtp_url.is_some() && self.email.is_some() {
            Some("smtp")
        } else {
            None
        }
    }
}

/// A recorded voice message ready to be committed.
#[derive(Debug, Clone)]
pub struct NewVoiceMessage {
    pub mailbox: String,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub received_at: i64,
    pub duration_ms: i64,
    pub media_path: String,
    pub media_bytes: i64,
    pub message_id: String,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub mailbox: String,
    pub kind: String,
    pub state: String,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub received_at: i64,
    pub duration_ms: Option<i64>,
    pub pages: Option<i64>,
    pub media_path: Option<String>,
    pub message_id: String,
    pub subject: Option<String>,
    pub server_uid: Option<i64>,
    /// "delivered", "pending", "local" (no mail account), with detail.
    pub delivery: String,
}

/// One due delivery with everything needed to perform it.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub target: String,
    pub attempts: i64,
    pub message: MessageRow,
    pub mailbox: Mailbox,
}

/// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
/// When this returns Ok the file survives a power cut.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("{:08x}.tmp", rand::random::<u32>()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all().context("fsync failed")?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all().context("fsync of directory failed")?;
    Ok(())
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the store below `root` and brings the schema up to date.
    pub fn open(root: &Path) -> Result<Store> {
        std::fs::create_dir_all(root.join("recordings"))
            .with_context(|| format!("cannot create store directory {}", root.display()))?;
        let db = root.join("voxbridge.db");
        let mut conn = Connection::open(&db).with_context(|| format!("cannot open database {}", db.display()))?;
        // WAL lets the CLI read and write while the server runs; the busy timeout makes
        // the two wait for each other instead of failing.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // 64 MiB of page cache (SQLite's default is 2 MiB): a 100,000-message mailbox's
        // rows and indexes stay in memory between passes of the long-running server.
        conn.pragma_update(None, "cache_size", -65536)?;
        // A short-lived process (a CLI command) reads the database file through a memory
        // map (SQLite clamps the size to its compile-time maximum, 2 GiB): with a cold
        // page cache, a pass that looks up 1,000 random rows took 18-48 ms with a read()
        // per page, 8 ms mapped. SQLite maps read-only; every write goes through the WAL.
        // Long-running processes turn it off again (see `start_checkpointer`).
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        // A WAL grown by a large import is cut back once checkpointed.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        // Closing does not checkpoint: a CLI command ends without copying the WAL into
        // the database file; the server's checkpointer (or the next writer's automatic
        // checkpoint past 1000 pages) does it, so the WAL stays small either way. Not
        // later than that: the first process to open the store reads the whole WAL to
        // rebuild its index (a 60 MB WAL made every CLI command ~40 ms slower to start).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Table rebuilds in migrations need foreign keys off (SQLite's ALTER procedure);
        // the pragma cannot change inside a transaction, so it is set around them.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        migrate(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Store { conn: Arc::new(Mutex::new(conn)), root: root.to_path_buf() })
    }

    /// Moves WAL checkpoints off the writers' path, for long-running processes. By
    /// default the commit that takes the WAL past 1000 pages copies every page into the
    /// database file and fsyncs it itself, so a sync pass or a recording's commit pays
    /// for writes that are already durable in the WAL. Here a thread with its own
    /// connection checkpoints (PASSIVE: never blocks a writer or reader) once writers
    /// have been quiet for [`CHECKPOINT_IDLE`] — checkpointing *during* a bulk import
    /// doubled its time (the checkpoint's fsyncs compete with the import's and with the
    /// mail server's) — or when the WAL outgrows [`CHECKPOINT_WAL_BYTES`]. It stops when
    /// the store is dropped.
    ///
    /// A long-running process also reads through its own page cache instead of the
    /// memory map: mapped pages live in the operating system's cache, which may be
    /// emptied under it (seen here: a virtual machine's balloon driver dropping it every
    /// few minutes made a 1,000-row lookup of a later pass take 2.5 s of disk reads),
    /// while the 64 MiB page cache keeps a 100,000-message mailbox's rows and indexes
    /// (~13 MB) in the process between passes.
    pub fn start_checkpointer(&self) -> Result<()> {
        let db = self.root.join("voxbridge.db");
        let wal = self.root.join("voxbridge.db-wal");
        let ckpt = Connection::open(&db).with_context(|| format!("cannot open database {}", db.display()))?;
        ckpt.busy_timeout(std::time::Duration::from_secs(10))?;
        self.conn().pragma_update(None, "wal_autocheckpoint", 0)?;
        self.conn().pragma_update(None, "mmap_size", 0)?;
        let alive = Arc::downgrade(&self.conn);
        std::thread::Builder::new().name("store-checkpoint".into()).spawn(move || {
            let mut checkpointed: Option<std::time::SystemTime> = None;
            loop {
                std::thread::sleep(CHECKPOINT_POLL);
                let Some(writer) = alive.upgrade() else { return };
                let Ok(meta) = std::fs::metadata(&wal) else { continue };
                let (size, modified) = (meta.len(), meta.modified().ok());
                let quiet = modified.and_then(|m| m.elapsed().ok()).is_some_and(|e| e >= CHECKPOINT_IDLE);
                // Bodies of removed messages, a batch at a time so that a writer
                // arriving meanwhile waits for one batch at most. On the writers' own
                // connection: a write through any other connection empties this one's
                // page cache (SQLite sees the WAL changed under it), and the next pass
                // would read every row it needs from the file again.
                let reclaimed = quiet
                    .then(|| reclaim_redoable(&mut writer.lock().unwrap_or_else(|p| p.into_inner()), RECLAIM_BATCH));
                drop(writer);
                match reclaimed {
                    Some(Ok(0)) | None => {}
                    Some(Ok(n)) => {
                        tracing::debug!(bodies = n, "reclaimed the bodies of removed messages");
                        continue;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "reclaiming message bodies failed; retrying"),
                }
                let written_since = modified != checkpointed;
                if size == 0 || !written_since || !(quiet || size >= CHECKPOINT_WAL_BYTES) {
                    continue;
                }
                match ckpt.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    Ok(()) => checkpointed = modified,
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
                }
            }
        })?;
        Ok(())
    }

    /// Deletes every queued body of a removed message (see sql/013_body_garbage.sql);
    /// returns how many ids were reclaimed. The server's maintenance thread does this
    /// when writers are quiet; one-shot commands that remove many rows call it at the end.
    pub fn reclaim_bodies(&self) -> Result<usize> {
        let mut conn = self.conn();
        let mut total = 0;
        loop {
            match reclaim_redoable(&mut conn, RECLAIM_BATCH)? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s)).await.context("store task panicked")?
    }

    /// Runs `f` in one transaction committed as `commit` says.
    fn transact<T>(&self, commit: Commit, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let run = |conn: &mut Connection| -> Result<T> {
            let tx = conn.transaction()?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        };
        let mut conn = self.conn();
        match commit {
            Commit::Durable => run(&mut conn),
            Commit::Redoable => without_fsync(&mut conn, run),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (transactions
        // roll back), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_mailbox(&self, m: &NewMailbox) -> Result<()> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row("SELECT 1 FROM mailbox WHERE number = ?1", [&m.number], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if exists {
            bail!("mailbox {} already exists", m.number);
        }
        conn.execute(
            "INSERT INTO mailbox (number, pin_hash, name, email, imap_url, pop3_url, smtp_url, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![m.number, pin::hash(&m.pin)?, m.name, m.email, m.imap_url, m.pop3_url, m.smtp_url, now_secs()],
        )?;
        Ok(())
    }

    /// Stores a mailbox's name, address and accounts as `m` has them (greetings and PIN
    /// are not touched). With `other_account` (another user, host, port or folder, not
    /// just another password) its rows are unlinked from the old account's UIDs and keys
    /// and the account's sync state is forgotten, so the next pass is a full one that
    /// links our own messages there by Message-ID.
    pub fn update_mailbox(&self, m: &Mailbox, other_account: bool) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            let n = tx.execute(
                "UPDATE mailbox SET name = ?2, email = ?3, imap_url = ?4, pop3_url = ?5, smtp_url = ?6 WHERE number = ?1",
                params![m.number, m.name, m.email, m.imap_url, m.pop3_url, m.smtp_url],
            )?;
            if n == 0 {
                bail!("no mailbox {}", m.number);
            }
            if other_account {
                tx.execute(
                    "UPDATE message SET server_uid = NULL, uidvalidity = NULL, server_key = NULL, synced_state = NULL
                     WHERE mailbox = ?1",
                    [&m.number],
                )?;
                tx.execute(
                    "UPDATE sync_account SET uidvalidity = NULL, highestmodseq = NULL WHERE mailbox = ?1",
                    [&m.number],
                )?;
            }
            Ok(())
        })
    }

    /// (messages, of them not yet delivered to the mail account) of a mailbox.
    pub fn mailbox_contents(&self, number: &str) -> Result<(i64, i64)> {
        Ok(self.conn().query_row(
            "SELECT count(*), (SELECT count(*) FROM outbox o JOIN message m ON m.id = o.message
                               WHERE m.mailbox = ?1 AND o.delivered_at IS NULL)
             FROM message WHERE mailbox = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Removes a mailbox with everything it has here (rows go by cascade; bodies are
    /// reclaimed later), then its files. Returns how many files were removed.
    pub fn remove_mailbox(&self, number: &str) -> Result<usize> {
        let files: Vec<String> = self.transact(Commit::Durable, |tx| {
            let mut files: Vec<String> = tx
                .prepare(
                    "SELECT media_path FROM message WHERE mailbox = ?1 AND media_path IS NOT NULL
                     UNION ALL SELECT media_path FROM outgoing WHERE mailbox = ?1
                     UNION ALL SELECT media_path FROM trash WHERE mailbox = ?1 AND media_path IS NOT NULL
                     UNION ALL SELECT p FROM (SELECT greeting_path AS p FROM mailbox WHERE number = ?1
                         UNION ALL SELECT busy_greeting_path FROM mailbox WHERE number = ?1
                         UNION ALL SELECT name_path FROM mailbox WHERE number = ?1
                         UNION ALL SELECT temp_greeting_path FROM mailbox WHERE number = ?1) WHERE p IS NOT NULL",
                )?
                .query_map([number], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            files.sort();
            files.dedup();
            // Raw mails kept for the trash entries, which go by cascade.
            tx.execute(
                "INSERT OR IGNORE INTO body_garbage (message) SELECT message FROM trash WHERE mailbox = ?1",
                [number],
            )?;
            if tx.execute("DELETE FROM mailbox WHERE number = ?1", [number])? == 0 {
                bail!("no mailbox {number}");
            }
            // Tables that name a mailbox without a foreign key.
            tx.execute("DELETE FROM sync_log WHERE mailbox = ?1", [number])?;
            tx.execute("DELETE FROM login_failure WHERE mailbox = ?1", [number])?;
            Ok(files)
        })?;
        // Files only once the rows are durably gone: a row never points to a missing file.
        Ok(files.iter().filter(|p| std::fs::remove_file(self.root.join(p)).is_ok()).count())
    }

    pub fn mailbox(&self, number: &str) -> Result<Option<Mailbox>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT number, name, email, imap_url, pop3_url, smtp_url, greeting_path,
                        busy_greeting_path, name_path, temp_greeting_path
                 FROM mailbox WHERE number = ?1",
                [number],
                mailbox_from_row,
            )
            .optional()?)
    }

    pub fn mailboxes(&self) -> Result<Vec<Mailbox>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT number, name, email, imap_url, pop3_url, smtp_url, greeting_path,
                        busy_greeting_path, name_path, temp_greeting_path
             FROM mailbox ORDER BY number",
        )?;
        let rows = st.query_map([], mailbox_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Counts of (unread, total) messages per mailbox.
    pub fn message_counts(&self, number: &str) -> Result<(i64, i64)> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(state = 'U'), 0), COUNT(*) FROM message WHERE mailbox = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Commits a voice message and, in the same transaction, its outbox row, so a
    /// message can never exist without its pending delivery (or the reverse).
    pub fn insert_voice_message(&self, m: &NewVoiceMessage) -> Result<i64> {
        Ok(self.insert_voice_messages(std::slice::from_ref(m))?[0])
    }

    /// Several voice messages (a message forwarded to a distribution list) in one
    /// transaction: all of them or none, so a failed forward repeated by the caller never
    /// leaves some mailboxes with two copies.
    pub fn insert_voice_messages(&self, ms: &[NewVoiceMessage]) -> Result<Vec<i64>> {
        // Where each goes is its mailbox's rule (Mailbox::delivery_target); read before
        // the transaction, which holds the connection.
        let mut targets = Vec::with_capacity(ms.len());
        for m in ms {
            targets.push(
                self.mailbox(&m.mailbox)?
                    .with_context(|| format!("mailbox {} does not exist", m.mailbox))?
                    .delivery_target(),
            );
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(ms.len());
        for (m, target) in ms.iter().zip(targets) {
            // A deposit's Message-ID is new; the same one again (a save repeated before
            // the first copy reached the mail server) would double the message.
            let again: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM message WHERE mailbox = ?1 AND message_id = ?2
                               AND server_uid IS NULL AND server_key IS NULL)",
                params![m.mailbox, m.message_id],
                |r| r.get(0),
            )?;
            anyhow::ensure!(!again, "message {} is already stored in mailbox {}", m.message_id, m.mailbox);
            tx.execute(
                "INSERT INTO message (mailbox, kind, state, caller, caller_name, received_at,
                                      duration_ms, media_path, media_bytes, message_id, subject)
                 VALUES (?1, 'voice', 'U', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    m.mailbox,
                    m.caller,
                    m.caller_name,
                    m.received_at,
                    m.duration_ms,
                    m.media_path,
                    m.media_bytes,
                    m.message_id,
                    m.subject
                ],
            )?;
            let id = tx.last_insert_rowid();
            if let Some(target) = target {
                tx.execute(
                    "INSERT INTO outbox (message, target, next_attempt_at, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, target, now_millis(), now_secs()],
                )?;
            }
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Writes `pcm` durably as a new recording of `mailbox` and describes it as a new
    /// voice message (state U, a fresh Message-ID of `domain`), not yet committed.
    pub fn new_recording(
        &self,
        domain: &str,
        mailbox: &str,
        caller: Option<String>,
        caller_name: Option<String>,
        pcm: &[i16],
    ) -> Result<NewVoiceMessage> {
        let now = now_secs();
        let safe_mb: String = mailbox.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let rel = format!("recordings/{safe_mb}/{now}-{:08x}.wav", rand::random::<u32>());
        let bytes = crate::media::wav::write_durable(&self.root().join(&rel), pcm)?;
        let duration_ms = (pcm.len() / 8) as i64;
        Ok(NewVoiceMessage {
            subject: crate::mail::compose::voice_subject(caller.as_deref(), duration_ms),
            mailbox: mailbox.to_string(),
            caller,
            caller_name,
            received_at: now,
            duration_ms,
            media_path: rel,
            media_bytes: bytes as i64,
            message_id: crate::mail::compose::new_message_id(domain),
        })
    }

    pub fn messages(&self, number: &str) -> Result<Vec<MessageRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("{MESSAGE_SELECT} WHERE m.mailbox = ?1 ORDER BY m.id"))?;
        let rows = st.query_map([number], message_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn message(&self, id: i64) -> Result<Option<MessageRow>> {
        let conn = self.conn();
        Ok(conn.query_row(&format!("{MESSAGE_SELECT} WHERE m.id = ?1"), [id], message_from_row).optional()?)
    }

    /// Deliveries whose next attempt is due at `now_ms`.
    pub fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let ids: Vec<(i64, String, i64, i64)> = {
            let conn = self.conn();
            let mut st = conn.prepare(
                "SELECT id, target, attempts, message FROM outbox
                 WHERE delivered_at IS NULL AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![now_ms, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        };
        let mut out = Vec::with_capacity(ids.len());
        for (id, target, attempts, msg) in ids {
            let Some(message) = self.message(msg)? else {
                continue;
            };
            let Some(mailbox) = self.mailbox(&message.mailbox)? else {
                continue;
            };
            out.push(OutboxItem { id, target, attempts, message, mailbox });
        }
        Ok(out)
    }

    /// Earliest pending attempt time (unix ms), if any delivery is pending.
    pub fn outbox_next_due(&self) -> Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT MIN(next_attempt_at) FROM outbox WHERE delivered_at IS NULL", [], |r| r.get(0))?)
    }

    /// Records a successful delivery and, for IMAP, the server UID of the copy.
    pub fn outbox_delivered(&self, outbox_id: i64, uid: Option<(u32, u32)>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL
             WHERE id = ?1",
            params![outbox_id, now_secs()],
        )?;
        if let Some((uidvalidity, uid)) = uid {
            tx.execute(
                "UPDATE message SET server_uid = ?2, uidvalidity = ?3
                 WHERE id = (SELECT message FROM outbox WHERE id = ?1)",
                params![outbox_id, uid, uidvalidity],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn outbox_failed(&self, outbox_id: i64, error: &str, next_attempt_ms: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
             WHERE id = ?1",
            params![outbox_id, error, next_attempt_ms],
        )?;
        Ok(())
    }
}

const MESSAGE_SELECT: &str = "
    SELECT m.id, m.mailbox, m.kind, m.state, m.caller, m.caller_name, m.received_at,
           m.duration_ms, m.pages, m.media_path, m.message_id, m.subject, m.server_uid,
           o.target, o.delivered_at, o.attempts, o.last_error
    FROM message m LEFT JOIN outbox o ON o.message = m.id";

fn mailbox_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        number: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        imap_url: r.get(3)?,
        pop3_url: r.get(4)?,
        smtp_url: r.get(5)?,
        greeting_path: r.get(6)?,
        busy_greeting_path: r.get(7)?,
        name_path: r.get(8)?,
        temp_greeting_path: r.get(9)?,
    })
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
    let target: Option<String> = r.get(13)?;
    let delivered_at: Option<i64> = r.get(14)?;
    let attempts: Option<i64> = r.get(15)?;
    let last_error: Option<String> = r.get(16)?;
    let delivery = match (target, delivered_at) {
        (None, _) => "local".to_string(),
        (Some(t), Some(_)) => format!("delivered ({t})"),
        (Some(t), None) => match last_error {
            Some(e) => format!("pending ({t}, {} attempts, last error: {e})", attempts.unwrap_or(0)),
            None => format!("pending ({t})"),
        },
    };
    Ok(MessageRow {
        id: r.get(0)?,
        mailbox: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        caller: r.get(4)?,
        caller_name: r.get(5)?,
        received_at: r.get(6)?,
        duration_ms: r.get(7)?,
        pages: r.get(8)?,
        media_path: r.get(9)?,
        message_id: r.get(10)?,
        subject: r.get(11)?,
        server_uid: r.get(12)?,
        delivery,
    })
}

/// How a write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// fsynced before the commit returns (SQLite `synchronous = FULL`): deposits, phone
    /// changes, retrieved messages, the outbox.
    Durable,
    /// A sync pass's bookkeeping of what the mail server already holds — rows gone or
    /// deleted there, states carried over from it, the pass's record with its
    /// HIGHESTMODSEQ. Committed without an fsync of its own (`synchronous = NORMAL`).
    /// The WAL keeps commits in order, so a power cut can only lose a suffix of them:
    /// the same as a pass cut off at that point, which the next pass redoes from the
    /// mail server (the recorded HIGHESTMODSEQ is lost with them). They become durable
    /// with the next durable commit or WAL checkpoint, whichever comes first. The fsync
    /// of 1,000 removed rows (5 MB of WAL) was a third of a pass that saw 1,000 expunges.
    Redoable,
}

/// Bodies reclaimed per transaction.
const RECLAIM_BATCH: usize = 1000;
/// Most body bytes reclaimed per transaction.
const RECLAIM_BYTES: i64 = 8 << 20;

/// Runs `f` with commits that are not fsynced on their own (`synchronous = NORMAL`; see
/// [`Commit::Redoable`]), then puts the connection back to `FULL`.
fn without_fsync<T, E: From<rusqlite::Error>>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let result = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")?;
    result
}

/// [`reclaim_bodies`] committed without an fsync of its own: a reclaim lost in a crash
/// leaves its ids queued, and the next one deletes them again.
fn reclaim_redoable(conn: &mut Connection, max: usize) -> rusqlite::Result<usize> {
    without_fsync(conn, |c| reclaim_bodies(c, max))
}

/// Deletes up to `max` queued bodies of removed messages in one transaction.
fn reclaim_bodies(conn: &Connection, max: usize) -> rusqlite::Result<usize> {
    // IMMEDIATE: the ids read are exactly the ones deleted (no writer in between).
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let work = || -> rusqlite::Result<usize> {
        // At most RECLAIM_BYTES of bodies (at least one): the batch holds the store's
        // connection, and a retrieved voice mail's body is hundreds of KiB of overflow
        // pages that SQLite reads to free them. length() of a blob reads no content.
        let queued: Vec<(i64, i64)> = conn
            .prepare_cached(
                "SELECT g.message, coalesce(length(b.raw), 0) FROM body_garbage AS g
                 LEFT JOIN message_body AS b ON b.message = g.message ORDER BY g.message LIMIT ?1",
            )?
            .query_map([max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut bytes = 0;
        let ids: Vec<i64> = queued
            .iter()
            .take_while(|(_, len)| {
                let first = bytes == 0;
                bytes += len.max(&1);
                first || bytes <= RECLAIM_BYTES
            })
            .map(|(id, _)| *id)
            .collect();
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else { return Ok(0) };
        conn.prepare_cached(
            "DELETE FROM message_body WHERE message IN
             (SELECT message FROM body_garbage WHERE message BETWEEN ?1 AND ?2)",
        )?
        .execute([first, last])?;
        conn.prepare_cached("DELETE FROM body_garbage WHERE message BETWEEN ?1 AND ?2")?.execute([first, last])?;
        Ok(ids.len())
    };
    match work() {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        bail!(
            "database schema version {version} is newer than this voxbridge ({}); upgrade voxbridge",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {} failed", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    fn voice(mailbox: &str, mid: &str) -> NewVoiceMessage {
        NewVoiceMessage {
            mailbox: mailbox.into(),
            caller: Some("5551234".into()),
            caller_name: None,
            received_at: 1,
            duration_ms: 4200,
            media_path: "recordings/x.wav".into(),
            media_bytes: 100,
            message_id: mid.into(),
            subject: "s".into(),
        }
    }

    #[test]
    fn a_long_running_store_reads_through_its_own_cache_and_checkpoints_off_the_writers() {
        let (_d, s) = store();
        let pragma = |name: &str| s.conn().pragma_query_value(None, name, |r| r.get::<_, i64>(0)).unwrap();
        // A one-shot command: mapped reads, SQLite's automatic checkpoints.
        assert!(pragma("mmap_size") > 0);
        assert_eq!(pragma("wal_autocheckpoint"), 1000);
        s.start_checkpointer().unwrap();
        assert_eq!(pragma("mmap_size"), 0);
        assert_eq!(pragma("wal_autocheckpoint"), 0);
    }

    #[test]
    fn migrations_are_idempotent_and_mailbox_unique() {
        let (d, s) = store();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let e = s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1".into(), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("already exists"));
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.mailboxes().unwrap().len(), 1);
    }

    #[test]
    fn voice_message_with_imap_gets_outbox_row_atomically() {
        let (_d, s) = store();
        s.add_mailbox(&NewMailbox {
            number: "100".into(),
            pin: "1234".into(),
            imap_url: Some("imap://u:p@127.0.0.1:1/INBOX".into()),
            ..Default::default()
        })
        .unwrap();
        s.add_mailbox(&NewMailbox { number: "200".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let id = s.insert_voice_message(&voice("100", "<a@x>")).unwrap();
        s.insert_voice_message(&voice("200", "<b@x>")).unwrap();
        // The same deposit again is refused: nothing is ever doubled.
        assert!(s.insert_voice_message(&voice("100", "<a@x>")).is_err());
        let due = s.outbox_due(now_millis() + 1, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].message.id, id);
        assert_eq!(due[0].target, "imap");
        s.outbox_failed(due[0].id, "down", now_millis() + 60_000).unwrap();
        assert!(s.outbox_due(now_millis() + 1, 10).unwrap().is_empty());
        let m = &s.messages("100").unwrap()[0];
        assert!(m.delivery.starts_with("pending (imap, 1 attempts"), "{}", m.delivery);
        s.outbox_delivered(due[0].id, Some((7, 42))).unwrap();
        let m = &s.messages("100").unwrap()[0];
        assert_eq!(m.server_uid, Some(42));
        assert_eq!(m.delivery, "delivered (imap)");
        assert_eq!(s.messages("200").unwrap()[0].delivery, "local");
        assert_eq!(s.message_counts("100").unwrap(), (1, 1));
    }
}
