//! The store's connection: opening and migrating the database, the maintenance thread
//! of long-running processes (WAL checkpoints, reclaim of removed bodies), transactions
//! and how they commit. Everything else in `store/` is built on [`Store`].

use anyhow::{bail, Context, Result};
use rusqlite::Connection;
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
    include_str!("../../sql/016_timezone.sql"),
    include_str!("../../sql/017_sip_credentials.sql"),
    include_str!("../../sql/018_substitutions.sql"),
    include_str!("../../sql/019_email_filters.sql"),
    include_str!("../../sql/020_speech_cache.sql"),
    include_str!("../../sql/021_reply_all.sql"),
    include_str!("../../sql/022_fax_result.sql"),
    include_str!("../../sql/023_fax_jobs.sql"),
    include_str!("../../sql/024_fax_number.sql"),
    include_str!("../../sql/025_station.sql"),
    include_str!("../../sql/026_lists.sql"),
    include_str!("../../sql/027_language.sql"),
];

/// Shared handle to the database and the media directory.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    pub(super) root: PathBuf,
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
    pub(super) fn transact<T>(
        &self,
        commit: Commit,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
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

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (transactions
        // roll back), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
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
pub(super) fn reclaim_redoable(conn: &mut Connection, max: usize) -> rusqlite::Result<usize> {
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
