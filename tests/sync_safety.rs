//! A mail server's error never deletes a message: one test per fault that used to (an
//! IMAP command refused, `EXISTS 0`, a listing cut off, a body fetch refused, an
//! APPEND's answer lost), the safety brake on mass removals, the trash, and the same
//! for POP3. Each runs a real Dovecot behind the fault proxy (tests/common/fault_proxy.rs)
//! with a mailbox of 20 messages: 5 voice messages of ours with their recordings and 15
//! e-mails.

mod common;
use common::fault_proxy::{Fault, FaultProxy, Proto};
use common::*;
use std::collections::BTreeMap;

/// Dovecot without QRESYNC (CONDSTORE passes) or without either (full passes).
const CONDSTORE_ONLY: &str =
    "\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS CONDSTORE\n";
const PLAIN: &str = "\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS\n";
const MB: &str = "5001";

struct Rig {
    dv: Dovecot,
    proxy: FaultProxy,
    server: Server,
    client: MailClient,
    /// UID of each message in the mailbox, by Message-ID.
    uids: BTreeMap<String, u32>,
}

impl Rig {
    fn imap(caps: &str, config: &str) -> Rig {
        let dv = Dovecot::start_with(caps);
        let proxy = FaultProxy::start(dv.imap, Proto::Imap);
        let server = Server::configure(config);
        let url = format!("imap://sub:{PASSWORD}@127.0.0.1:{}/INBOX", proxy.port);
        server.cli_ok(&["mailbox", "add", MB, "--pin", "1234", "--imap", &url]);
        let client = MailClient::connect(&dv, "sub", "INBOX");
        Rig { dv, proxy, server, client, uids: BTreeMap::new() }
    }

    fn pop3(config: &str) -> Rig {
        let dv = Dovecot::start();
        let proxy = FaultProxy::start(dv.pop3, Proto::Pop3);
        let server = Server::configure(config);
        let url = format!("pop3://sub:{PASSWORD}@127.0.0.1:{}", proxy.port);
        let smtp = ["--smtp", "smtp://127.0.0.1:1", "--email", "sub@example.test"];
        server.cli_ok(&[&["mailbox", "add", MB, "--pin", "1234", "--pop3", &url][..], &smtp[..]].concat());
        let client = MailClient::connect(&dv, "sub", "INBOX");
        Rig { dv, proxy, server, client, uids: BTreeMap::new() }
    }

    /// 5 voice messages as deposits leave them (row, recording, the copy in the mailbox,
    /// its UID not yet recorded) and 15 e-mails, then a clean pass: 20 rows.
    fn seed(&mut self) {
        let db = rusqlite::Connection::open(self.server.store_dir().join("voxbridge.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let dir = self.server.store_dir().join("recordings").join(MB);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..5 {
            let mid = format!("<dep{i}@voxbridge.invalid>");
            let rel = format!("recordings/{MB}/dep{i}.wav");
            std::fs::write(self.server.store_dir().join(&rel), format!("RIFF recording {i}")).unwrap();
            db.execute(
                "INSERT INTO message (mailbox, kind, state, caller, received_at, duration_ms, media_path, media_bytes,
                                      message_id, subject)
                 VALUES (?1, 'voice', 'U', '2001', 1796000000, 3000, ?2, 16, ?3, 'Voice message')",
                rusqlite::params![MB, rel, mid],
            )
            .unwrap();
            let uid = self.client.append("INBOX", &mid, "Voice message");
            self.uids.insert(mid, uid);
        }
        for i in 0..15 {
            self.add_mail(&format!("<mail{i}@example.test>"));
        }
        let r = self.sync_json();
        assert_eq!(r["linked"].as_array().unwrap().len(), 5, "{r}");
        assert_eq!(self.rows().len(), 20);
        assert_eq!(self.recordings(), 5);
    }

    fn add_mail(&mut self, mid: &str) {
        let uid = self.client.append("INBOX", mid, "mail");
        self.uids.insert(mid.to_string(), uid);
    }

    /// The store's rows: row id by Message-ID.
    fn rows(&self) -> BTreeMap<String, i64> {
        self.server
            .messages(MB)
            .iter()
            .map(|m| (m["message_id"].as_str().unwrap().to_string(), m["id"].as_i64().unwrap()))
            .collect()
    }

