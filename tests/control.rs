//! Talking to the running server (issue 16): `status`, `calls` and `hangup` during real
//! calls (sipp and a test phone), `reload` and SIGHUP with a valid and an invalid
//! dialplan while a call is in progress, `shutdown --graceful`, and the exit status when
//! no server runs.

mod common;
use common::phone::Phone;
use common::*;
use std::process::Command;
use std::time::Duration;

fn json(server: &Server, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Waits for mailbox `number` to hold `n` messages; the log is shown when it does not.
fn wait_messages(server: &Server, number: &str, n: usize) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while server.messages(number).len() != n {
        assert!(std::time::Instant::now() < until, "no {n} message(s) in {number}:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_logged(server: &Server, text: &str) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        assert!(std::time::Instant::now() < until, "{text:?} never logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_and_calls_list_the_calls_in_progress_and_hangup_ends_one_with_a_bye() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    server.cli_ok(&["mailbox", "add", "1002", "--pin", "1234"]);
    let port = server.sip_port;
    // A sipp caller leaving a long message, and a test phone in the menu.
    let talk = greeting_ms("1001") + 6000; // the greeting, then 6 s of message
    let sipp_call = std::thread::spawn(move || sipp_to(port, "uac_deposit.xml", &[], "1001", talk, "udp"));
    let phone = Phone::call(server.sip_port, "5550123", "*98");
    wait_until(Duration::from_secs(15), "two calls listed", || {
        json(&server, &["calls", "--json"]).as_array().unwrap().len() == 2
    });
    let calls = json(&server, &["calls", "--json"]);
    let apps: Vec<&str> = calls.as_array().unwrap().iter().map(|c| c["app"].as_str().unwrap()).collect();
    assert!(apps.contains(&"deposit") && apps.contains(&"menu"), "{calls}");
    assert!(calls.as_array().unwrap().iter().all(|c| c["codec"] == "PCMU"), "{calls}");
    let text = server.cli_ok(&["calls"]);
    assert!(text.contains("5550123") && text.contains("*98") && text.contains("1001"), "{text}");

    let st = json(&server, &["status", "--json"]);
    assert_eq!(st["calls"]["in_progress"], 2, "{st}");
    assert_eq!((st["calls"]["by_app"]["deposit"].clone(), st["calls"]["by_app"]["menu"].clone()), (1.into(), 1.into()));
    assert!(st["rtp_ports"]["in_use"].as_u64().unwrap() >= 2, "{st}");
    assert!(server.cli_ok(&["status"]).contains("2 in progress"));

    // The admin ends the menu call: the phone gets a BYE; the other call goes on.
    let menu = calls.as_array().unwrap().iter().find(|c| c["app"] == "menu").unwrap()["id"].to_string();
    assert!(server.cli_ok(&["hangup", &menu]).contains("hung up"));
    let bye = phone.poll_request(Duration::from_secs(5)).expect("a BYE for the phone");
    assert!(bye.starts_with("BYE "), "{bye}");
    phone.respond(&bye, 200, "OK", None);
    wait_until(Duration::from_secs(5), "one call left", || {
        json(&server, &["calls", "--json"]).as_array().unwrap().len() == 1
    });
    let out = server.cli(&["hangup", "999999"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no call 999999"), "{out:?}");
    let run = sipp_call.join().unwrap();
    assert!(run.ok, "the other call was not disturbed:\n{}\n{}", run.output, server.log());
    wait_messages(&server, "1001", 1);
}

#[test]
fn a_reload_keeps_an_invalid_dialplan_out_and_routes_the_next_call_by_a_valid_one() {
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("dialplan.toml");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/dialplans/default.toml"), &plan).unwrap();
    // The caller in progress is silent for a while: not the end of its message.
    let mut server =
        Server::configure(&format!("[dialplan]\nfile = \"{}\"\n[deposit]\nsilence_secs = 120.0\n", plan.display()));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    server.run();
    // A call in progress across both reloads.
    let mut during = Phone::call(server.sip_port, "5550100", "1001");
    let greeting = std::time::Instant::now() + Duration::from_millis(greeting_ms("1001"));

    std::fs::write(&plan, "[[route]]\npattern = \"1001\"\napp = \"voicemial\"\n").unwrap();
    unsafe_kill(server.pid(), 1); // SIGHUP
    wait_logged(&server, "dialplan not reloaded; the old one stays");
    let out = server.cli(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the old one stays") && err.contains("line 3"), "{err}");
    // Still the old one: 1001 is a deposit.
    let p = Phone::call(server.sip_port, "5550101", "1001");
    wait_logged(&server, "deposit mailbox=1001");
    p.hang_up();

    // A valid change: 1001 now reaches the menu.
    std::fs::write(
        &plan,
        "[[route]]\npattern = \"1001\"\napp = \"menu\"\n\n[[route]]\npattern = \"_X.\"\napp = \"deposit\"\n",
    )
    .unwrap();
    assert!(server.cli_ok(&["reload"]).contains("2 routes"), "{}", server.log());
    let p = Phone::call(server.sip_port, "5550102", "1001");
    wait_logged(&server, "mailbox menu");
    p.hang_up();
    // The call from before both reloads is still up, still in its deposit.
    let calls = json(&server, &["calls", "--json"]);
    assert!(calls.as_array().unwrap().iter().any(|c| c["from"] == "5550100" && c["app"] == "deposit"), "{calls}");
    std::thread::sleep(greeting.saturating_duration_since(std::time::Instant::now()));
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 1500, 0.3));
    during.send_audio(&voice);
    during.hang_up();
    wait_messages(&server, "1001", 1);
}

#[test]
fn a_graceful_shutdown_refuses_new_calls_and_waits_for_the_one_in_progress() {
    let mut server = Server::start("[deposit]\nsilence_secs = 120.0\n");
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let mut p = Phone::call(server.sip_port, "5550100", "1001");
    let greeting = std::time::Instant::now() + Duration::from_millis(greeting_ms("1001"));
    let said = server.cli_ok(&["shutdown", "--graceful", "--wait-secs", "60"]);
    assert!(said.contains("1 call(s) in progress"), "{said}");
    wait_logged(&server, "graceful shutdown: new calls get 503");
    let refused = sipp(
        &server,
        "uac_refused.xml",
        &[("STATUS", "503"), ("FORMATS", "0"), ("RTPMAP", "a=rtpmap:0 PCMU/8000")],
        "1001",
        0,
        "udp",
    );
    assert!(refused.ok, "a new call gets 503:\n{}\n{}", refused.output, server.log());
    assert!(server.is_running(), "still running for the call in progress");
    std::thread::sleep(greeting.saturating_duration_since(std::time::Instant::now()));
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 1500, 0.3));
    p.send_audio(&voice);
    p.hang_up();
    wait_until(Duration::from_secs(15), "the server to stop", || !server.is_running());
    assert_eq!(server.messages("1001").len(), 1, "the message was saved:\n{}", server.log());
    // No server: status says so, with exit status 69.
    let out = server.cli(&["status"]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the server is not running"), "{out:?}");
}

#[test]
fn dialplan_check_names_file_and_line_and_exits_65_on_an_error() {
    let server = Server::configure("");
    let ok = server.cli_ok(&["dialplan", "check"]);
    assert!(ok.contains("default.toml: 3 routes, 0 warning(s)"), "{ok}");
    let bad = server.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[route]]\npattern = \"_X.\"\napp = \"deposit\"\n\n[[route]]\npattern = \"1[2\"\napp = \"menu\"\n",
    )
    .unwrap();
    let out = server.cli(&["dialplan", "check", bad.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(text.contains(&format!("{}:5: error: pattern \"1[2\"", bad.display())), "{text}");
    let missing = server.cli(&["dialplan", "check", "/nonexistent.toml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read dialplan /nonexistent.toml"));
}

#[test]
fn config_show_prints_every_default_and_masks_passwords() {
    let server = Server::configure("[delivery]\nsmtp_url = \"smtp://relay:topsecret@mail.example:587\"\n");
    let shown = server.cli_ok(&["config", "show"]);
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("smtp://relay:***@mail.example:587"), "{shown}");
    // Defaults filled in, in the file's own syntax: it reads back as a configuration.
    assert!(shown.contains("md_wait_ms = 2000") && shown.contains("[smdi]"), "{shown}");
    let again = server.dir.path().join("shown.toml");
    std::fs::write(&again, shown.replace("relay:***@", "relay:x@")).unwrap();
    let out = std::process::Command::new(bin()).args(["config", "show", "--config"]).arg(&again).output().unwrap();
    assert!(out.status.success(), "what config show prints is a valid configuration: {out:?}");
    let json: serde_json::Value = serde_json::from_str(&server.cli_ok(&["config", "show", "--json"])).unwrap();
    assert_eq!(json["rtp"]["timeout_secs"], 60);
    assert!(!json.to_string().contains("topsecret"));
}

/// `GET /metrics`, its status line and body.
fn scrape(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one sample line, after checking that every line is OpenMetrics text.
fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    assert!(body.ends_with("# EOF\n"), "{body}");
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {line:?}"));
        assert!(name.starts_with("voxbridge_"), "{line:?}");
    }
    body.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_metrics_endpoint_shows_calls_as_they_happen() {
    let port = free_port();
    let server = Server::start(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let (status, body) = scrape(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&body, "voxbridge_calls_active"), Some(0.0), "{body}");
    let mut p = Phone::call(server.sip_port, "5550100", "1001");
    let (_, body) = scrape(port, "/metrics");
    assert_eq!(sample(&body, "voxbridge_calls_active"), Some(1.0), "during the call: {body}");
    std::thread::sleep(Duration::from_millis(greeting_ms("1001")));
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 1500, 0.3));
    p.send_audio(&voice);
    p.hang_up();
    wait_messages(&server, "1001", 1);
    wait_until(Duration::from_secs(10), "the delivery counted", || {
        let (_, body) = scrape(port, "/metrics");
        sample(&body, "voxbridge_calls_total{app=\"deposit\",result=\"completed\"}") == Some(1.0)
    });
    let (_, body) = scrape(port, "/metrics");
    assert_eq!(sample(&body, "voxbridge_calls_active"), Some(0.0), "{body}");
    assert_eq!(sample(&body, "voxbridge_deposits_saved_total"), Some(1.0), "{body}");
    assert!(sample(&body, "voxbridge_rtp_packets_received_total").unwrap() >= 70.0, "{body}");
    assert_eq!(sample(&body, "voxbridge_deliveries_pending"), Some(0.0), "a local mailbox delivers nothing: {body}");
    assert_eq!(scrape(port, "/").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping_and_the_unit_verifies() {
    let mut server = Server::configure("");
    let sock_path = server.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    server.env = vec![
        ("NOTIFY_SOCKET".into(), sock_path.display().to_string()),
        ("WATCHDOG_USEC".into(), "400000".into()),
        ("VOXBRIDGE_LOG_FORMAT".into(), "json".into()),
    ];
    server.run();
    let mut buf = [0u8; 512];
    let mut heard = |what: &str| {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = sock.recv(&mut buf).expect("a notification");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with(what) {
                return msg;
            }
            assert!(std::time::Instant::now() < until, "no {what}");
        }
    };
    assert!(heard("READY=1").contains("STATUS=SIP on"));
    heard("WATCHDOG=1");
    // The log is JSON, a line an object.
    let log = server.log();
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(server.stop());
    heard("STOPPING=1");

    // The shipped unit, pointed at this build, passes systemd's own check.
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/systemd/voxbridge.service")).unwrap();
    let here = server.dir.path().join("voxbridge.service");
    std::fs::write(&here, unit.replace("/usr/local/bin/voxbridge", bin())).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&here).output().expect("systemd-analyze");
    assert!(out.status.success(), "{out:?}");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(!warnings.contains("voxbridge.service"), "systemd-analyze warns about the unit: {warnings}");
}

