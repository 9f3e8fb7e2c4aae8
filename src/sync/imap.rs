//! One synchronization pass against an IMAP mailbox: the I/O side of the agents.
//!
//! Order matters for a pass killed half-way (the server dies, the process stops): the
//! server is changed before the store, so the next pass always sees a state it can
//! converge from — deletions: UID EXPUNGE first, then the rows (if killed in between,
//! the UIDs are gone from the server and the rows go as "gone"); flags: server first,
//! then the store's states and bases (if killed in between, the server already holds
//! the merged state and the unchanged store side yields to it); retrieval: one row per
//! message, linked by Message-ID when it is one of ours, so a repeat never doubles.

use super::compare::{compare, ServerMsg};
use super::model::State;
use super::retrieve::{classify, Kind};
use crate::mail::account::Account;
use crate::mail::deliver::{imap_login, ImapSession, STEP_TIMEOUT};
use crate::store::{Commit, RetrievedRow, Store};
use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use serde::Serialize;

/// What one pass did, for `voxbridge sync`, the log and the event table.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct SyncReport {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uidvalidity_reset: bool,
    /// "full" (every UID's flags fetched) or "condstore" (only changes since the last pass).
    pub mode: &'static str,
    /// How many messages' flags the server sent: the cost of the pass.
    pub flags_fetched: usize,
    /// The mailbox's HIGHESTMODSEQ at the start of this pass (CONDSTORE servers).
    pub highestmodseq: Option<u64>,
    /// Wall time of the pass itself (login to the last answer and store write; the
    /// LOGOUT is not waited for).
    pub elapsed_ms: f64,
    pub server_messages: usize,
    /// New messages stored (row ids).
    pub retrieved: Vec<i64>,
    /// Server messages recognized as our own deposits by Message-ID (row ids).
    pub linked: Vec<i64>,
    /// State changes carried to the store: (row, new state).
    pub to_store: Vec<(i64, State)>,
    /// State changes carried to the server: (UID, new state).
    pub to_server: Vec<(u32, State)>,
    /// Deleted on the server, then in the store: (row, UID).
    pub deleted: Vec<(i64, u32)>,
    /// Rows removed because the server no longer has them.
    pub gone: Vec<i64>,
}

impl SyncReport {
    pub fn summary(&self) -> String {
        format!(
            "{} on server ({}, {} flags fetched); retrieved {}, linked {}, to store {}, to server {}, deleted {}, gone {}{}",
            self.server_messages,
            self.mode,
            self.flags_fetched,
            self.retrieved.len(),
            self.linked.len(),
            self.to_store.len(),
            self.to_server.len(),
            self.deleted.len(),
            self.gone.len(),
            if self.uidvalidity_reset { ", UIDVALIDITY changed: full resync" } else { "" }
        )
    }
}

/// A chunk of retrieved messages being stored: per message its row, whether it was
/// linked to an existing one, and its UID with the state its flags expressed.
type StoringChunk = tokio::task::JoinHandle<Result<Vec<((i64, bool), ServerMsg)>>>;

/// Messages fetched and stored per chunk by the retrieve agent.
const RETRIEVE_CHUNK: usize = 1000;

/// What the store keeps of a retrieved message.
pub fn retrieved_row(
    info: super::retrieve::Retrieved,
    state: State,
    uid: Option<(u32, u32)>,
    server_key: Option<String>,
    raw: Vec<u8>,
) -> RetrievedRow {
    RetrievedRow {
        kind: info.kind.as_str(),
        state,
        duration_ms: if info.kind == Kind::Voice { info.duration_ms } else { None },
        message_id: info.message_id,
        caller: info.from,
        caller_name: info.from_name,
        subject: info.subject,
        received_at: info.date.unwrap_or_else(crate::store::now_secs),
        uid,
        server_key,
        raw,
    }
}

/// Formats UIDs as an IMAP sequence set with ranges: 1:3,7,9:10.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        out.push(if v[i] == start { start.to_string() } else { format!("{start}:{}", v[i]) });
        i += 1;
    }
    out.join(",")
}