    /// Rows whose recording is on disk.
    fn recordings(&self) -> usize {
        self.server
            .messages(MB)
            .iter()
            .filter_map(|m| m["media_path"].as_str().map(String::from))
            .filter(|p| self.server.store_dir().join(p).is_file())
            .count()
    }

    fn sync(&self, extra: &[&str]) -> std::process::Output {
        self.server.cli(&[&["sync", MB, "--json"][..], extra].concat())
    }

    fn sync_json(&self) -> serde_json::Value {
        let o = self.sync(&[]);
        assert!(o.status.success(), "sync failed: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// A pass with `fault` armed on `pattern` fails, removes nothing and keeps every
    /// recording; the next clean pass finds the same rows (nothing re-imported).
    fn fails_and_keeps_everything(&self, pattern: &str, fault: Fault) {
        let before = self.rows();
        self.proxy.arm(pattern, 0, fault);
        let o = self.sync(&[]);
        assert_eq!(self.proxy.disarm(), 0, "the fault on {pattern:?} never fired: {:?}", self.proxy.commands());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{fault:?} on {pattern:?}: the pass reported success: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(self.rows(), before, "{fault:?} on {pattern:?} removed rows ({err})");
        assert_eq!(self.recordings(), 5, "{fault:?} on {pattern:?} lost recordings");
        let r = self.sync_json();
        assert!(r["gone"].as_array().unwrap().is_empty(), "after {fault:?}: {r}");
        assert_eq!(self.rows(), before, "after {fault:?}, the clean pass changed the rows");
    }

    fn sync_log(&self) -> String {
        self.server.cli_ok(&["sync-log", MB])
    }

    fn trash(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.server.cli_ok(&["messages", "restore", MB, "--json"])).unwrap()
    }
}

/// Whether `voxbridge sync-log` shows the account as needing confirmation (the account
/// line, not the log entries of earlier passes).
fn needs_confirmation(log: &str) -> bool {
    log.lines().any(|l| l.starts_with("mailbox ") && l.contains("NEEDS CONFIRMATION"))
}

/// Table row 1: a tagged NO/BAD to the full pass's `UID FETCH 1:* (UID FLAGS)` used to
/// read as an empty mailbox ("gone 20").
#[test]
fn a_refused_flag_listing_removes_nothing() {
    let mut rig = Rig::imap(PLAIN, "");
    rig.seed();
    assert_eq!(rig.sync_json()["mode"], "full");
    rig.fails_and_keeps_everything("UID FETCH 1:* (UID FLAGS)", Fault::No);
    rig.fails_and_keeps_everything("UID FETCH 1:* (UID FLAGS)", Fault::Bad);
}

/// Table row 2: the same for the CONDSTORE pass's `UID SEARCH ALL`.
#[test]
fn a_refused_uid_search_removes_nothing() {
    let mut rig = Rig::imap(CONDSTORE_ONLY, "");
    rig.seed();
    assert_eq!(rig.sync_json()["mode"], "condstore");
    rig.fails_and_keeps_everything("UID SEARCH ALL", Fault::No);
    rig.fails_and_keeps_everything("UID SEARCH ALL", Fault::Bad);
}

/// Table row 3: `* 0 EXISTS` with UIDVALIDITY unchanged used to skip the listing and
/// remove every row (full and CONDSTORE passes). EXISTS is no evidence: the listing is.
#[test]
fn exists_zero_removes_nothing() {
    for (caps, mode) in [(PLAIN, "full"), (CONDSTORE_ONLY, "condstore")] {
        let mut rig = Rig::imap(caps, "");
        rig.seed();
        let before = rig.rows();
        rig.proxy.arm("SELECT", 0, Fault::Exists0);
        let r = rig.sync_json();
        assert_eq!(rig.proxy.disarm(), 0);
        assert_eq!(r["mode"], mode);
        assert!(r["gone"].as_array().unwrap().is_empty(), "{mode}: {r}");
        assert_eq!(rig.rows(), before, "{mode}");
        assert_eq!(rig.recordings(), 5);
    }
}

/// Table row 4: a flag listing cut at a line boundary, the connection half-closed (a
/// relay whose server died) or closed, used to leave only the rows listed so far.
#[test]
fn a_flag_listing_cut_off_removes_nothing() {
    let mut rig = Rig::imap(PLAIN, "");
    rig.seed();
    rig.fails_and_keeps_everything("UID FETCH 1:* (UID FLAGS)", Fault::CutHalfClose(7));
    rig.fails_and_keeps_everything("UID FETCH 1:* (UID FLAGS)", Fault::CutClose(7));
    rig.fails_and_keeps_everything("UID FETCH 1:* (UID FLAGS)", Fault::LoseAnswer);
}

/// Table row 5: a refused body fetch of new mail in a QRESYNC pass used to record the
/// new HIGHESTMODSEQ, so the mails were never retrieved.
#[test]
fn a_refused_body_fetch_is_retrieved_by_the_next_pass() {
    let mut rig = Rig::imap("", "");
    rig.seed();
    assert_eq!(rig.sync_json()["mode"], "qresync");
    for i in 0..3 {
        rig.add_mail(&format!("<new{i}@example.test>"));
    }
    rig.proxy.arm("BODY.PEEK", 0, Fault::No);
    let o = rig.sync(&[]);
    assert_eq!(rig.proxy.disarm(), 0);
    assert!(!o.status.success(), "the pass hid the refused fetch: {}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("injected fault"), "the server's words are in the error");
    assert_eq!(rig.rows().len(), 20);
    let r = rig.sync_json();
    assert_eq!(r["mode"], "qresync");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 3, "{r}");
    let rows = rig.rows();
    assert!((0..3).all(|i| rows.contains_key(&format!("<new{i}@example.test>"))));
    // And the same when the fetch is cut off after one of the three.
    for i in 3..6 {
        rig.add_mail(&format!("<new{i}@example.test>"));
    }
    rig.proxy.arm("BODY.PEEK", 0, Fault::CutHalfClose(1));
    assert!(!rig.sync(&[]).status.success());
    rig.sync_json();
    let rows = rig.rows();
    assert_eq!(rows.len(), 26);
    assert!((3..6).all(|i| rows.contains_key(&format!("<new{i}@example.test>"))));
}

/// A body fetch the server answers OK without one of the messages asked for (a message
/// skipped silently): the pass reports it missing and does not record its
/// HIGHESTMODSEQ, so the next QRESYNC pass asks for it again.
#[test]
fn a_message_the_server_skipped_is_asked_for_again() {
    let mut rig = Rig::imap("", "");
    rig.seed();
    for i in 0..3 {
        rig.add_mail(&format!("<skip{i}@example.test>"));
    }
    rig.proxy.arm("BODY.PEEK", 0, Fault::Omit(1));
    let r = rig.sync_json();
    assert_eq!(rig.proxy.disarm(), 0);
    assert_eq!(r["mode"], "qresync");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["missing"], serde_json::json!([rig.uids["<skip1@example.test>"]]), "{r}");
    let r = rig.sync_json();
    assert_eq!(r["mode"], "qresync");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 1, "{r}");
    assert!(rig.rows().contains_key("<skip1@example.test>"));
    assert_eq!(rig.rows().len(), 23);
    assert_eq!(rig.sync_json()["retrieved"].as_array().unwrap().len(), 0, "and then nothing more");
}

