//! The mailbox menu by phone (sipp with RFC 4733 keys) against a real Dovecot: what a
//! subscriber does by phone reaches their mail client through the sync engine.

mod common;
use common::*;
use std::time::Duration;

/// sipp steps after the call is up: press `keys` (RFC 4733), then wait `ms` more once
/// they are sent. sipp sends a digit every ~400 ms and a new `play_dtmf` cuts the one
/// still playing, so each step waits for its own digits first.
fn steps(list: &[(&str, u64)]) -> String {
    let mut s = String::from("  <pause milliseconds=\"1500\"/>\n");
    for (keys, ms) in list {
        if !keys.is_empty() {
            s += &format!("  <nop><action><exec play_dtmf=\"{keys}\"/></action></nop>\n");
        }
        s += &format!("  <pause milliseconds=\"{}\"/>\n", 400 * keys.len() as u64 + 900 + ms);
    }
    s
}

/// The caller hangs up.
const CALLER_HANGS_UP: &str = r#"  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>"#;

/// The server hangs up.
const SERVER_HANGS_UP: &str = r#"  <recv request="BYE" timeout="30000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"#;

fn call(server: &Server, caller: &str, service: &str, keys: &[(&str, u64)], end: &str) {
    let end = end.replace("@CALLER@", caller);
    let run =
        sipp(server, "uac_menu.xml", &[("CALLER", caller), ("STEPS", &steps(keys)), ("END", &end)], service, 0, "udp");
    assert!(run.ok, "sipp failed:\n{}\n{}\n--- server log ---\n{}", run.output, run.messages, server.log());
}

#[test]
fn a_message_heard_by_phone_is_seen_in_the_mail_client_and_a_deleted_one_is_expunged() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4101", "--pin", "1234", "--imap", &dv.imap_url("gus")]);
    let mut client = MailClient::connect(&dv, "gus", "INBOX");
    let uid = client.append("INBOX", "<hello@example.test>", "Hello by phone");
    server.cli_ok(&["sync", "4101"]);
    assert_eq!(server.messages("4101")[0]["state"], "U");

    // Caller ID 4101 is the mailbox: PIN, 1 (listen), hear the envelope and the message.
    call(&server, "4101", "*98", &[("1234#", 500), ("1", 12000)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(15), "\\Seen in Dovecot", || client.flags() == vec![(uid, true, false)]);
    assert_eq!(server.messages("4101")[0]["state"], "R");
    let log = server.log();
    assert!(log.contains("message changed by phone"), "{log}");

    // From another phone: mailbox number, PIN, listen, 7 (delete), hang up → purged.
    call(&server, "5559999", "8500", &[("4101#", 0), ("1234#", 500), ("1", 1000), ("7", 500)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(15), "expunged in Dovecot", || client.flags().is_empty());
    wait_until(Duration::from_secs(5), "the row gone", || server.messages("4101").is_empty());
}

#[test]
fn wrong_pins_hang_up_and_lock_the_mailbox_across_calls() {
    let server = Server::start("[menu]\nmax_login_attempts = 3\nlockout_secs = 600\n");
    server.cli_ok(&["mailbox", "add", "4102", "--pin", "1234"]);
    // Two wrong PINs in one call, then the caller gives up.
    call(&server, "4102", "*98", &[("1111#", 0), ("4102#", 0), ("2222#", 1500)], CALLER_HANGS_UP);
    assert!(!server.log().contains("mailbox locked"), "two wrong PINs do not lock");
    // The third wrong PIN, in another call, locks it; the server says goodbye.
    call(&server, "4102", "*98", &[("3333#", 0)], SERVER_HANGS_UP);
    wait_until(Duration::from_secs(5), "the lock logged", || server.log().contains("mailbox locked after wrong PINs"));
    // Now even the right PIN is refused until the lock expires.
    call(&server, "4102", "*98", &[("1234#", 0)], SERVER_HANGS_UP);
    wait_until(Duration::from_secs(5), "the refusal logged", || server.log().contains("login refused: mailbox locked"));
    assert!(!server.log().contains("result=Ok"), "no login succeeded");
}
