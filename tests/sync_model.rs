//! Randomized model-based test of the sync engine against a real Dovecot: random
//! interleavings of phone actions (`messages mark`), mail-client actions (flags,
//! expunge), new mail, and sync passes — some of them cut off mid-way by a proxy — are
//! checked after every completed pass against a small reference model of the rules.
//! Deposits join in too: a voice message whose APPEND reached the server but whose UID
//! was never recorded (the server stopped in between), which a pass must link by
//! Message-ID — never import twice — and merge with what the phone did to it meanwhile.
//! Passes also meet a mail server's errors, at random commands (the fault proxy of
//! tests/common/fault_proxy.rs): tagged NO/BAD, `EXISTS 0`, answers cut off with a clean
//! close or a half-close, answers lost after the server acted. After every such pass no
//! row the server still holds was removed and nothing is stored twice; after the next
//! clean pass the model's rules hold again.
//! A POP3 mailbox gets its own walk against its own (simpler) rules.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Proto};
use common::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum St {
    U,
    R,
    M,
    D,
}

impl St {
    fn parse(s: &str) -> St {
        match s {
            "U" => St::U,
            "R" => St::R,
            "M" => St::M,
            _ => St::D,
        }
    }
    fn of_flags(seen: bool, deleted: bool) -> St {
        if deleted {
            St::M
        } else if seen {
            St::R
        } else {
            St::U
        }
    }
}

/// The reference model: per Message-ID, the phone's view (store), the client's view
/// (server flags), and the last agreed state.
#[derive(Debug, Default, Clone)]
struct Model {
    store: BTreeMap<String, St>,
    server: BTreeMap<String, (u32, bool, bool)>,
    base: BTreeMap<String, St>,
}

impl Model {
    /// The rules: gone from the server → gone here; new on the server → stored as its
    /// flags say; otherwise a side that did not change since the base yields to the one
    /// that did, a true conflict goes to the higher of D > M > R > U, and D deletes both.
    fn sync(&mut self) {
        let ids: Vec<String> = self.store.keys().chain(self.server.keys()).cloned().collect();
        for id in ids {
            match (self.store.get(&id).copied(), self.server.get(&id).copied()) {
                (Some(_), None) => {
                    self.store.remove(&id);
                    self.base.remove(&id);
                }
                (None, Some((_, seen, del))) => {
                    let s = St::of_flags(seen, del);
                    self.store.insert(id.clone(), s);
                    self.base.insert(id.clone(), s);
                }
                (Some(mine), Some((uid, seen, del))) => {
                    let theirs = St::of_flags(seen, del);
                    let merged = match self.base.get(&id).copied() {
                        Some(b) if mine == b => theirs,
                        Some(b) if theirs == b => mine,
                        _ => mine.max(theirs),
                    };
                    if merged == St::D {
                        self.store.remove(&id);
                        self.server.remove(&id);
                        self.base.remove(&id);
                        continue;
                    }
                    self.store.insert(id.clone(), merged);
                    self.base.insert(id.clone(), merged);
                    // How voxbridge writes each state as flags (other bits untouched).
                    let flags = match merged {
                        St::U => (false, false),
                        St::R => (true, false),
                        _ if theirs == St::M => (seen, true),
                        _ => (seen, true),
                    };
                    if merged != theirs {
                        self.server.insert(id.clone(), (uid, flags.0, flags.1));
                    }
                }
                (None, None) => {}
            }
        }
    }
}

/// The phone changes a message's state (a random action through `messages mark`);
/// returns the state the rules give it.
fn mark_by_phone(server: &Server, mailbox: &str, id: &str, cur: St, rng: &mut rand::rngs::StdRng) -> St {
    let action = ["read", "unread", "delete", "undelete", "purge"][rng.random_range(0..5)];
    server.cli_ok(&["messages", "mark", mailbox, id, action]);
    match action {
        "read" => St::R,
        "unread" => St::U,
        "delete" => St::M,
        "undelete" if cur == St::M => St::R,
        "undelete" => cur,
        _ => St::D,
    }
}

/// The store's rows of `mailbox` by Message-ID, checking that none is stored twice.
fn stored(server: &Server, mailbox: &str, step: usize) -> BTreeMap<String, St> {
    let listed = server.messages(mailbox);
    let rows: BTreeMap<String, St> = listed
        .iter()
        .map(|m| (m["message_id"].as_str().unwrap().to_string(), St::parse(m["state"].as_str().unwrap())))
        .collect();
    assert_eq!(listed.len(), rows.len(), "a message stored twice after step {step}: {listed:#?}");
    rows
}