/// Inclusive UID ranges sorted and merged (overlapping or adjacent ranges joined).
fn merged_ranges(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = ranges.iter().map(|(a, b)| (*a.min(b), *a.max(b))).collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Longest UID set put into one command: Dovecot refuses command lines over 64 KiB
/// (`imap_max_line_length`), and a sparse set of many UIDs gets there.
const MAX_SET_LEN: usize = 8000;

/// [`uid_set`] split into sets of at most `max_len` characters (one command each).
pub fn uid_sets(uids: &[u32], max_len: usize) -> Vec<String> {
    let mut sets: Vec<String> = Vec::new();
    let mut cur = String::new();
    for part in uid_set(uids).split(',').filter(|p| !p.is_empty()) {
        if !cur.is_empty() && cur.len() + 1 + part.len() > max_len {
            sets.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(part);
    }
    if !cur.is_empty() {
        sets.push(cur);
    }
    sets
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f).await.map_err(|_| anyhow!("{what}: timed out"))?
}

/// Proves that every command before it completed. async-imap ends a response stream
/// (SELECT, FETCH, STORE, EXPUNGE) quietly when the connection drops before the tagged
/// OK, which would make a cut-off FETCH look like a short mailbox and its missing
/// messages look "gone". IMAP answers in order, so the OK of a CAPABILITY sent after it
/// (a lost connection is an error here) shows that the stream before it was whole.
/// CAPABILITY rather than NOOP: a NOOP makes Dovecot re-synchronize the mailbox with its
/// Maildir (a directory scan: ~25 ms per NOOP at 100,000 messages), CAPABILITY does not
/// touch the mailbox.
async fn barrier(s: &mut ImapSession, after: &str) -> Result<()> {
    timed("CAPABILITY", async {
        s.capabilities().await.map(|_| ()).with_context(|| format!("connection lost during {after}"))
    })
    .await
}

async fn store_flags(s: &mut ImapSession, uids: &[u32], query: &str) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    for set in uid_sets(uids, MAX_SET_LEN) {
        timed("UID STORE", async {
            let stream = s.uid_store(&set, query).await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok(())
        })
        .await?;
    }
    barrier(s, "UID STORE").await
}

fn state_of(f: &async_imap::types::Fetch) -> State {
    let (mut seen, mut deleted) = (false, false);
    for flag in f.flags() {
        match flag {
            async_imap::types::Flag::Seen => seen = true,
            async_imap::types::Flag::Deleted => deleted = true,
            _ => {}
        }
    }
    State::from_flags(seen, deleted)
}

/// `UID FETCH set (UID FLAGS)`, optionally `(CHANGEDSINCE m)`, into `out`.
async fn fetch_flags(
    s: &mut ImapSession,
    set: &str,
    changed_since: Option<u64>,
    out: &mut std::collections::BTreeMap<u32, State>,
) -> Result<()> {
    let query = match changed_since {
        Some(m) => format!("(UID FLAGS) (CHANGEDSINCE {m})"),
        None => "(UID FLAGS)".to_string(),
    };
    let fetched: Vec<_> =
        timed("UID FETCH FLAGS", async { Ok(s.uid_fetch(set, &query).await?.try_collect().await?) }).await?;
    barrier(s, "UID FETCH FLAGS").await?;
    for f in &fetched {
        if let Some(uid) = f.uid {
            out.insert(uid, state_of(f));
        }
    }
    Ok(())
}

/// What a `SELECT … (QRESYNC (uidvalidity modseq))` reported (RFC 7162 §3.2.5).
#[derive(Debug, Default)]
struct QresyncSelect {
    validity: Option<u32>,
    modseq: Option<u64>,
    exists: u32,
    vanished: Vec<(u32, u32)>,
    changed: std::collections::BTreeMap<u32, State>,
}

