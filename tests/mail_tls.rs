//! STARTTLS to the mail servers (issue 17): Dovecot with a certificate made at test time
//! (`ssl = yes`): `imap://` and `pop3://` upgrade and sync, SMTP submission upgrades and
//! authenticates only over TLS (aiosmtpd with STARTTLS and AUTH); a certificate from
//! another CA fails with a clear error (and works only with `tls_verify = false`, said as
//! a warning); `require_tls` refuses a server without STARTTLS.

mod common;
use common::certs::ca_and_server;
use common::phone::Phone;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn tls_dovecot(cert: &Path, key: &Path) -> Dovecot {
    Dovecot::start_with(&format!("ssl = yes\nssl_cert = <{}\nssl_key = <{}\n", cert.display(), key.display()))
}

/// A caller leaves 1.5 s of tone in `mailbox` after its greeting.
fn leave_message(server: &Server, mailbox: &str) {
    let mut caller = Phone::call(server.sip_port, "5550100", mailbox);
    std::thread::sleep(Duration::from_millis(greeting_ms(mailbox)));
    let tone = voxbridge::media::tone(440.0, 1500, 0.3);
    caller.send_audio(&voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &tone));
    caller.hang_up();
}

/// Dovecot's login lines for `user` (imap-login or pop3-login).
fn logins(dv: &Dovecot, service: &str, user: &str) -> Vec<String> {
    dv.log()
        .lines()
        .filter(|l| l.contains(service) && l.contains("Login: ") && l.contains(&format!("user=<{user}>")))
        .map(str::to_string)
        .collect()
}

