//! The outbox: deliveries due, done and failed (with backoff), one row per message.

use super::db::{now_secs, Store};
use super::mailboxes::Mailbox;
use super::messages::MessageRow;
use anyhow::Result;
use rusqlite::params;

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

    /// Deliveries pending: how many, and when the oldest was queued (unix seconds).
    pub fn outbox_pending(&self) -> Result<(i64, Option<i64>)> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
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