fn check(server: &Server, client: &mut MailClient, uid_to_mid: &BTreeMap<u32, String>, model: &Model, step: usize) {
    let rows = stored(server, "5001", step);
    assert_eq!(rows, model.store, "store differs from the model after step {step}");
    let on_server: BTreeMap<String, St> =
        client.flags().iter().map(|(uid, seen, del)| (uid_to_mid[uid].clone(), St::of_flags(*seen, *del))).collect();
    let expected: BTreeMap<String, St> =
        model.server.iter().map(|(k, (_, s, d))| (k.clone(), St::of_flags(*s, *d))).collect();
    assert_eq!(on_server, expected, "mailbox differs from the model after step {step}");
    // After a pass, both places agree (D never survives a pass).
    assert_eq!(rows, on_server, "store and mailbox disagree after step {step}");
}

/// Arms one random fault on one of `patterns` (a command a pass may send).
fn arm_random_fault(proxy: &FaultProxy, patterns: &[&str], proto: Proto, rng: &mut rand::rngs::StdRng) {
    let pattern = patterns[rng.random_range(0..patterns.len())];
    let lines = rng.random_range(0..4);
    let fault = match (proto, rng.random_range(0..6)) {
        (_, 0) => Fault::No,
        (Proto::Imap, 1) => Fault::Bad,
        (Proto::Imap, 2) => Fault::Exists0,
        (_, 3) => Fault::CutHalfClose(lines),
        (_, 4) => Fault::CutClose(lines),
        _ => Fault::LoseAnswer,
    };
    proxy.arm(pattern, rng.random_range(0..2), fault);
}

/// After a pass that met a fault: every row whose message the server still holds is
/// here (only a D may have gone, with its server copy); nothing is stored twice.
fn nothing_lost(
    before: &BTreeMap<String, St>,
    server_holds: &dyn Fn(&str) -> bool,
    after: &BTreeMap<String, St>,
    what: &str,
) {
    for (mid, st) in before {
        if *st != St::D && server_holds(mid) {
            assert!(after.contains_key(mid), "{what}: {mid} was removed while the server still holds it");
        }
    }
}

const IMAP_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "ENABLE",
    "SELECT",
    "UID FETCH 1:*",
    "UID FETCH",
    "BODY.PEEK",
    "UID SEARCH",
    "UID STORE",
    "UID EXPUNGE",
];