#[test]
fn imap_pop3_and_smtp_upgrade_by_starttls_and_authenticate_only_encrypted() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "good");
    let dv = tls_dovecot(&cert, &key);
    let relay = SmtpRelay::start_with(
        &dv,
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap(), "--auth", "submit", "Zq7-submit"],
    );
    let server = Server::start(&format!("[mail]\nca_file = \"{}\"\n", ca.display()));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--imap", &dv.imap_url("ann")]);
    let smtp = format!("smtp://submit:Zq7-submit@127.0.0.1:{}", relay.port);
    server.cli_ok(&[
        "mailbox",
        "add",
        "1002",
        "--pin",
        "1234",
        "--pop3",
        &dv.pop3_url("cy"),
        "--smtp",
        &smtp,
        "--email",
        "cy@example.org",
    ]);

    // What is encrypted, as `status` and `config show` say it.
    let status: serde_json::Value = serde_json::from_str(&server.cli_ok(&["status", "--json"])).unwrap();
    assert!(status["encryption"]["mail"].as_str().unwrap().contains("TLS when offered"), "{status}");
    assert_eq!(status["encryption"]["mail_certificates"], "verified");
    assert!(server.cli_ok(&["config", "show"]).contains(&format!("ca_file = \"{}\"", ca.display())));
    // IMAP: a pass syncs, and Dovecot saw the login inside TLS.
    let out = server.cli(&["sync", "1001", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = logins(&dv, "imap-login", "ann");
    assert!(!l.is_empty() && l.iter().all(|l| l.contains(", TLS")), "{l:?}\n{}", dv.log());

    // SMTP: a deposit for 1002 is submitted over STARTTLS with AUTH; it lands in cy's
    // mailbox stamped so by the relay; then POP3 (STLS) retrieves it.
    leave_message(&server, "1002");
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !server.log().lines().any(|l| l.contains("delivered") && l.contains("target=smtp")) {
        let tried: Vec<String> = server.log().lines().filter(|l| l.contains("deliver")).map(str::to_string).collect();
        assert!(std::time::Instant::now() < until, "no SMTP delivery:\n{}", tried.join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // In new/, or already in cur/ when the server's own POP3 pass (a delivery triggers
    // one) has seen it.
    let delivered = || {
        ["new", "cur"]
            .iter()
            .flat_map(|d| std::fs::read_dir(dv.dir.path().join("mail/cy").join(d)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .next()
    };
    // (Read as it is found: a move from new/ to cur/ in between only means another try.)
    let mut mail = String::new();
    wait_until(Duration::from_secs(10), "the message in cy's maildir", || {
        mail = delivered().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        !mail.is_empty()
    });
    assert!(mail.contains("X-Relay-TLS: yes") && mail.contains("X-Relay-Auth: submit"), "{mail}");
    let out = server.cli(&["sync", "1002", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = logins(&dv, "pop3-login", "cy");
    assert!(!l.is_empty() && l.iter().all(|l| l.contains(", TLS")), "{l:?}\n{}", dv.log());
}

#[test]
fn an_untrusted_certificate_and_a_server_without_starttls_are_refused_clearly() {
    let certs = tempfile::tempdir().unwrap();
    let (_, cert, key) = ca_and_server(certs.path(), "good");
    let (other_ca, _, _) = ca_and_server(certs.path(), "other");
    let dv = tls_dovecot(&cert, &key);

    // Another CA: the handshake fails, the error says what to do, no login happened.
    let server = Server::configure(&format!("[mail]\nca_file = \"{}\"\n", other_ca.display()));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--imap", &dv.imap_url("ann")]);
    let out = server.cli(&["sync", "1001"]);
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !out.status.success() && err.contains("TLS handshake with 127.0.0.1 failed") && err.contains("ca_file"),
        "{err}"
    );
    assert!(logins(&dv, "imap-login", "ann").is_empty(), "no login over a connection that did not verify");

    // The same with tls_verify = false: it works, and says that nothing is checked.
    let lax = Server::configure("[mail]\ntls_verify = false\n");
    lax.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--imap", &dv.imap_url("ann")]);
    let out = lax.cli(&["sync", "1001"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_verify = false"), "{out:?}");

    // A server without STARTTLS (ssl = no): plain by default (warned), refused with
    // require_tls — before any password is sent.
    let plain = Dovecot::start();
    let strict = Server::configure("[mail]\nrequire_tls = true\n");
    strict.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--imap", &plain.imap_url("ann")]);
    strict.cli_ok(&[
        "mailbox",
        "add",
        "1002",
        "--pin",
        "1234",
        "--pop3",
        &plain.pop3_url("cy"),
        "--smtp",
        "smtp://127.0.0.1:1",
        "--email",
        "cy@example.org",
    ]);
    for mb in ["1001", "1002"] {
        let out = strict.cli(&["sync", mb]);
        let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            !out.status.success() && err.contains("offers no STARTTLS and [mail] require_tls is set"),
            "{mb}: {err}"
        );
    }
    assert!(logins(&plain, "-login", "ann").is_empty() && logins(&plain, "-login", "cy").is_empty(), "{}", plain.log());
    // A submission server that would take AUTH over plain text: the password is not
    // sent, the message waits in the outbox, nothing arrives.
    let careless = SmtpRelay::start_with(&plain, &["--auth", "submit", "Zq7-submit", "--auth-over-plain"]);
    let sender = Server::start("");
    let smtp = format!("smtp://submit:Zq7-submit@127.0.0.1:{}", careless.port);
    sender.cli_ok(&[
        "mailbox",
        "add",
        "1003",
        "--pin",
        "1234",
        "--pop3",
        &plain.pop3_url("dee"),
        "--smtp",
        &smtp,
        "--email",
        "dee@example.org",
    ]);
    leave_message(&sender, "1003");
    wait_until(Duration::from_secs(20), "the refused delivery", || sender.log().contains("delivery failed"));
    let failed = sender.log().lines().find(|l| l.contains("delivery failed")).unwrap().to_string();
    assert!(failed.to_ascii_lowercase().contains("tls"), "{failed}");
    let arrived = std::fs::read_dir(plain.dir.path().join("mail/dee/new")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(arrived, 0, "nothing delivered");
    assert!(failed.contains("the password is not sent"), "{failed}");

    let easy = Server::configure("");
    easy.cli_ok(&["mailbox", "add", "1001", "--pin", "1234", "--imap", &plain.imap_url("ann")]);
    let out = easy.cli(&["sync", "1001"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offers no STARTTLS: logging in over plain text"), "{out:?}");
}

#[test]
fn a_missing_ca_file_stops_the_server_but_not_the_commands_that_find_the_mistake() {
    let mut server = Server::configure("[mail]\nca_file = \"/nonexistent/ca.pem\"\n");
    let out = server.cli(&["config", "show"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[mail] ca_file: cannot read /nonexistent/ca.pem"),
        "{out:?}"
    );
    let serve = Command::new(bin()).args(["serve", "--config"]).arg(&server.config).output().unwrap();
    assert!(!serve.status.success(), "the server does not start");
    assert!(String::from_utf8_lossy(&serve.stderr).contains("cannot read /nonexistent/ca.pem"), "{serve:?}");
    assert!(!server.is_running());
}
