//! The sync engine against a real Dovecot: every change made at one access point (the
//! phone, via `voxbridge messages mark`; a mail client, via IMAP) shows at the other.

mod common;
use common::*;

fn sync(server: &Server, number: &str) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["sync", number, "--json"])).unwrap()
}

fn states(server: &Server, number: &str) -> Vec<(String, Option<i64>)> {
    server
        .messages(number)
        .iter()
        .map(|m| (m["state"].as_str().unwrap().to_string(), m["server_uid"].as_i64()))
        .collect()
}

#[test]
fn mail_client_changes_reach_the_store() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4001", "--pin", "1234", "--imap", &dv.imap_url("fay")]);
    let mut client = MailClient::connect(&dv, "fay", "INBOX");

    // New mail → retrieved as U, classified as e-mail.
    let uid = client.append("INBOX", "<m1@example.test>", "Lunch");
    let r = sync(&server, "4001");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 1);
    let m = &server.messages("4001")[0];
    assert_eq!(
        (m["kind"].as_str(), m["state"].as_str(), m["server_uid"].as_i64()),
        (Some("email"), Some("U"), Some(uid as i64))
    );
    assert_eq!(m["subject"], "Lunch");
    assert_eq!(m["caller"], "sender@example.test");
    // Nothing changed: a pass changes nothing.
    let r = sync(&server, "4001");
    assert!(r["retrieved"].as_array().unwrap().is_empty() && r["to_store"].as_array().unwrap().is_empty());

    // Read in the client → R.
    client.store(uid, "+FLAGS (\\Seen)");
    sync(&server, "4001");
    assert_eq!(states(&server, "4001"), [("R".into(), Some(uid as i64))]);
    // Marked unread again in the client → U (a deliberate downward change).
    client.store(uid, "-FLAGS (\\Seen)");
    sync(&server, "4001");
    assert_eq!(states(&server, "4001")[0].0, "U");
    // \Deleted in the client → M; undeleted → back.
    client.store(uid, "+FLAGS (\\Deleted)");
    sync(&server, "4001");
    assert_eq!(states(&server, "4001")[0].0, "M");
    client.store(uid, "-FLAGS (\\Deleted)");
    sync(&server, "4001");
    assert_eq!(states(&server, "4001")[0].0, "U");
    // Expunged in the client → the row goes (Fig. 9A).
    client.expunge(uid);
    let r = sync(&server, "4001");
    assert_eq!(r["gone"].as_array().unwrap().len(), 1);
    assert!(server.messages("4001").is_empty());
}

#[test]
fn phone_changes_reach_the_mail_server() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4002", "--pin", "1234", "--imap", &dv.imap_url("gus")]);
    let mut client = MailClient::connect(&dv, "gus", "INBOX");
    let u1 = client.append("INBOX", "<a@example.test>", "one");
    let u2 = client.append("INBOX", "<b@example.test>", "two");
    sync(&server, "4002");
    let ids: Vec<String> = server.messages("4002").iter().map(|m| m["id"].to_string()).collect();

    // Listened to by phone → \Seen on the server.
    server.cli_ok(&["messages", "mark", "4002", &ids[0], "read"]);
    let r = sync(&server, "4002");
    assert_eq!(r["to_server"], serde_json::json!([[u1, "R"]]));
    assert_eq!(client.flags(), [(u1, true, false), (u2, false, false)]);
    // Marked unread by phone after that sync → \Seen removed.
    server.cli_ok(&["messages", "mark", "4002", &ids[0], "unread"]);
    sync(&server, "4002");
    assert_eq!(client.flags()[0], (u1, false, false));
    // Deleted by phone (M) → \Deleted; undeleted → cleared.
    server.cli_ok(&["messages", "mark", "4002", &ids[1], "delete"]);
    sync(&server, "4002");
    assert_eq!(client.flags()[1], (u2, false, true));
    server.cli_ok(&["messages", "mark", "4002", &ids[1], "undelete"]);
    sync(&server, "4002");
    assert_eq!(client.flags()[1], (u2, true, false), "undelete leaves it read");
    // Purged (D) → deleted on the server first, then the row.
    server.cli_ok(&["messages", "mark", "4002", &ids[1], "purge"]);
    let r = sync(&server, "4002");
    assert_eq!(r["deleted"], serde_json::json!([[ids[1].parse::<i64>().unwrap(), u2]]));
    assert_eq!(client.flags(), [(u1, false, false)]);
    assert_eq!(server.messages("4002").len(), 1);
}

