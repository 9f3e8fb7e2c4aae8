//! Unsolicited message-waiting NOTIFYs to a configured phone (no SUBSCRIBE): the state is
//! sent at start-up and again at every change.

mod common;
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

/// Receives the next new NOTIFY (answering every copy 200; a retransmission of one
/// already seen — same Call-ID — is absorbed, as a phone does) and returns its body.
fn next_notify(phone: &UdpSocket, seen: &mut Vec<String>) -> String {
    let mut buf = [0u8; 8192];
    loop {
        let (n, from) = phone.recv_from(&mut buf).expect("a NOTIFY within the timeout");
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        if !msg.starts_with("NOTIFY ") {
            continue;
        }
        let headers: String = msg
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| ["Via:", "From:", "To:", "Call-ID:", "CSeq:"].iter().any(|h| l.starts_with(h)))
            .map(|l| format!("{l}\r\n"))
            .collect();
        phone.send_to(format!("SIP/2.0 200 OK\r\n{headers}Content-Length: 0\r\n\r\n").as_bytes(), from).unwrap();
        assert!(msg.contains("Event: message-summary"), "{msg}");
        let call_id = msg.lines().find(|l| l.starts_with("Call-ID:")).unwrap_or_default().to_string();
        if seen.contains(&call_id) {
            continue;
        }
        seen.push(call_id);
        return msg[msg.find("\r\n\r\n").unwrap() + 4..].to_string();
    }
}

#[test]
fn a_configured_phone_gets_the_state_at_start_up_and_on_every_change() {
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    phone.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let port = phone.local_addr().unwrap().port();
    let mut server = Server::configure(&format!(
        "[mwi]\nrecheck_secs = 2.0\n[[mwi.phone]]\nmailbox = \"4701\"\nuri = \"sip:4701@127.0.0.1:{port}\"\n"
    ));
    server.cli_ok(&["mailbox", "add", "4701", "--pin", "1234"]);
    server.run();
    let mut seen = Vec::new();
    let body = next_notify(&phone, &mut seen);
    assert!(body.contains("Messages-Waiting: no") && body.contains("Voice-Message: 0/0"), "{body}");
    assert!(body.contains("Message-Account: sip:4701@"), "{body}");

    let run = sipp(&server, "uac_deposit.xml", &[], "4701", greeting_ms("4701") + 4000, "udp");
    assert!(run.ok, "deposit failed:\n{}", run.output);
    let body = next_notify(&phone, &mut seen);
    assert!(body.contains("Messages-Waiting: yes") && body.contains("Voice-Message: 1/0"), "{body}");

    // A restart re-sends the state: the phone may have missed everything meanwhile.
    assert!(server.stop());
    server.run();
    let body = next_notify(&phone, &mut seen);
    assert!(body.contains("Voice-Message: 1/0"), "{body}");

    // Read (by the CLI, as another process): the next periodic re-check turns it off.
    let id = server.messages("4701")[0]["id"].as_i64().unwrap().to_string();
    server.cli_ok(&["messages", "mark", "4701", &id, "read"]);
    let body = next_notify(&phone, &mut seen);
    assert!(body.contains("Messages-Waiting: no") && body.contains("Voice-Message: 0/1"), "{body}");
}

/// A SUBSCRIBE from `sock` for `mailbox`, with `auth` as its Authorization.
fn subscribe(sock: &UdpSocket, port: u16, mailbox: &str, cseq: u32, auth: Option<&str>) {
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "SUBSCRIBE sip:{mailbox}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsub{cseq}{mailbox}\r\n\
         From: <sip:{mailbox}@127.0.0.1>;tag=ph{mailbox}\r\nTo: <sip:{mailbox}@127.0.0.1:{port}>\r\nCall-ID: sub-{mailbox}@{me}\r\n\
         CSeq: {cseq} SUBSCRIBE\r\nContact: <sip:phone@{me}>\r\nEvent: message-summary\r\nExpires: 600\r\n{}\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
    );
    sock.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
}

/// The next response (skipping NOTIFYs, which are answered).
fn next_response(sock: &UdpSocket) -> String {
    let mut buf = [0u8; 8192];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a response");
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        if msg.starts_with("SIP/2.0 ") {
            return msg;
        }
    }
}

#[test]
fn a_subscription_needs_the_mailboxs_sip_password_set_by_the_cli() {
    let mut server = Server::configure("");
    server.cli_ok(&["mailbox", "add", "4702", "--pin", "1234"]);
    server.run();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = server.sip_port;

    // No password set, no credentials sent: challenged, nothing revealed.
    subscribe(&sock, port, "4702", 1, None);
    let r = next_response(&sock);
    assert!(r.starts_with("SIP/2.0 401 Unauthorized"), "{r}");
    assert!(!r.contains("Messages-Waiting"), "{r}");
    let challenge = r.lines().find_map(|l| l.strip_prefix("WWW-Authenticate: ")).expect("a challenge").to_string();
    assert!(challenge.contains("algorithm=SHA-256"), "SHA-256 offered first: {challenge}");

    // The CLI sets a password while the server runs; it takes effect within seconds.
    let secret = server.dir.path().join("pw");
    std::fs::write(&secret, "correct horse battery\n").unwrap();
    let out = server.cli_ok(&["mailbox", "set", "4702", "--sip-password-file", secret.to_str().unwrap()]);
    assert!(out.contains("SIP password set"), "{out}");
    wait_until(Duration::from_secs(10), "the credentials reloaded", || {
        server.log().contains("SIP credentials reloaded")
    });
    let uri = format!("sip:4702@127.0.0.1:{port}");
    let wrong = voxbridge::sip::digest::answer(&challenge, "SUBSCRIBE", &uri, "4702", "wrong horse", 1).unwrap();
    subscribe(&sock, port, "4702", 2, Some(&wrong));
    assert!(next_response(&sock).starts_with("SIP/2.0 403"));
    let right =
        voxbridge::sip::digest::answer(&challenge, "SUBSCRIBE", &uri, "4702", "correct horse battery", 2).unwrap();
    subscribe(&sock, port, "4702", 3, Some(&right));
    let ok = next_response(&sock);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let mut seen = Vec::new();
    let body = next_notify(&sock, &mut seen);
    assert!(body.contains("Voice-Message: 0/0"), "{body}");

    // Short passwords and missing files are refused with a clear message.
    std::fs::write(&secret, "short\n").unwrap();
    let o = server.cli(&["mailbox", "set", "4702", "--sip-password-file", secret.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("at least 8 characters"));
    let o = server.cli(&["mailbox", "set", "4702", "--sip-password-file", "/nonexistent/pw"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("cannot read the SIP password file"));
}
