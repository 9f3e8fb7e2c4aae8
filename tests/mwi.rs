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