#[test]
fn conflicting_changes_resolve_by_precedence() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4003", "--pin", "1234", "--imap", &dv.imap_url("hal")]);
    let mut client = MailClient::connect(&dv, "hal", "INBOX");
    let uid = client.append("INBOX", "<c@example.test>", "x");
    sync(&server, "4003");
    let id = server.messages("4003")[0]["id"].to_string();
    // Both sides change before the next pass: phone deletes (M), client reads (R).
    server.cli_ok(&["messages", "mark", "4003", &id, "delete"]);
    client.store(uid, "+FLAGS (\\Seen)");
    sync(&server, "4003");
    assert_eq!(states(&server, "4003")[0].0, "M", "M > R");
    assert!(client.flags()[0].2, "and the server follows");
}

#[test]
fn own_deposits_are_linked_not_imported_and_uidvalidity_change_resyncs_without_duplicates() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    let url = format!("imap://ivy:{PASSWORD}@127.0.0.1:{}/Voicemail", dv.imap);
    server.cli_ok(&["mailbox", "add", "4004", "--pin", "1234", "--imap", &url]);
    let mut client = MailClient::connect(&dv, "ivy", "Voicemail");
    // A deposit: the store row exists (state U), its copy is on the server but the
    // store has not learned its UID yet (e.g. the outbox was interrupted).
    let store = voxbridge::store::Store::open(&server.store_dir()).unwrap();
    std::fs::create_dir_all(server.store_dir().join("recordings")).unwrap();
    voxbridge::media::wav::write_durable(&server.store_dir().join("recordings/x.wav"), &[0i16; 8000]).unwrap();
    let id = store
        .insert_voice_message(&voxbridge::store::NewVoiceMessage {
            mailbox: "4004".into(),
            caller: Some("5551234".into()),
            caller_name: None,
            received_at: 1_795_000_000,
            duration_ms: 1000,
            media_path: "recordings/x.wav".into(),
            media_bytes: 16044,
            message_id: "<vb.dep@example.test>".into(),
            subject: "Voice message from 5551234 (0:01)".into(),
        })
        .unwrap();
    let item = store.outbox_due(i64::MAX, 1).unwrap().remove(0);
    let raw = voxbridge::mail::outbox::compose(&store, &item, "example.test").unwrap();
    let uid = client.append_raw("Voicemail", &raw);
    client.append("Voicemail", "<other@example.test>", "plain mail");

    let r = sync(&server, "4004");
    assert_eq!(r["linked"], serde_json::json!([id]), "our deposit is recognized by Message-ID");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 1, "only the other mail is new");
    let msgs = server.messages("4004");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["server_uid"].as_i64(), Some(uid as i64));

    // The folder is recreated (new UIDVALIDITY) and refilled with the same messages.
    client.delete_folder("Voicemail");
    client.append_raw("Voicemail", &raw);
    client.append("Voicemail", "<other@example.test>", "plain mail");
    let r = sync(&server, "4004");
    assert_eq!(r["uidvalidity_reset"], true);
    assert_eq!(r["linked"].as_array().unwrap().len(), 2, "both re-linked by Message-ID");
    assert!(r["retrieved"].as_array().unwrap().is_empty(), "nothing imported twice");
    assert_eq!(server.messages("4004").len(), 2);

    // Two copies of one message on the server (a mail client copied it) are two rows, and
    // the next pass fetches nothing (before, both copies shared one row whose UID flipped
    // at every pass and whose body was fetched again each time).
    let copy = client.append("Voicemail", "<other@example.test>", "plain mail");
    let r = sync(&server, "4004");
    assert_eq!((r["retrieved"].as_array().unwrap().len(), r["linked"].as_array().unwrap().len()), (1, 0));
    let r = sync(&server, "4004");
    assert!(r["retrieved"].as_array().unwrap().is_empty() && r["linked"].as_array().unwrap().is_empty(), "{r}");
    let uids: Vec<i64> = server.messages("4004").iter().filter_map(|m| m["server_uid"].as_i64()).collect();
    assert_eq!(uids.len(), 3);
    assert!(uids.contains(&(copy as i64)));
}

