//! Messages: voice messages committed with their delivery, the rows as the menu, the
//! CLI and the outbox read them, and where recordings' files are written.

use super::db::{now_millis, now_secs, Store};
use crate::model::{MessageKind, State};
use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

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
    /// A received fax's T.30 result ("OK", or why it stopped part way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fax_result: Option<String>,
    /// "delivered", "pending", "local" (no mail account), with detail.
    pub delivery: String,
}

/// A received fax: its TIFF-F already in the store (see [`Store::new_fax_file`]).
#[derive(Debug, Clone)]
pub struct NewFaxMessage {
    pub mailbox: String,
    /// The sender's number (caller ID), when known.
    pub caller: Option<String>,
    /// The sending machine's ident (TSI), as it sent it.
    pub remote_ident: Option<String>,
    pub received_at: i64,
    pub pages: i64,
    pub duration_ms: i64,
    pub media_path: String,
    pub media_bytes: i64,
    pub message_id: String,
    pub subject: String,
    /// How T.30 ended: "OK", or why the fax stopped part way.
    pub result: String,
}

impl Store {
    /// Where a fax about to be received for `mailbox` is written: (path below the
    /// store, absolute path), its directory created.
    pub fn new_fax_file(&self, mailbox: &str) -> Result<(String, std::path::PathBuf)> {
        let rel = super::files::fax(mailbox, now_secs());
        let abs = self.root().join(&rel);
        if let Some(dir) = abs.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok((rel, abs))
    }

    /// What the fax engine left at `rel` (see [`Store::new_fax_file`]): its pages and
    /// size; `None` when it holds no page (then the file is removed; a missing file is
    /// none too). A file that cannot be read is an error, and stays.
    pub fn received_fax_file(&self, rel: &str) -> Result<Option<(i64, i64)>> {
        let abs = self.root().join(rel);
        let bytes = match std::fs::read(&abs) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", abs.display())),
        };
        let pages = crate::fax::tiff::pages(&bytes) as i64;
        if pages == 0 {
            std::fs::remove_file(&abs).with_context(|| format!("cannot remove {}", abs.display()))?;
            return Ok(None);
        }
        Ok(Some((pages, bytes.len() as i64)))
    }

    /// Commits a received fax (kind fax, state U) and its outbox row in one transaction,
    /// as [`Store::insert_voice_message`] does for voice. The file is made durable
    /// first: a fax is "saved" only when nothing of it can be lost.
    pub fn insert_fax_message(&self, m: &NewFaxMessage) -> Result<i64> {
        let abs = self.root().join(&m.media_path);
        crate::durable::sync_file_and_dir(&abs).with_context(|| format!("cannot make {} durable", abs.display()))?;
        let target = self
            .mailbox(&m.mailbox)?
            .with_context(|| format!("mailbox {} does not exist", m.mailbox))?
            .delivery_target();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO message (mailbox, kind, state, caller, caller_name, received_at,
                                  duration_ms, pages, media_path, media_bytes, message_id, subject, fax_result)
             VALUES (?1, 'fax', 'U', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                m.mailbox,
                m.caller,
                m.remote_ident,
                m.received_at,
                m.duration_ms,
                m.pages,
                m.media_path,
                m.media_bytes,
                m.message_id,
                m.subject,
                m.result
            ],
        )?;
        let id = tx.last_insert_rowid();
        if let Some(target) = target {
            tx.execute(
                "INSERT INTO outbox (message, target, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, target, now_millis(), now_secs()],
            )?;
        }
        tx.commit()?;
        Ok(id)
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

    /// Writes `pcm` durably as a new recording of `mailbox` (named by
    /// [`super::files::recording`]). Returns its path below the store and its size.
    pub fn write_recording(&self, mailbox: &str, prefix: &str, pcm: &[i16]) -> Result<(String, u64)> {
        let rel = super::files::recording(mailbox, prefix, now_secs());
        let bytes = crate::media::wav::write_durable(&self.root().join(&rel), pcm)?;
        Ok((rel, bytes))
    }

    /// Starts a new recording of `mailbox` written while it is made (named like
    /// [`Store::write_recording`]'s). Returns its path below the store and the writer.
    pub fn start_recording(&self, mailbox: &str, prefix: &str) -> Result<(String, crate::media::wav::WavStream)> {
        let rel = super::files::recording(mailbox, prefix, now_secs());
        let w = crate::media::wav::WavStream::create(&self.root().join(&rel))?;
        Ok((rel, w))
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
}

pub(super) const MESSAGE_SELECT: &str = "
    SELECT m.id, m.mailbox, m.kind, m.state, m.caller, m.caller_name, m.received_at,
           m.duration_ms, m.pages, m.media_path, m.message_id, m.subject, m.server_uid,
           o.target, o.delivered_at, o.attempts, o.last_error, m.fax_result
    FROM message m LEFT JOIN outbox o ON o.message = m.id";

pub(super) fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRow> {
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
        fax_result: r.get(17)?,
        delivery,
    })
}