/// SELECT with QRESYNC: one round trip returns what changed (FETCH) and what was
/// expunged (VANISHED (EARLIER)) since `modseq`. async-imap has no QRESYNC SELECT, so
/// the answer is read here; a lost connection before the tagged OK is an error.
async fn select_qresync(s: &mut ImapSession, folder: &str, validity: u32, modseq: u64) -> Result<QresyncSelect> {
    use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};
    let tag = s
        .run_command(format!("SELECT {} (QRESYNC ({validity} {modseq}))", crate::mail::deliver::quoted(folder)))
        .await?;
    let mut q = QresyncSelect::default();
    loop {
        let r = s.read_response().await?.ok_or_else(|| anyhow!("connection lost during SELECT (QRESYNC)"))?;
        match r.parsed() {
            Response::Done { tag: t, status, outcome } if *t == tag => {
                if *status != Status::Ok {
                    anyhow::bail!(
                        "SELECT {folder:?} failed: {}",
                        outcome.information.as_deref().unwrap_or("no reason")
                    );
                }
                return Ok(q);
            }
            Response::Data { status: Status::Ok, outcome } => match &outcome.code {
                Some(ResponseCode::UidValidity(v)) => q.validity = Some(*v),
                Some(ResponseCode::HighestModSeq(m)) => q.modseq = Some(*m),
                _ => {}
            },
            Response::MailboxData(MailboxDatum::Exists(n)) => q.exists = *n,
            Response::Vanished { uids, .. } => q.vanished.extend(uids.iter().map(|r| (*r.start(), *r.end()))),
            Response::Fetch(_, attrs) => {
                let (mut uid, mut seen, mut deleted) = (None, false, false);
                for a in attrs {
                    match a {
                        AttributeValue::Uid(u) => uid = Some(*u),
                        AttributeValue::Flags(fl) => {
                            seen = fl.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
                            deleted = fl.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"));
                        }
                        _ => {}
                    }
                }
                if let Some(uid) = uid {
                    q.changed.insert(uid, State::from_flags(seen, deleted));
                }
            }
            _ => {}
        }
    }
}

/// Runs one pass for `mailbox` against its IMAP account.
///
/// Three ways to learn the server list, cheapest first: QRESYNC (the changes and
/// vanished UIDs since the last complete pass, and only the store rows they or the
/// phone touched), CONDSTORE (the UID list and changed flags), or a full flag fetch.
/// All three end in the same compare agent and the same plan execution.
pub async fn sync_imap(store: &Store, mailbox: &str, acct: &Account) -> Result<SyncReport> {
    let mut s = imap_login(acct).await?;
    let report = pass_on(&mut s, store, mailbox, acct).await?;
    // Every command of the pass has been answered (the barriers saw to that), so the
    // pass does not wait for the LOGOUT: Dovecot closes the mailbox — writing its index
    // changes, 1–4 ms after a pass that changed 1,000 messages — before it answers.
    // A failed pass just drops its connection.
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.logout()).await;
    });
    Ok(report)
}

