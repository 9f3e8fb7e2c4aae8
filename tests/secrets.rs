//! Secrets stay secret (issue 16): a PIN and mail, SMTP and SIP passwords given through
//! standard input or files are not on any command line (`ps`), and none appears in the
//! server's log — at debug level for every crate, through logins, deliveries, failing
//! accounts and a phone login — nor in any command's output or `--json`.

mod common;
use common::phone::Phone;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const IMAP_PW: &str = "Zq7imap-s3cr!t";
const DEAD_PW: &str = "Zq7dead-pw";
const SMTP_PW: &str = "Zq7smtp-pw";
const RELAY_PW: &str = "Zq7relay-pw";
const SIP_PW: &str = "Zq7sip-password";
const PIN: &str = "97531";

/// Each secret as it could show: itself, and percent-encoded in a URL.
fn forms() -> Vec<String> {
    let mut out = Vec::new();
    for s in [IMAP_PW, DEAD_PW, SMTP_PW, RELAY_PW, SIP_PW] {
        out.push(s.to_string());
        out.push(s.replace(' ', "%20").replace('!', "%21"));
    }
    out
}

fn assert_clean(what: &str, text: &str) {
    for f in forms() {
        assert!(!text.contains(&f), "{what} shows the secret {f:?}:\n{text}");
    }
    // The PIN as a string (digits pressed one by one are logged singly, if at all).
    assert!(!text.contains(PIN), "{what} shows the PIN:\n{text}");
}

#[test]
fn no_secret_in_ps_logs_or_any_output() {
    // Dovecot takes the test password and, for ann, IMAP_PW as well.
    let dv = Dovecot::start_with(&format!("passdb {{\n  driver = static\n  args = password={IMAP_PW}\n}}\n"));
    let mut server = Server::configure(&format!(
        "[delivery]\nsmtp_url = \"smtp://relay:{RELAY_PW}@127.0.0.1:1\"\nretry_initial_secs = 0.5\nretry_max_secs = 1.0\n\n[sync]\npoll_secs = 1.0\nbackoff_initial_secs = 0.5\n"
    ));
    server.env.push(("VOXBRIDGE_LOG".into(), "debug".into()));
    let files = server.dir.path();
    for (name, secret) in [("imap.pw", IMAP_PW), ("dead.pw", DEAD_PW), ("smtp.pw", SMTP_PW), ("sip.pw", SIP_PW)] {
        std::fs::write(files.join(name), format!("{secret}\n")).unwrap();
    }
    let file = |name: &str| files.join(name).to_str().unwrap().to_string();
    let cli = |args: &[&str], stdin: &str| {
        let mut child = Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&server.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // While it waits for its standard input: what `ps` sees.
        std::thread::sleep(Duration::from_millis(100));
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
        assert_clean(&format!("ps of {args:?}"), &String::from_utf8_lossy(&cmdline));
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_clean(&format!("{args:?}"), &text);
        text
    };
    let imap = format!("imap://ann@127.0.0.1:{}/INBOX", dv.imap);
    cli(
        &["mailbox", "add", "1001", "--pin", "-", "--imap", &imap, "--password-file", &file("imap.pw")],
        &format!("{PIN}\n"),
    );
    cli(&["mailbox", "set", "1001", "--sip-password-file", "-"], &format!("{SIP_PW}\n"));
    // An account whose server is down (it fails, and says so everywhere), one that
    // delivers by SMTP to a relay that is not there.
    cli(
        &[
            "mailbox",
            "add",
            "1002",
            "--pin",
            "-",
            "--imap",
            "imap://bob@127.0.0.1:1/INBOX",
            "--password-file",
            &file("dead.pw"),
        ],
        "2468\n",
    );
    cli(
        &[
            "mailbox",
            "add",
            "1003",
            "--pin",
            "-",
            "--email",
            "cy@example.org",
            "--smtp",
            "smtp://cy@127.0.0.1:1",
            "--password-file",
            &file("smtp.pw"),
        ],
        "1357\n",
    );
    server.run();

    // A message for each: 1001's is appended over IMAP (a login with the password),
    // 1003's delivery fails and is retried.
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 1500, 0.3));
    for mb in ["1001", "1003"] {
        let mut caller = Phone::call(server.sip_port, "5550100", mb);
        std::thread::sleep(Duration::from_millis(greeting_ms(mb)));
        caller.send_audio(&voice);
        caller.hang_up();
    }
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log();
        if log.contains("delivered") && log.matches("delivery failed").count() >= 2 {
            break;
        }
        let about: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("deliver") || l.contains("WARN") || l.contains("saved") || l.contains("deposit"))
            .collect();
        assert!(
            std::time::Instant::now() < until,
            "no delivery and failed delivery:\n{}\n{}",
            about.join("\n"),
            dv.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The subscriber logs in by phone with the PIN.
    let mut p = Phone::call(server.sip_port, "1001", "*98");
    std::thread::sleep(Duration::from_millis(300));
    p.keys(PIN, Duration::from_millis(60));
    let t = p.press('#');
    p.first_marker_after(t, Duration::from_secs(10)).expect("the counts after login");
    p.hang_up();
    wait_until(Duration::from_secs(10), "the phone login", || server.log().contains("result=Ok"));
    wait_until(Duration::from_secs(20), "1002's account failing", || {
        server.cli_ok(&["sync-log", "--json"]).contains("\"failures\":") && server.log().contains("sync pass failed")
    });

    for args in [
        &["status", "--json"][..],
        &["status"],
        &["sync", "1001", "--json"],
        &["sync-log", "--json"],
        &["sync-log"],
        &["config", "show"],
        &["config", "show", "--json"],
        &["mailbox", "list", "--json"],
        &["mailbox", "list"],
        &["mailbox", "show", "1001", "--json"],
        &["mailbox", "show", "1002"],
        &["mailbox", "show", "1003", "--json"],
        &["messages", "list", "1003", "--json"],
        &["messages", "list", "1001"],
    ] {
        let out = server.cli(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_clean(&format!("{args:?}"), &text);
    }
    // The accounts are shown, their passwords masked.
    assert!(server.cli_ok(&["config", "show"]).contains("smtp://relay:***@127.0.0.1:1"));
    assert!(server.cli_ok(&["mailbox", "show", "1002"]).contains("imap://bob:***@127.0.0.1:1/INBOX"));
    let out = server.cli(&["sync", "--all", "--json"]);
    assert!(!out.status.success(), "1002 fails");
    assert_clean(
        "sync --all",
        &format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    );
    server.stop();
    let log = server.log();
    assert!(log.lines().count() > 50, "a debug log: {log}");
    assert_clean("the server's log", &log);
}