#[test]
fn mailbox_show_completions_and_man_pages() {
    let server = Server::configure("");
    server.cli_ok(&[
        "mailbox",
        "add",
        "1001",
        "--pin",
        "1234",
        "--name",
        "Ann",
        "--imap",
        "imap://ann:hunter2secret@127.0.0.1:1/INBOX",
    ]);
    server.cli_ok(&["mailbox", "set", "1001", "--station", "5551001", "--fax-number", "7001"]);
    let shown = server.cli_ok(&["mailbox", "show", "1001"]);
    assert!(
        shown.contains("Ann") && shown.contains("PBX station 5551001") && shown.contains("fax number    7001"),
        "{shown}"
    );
    assert!(shown.contains("SIP password  none") && !shown.contains("hunter2secret"), "{shown}");
    let v: serde_json::Value = serde_json::from_str(&server.cli_ok(&["mailbox", "show", "1001", "--json"])).unwrap();
    assert_eq!((v["station"].clone(), v["greetings"]["busy"].clone()), ("5551001".into(), false.into()));
    assert!(!v.to_string().contains("hunter2secret"), "{v}");
    let out = server.cli(&["mailbox", "show", "999"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no mailbox 999"));

    let bash = server.cli_ok(&["completions", "bash"]);
    assert!(bash.contains("_voxbridge") && bash.contains("mailbox"), "{}", &bash[..200.min(bash.len())]);
    let dir = server.dir.path().join("man");
    assert!(server.cli_ok(&["manpages", dir.to_str().unwrap()]).contains("man pages written"));
    let top = std::fs::read_to_string(dir.join("voxbridge.1")).unwrap();
    let mailbox = std::fs::read_to_string(dir.join("voxbridge-mailbox.1")).unwrap();
    assert!(
        top.contains(".TH voxbridge") && mailbox.contains(".TH voxbridge-mailbox"),
        "{}",
        &mailbox[..200.min(mailbox.len())]
    );
}

#[test]
fn pins_and_account_passwords_come_from_stdin_or_files_not_the_command_line() {
    use std::io::Write;
    let server = Server::configure("");
    let run_with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&server.config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let pw = server.dir.path().join("ann.pw");
    std::fs::write(&pw, "s3cr!t pass\n").unwrap();
    let out = run_with_stdin(
        &[
            "mailbox",
            "add",
            "1001",
            "--pin",
            "-",
            "--imap",
            "imap://ann@127.0.0.1:1/INBOX",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        "4321\n",
    );
    assert!(out.status.success(), "{out:?}");
    let store = voxbridge::store::Store::open(&server.store_dir()).unwrap();
    let policy = voxbridge::store::menu::LoginPolicy { max_attempts: 3, window_secs: 900, lock_secs: 900 };
    let now = voxbridge::store::now_secs();
    assert_eq!(
        store.check_login("1001", "4321", now, policy).unwrap(),
        voxbridge::model::LoginResult::Ok,
        "the PIN from stdin"
    );
    let url = store.mailbox("1001").unwrap().unwrap().imap_url.unwrap();
    assert_eq!(url, "imap://ann:s3cr%21t%20pass@127.0.0.1:1/INBOX", "the password from the file, in the stored URL");
    // Nowhere shown: list, show, their JSON.
    for args in
        [&["mailbox", "list", "--json"][..], &["mailbox", "show", "1001", "--json"], &["mailbox", "show", "1001"]]
    {
        let text = server.cli_ok(args);
        assert!(!text.contains("s3cr") && !text.contains("4321"), "{args:?}: {text}");
    }
    // A new PIN from stdin; no PIN and no terminal: a clear error.
    assert!(run_with_stdin(&["mailbox", "pin", "1001", "--pin", "-"], "9876\n").status.success());
    assert_eq!(store.check_login("1001", "9876", now, policy).unwrap(), voxbridge::model::LoginResult::Ok);
    let out = run_with_stdin(&["mailbox", "pin", "1001"], "");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--pin - reads it from standard input"),
        "{out:?}"
    );
    let out = run_with_stdin(
        &["mailbox", "set", "1001", "--imap", "imap://ann:old@127.0.0.1:1/INBOX", "--password-file", "-"],
        "x\n",
    );
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already has a password"),
        "{out:?}"
    );
}

#[test]
fn a_reload_takes_per_call_settings_from_the_next_call_and_names_what_needs_a_restart() {
    let server = Server::start("[deposit]\nmin_secs = 1.0\n");
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 2000, 0.3));
    let leave = |n: usize| {
        let mut p = Phone::call(server.sip_port, "5550100", "1001");
        std::thread::sleep(Duration::from_millis(greeting_ms("1001")));
        p.send_audio(&voice);
        p.hang_up();
        wait_until(Duration::from_secs(10), "the recording's end", || {
            let log = server.log();
            log.matches("recording stopped").count() + log.matches("recording discarded").count() >= n
        });
    };
    leave(1);
    wait_messages(&server, "1001", 1);
    let text = std::fs::read_to_string(&server.config).unwrap();
    // Messages under 10 s are now too short; the SIP section changed too.
    let changed = text.replace("min_secs = 1.0", "min_secs = 10.0").replace("[sip]\n", "[sip]\nring_ms = 50\n");
    assert_ne!(changed, text);
    std::fs::write(&server.config, &changed).unwrap();
    let said = server.cli_ok(&["reload"]);
    assert!(
        said.contains("configuration: [deposit] from the next call") && said.contains("needs a restart: [sip]"),
        "{said}"
    );
    leave(2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.messages("1001").len(), 1, "a 2 s message is too short now:\n{}", server.log());
    // An invalid file: refused with its error, the settings in force stay.
    std::fs::write(&server.config, changed.replace("min_secs = 10.0", "min_secs = \"ten\"")).unwrap();
    unsafe_kill(server.pid(), 1); // SIGHUP
    wait_logged(&server, "configuration not reloaded; the old one stays");
    assert!(server.log().contains("min_secs"), "the error names the key:\n{}", server.log());
    // (`voxbridge reload` reads the same file first and says what is wrong with it.)
    let out = server.cli(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("invalid config file"), "{err}");
    std::fs::write(&server.config, text).unwrap();
    assert!(server.cli_ok(&["reload"]).contains("configuration: [deposit]"));
    leave(3);
    wait_messages(&server, "1001", 2);
}
