//! The trash: removed voice and fax messages kept for `[store] trash_days`, so that a
//! wrong removal — a mail server that reported a message gone when it was not — can be
//! undone with `voxbridge messages restore`.
//!
//! Removal ([`Store::remove_rows`]) keeps each voice or fax row's description in the
//! `trash` table and its media: a recording is hard-linked under `trash/` (same path
//! below it) before the transaction that removes the row commits, and unlinked from
//! `recordings/` only after, so a crash anywhere leaves the audio reachable from the
//! row or from the trash entry (at worst a stray second link). A retrieved voice or fax
//! message, whose audio is inside its raw mail, keeps that raw mail where it is: its
//! `message_body` row is taken out of the reclaim queue (`body_garbage`) in the removing
//! transaction — nothing is copied, so removing 1,000 rows costs what it did — and a
//! restored row gets its old id back (ids are never reused), which the body is keyed
//! by. E-mails are not kept: their copy is the mail server's.

use super::db::{now_millis, now_secs, Commit, Store};
use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use std::path::Path;

/// Why rows are removed; recorded with what the trash keeps of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The mail server no longer lists the message (seed Fig. 9A).
    GoneFromServer,
    /// Deleted (D): expunged on the server first, then here.
    Deleted,
    /// Purged by phone or CLI while it existed only here.
    Purged,
}

impl Removal {
    pub fn as_str(self) -> &'static str {
        match self {
            Removal::GoneFromServer => "gone from the mail server",
            Removal::Deleted => "deleted",
            Removal::Purged => "purged (it existed only here)",
        }
    }
}

/// The directory below the store that holds trashed media.
pub const TRASH_DIR: &str = "trash";

/// One message in the trash, for `voxbridge messages restore`.
#[derive(Debug, Clone, Serialize)]
pub struct TrashEntry {
    pub id: i64,
    pub mailbox: String,
    pub removed_at: i64,
    pub reason: String,
    pub kind: crate::model::MessageKind,
    pub state: crate::model::State,
    pub caller: Option<String>,
    pub received_at: i64,
    pub duration_ms: Option<i64>,
    pub pages: Option<i64>,
    pub message_id: String,
    pub subject: Option<String>,
    /// The recording or fax file, or the raw mail, is kept with it.
    pub has_media: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// A new row (with its delivery to the IMAP mailbox queued again, if it has one:
    /// the outbox looks for the Message-ID first, so a copy still there is linked, not
    /// doubled).
    Row(i64),
    /// The message had come back meanwhile (retrieved again from the mail server) without
    /// its recording: the recording was put back on that row.
    MediaOnto(i64),
}

/// A voice or fax row being removed: its id and media file.
pub(super) struct Trashed {
    id: i64,
    media: Option<String>,
    /// The media's link under trash/ exists.
    linked: bool,
}

impl Trashed {
    /// A recording file is involved (its removal must be durable before the unlink).
    pub(super) fn has_file(&self) -> bool {
        self.linked
    }
}

fn trash_path(media: &str) -> String {
    format!("{TRASH_DIR}/{media}")
}

/// Hard-links `from` to `to` (both below `root`), creating `to`'s directory.
fn link(root: &Path, from: &str, to: &str) -> Result<()> {
    let (from, to) = (root.join(from), root.join(to));
    let dir = to.parent().context("media path without directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    match std::fs::hard_link(&from, &to) {
        Ok(()) => {}
        // Left by a removal that crashed before its commit: the same file.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot link {} to {}", from.display(), to.display())),
    }
    std::fs::File::open(dir)?.sync_all().context("fsync of directory failed")?;
    Ok(())
}