/// Table row 6: an APPEND whose answer was lost, then a retry whose Message-ID search is
/// refused, used to append a second copy. A refused search is "unknown": the delivery
/// waits for the next attempt.
#[test]
fn a_lost_append_answer_and_a_refused_search_deliver_once() {
    let dv = Dovecot::start();
    let proxy = FaultProxy::start(dv.imap, Proto::Imap);
    let url = format!("imap://sub:{PASSWORD}@127.0.0.1:{}/INBOX", proxy.port);
    let acct = voxbridge::mail::account::Account::parse(&url, &[voxbridge::mail::account::Scheme::Imap]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mid = "<vb.lost@example.test>";
    let mail = format!("Subject: voice\r\nMessage-ID: {mid}\r\n\r\nrecording\r\n").into_bytes();
    let deliver = |retry: bool| rt.block_on(voxbridge::mail::deliver::imap_append(&acct, mid, &mail, retry));

    proxy.arm("APPEND", 0, Fault::LoseAnswer);
    assert!(deliver(false).is_err(), "the answer was lost");
    proxy.arm("UID SEARCH", 0, Fault::No);
    let e = deliver(true).expect_err("a refused search must not be taken for 'not there'");
    assert!(format!("{e:#}").contains("injected fault"), "{e:#}");
    proxy.arm("UID SEARCH", 0, Fault::Bad);
    assert!(deliver(true).is_err());
    assert_eq!(proxy.disarm(), 0);
    let (_, uid) = deliver(true).unwrap();
    let copies: Vec<u32> = imap_messages(&dv, "sub")
        .into_iter()
        .filter(|(_, body)| String::from_utf8_lossy(body).contains(mid))
        .map(|(u, _)| u)
        .collect();
    assert_eq!(copies, vec![uid], "exactly one copy, the first");
    assert!(!proxy.commands().iter().skip_while(|c| !c.starts_with("APPEND")).skip(1).any(|c| c.starts_with("APPEND")));
}

/// Two copies of one of our messages already in the mailbox (left by an earlier
/// retry): the next attempt keeps the first and removes the other.
#[test]
fn a_delivery_that_finds_two_copies_keeps_the_first() {
    let dv = Dovecot::start();
    let mut client = MailClient::connect(&dv, "sub", "INBOX");
    let mid = "<vb.twice@example.test>";
    let first = client.append("INBOX", mid, "voice");
    client.append("INBOX", mid, "voice");
    let acct = voxbridge::mail::account::Account::parse(&dv.imap_url("sub"), &[voxbridge::mail::account::Scheme::Imap])
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_, uid) =
        rt.block_on(voxbridge::mail::deliver::imap_append(&acct, mid, b"Subject: x\r\n\r\nx\r\n", true)).unwrap();
    assert_eq!(uid, first);
    let uids: Vec<u32> = client.flags().iter().map(|f| f.0).collect();
    assert_eq!(uids, vec![first]);
}