#[test]
fn concurrent_passes_on_one_account_do_not_double_and_a_down_server_is_reported() {
    let mut dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4005", "--pin", "1234", "--imap", &dv.imap_url("jo")]);
    let mut client = MailClient::connect(&dv, "jo", "INBOX");
    for i in 0..20 {
        client.append("INBOX", &format!("<n{i}@example.test>"), &format!("mail {i}"));
    }
    let cfg = server.config.clone();
    let passes: Vec<_> = (0..3)
        .map(|_| {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                std::process::Command::new(bin()).args(["sync", "4005", "--config"]).arg(&cfg).output().unwrap()
            })
        })
        .collect();
    for p in passes {
        let o = p.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(server.messages("4005").len(), 20, "three simultaneous passes, each message once");

    dv.stop();
    let o = server.cli(&["sync", "4005"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot connect"), "{err}");
    // Changes made meanwhile are kept and carried once the server is back.
    let id = server.messages("4005")[0]["id"].to_string();
    server.cli_ok(&["messages", "mark", "4005", &id, "read"]);
    dv.restart();
    sync(&server, "4005");
    assert!(client_flags_after_restart(&dv, "jo").iter().any(|(_, seen, _)| *seen));
}

fn client_flags_after_restart(dv: &Dovecot, user: &str) -> Vec<(u32, bool, bool)> {
    MailClient::connect(dv, user, "INBOX").flags()
}

#[test]
fn the_server_polls_and_syncs_after_a_deposit_and_backs_off_when_the_server_is_down() {
    let mut dv = Dovecot::start();
    let mut server = Server::configure("[sync]\npoll_secs = 1.0\nbackoff_initial_secs = 0.5\nbackoff_max_secs = 1.0\n");
    server.cli_ok(&["mailbox", "add", "4006", "--pin", "1234", "--imap", &dv.imap_url("kim")]);
    server.cli_ok(&["mailbox", "add", "4007", "--pin", "1234", "--imap", &dv.imap_url("lea")]);
    server.run();
    let mut client = MailClient::connect(&dv, "kim", "INBOX");
    // New mail appears in the store by polling alone.
    let uid = client.append("INBOX", "<p1@example.test>", "polled");
    wait_until(std::time::Duration::from_secs(10), "the poll to retrieve the mail", || {
        server.messages("4006").len() == 1
    });
    // Read in the mail client → R in the store, without any command.
    client.store(uid, "+FLAGS (\\Seen)");
    wait_until(std::time::Duration::from_secs(10), "the poll to carry \\Seen", || {
        server.messages("4006")[0]["state"] == "R"
    });
    // A mail server that is down: the failure and backoff are logged with the reason.
    dv.stop();
    wait_until(std::time::Duration::from_secs(15), "a logged backoff", || {
        let log = server.log();
        log.contains("sync pass failed") && log.contains("cannot connect") && log.contains("mail account in backoff")
    });
    dv.restart();
    let mut client = MailClient::connect(&dv, "lea", "INBOX");
    client.append("INBOX", "<p2@example.test>", "after restart");
    wait_until(std::time::Duration::from_secs(15), "recovery after the backoff", || server.messages("4007").len() == 1);
    assert!(server.stop());
}

#[test]
fn a_refused_login_puts_only_that_account_in_backoff_and_sync_log_shows_why() {
    let dv = Dovecot::start();
    // A long backoff: while one account waits, the other must still be polled every second.
    let mut server =
        Server::configure("[sync]\npoll_secs = 1.0\nbackoff_initial_secs = 60.0\nbackoff_max_secs = 60.0\n");
    server.cli_ok(&["mailbox", "add", "4010", "--pin", "1234", "--imap", &dv.imap_url("ron")]);
    let refused = dv.imap_url("sam").replacen(":pass@", ":not-the-password@", 1);
    assert_ne!(refused, dv.imap_url("sam"));
    server.cli_ok(&["mailbox", "add", "4011", "--pin", "1234", "--imap", &refused]);
    server.run();
    wait_until(std::time::Duration::from_secs(10), "the refused login logged with backoff", || {
        let log = server.log();
        log.contains("login as sam refused: NO [AUTHENTICATIONFAILED]") && log.contains("mail account in backoff")
    });
    let mut client = MailClient::connect(&dv, "ron", "INBOX");
    for i in 0..3 {
        client.append("INBOX", &format!("<r{i}@example.test>"), "while the other account waits");
        wait_until(std::time::Duration::from_secs(5), "the healthy account polled", || {
            server.messages("4010").len() == i + 1
        });
    }
    // The admin's view: the failing account, the server's words, when it is tried again.
    let text = server.cli_ok(&["sync-log"]);
    let line = |n: &str| text.lines().find(|l| l.starts_with(&format!("mailbox {n} "))).unwrap_or_default().to_string();
    assert!(line("4010").ends_with(" ok"), "{text}");
    assert!(line("4011").contains("FAILING (1 failed pass; next try 20"), "{text}");
    assert!(line("4011").contains("NO [AUTHENTICATIONFAILED]"), "{text}");
    assert!(!text.contains("not-the-password"), "passwords are not shown: {text}");
    let json: serde_json::Value = serde_json::from_str(&server.cli_ok(&["sync-log", "4011", "--json"])).unwrap();
    let log = json["log"].as_array().unwrap();
    assert_eq!(log.len(), 1, "one attempt during the backoff: {json}");
    assert_eq!(log[0]["ok"], false);
    assert!(json["accounts"][0]["next_attempt_at"].as_i64().unwrap() > log[0]["at"].as_i64().unwrap() + 50);
    let ok_passes =
        serde_json::from_str::<serde_json::Value>(&server.cli_ok(&["sync-log", "4010", "--json", "-n", "100"]))
            .unwrap()["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ok"] == true)
            .count();
    assert!(ok_passes >= 3, "{ok_passes} good passes of the healthy account");
    assert!(server.stop());
}

#[test]
fn sync_all_runs_every_account_and_reports_the_failed_ones() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4020", "--pin", "1234", "--imap", &dv.imap_url("tia")]);
    let refused = dv.imap_url("uma").replacen(":pass@", ":wrong@", 1);
    server.cli_ok(&["mailbox", "add", "4021", "--pin", "1234", "--imap", &refused]);
    let pop3 = dv.pop3_url("val");
    let smtp = ["--smtp", "smtp://127.0.0.1:1", "--email", "val@example.test"];
    server.cli_ok(&[&["mailbox", "add", "4022", "--pin", "1234", "--pop3", &pop3][..], &smtp[..]].concat());
    server.cli_ok(&["mailbox", "add", "4023", "--pin", "1234"]); // no mail account: skipped
    MailClient::connect(&dv, "tia", "INBOX").append("INBOX", "<all1@example.test>", "one");
    MailClient::connect(&dv, "val", "INBOX").append("INBOX", "<all2@example.test>", "two");
    let o = server.cli(&["sync", "--all"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "a failed account makes the exit status non-zero");
    assert!(out.contains("mailbox 4020: ") && out.contains("mailbox 4022: "), "{out}");
    assert!(out.contains("mailbox 4021: FAILED: login as uma refused: NO"), "{out}");
    assert!(!out.contains("4023"), "{out}");
    assert!(err.contains("1 of 3 accounts failed: 4021"), "{err}");
    assert_eq!(server.messages("4020").len(), 1, "the accounts after a failed one still ran");
    assert_eq!(server.messages("4022").len(), 1);
}

#[test]
fn mailbox_set_fixes_a_refused_password_and_a_move_to_another_account_links_instead_of_doubling() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    let good = dv.imap_url("wes");
    server.cli_ok(&["mailbox", "add", "4030", "--pin", "1234", "--imap", &good.replacen(":pass@", ":typo@", 1)]);
    let mut wes = MailClient::connect(&dv, "wes", "INBOX");
    wes.append("INBOX", "<m1@example.test>", "kept across the move");
    wes.append("INBOX", "<m2@example.test>", "only on the old account");
    let o = server.cli(&["sync", "4030"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("login as wes refused"));

    // The password fixed: the same account, so nothing starts afresh.
    let out = server.cli_ok(&["mailbox", "set", "4030", "--imap", &good]);
    assert!(out.contains("mailbox 4030 updated") && !out.contains("afresh"), "{out}");
    server.cli_ok(&["sync", "4030"]);
    assert_eq!(server.messages("4030").len(), 2);
    assert!(server.cli_ok(&["sync-log", "4030"]).contains("last good pass 20"));

    // Moved to another account that holds a copy of m1 and a new m3.
    let mut xia = MailClient::connect(&dv, "xia", "INBOX");
    let m1_there = xia.append("INBOX", "<m1@example.test>", "kept across the move");
    xia.append("INBOX", "<m3@example.test>", "new on the new account");
    let out = server.cli_ok(&["mailbox", "set", "4030", "--imap", &dv.imap_url("xia")]);
    assert!(out.contains("starts afresh"), "{out}");
    let report: serde_json::Value = serde_json::from_str(&server.cli_ok(&["sync", "4030", "--json"])).unwrap();
    // A fresh start, not the engine noticing another UIDVALIDITY by luck (two folders
    // created in the same second share one).
    assert_eq!(
        (report["mode"].as_str(), report["uidvalidity_reset"].as_bool()),
        (Some("full"), Some(false)),
        "{report}"
    );
    assert_eq!((report["linked"].as_array().unwrap().len(), report["retrieved"].as_array().unwrap().len()), (1, 1));
    let rows = server.messages("4030");
    let by_id = |mid: &str| rows.iter().filter(|m| m["message_id"] == mid).cloned().collect::<Vec<_>>();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(by_id("<m1@example.test>").len(), 1, "m1 linked, not doubled");
    assert_eq!(by_id("<m1@example.test>")[0]["server_uid"], m1_there);
    assert!(by_id("<m2@example.test>")[0]["server_uid"].is_null(), "m2 stays, on no server now");

    // Bad input gets a clear error and changes nothing.
    let o = server.cli(&["mailbox", "set", "4030", "--imap", "ftp://x@y/INBOX"]);
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = server.cli(&["mailbox", "set", "4999", "--name", "Nobody"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mailbox 4999"));
    let listed = server.cli_ok(&["mailbox", "list"]);
    assert!(listed.contains("xia") && !listed.contains("ftp"), "{listed}");
}

#[test]
fn pop3_mailbox_retrieves_links_deposits_and_deletes_with_dele() {
    let dv = Dovecot::start();
    let smtp = SmtpRelay::start(&dv);
    let server = Server::configure("");
    server.cli_ok(&[
        "mailbox",
        "add",
        "4008",
        "--pin",
        "1234",
        "--email",
        "max@example.test",
        "--pop3",
        &dv.pop3_url("max"),
        "--smtp",
        &smtp.url(),
    ]);
    // A deposit delivered by SMTP (through the outbox), and a plain mail from elsewhere.
    let store = voxbridge::store::Store::open(&server.store_dir()).unwrap();
    voxbridge::media::wav::write_durable(&server.store_dir().join("recordings/y.wav"), &[0i16; 8000]).unwrap();
    let dep = store
        .insert_voice_message(&voxbridge::store::NewVoiceMessage {
            mailbox: "4008".into(),
            caller: Some("5551234".into()),
            caller_name: None,
            received_at: 1_795_000_000,
            duration_ms: 1000,
            media_path: "recordings/y.wav".into(),
            media_bytes: 16044,
            message_id: "<vb.pop@example.test>".into(),
            subject: "Voice message from 5551234 (0:01)".into(),
        })
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outbox = voxbridge::mail::outbox::Outbox {
        store: store.clone(),
        cfg: Default::default(),
        wake: Default::default(),
        changes: Default::default(),
    };
    assert_eq!(rt.block_on(outbox.pass()).unwrap(), 1);
    let mut lmtp = std::net::TcpStream::connect(("127.0.0.1", dv.lmtp)).unwrap();
    lmtp_deliver(
        &mut lmtp,
        "max@example.test",
        "From: Zed <zed@example.test>\r\nSubject: plain\r\nMessage-ID: <plain@example.test>\r\n\r\nhi\r\n",
    );

    let r = sync(&server, "4008");
    assert_eq!(r["linked"], serde_json::json!([dep]), "the deposit is matched back by Message-ID");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 1);
    assert_eq!(server.messages("4008").len(), 2);
    let again = sync(&server, "4008");
    assert!(
        again["retrieved"].as_array().unwrap().is_empty() && again["linked"].as_array().unwrap().is_empty(),
        "nothing twice"
    );

    // States live in the store: read stays read, the maildrop is untouched.
    server.cli_ok(&["messages", "mark", "4008", &dep.to_string(), "read"]);
    sync(&server, "4008");
    assert_eq!(server.messages("4008")[0]["state"], "R");
    assert_eq!(pop3_messages(dv.pop3, "max").len(), 2);
    // Purge → DELE on the server, then the row.
    server.cli_ok(&["messages", "mark", "4008", &dep.to_string(), "purge"]);
    let r = sync(&server, "4008");
    assert_eq!(r["deleted"].as_array().unwrap().len(), 1);
    assert_eq!(pop3_messages(dv.pop3, "max").len(), 1);
    assert_eq!(server.messages("4008").len(), 1);
}

/// Delivers one message into Dovecot by LMTP (as a mail from the outside world).
fn lmtp_deliver(s: &mut std::net::TcpStream, rcpt: &str, body: &str) {
    use std::io::{BufRead, BufReader, Write};
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<std::net::TcpStream>, code: &str| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "LMTP: wanted {code}, got {line}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect(&mut r, "220");
    write!(s, "LHLO test\r\n").unwrap();
    expect(&mut r, "250");
    write!(s, "MAIL FROM:<zed@example.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").unwrap();
    expect(&mut r, "250");
    expect(&mut r, "250");
    expect(&mut r, "354");
    write!(s, "{body}.\r\n").unwrap();
    expect(&mut r, "250");
}

#[test]
fn resync_costs_the_changes_not_the_mailbox() {
    let dv = Dovecot::start();
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4009", "--pin", "1234", "--imap", &dv.imap_url("ned")]);
    let mut client = MailClient::connect(&dv, "ned", "INBOX");
    let uids: Vec<u32> = (0..50).map(|i| client.append("INBOX", &format!("<c{i}@example.test>"), "x")).collect();
    let r = sync(&server, "4009");
    assert_eq!((r["mode"].as_str(), r["flags_fetched"].as_u64()), (Some("full"), Some(50)));
    // Nothing changed: CONDSTORE, no flags fetched at all.
    let r = sync(&server, "4009");
    assert_eq!((r["mode"].as_str(), r["flags_fetched"].as_u64()), (Some("qresync"), Some(0)));
    assert_eq!(r["server_messages"], 50);
    // One flag changed in a client, one message expunged: one fetched, both carried.
    client.store(uids[7], "+FLAGS (\\Seen)");
    client.expunge(uids[9]);
    let r = sync(&server, "4009");
    assert_eq!((r["mode"].as_str(), r["flags_fetched"].as_u64()), (Some("qresync"), Some(1)));
    assert_eq!(r["to_store"].as_array().unwrap().len(), 1);
    assert_eq!(r["gone"].as_array().unwrap().len(), 1, "expunges arrive as VANISHED (EARLIER)");
    let msgs = server.messages("4009");
    assert_eq!(msgs.len(), 49);
    assert_eq!(msgs.iter().filter(|m| m["state"] == "R").count(), 1);
}

/// `n` messages for a Maildir, tagged in Subject and Message-ID, every third `\Seen`.
fn bulk_messages(tag: &str, n: usize, body: impl Fn(usize) -> String) -> Vec<(String, &'static str)> {
    (0..n)
        .map(|i| {
            let raw = format!(
                "From: s{i}@example.test\r\nSubject: {tag} {i}\r\nMessage-ID: <{tag}.{i}@example.test>\r\n\r\n{}\r\n",
                body(i)
            );
            (raw, if i % 3 == 0 { "S" } else { "" })
        })
        .collect()
}

/// The store holds the `n` messages of [`bulk_messages`] once each, with their flags.
fn assert_imported_once(rows: &[serde_json::Value], n: usize) {
    assert_eq!(rows.len(), n);
    let uids: std::collections::BTreeSet<i64> = rows.iter().filter_map(|m| m["server_uid"].as_i64()).collect();
    assert_eq!(uids.len(), n, "every message once, each with its UID");
    assert_eq!(rows.iter().filter(|m| m["state"] == "R").count(), n.div_ceil(3), "\\Seen arrives as R");
}

#[test]
fn a_large_mailbox_is_imported_once_in_chunks_with_its_flags() {
    // More messages than one stored chunk (1000), not a multiple of it: the first pass
    // streams them in one FETCH and stores full chunks and the rest.
    let dv = Dovecot::start();
    let n = 2345;
    dv.write_maildir("bulk", &bulk_messages("bulk", n, |i| format!("body {i}")));
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4010", "--pin", "1234", "--imap", &dv.imap_url("bulk")]);
    let r = sync(&server, "4010");
    assert_eq!((r["mode"].as_str(), r["flags_fetched"].as_u64()), (Some("full"), Some(n as u64)));
    assert_eq!(r["retrieved"].as_array().unwrap().len(), n);
    let rows = server.messages("4010");
    assert_imported_once(&rows, n);
    let subjects: std::collections::BTreeSet<&str> = rows.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert!(subjects.contains("bulk 0") && subjects.contains(format!("bulk {}", n - 1).as_str()));
    // Nothing new: the next pass retrieves nothing.
    let r = sync(&server, "4010");
    assert_eq!((r["mode"].as_str(), r["retrieved"].as_array().unwrap().len()), (Some("qresync"), 0));
    assert_eq!(server.messages("4010").len(), n);
}

#[test]
fn the_mail_server_killed_mid_import_then_the_next_pass_converges() {
    // A crash of the whole mail server (every Dovecot process killed) while the first
    // pass streams a large mailbox in: the pass fails, what it stored stays, and the next
    // pass fetches exactly the rest — nothing lost, nothing twice.
    let mut dv = Dovecot::start();
    // 50 MB: far more than the socket buffers hold, so the crash cuts the stream itself.
    let n = 5000;
    let filler = "0123456789abcdef".repeat(640);
    dv.write_maildir("crash", &bulk_messages("crash", n, |_| filler.clone()));
    let server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4011", "--pin", "1234", "--imap", &dv.imap_url("crash")]);
    let db = server.store_dir().join("voxbridge.db");
    let rows = || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c.query_row("SELECT count(*) FROM message", [], |r| r.get::<_, i64>(0)).unwrap() as usize
    };
    let pass = std::process::Command::new(bin())
        .args(["sync", "4011", "--config"])
        .arg(&server.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(std::time::Duration::from_secs(60), "the first stored chunk", || rows() > 0);
    dv.kill_hard();
    let out = pass.wait_with_output().unwrap();
    assert!(!out.status.success(), "the pass should have been cut off: {}", String::from_utf8_lossy(&out.stdout));
    let kept = rows();
    assert!(kept > 0 && kept < n, "{kept} of {n} stored before the crash");

    dv.restart();
    let r = sync(&server, "4011");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), n - kept, "the rest, and only the rest");
    assert_imported_once(&server.messages("4011"), n);
    let r = sync(&server, "4011");
    assert_eq!(r["retrieved"].as_array().unwrap().len(), 0);
}