impl Store {
    /// Before removing `ids`: the voice and fax rows among them, each recording linked
    /// under trash/ (a recording already missing is noted and kept without audio).
    pub(super) fn prepare_trash(&self, ids_json: &str) -> Result<Vec<Trashed>> {
        let rows: Vec<(i64, Option<String>)> = self
            .conn()
            .prepare_cached(
                "SELECT id, media_path FROM message
                 WHERE id IN (SELECT value FROM json_each(?1)) AND kind != 'email'",
            )?
            .query_map([ids_json], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, media) in rows {
            let linked = match &media {
                Some(p) => match link(&self.root, p, &trash_path(p)) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(message = id, media = %p, error = %format!("{e:#}"), "recording not kept in the trash");
                        false
                    }
                },
                None => false,
            };
            out.push(Trashed { id, media, linked });
        }
        Ok(out)
    }

    /// Inside the removing transaction: the trash entries of `trashed`.
    pub(super) fn write_trash(tx: &rusqlite::Transaction<'_>, trashed: &[Trashed], why: Removal) -> Result<()> {
        let mut ins = tx.prepare_cached(
            "INSERT INTO trash (mailbox, removed_at, reason, message, kind, state, caller, caller_name, received_at,
                                duration_ms, pages, media_path, media_bytes, message_id, subject)
             SELECT m.mailbox, ?2, ?3, m.id, m.kind, m.state, m.caller, m.caller_name, m.received_at,
                    m.duration_ms, m.pages, ?4, m.media_bytes, m.message_id, m.subject
             FROM message m WHERE m.id = ?1",
        )?;
        let now = now_secs();
        for t in trashed {
            let media = t.media.as_deref().filter(|_| t.linked).map(trash_path);
            ins.execute(params![t.id, now, why.as_str(), media])?;
        }
        Ok(())
    }

    /// Inside the removing transaction, after the rows' DELETE queued their bodies: the
    /// trashed rows' bodies stay.
    pub(super) fn keep_trashed_bodies(tx: &rusqlite::Transaction<'_>, trashed: &[Trashed]) -> Result<()> {
        let mut keep = tx.prepare_cached("DELETE FROM body_garbage WHERE message = ?1")?;
        for t in trashed {
            keep.execute([t.id])?;
        }
        Ok(())
    }

    /// After the removal committed durably: the recordings' old links.
    pub(super) fn drop_trashed_originals(&self, trashed: &[Trashed]) {
        for t in trashed.iter().filter(|t| t.linked) {
            if let Some(p) = &t.media {
                let _ = std::fs::remove_file(self.root.join(p));
            }
        }
    }

    /// The mailbox's trash, newest first.
    pub fn trashed(&self, mailbox: &str) -> Result<Vec<TrashEntry>> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT id, mailbox, removed_at, reason, kind, state, caller, received_at, duration_ms, pages,
                    message_id, subject,
                    media_path IS NOT NULL OR EXISTS(SELECT 1 FROM message_body b WHERE b.message = trash.message)
             FROM trash WHERE mailbox = ?1 ORDER BY id DESC",
        )?;
        let rows = q
            .query_map([mailbox], |r| {
                Ok(TrashEntry {
                    id: r.get(0)?,
                    mailbox: r.get(1)?,
                    removed_at: r.get(2)?,
                    reason: r.get(3)?,
                    kind: r.get(4)?,
                    state: r.get(5)?,
                    caller: r.get(6)?,
                    received_at: r.get(7)?,
                    duration_ms: r.get(8)?,
                    pages: r.get(9)?,
                    message_id: r.get(10)?,
                    subject: r.get(11)?,
                    has_media: r.get(12)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Puts trash entry `id` of `mailbox` back (see [`Restored`]). A message purged (D)
    /// comes back read (R); otherwise in the state it had.
    pub fn restore(&self, mailbox: &str, id: i64) -> Result<Restored> {
        type Entry = (String, String, Option<String>, Option<String>, i64, Option<i64>, Option<i64>);
        type Media = (Option<String>, Option<i64>, String, Option<String>, i64);
        let found: Option<(Entry, Media)> = self
            .conn()
            .query_row(
                "SELECT kind, state, caller, caller_name, received_at, duration_ms, pages,
                        media_path, media_bytes, message_id, subject, message
                 FROM trash WHERE mailbox = ?1 AND id = ?2",
                params![mailbox, id],
                |r| {
                    Ok((
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?),
                        (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
                    ))
                },
            )
            .optional()?;
        let Some(((kind, state, caller, caller_name, received_at, duration_ms, pages), media)) = found else {
            bail!("mailbox {mailbox} has no message {id} in the trash (see: voxbridge messages restore {mailbox})")
        };
        let (trashed_media, media_bytes, message_id, subject, old_id) = media;
        // Where the recording goes back to: its old path (trash/ + path).
        let original =
            trashed_media.as_deref().and_then(|p| p.strip_prefix(&format!("{TRASH_DIR}/"))).map(String::from);
        let present: Option<(i64, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT id, media_path FROM message WHERE mailbox = ?1 AND message_id = ?2",
                params![mailbox, message_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match (&present, &original) {
            (Some((row, Some(_))), _) => bail!(
                "message {message_id} is in mailbox {mailbox} again (message {row}), with its media: nothing to restore"
            ),
            (Some((row, None)), None) => {
                bail!("message {message_id} is in mailbox {mailbox} again (message {row}): nothing to restore")
            }
            _ => {}
        }
        if let (Some(t), Some(o)) = (&trashed_media, &original) {
            link(&self.root, t, o)?;
        }
        let target = self.mailbox(mailbox)?.with_context(|| format!("no mailbox {mailbox}"))?.delivery_target();
        let restored = match present {
            Some((row, _)) => {
                let o = original.as_deref().context("checked above: media to put back")?;
                self.transact(Commit::Durable, |tx| {
                    tx.execute(
                        "UPDATE message SET media_path = ?2, media_bytes = ?3 WHERE id = ?1",
                        params![row, o, media_bytes],
                    )?;
                    tx.execute("DELETE FROM trash WHERE id = ?1", [id])?;
                    Ok(())
                })?;
                Restored::MediaOnto(row)
            }
            None => {
                let state = if state == "D" { "R".to_string() } else { state };
                let row = self.transact(Commit::Durable, |tx| {
                    // Its old id: the raw mail of a retrieved message is keyed by it.
                    tx.execute(
                        "INSERT INTO message (id, mailbox, kind, state, caller, caller_name, received_at, duration_ms,
                                              pages, media_path, media_bytes, message_id, subject)
                         VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        params![
                            mailbox,
                            kind,
                            state,
                            caller,
                            caller_name,
                            received_at,
                            duration_ms,
                            pages,
                            original,
                            media_bytes,
                            message_id,
                            subject,
                            old_id
                        ],
                    )?;
                    let row = old_id;
                    // A recording of ours goes back to the IMAP mailbox too (the outbox
                    // finds a copy still there by Message-ID and only links it). Not by
                    // SMTP, which cannot look first; a retrieved message is linked by the
                    // next pass if the server still has it.
                    if original.is_some() && target == Some("imap") {
                        tx.execute(
                            "INSERT INTO outbox (message, target, next_attempt_at, created_at) VALUES (?1, 'imap', ?2, ?3)",
                            params![row, now_millis(), now_secs()],
                        )?;
                    }
                    tx.execute("DELETE FROM trash WHERE id = ?1", [id])?;
                    Ok(row)
                })?;
                Restored::Row(row)
            }
        };
        if let Some(t) = &trashed_media {
            let _ = std::fs::remove_file(self.root.join(t));
        }
        Ok(restored)
    }

    /// Deletes trash entries removed before `before` (unix seconds) and their media
    /// (files at once, raw mails by the reclaim queue); returns how many.
    pub fn purge_trash(&self, before: i64) -> Result<usize> {
        let files: Vec<Option<String>> = self.transact(Commit::Durable, |tx| {
            let files = tx
                .prepare("SELECT media_path FROM trash WHERE removed_at < ?1")?
                .query_map([before], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<Option<String>>>>()?;
            tx.execute(
                "INSERT OR IGNORE INTO body_garbage (message) SELECT message FROM trash WHERE removed_at < ?1",
                [before],
            )?;
            tx.execute("DELETE FROM trash WHERE removed_at < ?1", [before])?;
            Ok(files)
        })?;
        for f in files.iter().flatten() {
            let _ = std::fs::remove_file(self.root.join(f));
        }
        Ok(files.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::State;
    use crate::store::{NewMailbox, RetrievedRow};

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let imap = Some("imap://u:p@127.0.0.1:1/INBOX".to_string());
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), imap_url: imap, ..Default::default() })
            .unwrap();
        (d, s)
    }

    fn deposit(s: &Store) -> (i64, String) {
        let (path, bytes) = s.write_recording("100", "", &[100i16; 8000]).unwrap();
        let m = crate::store::NewVoiceMessage {
            mailbox: "100".into(),
            caller: Some("2001".into()),
            caller_name: None,
            received_at: now_secs(),
            duration_ms: 1000,
            media_path: path.clone(),
            media_bytes: bytes as i64,
            message_id: format!("<vb.{}@example.test>", rand::random::<u32>()),
            subject: "Voice message".into(),
        };
        (s.insert_voice_message(&m).unwrap(), path)
    }

    fn count(s: &Store, sql: &str) -> i64 {
        s.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_removed_recording_waits_in_the_trash_and_comes_back() {
        let (d, s) = store();
        let (id, path) = deposit(&s);
        let audio = std::fs::read(d.path().join(&path)).unwrap();
        s.remove_rows(&[id], Commit::Redoable, Removal::GoneFromServer).unwrap();
        assert!(s.message(id).unwrap().is_none());
        assert!(!d.path().join(&path).exists(), "the recording left recordings/");
        assert_eq!(std::fs::read(d.path().join(trash_path(&path))).unwrap(), audio);
        let t = s.trashed("100").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].kind.as_str(), t[0].reason.as_str(), t[0].has_media),
            ("voice", "gone from the mail server", true)
        );

        let Restored::Row(row) = s.restore("100", t[0].id).unwrap() else { panic!("a new row") };
        let m = s.message(row).unwrap().unwrap();
        assert_eq!(m.media_path.as_deref(), Some(path.as_str()));
        assert_eq!(std::fs::read(d.path().join(&path)).unwrap(), audio);
        assert!(m.delivery.starts_with("pending (imap"), "delivered to the IMAP mailbox again: {}", m.delivery);
        assert!(s.trashed("100").unwrap().is_empty());
        assert!(!d.path().join(trash_path(&path)).exists());
        assert!(s.restore("100", t[0].id).is_err(), "restored once");

        // Purged after the grace period: entry and file gone.
        s.remove_rows(&[row], Commit::Durable, Removal::Purged).unwrap();
        assert_eq!(s.purge_trash(now_secs() - 3600).unwrap(), 0, "not yet");
        assert_eq!(s.purge_trash(now_secs() + 1).unwrap(), 1);
        assert!(s.trashed("100").unwrap().is_empty());
        assert!(!d.path().join(trash_path(&path)).exists());
    }

    #[test]
    fn a_message_back_from_the_server_gets_its_recording_back() {
        let (d, s) = store();
        let (id, path) = deposit(&s);
        let mid = s.message(id).unwrap().unwrap().message_id;
        s.remove_rows(&[id], Commit::Redoable, Removal::GoneFromServer).unwrap();
        // The next pass retrieved the message again (the server had it after all).
        let back = RetrievedRow {
            state: State::R,
            message_id: mid,
            uid: Some((3, 7)),
            ..RetrievedRow::sample(3, crate::model::MessageKind::Voice)
        };
        let row = s.store_retrieved("100", &[back]).unwrap()[0].0;
        let entry = s.trashed("100").unwrap()[0].id;
        assert_eq!(s.restore("100", entry).unwrap(), Restored::MediaOnto(row));
        assert_eq!(s.message(row).unwrap().unwrap().media_path.as_deref(), Some(path.as_str()));
        assert!(d.path().join(&path).is_file());
        assert_eq!(count(&s, "SELECT count(*) FROM message"), 1);
    }

    #[test]
    fn a_retrieved_voice_message_keeps_its_raw_mail_and_e_mails_are_not_kept() {
        let (_d, s) = store();
        let row = RetrievedRow::sample;
        let ids: Vec<i64> = s
            .store_retrieved(
                "100",
                &[row(1, crate::model::MessageKind::Voice), row(2, crate::model::MessageKind::Email)],
            )
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect();
        s.remove_rows(&ids, Commit::Redoable, Removal::Deleted).unwrap();
        assert_eq!(s.reclaim_bodies().unwrap(), 1, "the e-mail's body is reclaimed, the voice message's kept");
        let t = s.trashed("100").unwrap();
        assert_eq!(t.len(), 1, "only the voice message");
        assert!(t[0].has_media);
        let Restored::Row(back) = s.restore("100", t[0].id).unwrap() else { panic!() };
        assert_eq!(back, ids[0], "restored under its old id");
        let raw: Vec<u8> =
            s.conn().query_row("SELECT raw FROM message_body WHERE message = ?1", [back], |r| r.get(0)).unwrap();
        assert_eq!(raw, b"Subject: 1\r\n\r\nbody 1\r\n");
        let m = s.message(back).unwrap().unwrap();
        assert_eq!((m.state.as_str(), m.delivery.as_str()), ("U", "local"), "unlinked: the next pass links it");
        // Removed again and purged: the raw mail goes with the entry.
        s.remove_rows(&[back], Commit::Redoable, Removal::GoneFromServer).unwrap();
        assert_eq!(s.reclaim_bodies().unwrap(), 0);
        assert_eq!(s.purge_trash(now_secs() + 1).unwrap(), 1);
        assert_eq!(s.reclaim_bodies().unwrap(), 1);
        assert_eq!(count(&s, "SELECT count(*) FROM message_body"), 0);
    }
}