/// The safety brake: a mailbox emptied on the server removes nothing until confirmed;
/// then the voice messages wait in the trash and come back with their recordings.
/// A subscriber deleting one voice mail in a mail client is carried at once.
#[test]
fn the_brake_holds_an_emptied_mailbox_until_confirmed_and_the_trash_restores() {
    let mut rig = Rig::imap("", "");
    rig.seed();

    // One voice mail deleted in a mail client: removed here at once, kept in the trash.
    let dep0 = "<dep0@voxbridge.invalid>";
    rig.client.expunge(rig.uids[dep0]);
    let r = rig.sync_json();
    assert_eq!(r["gone"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["held"].is_null());
    assert_eq!((rig.rows().len(), rig.recordings()), (19, 4));
    let trash = rig.trash();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0]["message_id"], dep0);
    assert_eq!(trash[0]["reason"], "gone from the mail server");
    assert!(rig.server.store_dir().join(format!("trash/recordings/{MB}/dep0.wav")).is_file());

    // The mailbox emptied on the server (for real): held, twice.
    let uids: Vec<u32> = rig.uids.iter().filter(|(m, _)| *m != dep0).map(|(_, u)| *u).collect();
    for u in uids {
        rig.client.expunge(u);
    }
    for _ in 0..2 {
        let r = rig.sync_json();
        assert!(r["gone"].as_array().unwrap().is_empty(), "{r}");
        assert_eq!(r["held"]["rows"], 19);
        assert_eq!(r["held"]["of"], 19);
        assert_eq!((rig.rows().len(), rig.recordings()), (19, 4));
    }
    let text = rig.server.cli_ok(&["sync", MB]);
    assert!(
        text.contains("NOTHING REMOVED") && text.contains(&format!("voxbridge sync {MB} --confirm-removals")),
        "{text}"
    );
    let log = rig.sync_log();
    assert!(needs_confirmation(&log) && log.contains("--confirm-removals"), "{log}");

    // Confirmed by the admin: applied; the voice messages are in the trash.
    let o = rig.sync(&["--confirm-removals"]);
    assert!(o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["gone"].as_array().unwrap().len(), 19, "{r}");
    assert_eq!(r["removals_confirmed"], true);
    assert!(rig.rows().is_empty());
    assert!(!needs_confirmation(&rig.sync_log()));
    let trash = rig.trash();
    assert_eq!(trash.len(), 5, "the five voice messages, not the e-mails: {trash:#?}");

    // Restored: the row and its recording come back, and the delivery to the mailbox is
    // queued again (the outbox looks for the Message-ID first).
    let id = trash.iter().find(|e| e["message_id"] == "<dep3@voxbridge.invalid>").unwrap()["id"].as_i64().unwrap();
    let out = rig.server.cli_ok(&["messages", "restore", MB, &id.to_string()]);
    assert!(out.contains("restored as message"), "{out}");
    let msgs = rig.server.messages(MB);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["message_id"], "<dep3@voxbridge.invalid>");
    assert!(msgs[0]["delivery"].as_str().unwrap().starts_with("pending (imap"), "{}", msgs[0]);
    assert_eq!(rig.recordings(), 1);
    assert_eq!(
        std::fs::read_to_string(rig.server.store_dir().join(msgs[0]["media_path"].as_str().unwrap())).unwrap(),
        "RIFF recording 3"
    );
    assert_eq!(rig.trash().len(), 4);
    let again = rig.server.cli(&["messages", "restore", MB, &id.to_string()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("no message"));
    // The rest at once.
    rig.server.cli_ok(&["messages", "restore", MB, "--all"]);
    assert_eq!((rig.rows().len(), rig.recordings(), rig.trash().len()), (5, 5, 0));
    drop(rig.dv);
}

