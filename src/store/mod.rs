//! The store: SQLite (the single anchor of reference) plus media files below one directory.
//!
//! All access is synchronous (rusqlite); async code calls it through [`Store::run`],
//! which moves the work onto tokio's blocking pool so that no call task ever waits on
//! disk while it should be sending RTP.

mod db;
pub mod menu;
pub mod outgoing;
pub mod pin;
pub mod server_lock;
mod sync;
pub mod trash;
mod values;

pub use sync::{AccountSync, PassRecord, RetrievedRow};
pub use trash::Removal;

pub use crate::durable::write_durable;
pub use db::{now_millis, now_secs, Commit, Store};

use crate::model::{MessageKind, State};
use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

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
    /// IANA time zone for the dates the menu speaks (None: the server's).
    pub timezone: Option<String>,
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
    /// IANA time zone for the dates the menu speaks (None: the server's).
    pub timezone: Option<String>,
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
    pub kind: MessageKind,
    pub state: State,
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

impl Store {
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
            "INSERT INTO mailbox (number, pin_hash, name, email, imap_url, pop3_url, smtp_url, created_at, timezone)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                m.number,
                pin::hash(&m.pin)?,
                m.name,
                m.email,
                m.imap_url,
                m.pop3_url,
                m.smtp_url,
                now_secs(),
                m.timezone
            ],
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
                "UPDATE mailbox SET name = ?2, email = ?3, imap_url = ?4, pop3_url = ?5, smtp_url = ?6, timezone = ?7
                 WHERE number = ?1",
                params![m.number, m.name, m.email, m.imap_url, m.pop3_url, m.smtp_url, m.timezone],
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
                        busy_greeting_path, name_path, temp_greeting_path, timezone
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
                        busy_greeting_path, name_path, temp_greeting_path, timezone
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

    /// Writes `pcm` durably as a new recording of `mailbox`:
    /// `recordings/<mailbox>/<prefix><unix time>-<random>.wav` — the one place where
    /// recordings' file names are decided. Returns its path below the store and its size.
    pub fn write_recording(&self, mailbox: &str, prefix: &str, pcm: &[i16]) -> Result<(String, u64)> {
        let safe_mb: String = mailbox.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let rel = format!("recordings/{safe_mb}/{prefix}{}-{:08x}.wav", now_secs(), rand::random::<u32>());
        let bytes = crate::media::wav::write_durable(&self.root().join(&rel), pcm)?;
        Ok((rel, bytes))
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
        timezone: r.get(10)?,
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
