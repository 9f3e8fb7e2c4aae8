//! Store access for the sync engine: the compare agent's store list, applying a plan's
//! store side, linking and inserting retrieved messages, per-account state, event log,
//! and state changes made "as the phone would".

use super::db::{now_secs, Commit, Store};
use super::trash::Removal;
use crate::model::{MarkAction, MessageKind, State, StoreMsg};
use anyhow::{bail, Result};
use rusqlite::{params, OptionalExtension};

/// What a pass starts from: the state the last complete pass recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountSync {
    pub uidvalidity: Option<u32>,
    pub highestmodseq: Option<u64>,
    /// A removal the safety brake has held since (unix seconds).
    pub held_since: Option<i64>,
}

/// How a pass ended, as [`Store::record_sync`] records it.
#[derive(Debug, Clone, Copy)]
pub struct PassRecord<'a> {
    /// The error of a failed pass.
    pub error: Option<&'a str>,
    /// Everything the server reported was carried out: only then are `uidvalidity` and
    /// `highestmodseq` recorded as the next pass's starting point.
    pub complete: bool,
    pub uidvalidity: Option<u32>,
    pub highestmodseq: Option<u64>,
    /// A removal held by the safety brake: (since, rows kept, rows of the mailbox).
    pub held: Option<(i64, usize, usize)>,
    pub summary: &'a str,
}

/// A mail account's sync state, for `voxbridge sync-log`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncStatus {
    pub mailbox: String,
    /// The account's URL (with its password: redact before showing it).
    pub account: String,
    /// Unix seconds of the last successful pass.
    pub last_sync_at: Option<i64>,
    /// Failed passes since the last successful one.
    pub failures: i64,
    pub last_error: Option<String>,
    /// While in backoff: when the server tries again (unix seconds).
    pub next_attempt_at: Option<i64>,
    /// A removal the safety brake holds: (since, rows kept, rows of the mailbox).
    pub held: Option<(i64, i64, i64)>,
}

/// One entry of the sync event log: what a pass did, or why it failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncLogEntry {
    pub id: i64,
    pub mailbox: String,
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    pub summary: String,
}

/// A retrieved message to store (its raw body goes into `message_body`).
#[derive(Debug, Clone)]
pub struct RetrievedRow {
    pub kind: MessageKind,
    pub state: State,
    pub message_id: String,
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub subject: Option<String>,
    pub received_at: i64,
    pub duration_ms: Option<i64>,
    /// IMAP: (UID, UIDVALIDITY).
    pub uid: Option<(u32, u32)>,
    /// POP3: the UIDL unique-id.
    pub server_key: Option<String>,
    pub raw: Vec<u8>,
}

#[cfg(test)]
impl RetrievedRow {
    /// A small retrieved message of `kind` with UID `uid` (UIDVALIDITY 7), for tests.
    pub(crate) fn sample(uid: u32, kind: MessageKind) -> RetrievedRow {
        RetrievedRow {
            kind,
            state: State::U,
            message_id: format!("<m{uid}@x>"),
            caller: None,
            caller_name: None,
            subject: None,
            received_at: 1,
            duration_ms: None,
            uid: Some((uid, 7)),
            server_key: None,
            raw: format!("Subject: {uid}\r\n\r\nbody {uid}\r\n").into_bytes(),
        }
    }
}