/// The pass proper on a logged-in session.
async fn pass_on(s: &mut ImapSession, store: &Store, mailbox: &str, acct: &Account) -> Result<SyncReport> {
    let caps = timed("CAPABILITY", async { Ok(s.capabilities().await?) }).await?;
    let (condstore, qresync) = (caps.has_str("CONDSTORE"), caps.has_str("QRESYNC"));
    let mb = mailbox.to_string();
    let (known_validity, known_modseq) = store.run(move |st| st.sync_state(&mb)).await?;
    let mut report = SyncReport { mailbox: mailbox.to_string(), mode: "full", ..Default::default() };

    // QRESYNC: the delta pass.
    if let (true, Some(kv), Some(km)) = (qresync, known_validity, known_modseq) {
        timed("ENABLE", async { Ok(s.run_command_and_check_ok("ENABLE QRESYNC").await?) }).await?;
        let t0 = std::time::Instant::now();
        let q = timed("SELECT", select_qresync(s, &acct.folder, kv, km)).await?;
        let t_select = t0.elapsed();
        let validity = q.validity.ok_or_else(|| anyhow!("SELECT {:?} did not report UIDVALIDITY", acct.folder))?;
        if validity == kv && q.modseq.is_some() {
            report.mode = "qresync";
            report.uidvalidity = validity;
            report.highestmodseq = q.modseq;
            report.server_messages = q.exists as usize;
            report.flags_fetched = q.changed.len();
            let changed: Vec<u32> = q.changed.keys().copied().collect();
            let (mb, vanished) = (mailbox.to_string(), q.vanished.clone());
            let rows = store.run(move |st| st.sync_rows_delta(&mb, &changed, &vanished)).await?;
            let t_rows = t0.elapsed();
            // VANISHED ranges, sorted and merged, for a binary search per row.
            let vanished = merged_ranges(&q.vanished);
            let is_vanished = |uid: u32| {
                let i = vanished.partition_point(|(_, end)| *end < uid);
                vanished.get(i).is_some_and(|(start, _)| *start <= uid)
            };
            let mut flags = q.changed.clone();
            let unknown: Vec<u32> = rows
                .iter()
                .filter(|r| r.synced.is_none() && !flags.contains_key(&r.uid) && !is_vanished(r.uid))
                .map(|r| r.uid)
                .collect();
            for set in uid_sets(&unknown, MAX_SET_LEN) {
                fetch_flags(s, &set, None, &mut flags).await?;
            }
            // The server list of this delta: the rows in question that still exist, in
            // their new or agreed state, and every new UID.
            let mut server: Vec<ServerMsg> = rows
                .iter()
                .filter(|r| !is_vanished(r.uid))
                .map(|r| ServerMsg {
                    uid: r.uid,
                    state: Some(flags.get(&r.uid).copied().or(r.synced).unwrap_or(r.state)),
                })
                .collect();
            let known: std::collections::HashSet<u32> = rows.iter().map(|r| r.uid).collect();
            server.extend(
                flags.iter().filter(|(u, _)| !known.contains(u)).map(|(u, st)| ServerMsg { uid: *u, state: Some(*st) }),
            );
            server.sort_by_key(|m| m.uid);
            server.dedup_by_key(|m| m.uid);
            let plan = compare(&rows, &server);
            let t_plan = t0.elapsed();
            execute(s, store, mailbox, acct, validity, plan, &mut report).await?;
            tracing::debug!(
                mailbox,
                select_ms = t_select.as_secs_f64() * 1e3,
                rows_ms = (t_rows - t_select).as_secs_f64() * 1e3,
                plan_ms = (t_plan - t_rows).as_secs_f64() * 1e3,
                execute_ms = (t0.elapsed() - t_plan).as_secs_f64() * 1e3,
                "QRESYNC pass phases"
            );
            return Ok(report);
        }
        tracing::warn!(mailbox, old = kv, new = validity, "UIDVALIDITY changed: full resync");
        let mb = mailbox.to_string();
        store.run(move |st| st.reset_server_uids(&mb)).await?;
        report.uidvalidity_reset = true;
        report.uidvalidity = validity;
        report.highestmodseq = q.modseq;
        return full_pass(s, store, mailbox, acct, validity, q.exists, report).await;
    }

    let mbox = timed("SELECT", async {
        let r = if condstore { s.select_condstore(&acct.folder).await } else { s.select(&acct.folder).await };
        r.with_context(|| format!("cannot select {:?}", acct.folder))
    })
    .await?;
    // UIDVALIDITY is mandatory in a SELECT answer (RFC 3501); without it the SELECT was
    // cut off and nothing it reported can be trusted.
    let Some(validity) = mbox.uid_validity else {
        anyhow::bail!("SELECT {:?} did not complete (connection lost?)", acct.folder)
    };
    report.uidvalidity = validity;
    report.highestmodseq = mbox.highest_modseq;
    if known_validity.is_some_and(|k| k != validity) {
        tracing::warn!(mailbox, old = known_validity, new = validity, "UIDVALIDITY changed: full resync");
        let mb = mailbox.to_string();
        store.run(move |st| st.reset_server_uids(&mb)).await?;
        report.uidvalidity_reset = true;
    }
    let mut flags: std::collections::BTreeMap<u32, State> = std::collections::BTreeMap::new();
    let incremental = condstore && !report.uidvalidity_reset && mbox.highest_modseq.is_some();
    if mbox.exists > 0 {
        if let (true, Some(since)) = (incremental, known_modseq) {
            // CONDSTORE (RFC 7162): the UIDs present (CONDSTORE alone cannot see
            // expunges), and flags only of what changed since the last complete pass;
            // unchanged messages are in the state both sides agreed on then.
            report.mode = "condstore";
            // The store list first, then the server's: a row whose UID the outbox records
            // after an APPEND that the UID list below already missed would look gone
            // from the server (and be removed) if the rows were read after that list.
            let mb = mailbox.to_string();
            let rows = store.run(move |st| st.sync_rows(&mb)).await?;
            let all = timed("UID SEARCH", async { Ok(s.uid_search("ALL").await?) }).await?;
            barrier(s, "UID SEARCH").await?;
            fetch_flags(s, "1:*", Some(since), &mut flags).await?;
            let unknown: Vec<u32> = rows
                .iter()
                .filter(|r| r.synced.is_none() && all.contains(&r.uid) && !flags.contains_key(&r.uid))
                .map(|r| r.uid)
                .collect();
            for set in uid_sets(&unknown, MAX_SET_LEN) {
                fetch_flags(s, &set, None, &mut flags).await?;
            }
            report.flags_fetched = flags.len();
            let agreed: std::collections::HashMap<u32, State> =
                rows.iter().map(|r| (r.uid, r.synced.unwrap_or(r.state))).collect();
            let mut server: Vec<ServerMsg> = all
                .into_iter()
                .map(|uid| ServerMsg {
                    uid,
                    state: Some(flags.get(&uid).or(agreed.get(&uid)).copied().unwrap_or(State::U)),
                })
                .collect();
            server.sort_by_key(|m| m.uid);
            report.server_messages = server.len();
            let plan = compare(&rows, &server);
            execute(s, store, mailbox, acct, validity, plan, &mut report).await?;
            return Ok(report);
        }
    }
    full_pass(s, store, mailbox, acct, validity, mbox.exists, report).await
}