fn run(seed: u64, steps: usize, dovecot_conf: &str, mode: &str) {
    let dv = Dovecot::start_with(dovecot_conf);
    let proxy = FaultProxy::start(dv.imap, Proto::Imap);
    let server = Server::configure("");
    let url = format!("imap://mo:{PASSWORD}@127.0.0.1:{}/INBOX", proxy.port);
    server.cli_ok(&["mailbox", "add", "5001", "--pin", "1234", "--imap", &url]);
    let mut client = MailClient::connect(&dv, "mo", "INBOX");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut uid_to_mid: BTreeMap<u32, String> = BTreeMap::new();
    let mut next = 0;
    let mut row_ids: BTreeMap<String, i64> = BTreeMap::new();
    let (mut cut_passes, mut faulted_passes) = (0, 0);
    // Deposits no completed pass has linked yet: a mail client cannot expunge them here
    // (the outbox, which this test does not run, would append them again).
    let mut unlinked: std::collections::BTreeSet<String> = Default::default();

    for step in 0..steps {
        match rng.random_range(0..13) {
            // A deposit: the row and its outbox entry as the call left them, the message
            // in the mailbox as the outbox's APPEND left it, no UID recorded.
            10 => {
                let mid = format!("<dep{seed}.{next}@voxbridge.invalid>");
                next += 1;
                let db = rusqlite::Connection::open(server.store_dir().join("voxbridge.db")).unwrap();
                db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                db.execute(
                    "INSERT INTO message (mailbox, kind, state, received_at, duration_ms, message_id, subject)
                     VALUES ('5001', 'voice', 'U', 1796000000, 3000, ?1, 'Voice message')",
                    [&mid],
                )
                .unwrap();
                db.execute(
                    "INSERT INTO outbox (message, target, next_attempt_at, created_at)
                     VALUES (last_insert_rowid(), 'imap', 0, 1796000000)",
                    [],
                )
                .unwrap();
                let uid = client.append("INBOX", &mid, "Voice message");
                uid_to_mid.insert(uid, mid.clone());
                model.server.insert(mid.clone(), (uid, false, false));
                model.store.insert(mid.clone(), St::U);
                unlinked.insert(mid);
            }
            // New mail arrives.
            0 | 1 => {
                let mid = format!("<s{seed}.{next}@example.test>");
                next += 1;
                let uid = client.append("INBOX", &mid, "random");
                uid_to_mid.insert(uid, mid.clone());
                model.server.insert(mid, (uid, false, false));
            }
            // The phone changes a state.
            2 | 3 => {
                let Some(mid) = model.store.keys().nth(rng.random_range(0..model.store.len().max(1))).cloned() else {
                    continue;
                };
                let new = mark_by_phone(&server, "5001", &row_ids[&mid].to_string(), model.store[&mid], &mut rng);
                model.store.insert(mid, new);
            }
            // A mail client changes flags, or expunges.
            4..=6 => {
                let Some((mid, (uid, seen, del))) = model
                    .server
                    .iter()
                    .nth(rng.random_range(0..model.server.len().max(1)))
                    .map(|(k, v)| (k.clone(), *v))
                else {
                    continue;
                };
                match rng.random_range(0..5) {
                    0 => {
                        client.store(uid, "+FLAGS (\\Seen)");
                        model.server.insert(mid, (uid, true, del));
                    }
                    1 => {
                        client.store(uid, "-FLAGS (\\Seen)");
                        model.server.insert(mid, (uid, false, del));
                    }
                    2 => {
                        client.store(uid, "+FLAGS (\\Deleted)");
                        model.server.insert(mid, (uid, seen, true));
                    }
                    3 => {
                        client.store(uid, "-FLAGS (\\Deleted)");
                        model.server.insert(mid, (uid, seen, false));
                    }
                    _ if unlinked.contains(&mid) => {}
                    _ => {
                        client.expunge(uid);
                        model.server.remove(&mid);
                    }
                }
            }
            // A pass cut off by the "server" after a few commands, then a full pass.
            7 => {
                proxy.cut_after.store(rng.random_range(1..8), Ordering::SeqCst);
                if !server.cli(&["sync", "5001"]).status.success() {
                    cut_passes += 1;
                }
                proxy.cut_after.store(u64::MAX, Ordering::SeqCst);
                server.cli_ok(&["sync", "5001"]);
                model.sync();
                unlinked.clear();
                check(&server, &mut client, &uid_to_mid, &model, step);
            }
            // A pass that meets a mail server's error, then a clean pass.
            11 | 12 => {
                arm_random_fault(&proxy, IMAP_COMMANDS, Proto::Imap, &mut rng);
                let before = stored(&server, "5001", step);
                let ok = server.cli(&["sync", "5001"]).status.success();
                let fired = proxy.disarm() == 0;
                faulted_passes += usize::from(fired);
                let after = stored(&server, "5001", step);
                let what = format!("seed {seed} step {step} ({:?}, pass ok: {ok})", proxy.fired().last());
                nothing_lost(&before, &|m| model.server.contains_key(m), &after, &what);
                server.cli_ok(&["sync", "5001"]);
                model.sync();
                unlinked.clear();
                check(&server, &mut client, &uid_to_mid, &model, step);
            }
            // A full pass.
            _ => {
                server.cli_ok(&["sync", "5001"]);
                model.sync();
                unlinked.clear();
                check(&server, &mut client, &uid_to_mid, &model, step);
            }
        }
        for m in server.messages("5001") {
            row_ids.insert(m["message_id"].as_str().unwrap().to_string(), m["id"].as_i64().unwrap());
        }
    }
    let last: serde_json::Value = serde_json::from_str(&server.cli_ok(&["sync", "5001", "--json"])).unwrap();
    assert_eq!(last["mode"], mode, "the pass took the intended path");
    model.sync();
    check(&server, &mut client, &uid_to_mid, &model, steps);
    assert!(cut_passes > 0, "seed {seed}: the proxy never cut a pass");
    assert!(faulted_passes > 0, "seed {seed}: no fault ever fired");
}

#[test]
fn random_interleavings_agree_with_the_model() {
    for seed in [1, 2, 3] {
        run(seed, 60, "", "qresync");
    }
}

/// The same against a server without QRESYNC, so the CONDSTORE and full paths are
/// exercised too.
#[test]
fn random_interleavings_agree_with_the_model_without_qresync() {
    let caps = "\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS CONDSTORE\n";
    for seed in [4, 5] {
        run(seed, 60, caps, "condstore");
    }
}