impl Store {
    /// The compare agent's store list: rows on the server, sorted by UID.
    pub fn sync_rows(&self, mailbox: &str) -> Result<Vec<StoreMsg>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, server_uid, state, synced_state FROM message
             WHERE mailbox = ?1 AND server_uid IS NOT NULL ORDER BY server_uid",
        )?;
        let rows = st
            .query_map([mailbox], |r| {
                Ok(StoreMsg { id: r.get(0)?, uid: r.get::<_, i64>(1)? as u32, state: r.get(2)?, synced: r.get(3)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The store list of a delta (QRESYNC) pass: rows changed here since their last
    /// agreed state, and rows whose UID the server reported changed or vanished
    /// (`uids` and inclusive `ranges`), sorted by UID.
    pub fn sync_rows_delta(&self, mailbox: &str, uids: &[u32], ranges: &[(u32, u32)]) -> Result<Vec<StoreMsg>> {
        let conn = self.conn();
        let to_msg = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<StoreMsg>> {
            let id: i64 = r.get(0)?;
            let uid: Option<i64> = r.get(1)?;
            let (state, synced) = (r.get(2)?, r.get(3)?);
            Ok(uid.map(|uid| StoreMsg { id, uid: uid as u32, state, synced }))
        };
        let mut out: std::collections::BTreeMap<u32, StoreMsg> = std::collections::BTreeMap::new();
        // Matches the partial index message_dirty.
        let mut dirty = conn.prepare_cached(
            "SELECT id, server_uid, state, synced_state FROM message
             WHERE mailbox = ?1 AND (synced_state IS NULL OR synced_state != state)",
        )?;
        for m in dirty.query_map([mailbox], to_msg)? {
            if let Some(m) = m? {
                out.insert(m.uid, m);
            }
        }
        // All ranges in one statement (a statement per range cost 13 ms per 1,000). CROSS
        // JOIN keeps json_each as the outer loop: left to itself the planner scans the
        // whole mailbox once per range.
        let ranges: Vec<(u32, u32)> = uids.iter().map(|u| (*u, *u)).chain(ranges.iter().copied()).collect();
        if !ranges.is_empty() {
            let mut by_uid = conn.prepare_cached(
                "SELECT m.id, m.server_uid, m.state, m.synced_state
                 FROM json_each(?2) AS r CROSS JOIN message AS m
                 ON m.mailbox = ?1 AND m.server_uid BETWEEN r.value ->> 0 AND r.value ->> 1",
            )?;
            for m in by_uid.query_map(params![mailbox, serde_json::to_string(&ranges)?], to_msg)? {
                if let Some(m) = m? {
                    out.insert(m.uid, m);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Applies the store side of a plan in one transaction: the agreed states as the next
    /// bases, and new states — these only to a row still in the state the pass read
    /// (`read`). A row changed by phone while the pass ran keeps that change; its new
    /// base is what the server now holds, so the change counts as made since and the
    /// next pass (which the phone's change triggered) carries it, even a deliberate
    /// downward one. Returns the rows whose new state was not applied.
    pub fn apply_states(
        &self,
        to_store: &[(i64, State)],
        synced: &[(i64, State)],
        read: &[(i64, State)],
    ) -> Result<Vec<i64>> {
        if to_store.is_empty() && synced.is_empty() {
            return Ok(Vec::new());
        }
        // One UPDATE per row for state and base together: a row whose new state is also
        // its new base never enters the message_dirty index on the way.
        type Change = (Option<State>, Option<State>, Option<State>);
        let mut rows: std::collections::BTreeMap<i64, Change> = Default::default();
        for (id, s) in to_store {
            rows.entry(*id).or_default().0 = Some(*s);
        }
        for (id, s) in synced {
            rows.entry(*id).or_default().1 = Some(*s);
        }
        for (id, s) in read {
            if let Some(r) = rows.get_mut(id) {
                r.2 = Some(*s);
            }
        }
        // Redoable: every change here is already on the mail server (see Commit).
        self.transact(Commit::Redoable, |tx| {
            let mut set = tx.prepare_cached(
                "UPDATE message SET synced_state = COALESCE(?3, synced_state),
                     state = CASE WHEN ?4 IS NULL OR state = ?4 THEN COALESCE(?2, state) ELSE state END
                 WHERE id = ?1 RETURNING state",
            )?;
            let mut left = Vec::new();
            for (id, (state, base, was)) in rows {
                let now: Option<String> = set
                    .query_row(
                        params![id, state.map(State::as_str), base.map(State::as_str), was.map(State::as_str)],
                        |r| r.get(0),
                    )
                    .optional()?;
                if state.is_some_and(|s| now.as_deref() != Some(s.as_str())) {
                    left.push(id);
                }
            }
            Ok(left)
        })
    }

    /// Physically removes rows. Only the sync engine and a purge by phone call this, for
    /// the three reasons the seed allows (`why`); `commit` says whether the removal can
    /// be redone by the next pass (see [`Commit`]). Voice and fax rows go to the trash
    /// with their media (see [`super::trash`]); a recording leaves `recordings/` only
    /// once its row's removal is durable.
    pub fn remove_rows(&self, ids: &[i64], commit: Commit, why: Removal) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = serde_json::to_string(ids)?;
        let trashed = self.prepare_trash(&list)?;
        // A row that came back after a power cut must still have its audio.
        let commit = if trashed.iter().any(|t| t.has_file()) { Commit::Durable } else { commit };
        self.transact(commit, |tx| {
            Store::write_trash(tx, &trashed, why)?;
            tx.execute("DELETE FROM message WHERE id IN (SELECT value FROM json_each(?1))", [&list])?;
            Store::keep_trashed_bodies(tx, &trashed)?;
            Ok(())
        })?;
        self.drop_trashed_originals(&trashed);
        Ok(ids.len())
    }

    /// Rows of `mailbox` linked to its mail server (the share the safety brake judges
    /// by), counted up to `limit`: the brake needs the exact number only when it is
    /// small, and counting a 100,000-message mailbox's index on every pass that saw
    /// 1,000 expunges cost milliseconds.
    pub fn rows_on_server(&self, mailbox: &str, limit: usize) -> Result<usize> {
        let n: i64 = self.conn().query_row(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM message WHERE mailbox = ?1 AND server_uid IS NOT NULL
                                           LIMIT ?2))
                  + (SELECT count(*) FROM (SELECT 1 FROM message WHERE mailbox = ?1 AND server_key IS NOT NULL
                                           LIMIT ?2))",
            params![mailbox, limit as i64],
            |r| r.get(0),
        )?;
        Ok((n as usize).min(limit))
    }

    /// After a UIDVALIDITY change the old UIDs mean nothing: unlink every row; the next
    /// retrieve links them again by Message-ID.
    pub fn reset_server_uids(&self, mailbox: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE message SET server_uid = NULL, uidvalidity = NULL, synced_state = NULL WHERE mailbox = ?1",
            [mailbox],
        )?;
        Ok(())
    }

    /// The retrieve agent's write: in one transaction, each message is either linked to
    /// the row with the same Message-ID in this mailbox (one of our own deposits: its
    /// server UID or key is recorded, nothing is imported twice) or inserted with its
    /// raw body. Returns (row id, linked) per message, in order.
    pub fn store_retrieved(&self, mailbox: &str, batch: &[RetrievedRow]) -> Result<Vec<(i64, bool)>> {
        let mut conn = self.conn();
        let t0 = std::time::Instant::now();
        let tx = conn.transaction()?;
        let mut out = Vec::with_capacity(batch.len());
        {
            // Only a row on no server yet can be this message (matches message_unlinked).
            let mut find = tx.prepare_cached(
                "SELECT id FROM message WHERE mailbox = ?1 AND message_id = ?2
                 AND server_uid IS NULL AND server_key IS NULL LIMIT 1",
            )?;
            let mut link = tx.prepare_cached(
                "UPDATE message SET server_uid = COALESCE(?2, server_uid), uidvalidity = COALESCE(?3, uidvalidity),
                        server_key = COALESCE(?4, server_key), synced_state = NULL WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO message (mailbox, kind, state, caller, caller_name, received_at, duration_ms, media_bytes,
                                      message_id, subject, server_uid, uidvalidity, server_key, synced_state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?3)",
            )?;
            let mut body = tx.prepare_cached("INSERT INTO message_body (message, raw) VALUES (?1, ?2)")?;
            let mut by_uid = tx
                .prepare_cached("SELECT id FROM message WHERE mailbox = ?1 AND server_uid = ?2 AND uidvalidity = ?3")?;
            let mut by_key = tx.prepare_cached("SELECT id FROM message WHERE mailbox = ?1 AND server_key = ?2")?;
            for m in batch {
                // Already here: between the pass reading its store list and this write,
                // another writer — the outbox recording the UID of the deposit it has
                // just appended — linked a row to this very message. Another insert
                // would make two rows of one message.
                let held = match (m.uid, &m.server_key) {
                    (Some((uid, validity)), _) => {
                        by_uid.query_row(params![mailbox, uid, validity], |r| r.get::<_, i64>(0)).optional()?
                    }
                    (None, Some(key)) => by_key.query_row(params![mailbox, key], |r| r.get::<_, i64>(0)).optional()?,
                    (None, None) => None,
                };
                if let Some(id) = held {
                    out.push((id, true));
                    continue;
                }
                let (uid, validity) = (m.uid.map(|u| u.0), m.uid.map(|u| u.1));
                if let Some(id) = find.query_row(params![mailbox, m.message_id], |r| r.get::<_, i64>(0)).optional()? {
                    link.execute(params![id, uid, validity, m.server_key])?;
                    out.push((id, true));
                    continue;
                }
                insert.execute(params![
                    mailbox,
                    m.kind,
                    m.state,
                    m.caller,
                    m.caller_name,
                    m.received_at,
                    m.duration_ms,
                    m.raw.len() as i64,
                    m.message_id,
                    m.subject,
                    uid,
                    validity,
                    m.server_key
                ])?;
                let id = tx.last_insert_rowid();
                body.execute(params![id, m.raw])?;
                out.push((id, false));
            }
        }
        let t1 = t0.elapsed();
        tx.commit()?;
        tracing::debug!(
            messages = batch.len(),
            sql_us = t1.as_micros() as u64,
            commit_us = (t0.elapsed() - t1).as_micros() as u64,
            "stored a chunk"
        );
        Ok(out)
    }

    /// POP3 rows: (row, UIDL key, state), for the compare agent.
    pub fn pop3_rows(&self, mailbox: &str) -> Result<Vec<(i64, String, State)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT id, server_key, state FROM message WHERE mailbox = ?1 AND server_key IS NOT NULL")?;
        let rows = st
            .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Reads a mailbox's rows and their UID index into this connection's page cache.
    /// For long-running processes after a bulk import, whose body pages pushed the rows
    /// out of the cache: the next passes read them from memory, not from the file
    /// (a 1 % expunge pass at 100,000 messages spent ~8 ms on those reads).
    pub fn warm_rows(&self, mailbox: &str) -> Result<()> {
        let t0 = std::time::Instant::now();
        let rows: i64 = self.conn().query_row(
            "SELECT count(length(state)) FROM message INDEXED BY message_by_uid WHERE mailbox = ?1 AND server_uid >= 0",
            [mailbox],
            |r| r.get(0),
        )?;
        tracing::debug!(mailbox, rows, ms = t0.elapsed().as_secs_f64() * 1e3, "rows read into the page cache");
        Ok(())
    }

    /// What the last complete pass recorded, and a removal held since.
    pub fn sync_state(&self, mailbox: &str) -> Result<AccountSync> {
        Ok(self
            .conn()
            .query_row(
                "SELECT uidvalidity, highestmodseq, held_since FROM sync_account WHERE mailbox = ?1",
                [mailbox],
                |r| {
                    Ok(AccountSync {
                        uidvalidity: r.get::<_, Option<i64>>(0)?.map(|v| v as u32),
                        highestmodseq: r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                        held_since: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records the outcome of a pass and appends it to the event log.
    pub fn record_sync(&self, mailbox: &str, rec: &PassRecord<'_>) -> Result<()> {
        self.transact(Commit::Redoable, |tx| {
            let now = now_secs();
            match (rec.error, rec.complete) {
                (None, true) => tx.execute(
                    "INSERT INTO sync_account (mailbox, uidvalidity, highestmodseq, last_sync_at, last_error, failures)
                     VALUES (?1, ?2, ?4, ?3, NULL, 0)
                     ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = COALESCE(?2, uidvalidity),
                         highestmodseq = ?4, last_sync_at = ?3, last_error = NULL, failures = 0,
                         next_attempt_at = NULL, held_since = NULL, held_rows = NULL, held_of = NULL",
                    params![mailbox, rec.uidvalidity, now, rec.highestmodseq.map(|m| m as i64)],
                )?,
                // A good pass that left something for the next one: its UIDVALIDITY and
                // HIGHESTMODSEQ are not the next pass's starting point.
                (None, false) => tx.execute(
                    "INSERT INTO sync_account (mailbox, last_sync_at, failures, held_since, held_rows, held_of)
                     VALUES (?1, ?2, 0, ?3, ?4, ?5)
                     ON CONFLICT(mailbox) DO UPDATE SET last_sync_at = ?2, last_error = NULL, failures = 0,
                         next_attempt_at = NULL, held_since = ?3, held_rows = ?4, held_of = ?5",
                    params![
                        mailbox,
                        now,
                        rec.held.map(|h| h.0),
                        rec.held.map(|h| h.1 as i64),
                        rec.held.map(|h| h.2 as i64)
                    ],
                )?,
                // A failed pass changes nothing of the recorded state, a held removal
                // included (it is not "consecutive" evidence either way).
                (Some(e), _) => tx.execute(
                    "INSERT INTO sync_account (mailbox, last_error, failures) VALUES (?1, ?2, 1)
                     ON CONFLICT(mailbox) DO UPDATE SET last_error = ?2, failures = failures + 1",
                    params![mailbox, e],
                )?,
            };
            tx.execute(
                "INSERT INTO sync_log (mailbox, at, ok, summary) VALUES (?1, ?2, ?3, ?4)",
                params![mailbox, now, rec.error.is_none(), rec.summary],
            )?;
            Ok(())
        })
    }

    /// Records when an account in backoff is tried again (unix seconds), for the admin.
    pub fn set_sync_retry(&self, mailbox: &str, at: i64) -> Result<()> {
        self.conn().execute("UPDATE sync_account SET next_attempt_at = ?2 WHERE mailbox = ?1", params![mailbox, at])?;
        Ok(())
    }

    /// Each mail account's sync state (one mailbox, or all), by mailbox number.
    pub fn sync_status(&self, mailbox: Option<&str>) -> Result<Vec<SyncStatus>> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT m.number, COALESCE(m.imap_url, m.pop3_url), a.last_sync_at, a.failures, a.last_error,
                    a.next_attempt_at, a.held_since, a.held_rows, a.held_of
             FROM mailbox m LEFT JOIN sync_account a ON a.mailbox = m.number
             WHERE (m.imap_url IS NOT NULL OR m.pop3_url IS NOT NULL) AND (?1 IS NULL OR m.number = ?1)
             ORDER BY m.number",
        )?;
        let rows = q.query_map([mailbox], |r| {
            Ok(SyncStatus {
                mailbox: r.get(0)?,
                account: r.get(1)?,
                last_sync_at: r.get(2)?,
                failures: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                last_error: r.get(4)?,
                next_attempt_at: r.get(5)?,
                held: match (r.get(6)?, r.get(7)?, r.get(8)?) {
                    (Some(since), Some(rows), Some(of)) => Some((since, rows, of)),
                    _ => None,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` entries of the event log (one mailbox, or all), oldest first.
    pub fn sync_log(&self, mailbox: Option<&str>, limit: usize) -> Result<Vec<SyncLogEntry>> {
        let conn = self.conn();
        let mut q = conn.prepare_cached(
            "SELECT id, mailbox, at, ok, summary FROM sync_log WHERE ?1 IS NULL OR mailbox = ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows = q
            .query_map(params![mailbox, limit as i64], |r| {
                Ok(SyncLogEntry { id: r.get(0)?, mailbox: r.get(1)?, at: r.get(2)?, ok: r.get(3)?, summary: r.get(4)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Removes event-log entries written before `before` (unix seconds); returns how many.
    pub fn prune_sync_log(&self, before: i64) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM sync_log WHERE at < ?1", [before])?)
    }

    /// Changes a message's state as the phone would. Returns the new state, or None if
    /// the row was removed at once (a purge of a message that exists only here).
    pub fn mark(&self, mailbox: &str, id: i64, action: MarkAction) -> Result<Option<State>> {
        let row: Option<(State, bool, bool)> = self
            .conn()
            .query_row(
                "SELECT m.state, m.server_uid IS NOT NULL OR m.server_key IS NOT NULL,
                        EXISTS(SELECT 1 FROM outbox o WHERE o.message = m.id AND o.delivered_at IS NULL)
                 FROM message m WHERE m.mailbox = ?1 AND m.id = ?2",
                params![mailbox, id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((state, on_server, pending)) = row else { bail!("mailbox {mailbox} has no message {id}") };
        let new = action.apply(state);
        if new == State::D && !on_server && !pending {
            // No copy on any server and none on its way: the formal request removes it.
            self.remove_rows(&[id], Commit::Durable, Removal::Purged)?;
            return Ok(None);
        }
        self.conn().execute("UPDATE message SET state = ?2 WHERE id = ?1", params![id, new.as_str()])?;
        Ok(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMailbox;

    fn row(uid: u32) -> RetrievedRow {
        RetrievedRow::sample(uid, MessageKind::Email)
    }

    fn ok(validity: u32, modseq: u64, summary: &str) -> PassRecord<'_> {
        PassRecord {
            error: None,
            complete: true,
            uidvalidity: Some(validity),
            highestmodseq: Some(modseq),
            held: None,
            summary,
        }
    }

    fn failed<'a>(error: &'a str, summary: &'a str) -> PassRecord<'a> {
        PassRecord { error: Some(error), complete: false, uidvalidity: None, highestmodseq: None, held: None, summary }
    }

    fn store_with_mailbox() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        (d, s)
    }

    #[test]
    fn the_delta_store_list_has_the_reported_uids_and_the_rows_changed_here() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        s.add_mailbox(&NewMailbox { number: "200".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let ids = s.store_retrieved("100", &(1..=20).map(row).collect::<Vec<_>>()).unwrap();
        s.store_retrieved("200", &(1..=20).map(row).collect::<Vec<_>>()).unwrap();
        // Row with UID 15 changed by phone: dirty until the next pass agrees on it.
        s.mark("100", ids[14].0, MarkAction::Read).unwrap();
        let uids = |v: Vec<StoreMsg>| v.into_iter().map(|m| m.uid).collect::<Vec<_>>();
        assert_eq!(
            uids(s.sync_rows_delta("100", &[3, 30], &[(5, 7), (19, 25)]).unwrap()),
            vec![3, 5, 6, 7, 15, 19, 20]
        );
        assert_eq!(uids(s.sync_rows_delta("100", &[], &[]).unwrap()), vec![15]);
        assert_eq!(uids(s.sync_rows_delta("200", &[2], &[]).unwrap()), vec![2], "other mailboxes' rows stay out");
    }

    #[test]
    fn a_change_by_phone_during_a_pass_is_not_overwritten() {
        let (_d, s) = store_with_mailbox();
        let ids: Vec<i64> = s.store_retrieved("100", &[row(1), row(2)]).unwrap().iter().map(|r| r.0).collect();
        let state = |id: i64| -> (String, Option<String>) {
            s.conn()
                .query_row("SELECT state, synced_state FROM message WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        };
        // The pass read both rows as U and saw both read (\Seen) in a mail client; before
        // it wrote, the phone marked the first one for delete.
        s.mark("100", ids[0], MarkAction::Delete).unwrap();
        let left = s
            .apply_states(
                &[(ids[0], State::R), (ids[1], State::R)],
                &[(ids[0], State::R), (ids[1], State::R)],
                &[(ids[0], State::U), (ids[1], State::U)],
            )
            .unwrap();
        assert_eq!(left, [ids[0]]);
        assert_eq!(state(ids[0]), ("M".into(), Some("R".into())), "the phone's M stays; the base is the server's R");
        assert_eq!(state(ids[1]), ("R".into(), Some("R".into())));
        let rows = s.sync_rows_delta("100", &[], &[]).unwrap();
        assert_eq!(rows.iter().map(|m| m.uid).collect::<Vec<_>>(), [1], "the next pass merges it");
        let next =
            crate::sync::compare::compare(&rows, &[crate::sync::compare::ServerMsg { uid: 1, state: Some(State::R) }]);
        assert_eq!(next.to_server, [(1, State::M)], "and carries the phone's M");

        // A deliberate downward change during a pass: read by phone (R over base U), the
        // pass puts \Seen on the server (base R); meanwhile the phone marks it unread.
        let id3 = s.store_retrieved("100", &[row(3)]).unwrap()[0].0;
        s.apply_states(&[], &[(id3, State::U)], &[(id3, State::U)]).unwrap();
        s.mark("100", id3, MarkAction::Read).unwrap();
        s.mark("100", id3, MarkAction::Unread).unwrap(); // after the pass read it as R
        s.apply_states(&[], &[(id3, State::R)], &[(id3, State::R)]).unwrap();
        let rows = s.sync_rows_delta("100", &[3], &[]).unwrap();
        let row3: Vec<_> = rows.into_iter().filter(|m| m.uid == 3).collect();
        let next =
            crate::sync::compare::compare(&row3, &[crate::sync::compare::ServerMsg { uid: 3, state: Some(State::R) }]);
        assert_eq!(next.to_server, [(3, State::U)], "the unread by phone is not lost to the pass's \\Seen");
    }

    #[test]
    fn a_message_whose_uid_a_row_already_holds_is_not_stored_twice() {
        let (_d, s) = store_with_mailbox();
        // The outbox's race: a deposit row with this Message-ID got UID 1 recorded by the
        // outbox after the pass had read its store list and decided to retrieve UID 1.
        let first = s.store_retrieved("100", &[row(1)]).unwrap();
        assert_eq!(first, vec![(first[0].0, false)]);
        let again = s.store_retrieved("100", &[row(1), row(2)]).unwrap();
        assert_eq!(again[0], (first[0].0, true), "the row holding UID 1 is that message");
        assert!(!again[1].1);
        // The same for a POP3 key.
        let pop = |k: &str| RetrievedRow { uid: None, server_key: Some(k.into()), ..row(9) };
        let a = s.store_retrieved("100", &[pop("k1")]).unwrap();
        assert_eq!(s.store_retrieved("100", &[pop("k1")]).unwrap(), vec![(a[0].0, true)]);
        let n: i64 = s.conn().query_row("SELECT count(*) FROM message", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn the_event_log_shows_the_newest_passes_and_is_pruned_by_age() {
        let (_d, s) = store_with_mailbox();
        s.add_mailbox(&NewMailbox {
            number: "200".into(),
            pin: "1234".into(),
            imap_url: Some("imap://u:secret@127.0.0.1:1/INBOX".into()),
            ..Default::default()
        })
        .unwrap();
        for i in 0..5 {
            s.record_sync("200", &ok(7, i, &format!("pass {i}"))).unwrap();
        }
        s.record_sync("100", &failed("cannot connect", "failed: cannot connect")).unwrap();
        let log = s.sync_log(Some("200"), 3).unwrap();
        assert_eq!(log.iter().map(|e| e.summary.as_str()).collect::<Vec<_>>(), ["pass 2", "pass 3", "pass 4"]);
        assert_eq!(s.sync_log(None, 10).unwrap().len(), 6);
        assert!(!s.sync_log(Some("100"), 10).unwrap()[0].ok);

        // A failure, its retry time, then a good pass that clears both.
        s.record_sync("200", &failed("login as u refused: NO", "failed")).unwrap();
        s.set_sync_retry("200", 1_900_000_000).unwrap();
        let st = &s.sync_status(Some("200")).unwrap()[0];
        assert_eq!(
            (st.failures, st.last_error.as_deref(), st.next_attempt_at),
            (1, Some("login as u refused: NO"), Some(1_900_000_000))
        );
        assert!(st.last_sync_at.is_some(), "the last good pass is kept through failures");
        s.record_sync("200", &ok(7, 9, "ok again")).unwrap();
        let st = &s.sync_status(Some("200")).unwrap()[0];
        assert_eq!((st.failures, st.last_error.as_deref(), st.next_attempt_at), (0, None, None));
        assert!(s.sync_status(Some("100")).unwrap().is_empty(), "a mailbox without a mail account has no sync state");

        // Pruning by age: entries before the cut go, later ones stay.
        s.conn().execute("UPDATE sync_log SET at = 1000 WHERE summary IN ('pass 0', 'pass 1')", []).unwrap();
        assert_eq!(s.prune_sync_log(2000).unwrap(), 2);
        assert_eq!(s.sync_log(None, 100).unwrap().len(), 6);
        assert_eq!(s.prune_sync_log(2000).unwrap(), 0);
    }

    #[test]
    fn a_pass_that_left_work_keeps_the_starting_point_and_shows_a_held_removal() {
        let (_d, s) = store_with_mailbox();
        s.record_sync("100", &ok(7, 5, "complete")).unwrap();
        let st = s.sync_state("100").unwrap();
        assert_eq!((st.uidvalidity, st.highestmodseq, st.held_since), (Some(7), Some(5), None));
        // A good pass that held a removal: UIDVALIDITY and HIGHESTMODSEQ stay where the
        // last complete pass left them, so the next pass sees the same changes again.
        let held =
            PassRecord { complete: false, highestmodseq: Some(9), held: Some((1000, 20, 20)), ..ok(8, 9, "held") };
        s.record_sync("100", &held).unwrap();
        let st = s.sync_state("100").unwrap();
        assert_eq!((st.uidvalidity, st.highestmodseq, st.held_since), (Some(7), Some(5), Some(1000)));
        s.conn().execute("UPDATE mailbox SET imap_url = 'imap://u:p@h/INBOX' WHERE number = '100'", []).unwrap();
        assert_eq!(s.sync_status(Some("100")).unwrap()[0].held, Some((1000, 20, 20)));
        // A failed pass changes none of it; a complete pass clears the hold.
        s.record_sync("100", &failed("cut", "failed: cut")).unwrap();
        assert_eq!(s.sync_state("100").unwrap().held_since, Some(1000));
        s.record_sync("100", &ok(7, 11, "complete")).unwrap();
        let st = s.sync_state("100").unwrap();
        assert_eq!((st.highestmodseq, st.held_since), (Some(11), None));
        assert_eq!(s.sync_status(Some("100")).unwrap()[0].held, None);
    }

    #[test]
    fn a_reclaim_batch_is_bounded_by_body_bytes() {
        let (_d, s) = store_with_mailbox();
        let big = |uid: u32| RetrievedRow { raw: vec![b'v'; 1_000_000], ..row(uid) };
        let ids: Vec<i64> =
            s.store_retrieved("100", &(1..=30).map(big).collect::<Vec<_>>()).unwrap().iter().map(|r| r.0).collect();
        s.remove_rows(&ids, Commit::Redoable, Removal::GoneFromServer).unwrap();
        // 1 MB bodies: eight fit in one batch's 8 MiB, not a thousand.
        assert_eq!(super::super::db::reclaim_redoable(&mut s.conn(), 1000).unwrap(), 8);
        assert_eq!(s.reclaim_bodies().unwrap(), 22);
        let left = s.conn().query_row("SELECT count(*) FROM message_body", [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_removed_rows_body_is_reclaimed_afterwards() {
        let (_d, s) = store_with_mailbox();
        let ids: Vec<i64> =
            s.store_retrieved("100", &(1..=2500).map(row).collect::<Vec<_>>()).unwrap().iter().map(|r| r.0).collect();
        let count = |sql: &str| s.conn().query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        s.remove_rows(&ids[..2100], Commit::Redoable, Removal::GoneFromServer).unwrap();
        assert_eq!(count("SELECT count(*) FROM message"), 400);
        // The rows are gone at once; their bodies wait in the queue.
        assert_eq!(count("SELECT count(*) FROM message_body"), 2500);
        assert_eq!(count("SELECT count(*) FROM body_garbage"), 2100);
        assert_eq!(s.reclaim_bodies().unwrap(), 2100);
        assert_eq!(count("SELECT count(*) FROM message_body"), 400);
        assert_eq!(count("SELECT count(*) FROM body_garbage"), 0);
        assert_eq!(count("SELECT count(*) FROM message_body WHERE message NOT IN (SELECT id FROM message)"), 0);
        assert_eq!(s.reclaim_bodies().unwrap(), 0);
    }

    /// Pages this connection had to read from the file (SQLite's cache misses so far);
    /// rusqlite has no wrapper for sqlite3_db_status.
    #[allow(unsafe_code)]
    fn cache_misses(s: &Store) -> i32 {
        let conn = s.conn();
        let (mut cur, mut high) = (0, 0);
        // SAFETY: a valid handle, out-pointers to locals; the call only reads counters.
        unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
                &mut cur,
                &mut high,
                0,
            )
        };
        cur
    }

    #[test]
    fn a_long_running_store_keeps_its_rows_in_its_page_cache() {
        let (d, s) = store_with_mailbox();
        let big = |uid: u32| RetrievedRow { raw: vec![b'x'; 3000], ..row(uid) };
        s.store_retrieved("100", &(1..=3000).map(big).collect::<Vec<_>>()).unwrap();
        // Opened afresh: an empty page cache.
        drop(s);
        let s = Store::open(d.path()).unwrap();
        s.start_checkpointer().unwrap();
        let scan = || s.conn().query_row("SELECT sum(length(state)) FROM message", [], |r| r.get::<_, i64>(0)).unwrap();
        // Warmed: the rows are read once, then come from memory.
        s.warm_rows("100").unwrap();
        let before = cache_misses(&s);
        assert_eq!(scan(), 3000);
        assert_eq!(cache_misses(&s), before, "warm_rows read every row page");
        // Rows removed; the maintenance thread reclaims their bodies when writers are
        // quiet, on this connection, so the pages of the other rows stay valid.
        let ids: Vec<i64> = s.sync_rows("100").unwrap().iter().map(|m| m.id).take(1000).collect();
        s.remove_rows(&ids, Commit::Redoable, Removal::GoneFromServer).unwrap();
        let queued = || s.conn().query_row("SELECT count(*) FROM body_garbage", [], |r| r.get::<_, i64>(0)).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while queued() > 0 {
            assert!(std::time::Instant::now() < deadline, "bodies not reclaimed");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let before = cache_misses(&s);
        assert_eq!(scan(), 2000);
        assert_eq!(cache_misses(&s), before, "the reclaim emptied the page cache");
    }
}