#[test]
fn idle_carries_a_mail_clients_change_within_seconds() {
    let dv = Dovecot::start();
    // Polling is hourly: only IDLE can explain a change arriving quickly.
    let mut server = Server::configure("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4010", "--pin", "1234", "--imap", &dv.imap_url("ola")]);
    let mut client = MailClient::connect(&dv, "ola", "INBOX");
    let uid = client.append("INBOX", "<idle1@example.test>", "before start");
    server.run();
    wait_until(std::time::Duration::from_secs(10), "the first pass", || server.messages("4010").len() == 1);
    std::thread::sleep(std::time::Duration::from_millis(500)); // the IDLE connection settles

    let t = std::time::Instant::now();
    client.store(uid, "+FLAGS (\\Seen)");
    wait_until(std::time::Duration::from_secs(5), "IDLE to carry \\Seen", || {
        server.messages("4010")[0]["state"] == "R"
    });
    eprintln!("\\Seen in a mail client → R in the store after {:?}", t.elapsed());

    let t = std::time::Instant::now();
    client.append("INBOX", "<idle2@example.test>", "new while idling");
    wait_until(std::time::Duration::from_secs(5), "IDLE to retrieve new mail", || server.messages("4010").len() == 2);
    eprintln!("new mail → stored after {:?}", t.elapsed());
    assert!(server.stop());
}
