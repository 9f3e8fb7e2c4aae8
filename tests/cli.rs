//! The admin CLI: clear errors and non-zero exits for bad input; the global --config.

mod common;
use common::*;
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn config_errors_name_the_key_and_exit_non_zero() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[sip]\nlisten = \"127.0.0.1:5060\"\nlistne = \"x\"\n").unwrap();
    let (ok, _, err) = run(&["mailbox", "list", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("listne") && err.contains(cfg.to_str().unwrap()), "{err}");
    std::fs::write(&cfg, "[rtp]\nport_range = \"9-2\"\n").unwrap();
    let (ok, _, err) = run(&["--config", cfg.to_str().unwrap(), "mailbox", "list"]);
    assert!(!ok);
    assert!(err.contains("port_range"), "{err}");
    let (ok, _, err) = run(&["mailbox", "list", "--config", "/nonexistent/voxbridge.toml"]);
    assert!(!ok && err.contains("cannot read config file /nonexistent/voxbridge.toml"), "{err}");
}

#[test]
fn mailbox_add_list_and_bad_arguments() {
    let s = Server::configure("");
    let o = s.cli(&["mailbox", "add", "12a", "--pin", "1234"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("mailbox number must be"));
    let o = s.cli(&["mailbox", "add", "3001", "--pin", "1234", "--imap", "imap://nopassword@127.0.0.1:1/INBOX"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a user and a password"));
    let o = s.cli(&["mailbox", "add", "3001", "--pin", "12x"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("PIN must be"));
    let o = s.cli(&["mailbox", "add", "3001", "--pin", "1234", "--pop3", "pop3://u:p@127.0.0.1:1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--smtp"), "a POP3 mailbox needs an SMTP route");

    let out = s.cli_ok(&[
        "mailbox",
        "add",
        "3001",
        "--pin",
        "1234",
        "--name",
        "Ann",
        "--imap",
        "imap://ann:s3cret@127.0.0.1:1/INBOX",
    ]);
    assert!(out.contains("IMAP"));
    let o = s.cli(&["mailbox", "add", "3001", "--pin", "1234"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let list: serde_json::Value = serde_json::from_str(&s.cli_ok(&["mailbox", "list", "--json"])).unwrap();
    assert_eq!(list[0]["number"], "3001");
    assert!(!list.to_string().contains("s3cret"), "passwords are never printed");
    let table = s.cli_ok(&["mailbox", "list"]);
    assert!(table.contains("3001") && table.contains("Ann") && !table.contains("s3cret"));
    let o = s.cli(&["messages", "list", "9999"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mailbox 9999"));
    assert!(s.cli_ok(&["messages", "list", "3001"]).contains("no messages"));
    let o = s.cli(&["sync-log", "9999"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mailbox 9999"));
    // An account never synchronized yet; no password on show.
    let log = s.cli_ok(&["sync-log"]);
    assert!(log.contains("mailbox 3001  imap://ann:***@127.0.0.1:1/INBOX  last good pass never  ok"), "{log}");
    // The PIN is stored hashed (in the database file, or still in its WAL).
    let mut db = std::fs::read(s.store_dir().join("voxbridge.db")).unwrap();
    db.extend(std::fs::read(s.store_dir().join("voxbridge.db-wal")).unwrap_or_default());
    assert!(db.windows(7).any(|w| w == b"$argon2"));
}

#[test]
fn help_explains_commands() {
    let (ok, out, _) = run(&["--help"]);
    assert!(ok && out.contains("serve") && out.contains("mailbox") && out.contains("--config"));
    let (ok, out, _) = run(&["mailbox", "add", "--help"]);
    assert!(ok && out.contains("imap[s]://user:password@host:port/FOLDER"), "{out}");
    let (ok, _, err) = run(&["frobnicate"]);
    assert!(!ok && err.contains("frobnicate"));
}

#[test]
fn serve_refuses_a_busy_port_with_a_clear_message() {
    let mut a = Server::start("");
    let b = Server::configure("");
    let text = std::fs::read_to_string(&b.config).unwrap();
    let text = text.replacen(
        &format!("listen = \"127.0.0.1:{}\"", b.sip_port),
        &format!("listen = \"127.0.0.1:{}\"", a.sip_port),
        1,
    );
    std::fs::write(&b.config, text).unwrap();
    let o = Command::new(bin()).args(["serve", "--config"]).arg(&b.config).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot bind SIP UDP") && err.contains(&a.sip_port.to_string()), "{err}");
    assert!(a.stop());
}

#[test]
fn a_second_server_on_one_store_is_refused_naming_the_first() {
    // Two outboxes on one store could each deliver a message before either recorded it.
    let mut a = Server::start("");
    let mut b = Server::configure("");
    let store = a.store_dir();
    let text = std::fs::read_to_string(&b.config).unwrap();
    let path_line = text.lines().find(|l| l.starts_with("path = ")).unwrap().to_string();
    std::fs::write(&b.config, text.replacen(&path_line, &format!("path = {:?}", store.display().to_string()), 1))
        .unwrap();
    let o = Command::new(bin()).args(["serve", "--config"]).arg(&b.config).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let pid = std::fs::read_to_string(store.join("server.lock")).unwrap();
    assert!(err.contains(&format!("another voxbridge server (pid {pid}) runs on the store")), "{err}");
    assert!(a.is_running(), "the first server runs on");
    assert!(a.stop());
    // Once it stopped, the store is free again.
    b.run();
    assert!(b.stop());
}

#[test]
fn voxbridge_needs_no_espeak_to_start() {
    // espeak-ng is opened on first speech (media/tts.rs): a CLI command or a server whose
    // prompts are cached does not load it and the 36 libraries behind it. The dynamic
    // loader lists what it would load (what ldd does) and exits.
    let o = Command::new(bin()).arg("--version").env("LD_TRACE_LOADED_OBJECTS", "1").output().unwrap();
    let libs = String::from_utf8_lossy(&o.stdout);
    assert!(libs.contains("libc.so"), "the loader listed the libraries: {libs}");
    assert!(!libs.contains("libespeak-ng"), "espeak-ng is linked at start: {libs}");
    assert!(libs.lines().count() < 12, "{libs}");
}

#[test]
fn mailbox_remove_says_what_goes_and_needs_yes() {
    let s = Server::configure("");
    s.cli_ok(&["mailbox", "add", "3100", "--pin", "1234"]);
    s.cli_ok(&["mailbox", "add", "3101", "--pin", "1234"]);
    // A recorded greeting, and a message whose recording is still to be delivered.
    let wav = s.dir.path().join("g.wav");
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    (0..8000).for_each(|i| w.write_sample(((i as f64 * 0.3).sin() * 5000.0) as i16).unwrap());
    w.finalize().unwrap();
    s.cli_ok(&["mailbox", "greeting", "3100", wav.to_str().unwrap()]);
    let rec = s.store_dir().join("recordings/3100/r.wav");
    std::fs::create_dir_all(rec.parent().unwrap()).unwrap();
    std::fs::copy(&wav, &rec).unwrap();
    let db = rusqlite::Connection::open(s.store_dir().join("voxbridge.db")).unwrap();
    db.execute(
        "INSERT INTO message (mailbox, kind, state, received_at, message_id, media_path)
         VALUES ('3100', 'voice', 'U', 1, '<r@x>', 'recordings/3100/r.wav')",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO outbox (message, target, next_attempt_at, created_at) VALUES (last_insert_rowid(), 'imap', 0, 1)",
        [],
    )
    .unwrap();
    db.execute("INSERT INTO sync_log (mailbox, at, ok, summary) VALUES ('3100', 1, 1, 'x')", []).unwrap();
    let greeting_path: String =
        db.query_row("SELECT greeting_path FROM mailbox WHERE number = '3100'", [], |r| r.get(0)).unwrap();
    let greeting = s.store_dir().join(greeting_path);
    assert!(greeting.exists());

    let o = s.cli(&["mailbox", "remove", "3100"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("1 messages (1 not yet delivered") && err.contains("--yes"), "{err}");
    assert_eq!(s.messages("3100").len(), 1, "nothing changed without --yes");

    assert!(s.cli_ok(&["mailbox", "remove", "3100", "--yes"]).contains("mailbox 3100 removed (1 messages, 2 files)"));
    assert!(!rec.exists() && !greeting.exists(), "its recording and greeting are gone");
    let o = s.cli(&["messages", "list", "3100"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mailbox 3100"));
    let left: i64 = db
        .query_row(
            "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM sync_log WHERE mailbox = '3100')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "no outbox entry or log entry left behind");
    assert!(s.cli_ok(&["mailbox", "list"]).contains("3101"), "other mailboxes stay");
    let o = s.cli(&["mailbox", "remove", "3100", "--yes"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no mailbox 3100"));
}

#[test]
fn a_mailbox_time_zone_is_checked_set_and_removed() {
    let s = Server::configure("");
    let o = s.cli(&["mailbox", "add", "300", "--pin", "1234", "--timezone", "Mars/Olympus"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"Mars/Olympus\" is not a time zone"), "{o:?}");
    s.cli_ok(&["mailbox", "add", "300", "--pin", "1234", "--timezone", "Europe/Berlin"]);
    let zone = |s: &Server| {
        let v: serde_json::Value = serde_json::from_str(&s.cli_ok(&["mailbox", "list", "--json"])).unwrap();
        v[0]["timezone"].clone()
    };
    assert_eq!(zone(&s), "Europe/Berlin");
    s.cli_ok(&["mailbox", "set", "300", "--timezone", "America/New_York"]);
    assert_eq!(zone(&s), "America/New_York");
    assert!(!s.cli(&["mailbox", "set", "300", "--timezone", "Nowhere"]).status.success());
    assert_eq!(zone(&s), "America/New_York", "a refused zone changes nothing");
    s.cli_ok(&["mailbox", "set", "300", "--timezone", ""]);
    assert!(zone(&s).is_null(), "back to the server's zone");
    // The server's own default is checked when the configuration is read.
    let bad = Server::configure("[mailbox]\ntimezone = \"Atlantis/Capital\"\n");
    let o = bad.cli(&["mailbox", "list"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("mailbox.timezone"), "{o:?}");
}

#[test]
fn tts_preview_prints_what_will_be_spoken_and_a_bad_rule_file_is_named() {
    let (ok, out, err) =
        run(&["tts", "preview", "--text", "Hi Bob,\n\nCall (555) 123-4567 by Fri. The bill is $20.50!"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Hi Bob,\n\nCall five five five, one two three, four five six seven by Friday.\nThe bill is twenty dollars and fifty cents!\n"
    );
    // The admin's own rule file for a language: used, and when wrong, named with its rule.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("xx")).unwrap();
    std::fs::write(d.path().join("xx/substitutions.toml"), "[[rule]]\nfind = \"Bob\"\nsay = \"Robert\"\n").unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, format!("[prompts]\ndir = \"{}\"\n", d.path().display())).unwrap();
    let c = cfg.to_str().unwrap();
    let (ok, out, err) = run(&["--config", c, "tts", "preview", "--lang", "xx", "--text", "Hi Bob"]);
    assert!(ok && out == "Hi Robert\n", "{out}{err}");
    std::fs::write(d.path().join("xx/substitutions.toml"), "[[rule]]\nregex = \"(\"\nsay = \"x\"\n").unwrap();
    let (ok, _, err) = run(&["--config", c, "tts", "preview", "--lang", "xx", "--text", "Hi"]);
    assert!(!ok && err.contains("xx/substitutions.toml") && err.contains("rule 1"), "{err}");
    let (ok, _, err) = run(&["tts", "preview"]);
    assert!(!ok && err.contains("--text"), "{err}");
    let (ok, out, err) = run(&["tts", "preview", "--mail", "tests/fixtures/mail/thunderbird_bottom_posting.eml"]);
    assert!(ok, "{err}");
    assert_eq!(out, "An e-mail from Bob.\nSubject: Reply: Project plan.\n\nYes, the fifteenth works.\n\nI will.\n");
    let (ok, _, err) = run(&["tts", "preview", "--mail", "/nonexistent.eml"]);
    assert!(!ok && err.contains("cannot read /nonexistent.eml"), "{err}");
}

#[test]
fn substitutions_of_the_admin_and_of_a_mailbox_run_before_the_language_file() {
    let s = Server::configure("");
    s.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let added = s.cli_ok(&["substitutions", "add", "--find", "ACME", "--say", "the Acme company"]);
    assert!(added.starts_with("rule ") && added.trim_end().ends_with(" added"), "{added}");
    s.cli_ok(&["substitutions", "add", "--mailbox", "1001", "--find", "ACME", "--say", "our client"]);
    assert_eq!(s.cli_ok(&["substitutions", "test", "ACME called"]), "the Acme company called\n");
    assert_eq!(s.cli_ok(&["substitutions", "test", "ACME called", "--mailbox", "1001"]), "our client called\n");
    // The seed's example, overridden by the admin ahead of the English file's rule.
    assert_eq!(s.cli_ok(&["substitutions", "test", "ATT"]), "eh T and T\n");
    s.cli_ok(&["substitutions", "add", "--find", "att", "--say", "attention", "--any-case"]);
    assert_eq!(s.cli_ok(&["substitutions", "test", "ATT: Bob"]), "attention: Bob\n");
    let list = s.cli_ok(&["substitutions", "list", "--mailbox", "1001"]);
    assert!(list.contains("mailbox 1001") && list.contains("admin") && list.contains("rules from"), "{list}");
    let json: Vec<serde_json::Value> = serde_json::from_str(&s.cli_ok(&["substitutions", "list", "--json"])).unwrap();
    assert_eq!(json.len(), 2, "the admin's two rules");
    let id = json[0]["id"].as_i64().unwrap().to_string();
    s.cli_ok(&["substitutions", "remove", &id]);
    assert_eq!(s.cli_ok(&["substitutions", "test", "ACME called"]), "ACME called\n".replace("ACME", "eh C M E"));
    // Clear errors, non-zero exits.
    for (args, want) in [
        (vec!["substitutions", "add", "--regex", "(", "--say", "x"], "regex"),
        (vec!["substitutions", "add", "--mailbox", "9999", "--find", "x", "--say", "y"], "no mailbox 9999"),
        (vec!["substitutions", "remove", "99999"], "no rule 99999"),
    ] {
        let o = s.cli(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn a_german_mail_is_read_with_the_german_rules_and_voice() {
    let (ok, out, err) = run(&["tts", "preview", "--mail", "tests/fixtures/mail/german.eml"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Eine E-Mail von Anna Berg.\nBetreff: Antwort: Termin am Freitag.\n\nHallo Bob,\n\n\
der Termin ist am vierundzwanzigsten Dezember zweitausendvierundzwanzig um vierzehn Uhr dreißig.\n\
Die Rechnung über zwölf Euro fünfzig ist bezahlt und wir sind nicht im Büro.\n\nViele Grüße\n"
    );
    // Forced to English, the same mail is read with the English forms.
    let (ok, out, _) = run(&["tts", "preview", "--mail", "tests/fixtures/mail/german.eml", "--lang", "en"]);
    assert!(ok && out.starts_with("An e-mail from Anna Berg."), "{out}");
}