/// The pass without a delta: every UID's flags against every store row.
async fn full_pass(
    s: &mut ImapSession,
    store: &Store,
    mailbox: &str,
    acct: &Account,
    validity: u32,
    exists: u32,
    mut report: SyncReport,
) -> Result<SyncReport> {
    let mb = mailbox.to_string();
    let rows = store.run(move |st| st.sync_rows(&mb)).await?;
    if rows.is_empty() {
        // Nothing here is linked to this mailbox yet (the first pass, or the one after
        // a UIDVALIDITY change): the compare agent could only say "retrieve every UID",
        // so the flags come with the bodies instead of in a listing of their own.
        report.server_messages = exists as usize;
        if exists > 0 {
            let linked = retrieve(s, store, mailbox, acct, validity, &["1:*".to_string()], &mut report).await?;
            merge_linked(s, store, mailbox, linked, &mut report).await?;
        }
        report.flags_fetched = report.retrieved.len() + report.linked.len();
        return Ok(report);
    }
    let mut flags = std::collections::BTreeMap::new();
    if exists > 0 {
        fetch_flags(s, "1:*", None, &mut flags).await?;
    }
    report.flags_fetched = flags.len();
    report.server_messages = flags.len();
    let server: Vec<ServerMsg> = flags.iter().map(|(u, st)| ServerMsg { uid: *u, state: Some(*st) }).collect();
    let plan = compare(&rows, &server);
    execute(s, store, mailbox, acct, validity, plan, &mut report).await?;
    Ok(report)
}

/// Executes a plan: the server always before the store (see the module docs), then
/// the retrieve agent. A retrieved message linked to one of our own rows (a deposit, by
/// Message-ID) has no agreed state yet: its row and the flags fetched with it are
/// compared at once, so the phone's changes made before the link (read, deleted)
/// reach the server in this pass rather than the next.
async fn execute(
    s: &mut ImapSession,
    store: &Store,
    mailbox: &str,
    acct: &Account,
    validity: u32,
    plan: super::compare::Plan,
    report: &mut SyncReport,
) -> Result<()> {
    apply(s, store, mailbox, &plan, report).await?;
    let linked = retrieve(s, store, mailbox, acct, validity, &uid_sets(&plan.retrieve, MAX_SET_LEN), report).await?;
    merge_linked(s, store, mailbox, linked, report).await
}

