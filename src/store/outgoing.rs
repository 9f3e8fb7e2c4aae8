//! Voice replies to e-mail addresses, waiting for the SMTP server (see sql/011).

use super::db::{now_millis, now_secs, Store};
use anyhow::Result;
use rusqlite::{params, OptionalExtension};

/// A reply to send.
#[derive(Debug, Clone)]
pub struct NewReply {
    pub mailbox: String,
    pub rcpt: String,
    /// Copies: the other recipients of a reply to all.
    pub cc: Vec<String>,
    pub message_id: String,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub media_path: String,
    pub duration_ms: i64,
}

/// A reply waiting to be sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub reply: NewReply,
    pub attempts: i64,
    pub created_at: i64,
}

impl Store {
    /// Queues a reply (its recording is already durable); due at once.
    pub fn insert_reply(&self, r: &NewReply) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO outgoing (mailbox, rcpt, message_id, subject, in_reply_to, media_path, duration_ms,
                                   next_attempt_at, created_at, cc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.mailbox,
                r.rcpt,
                r.message_id,
                r.subject,
                r.in_reply_to,
                r.media_path,
                r.duration_ms,
                now_millis(),
                now_secs(),
                serde_json::to_string(&r.cc)?
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn outgoing_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Outgoing>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, mailbox, rcpt, message_id, subject, in_reply_to, media_path, duration_ms, attempts, created_at, cc
             FROM outgoing WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![now_ms, limit as i64], |r| {
                Ok(Outgoing {
                    id: r.get(0)?,
                    reply: NewReply {
                        mailbox: r.get(1)?,
                        rcpt: r.get(2)?,
                        // Written by insert_reply; a row that does not parse has no copies.
                        cc: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                        message_id: r.get(3)?,
                        subject: r.get(4)?,
                        in_reply_to: r.get(5)?,
                        media_path: r.get(6)?,
                        duration_ms: r.get(7)?,
                    },
                    attempts: r.get(8)?,
                    created_at: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn outgoing_next_due(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row("SELECT MIN(next_attempt_at) FROM outgoing WHERE sent_at IS NULL", [], |r| r.get(0))
            .optional()?
            .flatten())
    }

    pub fn outgoing_sent(&self, id: i64) -> Result<()> {
        self.conn()
            .execute("UPDATE outgoing SET sent_at = ?2, last_error = NULL WHERE id = ?1", params![id, now_secs()])?;
        Ok(())
    }

    pub fn outgoing_failed(&self, id: i64, error: &str, next_attempt_ms: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE outgoing SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, next_attempt_ms],
        )?;
        Ok(())
    }
}