/// A held removal that a pass finds again `confirm_removals_after_secs` later is applied
/// without the admin.
#[test]
fn a_held_removal_still_found_later_is_applied() {
    let mut rig = Rig::imap("", "[sync]\nconfirm_removals_after_secs = 1\n");
    rig.seed();
    let mails: Vec<u32> = rig.uids.iter().filter(|(m, _)| m.starts_with("<mail")).map(|(_, u)| *u).take(12).collect();
    for u in mails {
        rig.client.expunge(u);
    }
    let r = rig.sync_json();
    assert_eq!(r["held"]["rows"], 12, "12 of 20 is more than half and more than 10: {r}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = rig.sync_json();
    assert_eq!(r["gone"].as_array().unwrap().len(), 12, "{r}");
    assert_eq!(r["removals_confirmed"], true);
    assert_eq!((rig.rows().len(), rig.recordings()), (8, 5));
    assert!(rig.trash().is_empty(), "e-mails are not kept: the mail server has their copy");
}

/// POP3: an `-ERR` to UIDL or a UIDL listing cut off is an error, never an empty
/// maildrop.
#[test]
fn pop3_a_refused_or_cut_listing_removes_nothing() {
    let mut rig = Rig::pop3("");
    rig.seed();
    rig.fails_and_keeps_everything("UIDL", Fault::No);
    rig.fails_and_keeps_everything("UIDL", Fault::CutHalfClose(6));
    rig.fails_and_keeps_everything("UIDL", Fault::CutClose(6));
    // A new message whose RETR is cut off: not stored half, fetched by the next pass.
    rig.add_mail("<late@example.test>");
    rig.proxy.arm("RETR", 0, Fault::CutHalfClose(3));
    assert!(!rig.sync(&[]).status.success());
    assert_eq!(rig.rows().len(), 20);
    rig.sync_json();
    assert!(rig.rows().contains_key("<late@example.test>"));
    assert_eq!(rig.rows().len(), 21);
}

/// POP3 under the brake: a maildrop emptied by another client is held, then confirmed.
#[test]
fn pop3_the_brake_holds_an_emptied_maildrop() {
    let mut rig = Rig::pop3("");
    rig.seed();
    for u in rig.uids.values().copied().collect::<Vec<_>>() {
        rig.client.expunge(u);
    }
    let r = rig.sync_json();
    assert_eq!(r["held"]["rows"], 20, "{r}");
    assert_eq!((rig.rows().len(), rig.recordings()), (20, 5));
    let o = rig.sync(&["--confirm-removals"]);
    assert!(o.status.success());
    assert!(rig.rows().is_empty());
    assert_eq!(rig.trash().len(), 5);
}