/// Compares rows the retrieve agent just linked with the flags fetched with them (see
/// [`execute`]).
async fn merge_linked(
    s: &mut ImapSession,
    store: &Store,
    mailbox: &str,
    mut linked: Vec<ServerMsg>,
    report: &mut SyncReport,
) -> Result<()> {
    if linked.is_empty() {
        return Ok(());
    }
    linked.sort_by_key(|m| m.uid);
    let (mb, uids) = (mailbox.to_string(), linked.iter().map(|m| m.uid).collect::<Vec<_>>());
    let keep: std::collections::HashSet<u32> = uids.iter().copied().collect();
    // Only these rows: a dirty row left out of `linked` would look gone from the server.
    let rows: Vec<_> = store
        .run(move |st| st.sync_rows_delta(&mb, &uids, &[]))
        .await?
        .into_iter()
        .filter(|r| keep.contains(&r.uid))
        .collect();
    apply(s, store, mailbox, &compare(&rows, &linked), report).await
}

/// The store and server sides of a plan, retrieval aside.
async fn apply(
    s: &mut ImapSession,
    store: &Store,
    mailbox: &str,
    plan: &super::compare::Plan,
    report: &mut SyncReport,
) -> Result<()> {
    // 1. Delete agent: the server first, then the store.
    if !plan.delete.is_empty() {
        let uids: Vec<u32> = plan.delete.iter().map(|d| d.1).collect();
        store_flags(s, &uids, "+FLAGS.SILENT (\\Deleted)").await?;
        let set = uid_set(&uids);
        timed("UID EXPUNGE", async {
            let stream = s.uid_expunge(&set).await?;
            let _: Vec<_> = stream.try_collect().await?;
            Ok(())
        })
        .await?;
        barrier(s, "UID EXPUNGE").await?;
        let ids: Vec<i64> = plan.delete.iter().map(|d| d.0).collect();
        store.run(move |st| st.remove_rows(&ids, Commit::Redoable)).await?;
        report.deleted.extend_from_slice(&plan.delete);
    }

    // 2. Flags to the server, grouped by target state (other flags are left alone).
    let by = |want: State| plan.to_server.iter().filter(|(_, st)| *st == want).map(|(u, _)| *u).collect::<Vec<_>>();
    let (unread, read, marked) = (by(State::U), by(State::R), by(State::M));
    store_flags(s, &unread, "-FLAGS.SILENT (\\Seen \\Deleted)").await?;
    store_flags(s, &read, "+FLAGS.SILENT (\\Seen)").await?;
    store_flags(s, &read, "-FLAGS.SILENT (\\Deleted)").await?;
    store_flags(s, &marked, "+FLAGS.SILENT (\\Deleted)").await?;
    report.to_server.extend_from_slice(&plan.to_server);

    // 3. States to the store, with the agreed bases.
    let (to_store, synced, read) = (plan.to_store.clone(), plan.synced.clone(), plan.read.clone());
    let left = store.run(move |st| st.apply_states(&to_store, &synced, &read)).await?;
    if !left.is_empty() {
        tracing::debug!(mailbox, rows = ?left, "changed by phone during the pass: merged by the next pass");
    }
    report.to_store.extend(plan.to_store.iter().filter(|(id, _)| !left.contains(id)));

    // 4. Rows whose message the server no longer has.
    let gone = plan.gone.clone();
    store.run(move |st| st.remove_rows(&gone, Commit::Redoable)).await?;
    report.gone.extend_from_slice(&plan.gone);
    Ok(())
}

