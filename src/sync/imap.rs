//! One synchronization pass against an IMAP mailbox: the I/O side of the agents.
//!
//! Order matters for a pass killed half-way (the server dies, the process stops): the
//! server is changed before the store, so the next pass always sees a state it can
//! converge from — deletions: UID EXPUNGE first, then the rows (if killed in between,
//! the UIDs are gone from the server and the rows go as "gone"); flags: server first,
//! then the store's states and bases (if killed in between, the server already holds
//! the merged state and the unchanged store side yields to it); retrieval: one row per
//! message, linked by Message-ID when it is one of ours, so a repeat never doubles.
//!
//! Evidence: every command's answer is checked ([`crate::mail::imap`]): a refusal or a
//! cut connection fails the pass, never reads as an empty answer. A row is removed as
//! gone only when a completed listing (`UID FETCH 1:* (UID FLAGS)`, `UID SEARCH ALL`)
//! left its UID out or QRESYNC reported it VANISHED; EXISTS is never evidence, and an
//! empty listing against a non-empty store is asked a second way before it counts.
//! Large removals then pass the safety brake ([`super::gone`]).

use super::compare::{compare, Plan, ServerMsg, StoreMsg};
use super::gone::{self, Removals};
use super::model::State;
use super::report::{retrieved_row, SyncReport};
use super::retrieve::classify;
use crate::mail::account::Account;
use crate::mail::imap::{self, Flags, ImapSession, Select};
use crate::store::{AccountSync, Commit, Removal, RetrievedRow, Store};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashSet};

/// A chunk of retrieved messages being stored: per message its row, whether it was
/// linked to an existing one, and its UID with the state its flags expressed.
type StoringChunk = tokio::task::JoinHandle<Result<Vec<((i64, bool), ServerMsg)>>>;

/// Messages fetched and stored per chunk by the retrieve agent.
const RETRIEVE_CHUNK: usize = 1000;

/// What every step of a pass needs.
struct Ctx<'a> {
    store: &'a Store,
    mailbox: &'a str,
    acct: &'a Account,
    removals: &'a Removals,
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

fn state_of(f: &Flags) -> State {
    State::from_flags(f.seen, f.deleted)
}

/// `UID STORE` over `uids`, in sets short enough for one command line each.
async fn store_flags(s: &mut ImapSession, uids: &[u32], query: &str) -> Result<()> {
    for set in uid_sets(uids, MAX_SET_LEN) {
        imap::uid_store(s, &set, query).await?;
    }
    Ok(())
}

/// `UID FETCH set (UID FLAGS)`, optionally `(CHANGEDSINCE m)`, into `out`.
async fn fetch_flags(
    s: &mut ImapSession,
    set: &str,
    changed_since: Option<u64>,
    out: &mut BTreeMap<u32, State>,
) -> Result<()> {
    for f in imap::uid_fetch_flags(s, set, changed_since).await? {
        out.insert(f.uid, state_of(&f));
    }
    Ok(())
}

/// A listing that came back empty while the store holds rows of this mailbox is asked
/// the other way before anything is removed on its word (`UID SEARCH ALL` after an
/// empty `UID FETCH 1:*`, and the reverse): a server whose two answers disagree fails
/// the pass, so nothing changes until it answers consistently.
async fn confirm_empty(s: &mut ImapSession, folder: &str, listed_by_search: bool) -> Result<()> {
    let (other, found) = if listed_by_search {
        ("UID FETCH 1:* (UID FLAGS)", imap::uid_fetch_flags(s, "1:*", None).await?.len())
    } else {
        ("UID SEARCH ALL", imap::uid_search(s, "ALL").await?.len())
    };
    if found > 0 {
        bail!(
            "the server's answers about {folder:?} disagree: one listing found it empty, {other} lists {found} \
             messages; nothing was removed (the next pass asks again)"
        );
    }
    Ok(())
}

/// Runs one pass for `mailbox` against its IMAP account, from the account's recorded
/// state `known`.
///
/// Three ways to learn the server list, cheapest first: QRESYNC (the changes and
/// vanished UIDs since the last complete pass, and only the store rows they or the
/// phone touched), CONDSTORE (the UID list and changed flags), or a full flag fetch.
/// All three end in the same compare agent and the same plan execution.
pub async fn sync_imap(
    store: &Store,
    mailbox: &str,
    acct: &Account,
    known: &AccountSync,
    removals: &Removals,
) -> Result<SyncReport> {
    let mut s = imap::login(acct).await?;
    let cx = Ctx { store, mailbox, acct, removals };
    let report = pass_on(&mut s, &cx, known).await?;
    // Every command of the pass has been answered (each one's tagged OK was read), so
    // the pass does not wait for the LOGOUT: Dovecot closes the mailbox — writing its
    // index changes, 1–4 ms after a pass that changed 1,000 messages — before it
    // answers. A failed pass just drops its connection.
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.logout()).await;
    });
    Ok(report)
}