/// The POP3 rules: the server list is UIDL; states live in the store alone; D deletes
/// on the server (DELE) and then here; a message gone from the server goes here; a new
/// one arrives as U.
#[derive(Debug, Default)]
struct Pop3Model {
    store: BTreeMap<String, St>,
    server: std::collections::BTreeSet<String>,
}

impl Pop3Model {
    fn sync(&mut self) {
        let purged: Vec<String> = self.store.iter().filter(|(_, s)| **s == St::D).map(|(m, _)| m.clone()).collect();
        for m in &purged {
            self.store.remove(m);
            self.server.remove(m);
        }
        self.store.retain(|m, _| self.server.contains(m));
        for m in &self.server {
            self.store.entry(m.clone()).or_insert(St::U);
        }
    }
}

/// The same kind of random walk for a POP3 mailbox: new mail, the phone's changes,
/// another client deleting messages, passes (some cut off by the proxy).
#[test]
fn random_interleavings_agree_with_the_model_on_pop3() {
    for seed in [7, 8] {
        let dv = Dovecot::start();
        let proxy = FaultProxy::start(dv.pop3, Proto::Pop3);
        let server = Server::configure("");
        let url = format!("pop3://po:{PASSWORD}@127.0.0.1:{}", proxy.port);
        server.cli_ok(&[
            "mailbox",
            "add",
            "5002",
            "--pin",
            "1234",
            "--pop3",
            &url,
            "--smtp",
            "smtp://127.0.0.1:1",
            "--email",
            "po@example.test",
        ]);
        let mut client = MailClient::connect(&dv, "po", "INBOX");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model = Pop3Model::default();
        let mut uid_of: BTreeMap<String, u32> = BTreeMap::new();
        let (mut cut_passes, mut faulted_passes) = (0, 0);
        for step in 0..50 {
            match rng.random_range(0..10) {
                0 | 1 => {
                    let mid = format!("<p{seed}.{step}@example.test>");
                    uid_of.insert(mid.clone(), client.append("INBOX", &mid, "pop3"));
                    model.server.insert(mid);
                }
                2 | 3 => {
                    let rows = server.messages("5002");
                    if rows.is_empty() {
                        continue;
                    }
                    let row = &rows[rng.random_range(0..rows.len())];
                    let mid = row["message_id"].as_str().unwrap().to_string();
                    let new = mark_by_phone(&server, "5002", &row["id"].to_string(), model.store[&mid], &mut rng);
                    model.store.insert(mid, new);
                }
                4 => {
                    // Another client (here IMAP, for POP3 it is the same maildrop) deletes one.
                    let Some(mid) = model.server.iter().nth(rng.random_range(0..model.server.len().max(1))).cloned()
                    else {
                        continue;
                    };
                    client.expunge(uid_of[&mid]);
                    model.server.remove(&mid);
                }
                8 | 9 => {
                    arm_random_fault(&proxy, &["UIDL", "RETR", "DELE", "QUIT", "USER"], Proto::Pop3, &mut rng);
                    let before = stored(&server, "5002", step);
                    let ok = server.cli(&["sync", "5002"]).status.success();
                    faulted_passes += usize::from(proxy.disarm() == 0);
                    let after = stored(&server, "5002", step);
                    let what = format!("seed {seed} step {step} ({:?}, pass ok: {ok})", proxy.fired().last());
                    nothing_lost(&before, &|m| model.server.contains(m), &after, &what);
                    server.cli_ok(&["sync", "5002"]);
                    model.sync();
                    assert_eq!(stored(&server, "5002", step), model.store, "{what}: store differs from the model");
                }
                n => {
                    if n == 5 {
                        proxy.cut_after.store(rng.random_range(1..6), Ordering::SeqCst);
                        if !server.cli(&["sync", "5002"]).status.success() {
                            cut_passes += 1;
                        }
                        proxy.cut_after.store(u64::MAX, Ordering::SeqCst);
                    }
                    server.cli_ok(&["sync", "5002"]);
                    model.sync();
                    let rows = stored(&server, "5002", step);
                    assert_eq!(rows, model.store, "seed {seed} step {step}: store differs from the model");
                    let on_server: std::collections::BTreeSet<String> = client
                        .flags()
                        .iter()
                        .map(|(uid, _, _)| uid_of.iter().find(|(_, u)| *u == uid).unwrap().0.clone())
                        .collect();
                    assert_eq!(on_server, model.server, "seed {seed} step {step}: maildrop differs from the model");
                }
            }
        }
        assert!(cut_passes > 0, "seed {seed}: the proxy never cut a pass");
        assert!(faulted_passes > 0, "seed {seed}: no fault ever fired");
    }
}