/// The retrieve agent's I/O: one streamed `UID FETCH (UID FLAGS BODY.PEEK[])` per set;
/// the messages are classified and stored in chunks of [`RETRIEVE_CHUNK`], each one
/// SQLite transaction (one fsync) on a blocking thread while the next chunk streams in.
/// At most one chunk waits to be stored: memory stays bounded, and when the store is
/// slower than the server TCP flow control holds the server back. A chunk is stored as
/// soon as it is whole (each message in it arrived complete); a cut-off FETCH only
/// leaves the rest for the next pass, and the barrier reports it as this pass's error.
async fn retrieve(
    s: &mut ImapSession,
    store: &Store,
    mailbox: &str,
    acct: &Account,
    validity: u32,
    sets: &[String],
    report: &mut SyncReport,
) -> Result<Vec<ServerMsg>> {
    let mut pending: Option<StoringChunk> = None;
    let mut linked_msgs = Vec::new();
    let mut chunk: Vec<(u32, State, Vec<u8>)> = Vec::with_capacity(RETRIEVE_CHUNK);
    let store_chunk = |chunk: Vec<(u32, State, Vec<u8>)>| -> StoringChunk {
        let (st, mb, host) = (store.clone(), mailbox.to_string(), acct.host.clone());
        tokio::task::spawn_blocking(move || {
            let server: Vec<ServerMsg> =
                chunk.iter().map(|(uid, state, _)| ServerMsg { uid: *uid, state: Some(*state) }).collect();
            let batch: Vec<RetrievedRow> = chunk
                .into_iter()
                .map(|(uid, state, body)| {
                    let info = classify(&body, &format!("<imap.{validity}.{uid}@{host}>"));
                    retrieved_row(info, state, Some((uid, validity)), None, body)
                })
                .collect();
            Ok(st.store_retrieved(&mb, &batch)?.into_iter().zip(server).collect())
        })
    };
    let mut collect = |stored: Vec<((i64, bool), ServerMsg)>, report: &mut SyncReport| {
        for ((id, linked), msg) in stored {
            if linked {
                report.linked.push(id);
                linked_msgs.push(msg);
            } else {
                report.retrieved.push(id);
            }
        }
    };
    for set in sets {
        let t0 = std::time::Instant::now();
        {
            let stream =
                timed("UID FETCH BODY", async { Ok(s.uid_fetch(set, "(UID FLAGS BODY.PEEK[])").await?) }).await?;
            let mut stream = std::pin::pin!(stream);
            while let Some(f) = timed("UID FETCH BODY", async { Ok(stream.try_next().await?) }).await? {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    chunk.push((uid, state_of(&f), body.to_vec()));
                }
                if chunk.len() == RETRIEVE_CHUNK {
                    if let Some(h) = pending.take() {
                        collect(h.await??, report);
                    }
                    pending = Some(store_chunk(std::mem::replace(&mut chunk, Vec::with_capacity(RETRIEVE_CHUNK))));
                }
            }
        }
        barrier(s, "UID FETCH BODY").await?;
        tracing::debug!(mailbox, set_len = set.len(), fetch_ms = t0.elapsed().as_millis() as u64, "fetched a set");
    }
    if let Some(h) = pending.take() {
        collect(h.await??, report);
    }
    if !chunk.is_empty() {
        collect(store_chunk(chunk).await??, report);
    }
    Ok(linked_msgs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(super::uid_set(&[3, 1, 2, 7, 9, 10, 10]), "1:3,7,9:10");
        assert_eq!(super::uid_set(&[5]), "5");
        assert_eq!(super::uid_set(&[]), "");
    }

    #[test]
    fn vanished_ranges_merge() {
        assert_eq!(
            super::merged_ranges(&[(9, 12), (1, 1), (2, 3), (11, 20), (30, 25)]),
            vec![(1, 3), (9, 20), (25, 30)]
        );
        assert!(super::merged_ranges(&[]).is_empty());
    }

    #[test]
    fn uid_sets_stay_under_the_line_limit() {
        let sparse: Vec<u32> = (1..=20_000).map(|i| i * 2).collect();
        let sets = super::uid_sets(&sparse, 100);
        assert!(sets.len() > 1);
        assert!(sets.iter().all(|s| s.len() <= 100 && !s.starts_with(',') && !s.ends_with(',')));
        let back: Vec<u32> = sets.iter().flat_map(|s| s.split(',')).map(|u| u.parse().unwrap()).collect();
        assert_eq!(back, sparse);
        assert_eq!(super::uid_sets(&[1, 2, 3, 9], 100), vec!["1:3,9".to_string()]);
        assert!(super::uid_sets(&[], 100).is_empty());
    }
}