/// The pass proper on a logged-in session.
async fn pass_on(s: &mut ImapSession, cx: &Ctx<'_>, known: &AccountSync) -> Result<SyncReport> {
    let caps = imap::capabilities(s).await?;
    let has = |c: &str| caps.iter().any(|x| x == c);
    let (condstore, qresync) = (has("CONDSTORE"), has("QRESYNC"));
    let (mailbox, folder) = (cx.mailbox, cx.acct.folder.as_str());
    let mut report = SyncReport { mailbox: mailbox.to_string(), mode: "full", ..Default::default() };

    // QRESYNC: the delta pass.
    if let (true, Some(kv), Some(km)) = (qresync, known.uidvalidity, known.highestmodseq) {
        imap::run(s, "ENABLE", "ENABLE QRESYNC", |_| {}).await?;
        let t0 = std::time::Instant::now();
        let q = imap::select(s, folder, Select::Qresync { validity: kv, modseq: km }).await?;
        let t_select = t0.elapsed();
        let validity = q.validity;
        if validity == kv && q.modseq.is_some() {
            report.mode = "qresync";
            report.uidvalidity = validity;
            report.highestmodseq = q.modseq;
            report.server_messages = q.exists as usize;
            report.flags_fetched = q.changed.len();
            let mut flags: BTreeMap<u32, State> = q.changed.iter().map(|f| (f.uid, state_of(f))).collect();
            let changed: Vec<u32> = flags.keys().copied().collect();
            let (mb, vanished) = (mailbox.to_string(), q.vanished.clone());
            let rows = cx.store.run(move |st| st.sync_rows_delta(&mb, &changed, &vanished)).await?;
            let t_rows = t0.elapsed();
            // VANISHED ranges, sorted and merged, for a binary search per row.
            let vanished = merged_ranges(&q.vanished);
            let is_vanished = |uid: u32| {
                let i = vanished.partition_point(|(_, end)| *end < uid);
                vanished.get(i).is_some_and(|(start, _)| *start <= uid)
            };
            let unknown: Vec<u32> = rows
                .iter()
                .filter(|r| r.synced.is_none() && !flags.contains_key(&r.uid) && !is_vanished(r.uid))
                .map(|r| r.uid)
                .collect();
            for set in uid_sets(&unknown, MAX_SET_LEN) {
                fetch_flags(s, &set, None, &mut flags).await?;
            }
            // The server list of this delta: the rows in question that did not vanish,
            // in their new or agreed state, and every new UID. Only VANISHED removes.
            let mut server: Vec<ServerMsg> = rows
                .iter()
                .filter(|r| !is_vanished(r.uid))
                .map(|r| ServerMsg {
                    uid: r.uid,
                    state: Some(flags.get(&r.uid).copied().or(r.synced).unwrap_or(r.state)),
                })
                .collect();
            let known_uids: HashSet<u32> = rows.iter().map(|r| r.uid).collect();
            server.extend(
                flags
                    .iter()
                    .filter(|(u, _)| !known_uids.contains(u))
                    .map(|(u, st)| ServerMsg { uid: *u, state: Some(*st) }),
            );
            server.sort_by_key(|m| m.uid);
            server.dedup_by_key(|m| m.uid);
            let plan = compare(&rows, &server);
            let t_plan = t0.elapsed();
            execute(s, cx, validity, plan, &mut report).await?;
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
        cx.store.run(move |st| st.reset_server_uids(&mb)).await?;
        report.uidvalidity_reset = true;
        report.uidvalidity = validity;
        report.highestmodseq = q.modseq;
        return full_pass(s, cx, validity, report).await;
    }

    let sel = imap::select(s, folder, if condstore { Select::Condstore } else { Select::Plain }).await?;
    let validity = sel.validity;
    report.uidvalidity = validity;
    report.highestmodseq = sel.modseq;
    if known.uidvalidity.is_some_and(|k| k != validity) {
        tracing::warn!(mailbox, old = known.uidvalidity, new = validity, "UIDVALIDITY changed: full resync");
        let mb = mailbox.to_string();
        cx.store.run(move |st| st.reset_server_uids(&mb)).await?;
        report.uidvalidity_reset = true;
    }
    let incremental = condstore && !report.uidvalidity_reset && sel.modseq.is_some();
    if let (true, Some(since)) = (incremental, known.highestmodseq) {
        // CONDSTORE (RFC 7162): the UIDs present (CONDSTORE alone cannot see expunges),
        // and flags only of what changed since the last complete pass; unchanged
        // messages are in the state both sides agreed on then. Whatever EXISTS said:
        // the listing is the evidence.
        report.mode = "condstore";
        // The store list first, then the server's: a row whose UID the outbox records
        // after an APPEND that the UID list below already missed would look gone from
        // the server (and be removed) if the rows were read after that list.
        let mb = mailbox.to_string();
        let rows = cx.store.run(move |st| st.sync_rows(&mb)).await?;
        let all = imap::uid_search(s, "ALL").await?;
        if all.is_empty() && !rows.is_empty() {
            confirm_empty(s, folder, true).await?;
        }
        let mut flags = BTreeMap::new();
        fetch_flags(s, "1:*", Some(since), &mut flags).await?;
        let present: HashSet<u32> = all.iter().copied().collect();
        let unknown: Vec<u32> = rows
            .iter()
            .filter(|r| r.synced.is_none() && present.contains(&r.uid) && !flags.contains_key(&r.uid))
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
        server.dedup_by_key(|m| m.uid);
        report.server_messages = server.len();
        let plan = compare(&rows, &server);
        execute(s, cx, validity, plan, &mut report).await?;
        return Ok(report);
    }
    full_pass(s, cx, validity, report).await
}

/// The pass without a delta: every UID's flags against every store row.
async fn full_pass(s: &mut ImapSession, cx: &Ctx<'_>, validity: u32, mut report: SyncReport) -> Result<SyncReport> {
    let mb = cx.mailbox.to_string();
    let rows = cx.store.run(move |st| st.sync_rows(&mb)).await?;
    if rows.is_empty() {
        // Nothing here is linked to this mailbox yet (the first pass, or the one after
        // a UIDVALIDITY change): the compare agent could only say "retrieve every UID",
        // so the flags come with the bodies instead of in a listing of their own.
        let linked = retrieve(s, cx, validity, &["1:*".to_string()], None, &mut report).await?;
        report.server_messages = report.retrieved.len() + report.linked.len() + report.missing.len();
        merge_linked(s, cx, linked, &mut report).await?;
        report.flags_fetched = report.retrieved.len() + report.linked.len();
        return Ok(report);
    }
    let mut flags = BTreeMap::new();
    fetch_flags(s, "1:*", None, &mut flags).await?;
    if flags.is_empty() {
        confirm_empty(s, &cx.acct.folder, false).await?;
    }
    report.flags_fetched = flags.len();
    report.server_messages = flags.len();
    let server: Vec<ServerMsg> = flags.iter().map(|(u, st)| ServerMsg { uid: *u, state: Some(*st) }).collect();
    let plan = compare(&rows, &server);
    execute(s, cx, validity, plan, &mut report).await?;
    Ok(report)
}

/// Executes a plan: the server always before the store (see the module docs), the rows
/// gone from the server through the safety brake, then the retrieve agent. A retrieved
/// message linked to one of our own rows (a deposit, by Message-ID) has no agreed state
/// yet: its row and the flags fetched with it are compared at once, so the phone's
/// changes made before the link (read, deleted) reach the server in this pass rather
/// than the next.
async fn execute(s: &mut ImapSession, cx: &Ctx<'_>, validity: u32, plan: Plan, report: &mut SyncReport) -> Result<()> {
    apply(s, cx, &plan, report).await?;
    gone::remove(cx.store, cx.mailbox, cx.removals, plan.gone, report).await?;
    let sets = uid_sets(&plan.retrieve, MAX_SET_LEN);
    let linked = retrieve(s, cx, validity, &sets, Some(&plan.retrieve), report).await?;
    merge_linked(s, cx, linked, report).await
}

/// Compares rows the retrieve agent just linked with the flags fetched with them (see
/// [`execute`]).
async fn merge_linked(
    s: &mut ImapSession,
    cx: &Ctx<'_>,
    mut linked: Vec<ServerMsg>,
    report: &mut SyncReport,
) -> Result<()> {
    if linked.is_empty() {
        return Ok(());
    }
    linked.sort_by_key(|m| m.uid);
    let (mb, uids) = (cx.mailbox.to_string(), linked.iter().map(|m| m.uid).collect::<Vec<_>>());
    let keep: HashSet<u32> = uids.iter().copied().collect();
    // Only these rows: a dirty row left out of `linked` would look gone from the server.
    let rows: Vec<StoreMsg> = cx
        .store
        .run(move |st| st.sync_rows_delta(&mb, &uids, &[]))
        .await?
        .into_iter()
        .filter(|r| keep.contains(&r.uid))
        .collect();
    let plan = compare(&rows, &linked);
    debug_assert!(plan.gone.is_empty() && plan.retrieve.is_empty(), "every linked UID has its row");
    apply(s, cx, &plan, report).await
}

/// The delete agent, flags to the server and states to the store: a plan without its
/// removals of rows gone and its retrievals.
async fn apply(s: &mut ImapSession, cx: &Ctx<'_>, plan: &Plan, report: &mut SyncReport) -> Result<()> {
    // 1. Delete agent: the server first, then the store.
    if !plan.delete.is_empty() {
        let uids: Vec<u32> = plan.delete.iter().map(|d| d.1).collect();
        store_flags(s, &uids, "+FLAGS.SILENT (\\Deleted)").await?;
        for set in uid_sets(&uids, MAX_SET_LEN) {
            imap::uid_expunge(s, &set).await?;
        }
        let ids: Vec<i64> = plan.delete.iter().map(|d| d.0).collect();
        cx.store.run(move |st| st.remove_rows(&ids, Commit::Redoable, Removal::Deleted)).await?;
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
    let left = cx.store.run(move |st| st.apply_states(&to_store, &synced, &read)).await?;
    if !left.is_empty() {
        tracing::debug!(mailbox = cx.mailbox, rows = ?left, "changed by phone during the pass: merged by the next pass");
    }
    report.to_store.extend(plan.to_store.iter().filter(|(id, _)| !left.contains(id)));
    Ok(())
}

/// The retrieve agent's I/O: one streamed `UID FETCH (UID FLAGS BODY.PEEK[])` per set;
/// the messages are classified and stored in chunks of [`RETRIEVE_CHUNK`], each one
/// SQLite transaction (one fsync) on a blocking thread while the next chunk streams in.
/// At most one chunk waits to be stored: memory stays bounded, and when the store is
/// slower than the server TCP flow control holds the server back. A chunk is stored as
/// soon as it is whole (each message in it arrived complete); a cut-off or refused
/// FETCH fails the pass and leaves the rest for the next one. A body asked for that
/// did not come (`expected`: the UIDs asked for; for `1:*`, those the server answered
/// without a body) is reported in `missing`, which keeps the pass from recording its
/// HIGHESTMODSEQ.
async fn retrieve(
    s: &mut ImapSession,
    cx: &Ctx<'_>,
    validity: u32,
    sets: &[String],
    expected: Option<&[u32]>,
    report: &mut SyncReport,
) -> Result<Vec<ServerMsg>> {
    let mut pending: Option<StoringChunk> = None;
    let mut linked_msgs = Vec::new();
    let mut chunk: Vec<(u32, State, Vec<u8>)> = Vec::with_capacity(RETRIEVE_CHUNK);
    let (mut got, mut without_body) = (HashSet::new(), Vec::new());
    let store_chunk = |chunk: Vec<(u32, State, Vec<u8>)>| -> StoringChunk {
        let (st, mb, host) = (cx.store.clone(), cx.mailbox.to_string(), cx.acct.host.clone());
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
        let mut fetch = imap::send(s, "UID FETCH", &format!("UID FETCH {set} (UID FLAGS BODY.PEEK[])")).await?;
        while let Some(item) =
            fetch.next(s, |r| imap::fetched(r).map(|f| (f.uid, f.flags, f.body.map(<[u8]>::to_vec)))).await?
        {
            let Some((Some(uid), flags, body)) = item else { continue };
            let Some(body) = body else {
                without_body.push(uid);
                continue;
            };
            got.insert(uid);
            let (seen, deleted) = flags.unwrap_or((false, false));
            chunk.push((uid, State::from_flags(seen, deleted), body));
            if chunk.len() == RETRIEVE_CHUNK {
                if let Some(h) = pending.take() {
                    collect(h.await??, report);
                }
                pending = Some(store_chunk(std::mem::replace(&mut chunk, Vec::with_capacity(RETRIEVE_CHUNK))));
            }
        }
        tracing::debug!(
            mailbox = cx.mailbox,
            set_len = set.len(),
            fetch_ms = t0.elapsed().as_millis() as u64,
            "fetched a set"
        );
    }
    if let Some(h) = pending.take() {
        collect(h.await??, report);
    }
    if !chunk.is_empty() {
        collect(store_chunk(chunk).await??, report);
    }
    let mut missing: Vec<u32> = match expected {
        Some(uids) => uids.iter().copied().filter(|u| !got.contains(u)).collect(),
        None => without_body.into_iter().filter(|u| !got.contains(u)).collect(),
    };
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        tracing::warn!(
            mailbox = cx.mailbox,
            uids = %uid_set(&missing),
            "the server did not send every message asked for: the next pass asks again"
        );
        report.missing.extend(missing);
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
