//! What voxbridge answers to calls it must refuse and to hostile SIP.

mod common;
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

fn refused(server: &Server, service: &str, status: &str, formats: &str, rtpmap: &str) -> SippRun {
    sipp(server, "uac_refused.xml", &[("STATUS", status), ("FORMATS", formats), ("RTPMAP", rtpmap)], service, 0, "udp")
}

#[test]
fn unknown_mailbox_gets_404_and_unshared_codec_gets_488() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "2001", "--pin", "1234"]);
    let r = refused(&server, "2999", "404", "0", "a=rtpmap:0 PCMU/8000");
    assert!(r.ok, "expected 404:\n{}\n{}", r.output, r.messages);
    let r = refused(&server, "2001", "488", "18", "a=rtpmap:18 G729/8000");
    assert!(r.ok, "expected 488:\n{}\n{}", r.output, r.messages);
    assert!(r.messages.contains("no audio stream with PCMU or PCMA"), "reason phrase says why:\n{}", r.messages);
    // And the same mailbox with a shared codec would be answered: the 404 was not a fluke.
    let r = refused(&server, "2001", "404", "0", "a=rtpmap:0 PCMU/8000");
    assert!(!r.ok, "a known mailbox must not get 404");
}

const ACK_ANSWER: &str = "Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 0 96
a=rtpmap:0 PCMU/8000
a=rtpmap:96 telephone-event/8000
";

/// Talks (audio.ulaw) for sipp's -d ms, stops, and presses #.
const TALK_THEN_HASH: &str = r##"<nop><action><exec rtp_stream="audio.ulaw,-1,0"/></action></nop>
  <pause/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <nop><action><exec play_dtmf="#"/></action></nop>"##;

#[test]
fn delayed_offer_gets_our_offer_in_the_200_and_uses_the_answer_in_the_ack() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "2005", "--pin", "1234"]);
    // The INVITE has no SDP: voxbridge offers (checked by the scenario), the ACK answers
    // PCMU with telephone-event 96; the caller talks for 3 s and presses #.
    let speak = 3000;
    let r = sipp(
        &server,
        "uac_delayed_offer.xml",
        &[("ACK_BODY", ACK_ANSWER), ("MEDIA", TALK_THEN_HASH)],
        "2005",
        greeting_ms("2005") + speak,
        "udp",
    );
    assert!(r.ok, "delayed-offer deposit failed:\n{}\n{}\n{}", r.output, r.messages, server.log());
    let m = server.messages("2005");
    assert_eq!(m.len(), 1, "the message was recorded");
    let dur = m[0]["duration_ms"].as_i64().unwrap();
    assert!((dur - speak as i64).abs() <= 250, "recorded {dur} ms of {speak} ms spoken (and # ended it)");
    let log = server.log();
    assert!(log.contains("offer=\"ours, answered in the ACK\""), "{log}");
    assert!(log.contains("reason=Key"), "# (telephone-event 96, from the answer) ended the recording:\n{log}");

    // An ACK without an answer: no session can start, so voxbridge hangs up at once.
    let r =
        sipp(&server, "uac_delayed_offer.xml", &[("ACK_BODY", "Content-Length: 0\n"), ("MEDIA", "")], "2005", 0, "udp");
    assert!(r.ok, "expected a BYE after an ACK without SDP:\n{}\n{}\n{}", r.output, r.messages, server.log());
    assert!(server.log().contains("no usable SDP answer in the ACK"), "{}", server.log());
    assert_eq!(server.messages("2005").len(), 1, "nothing recorded from the failed call");
}

#[test]
fn cancel_before_answer_gets_487() {
    let server = Server::start("[sip]\nring_ms = 5000\n");
    server.cli_ok(&["mailbox", "add", "2002", "--pin", "1234"]);
    let r = sipp(&server, "uac_cancel.xml", &[], "2002", 0, "udp");
    assert!(r.ok, "CANCEL flow failed:\n{}\n{}\n{}", r.output, r.messages, server.log());
    assert!(server.messages("2002").is_empty());
}

fn udp_exchange(sock: &UdpSocket, port: u16, msg: &[u8]) -> Option<String> {
    sock.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 65536];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        Err(_) => None,
    }
}

fn request(method: &str, branch: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:2003@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch}\r\n\
From: <sip:x@127.0.0.1>;tag=a\r\nTo: <sip:2003@127.0.0.1>\r\nCall-ID: {branch}@t\r\nCSeq: 1 {method}\r\n\
Max-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn malformed_sip_gets_400_or_is_dropped_and_the_server_survives() {
    let mut server = Server::start("");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let p = server.sip_port;

    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (request("OPTIONS", "1", "", "").into_bytes(), Some("SIP/2.0 200 OK")),
        (
            request("OPTIONS", "2", "", "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE").into_bytes(),
            Some("SIP/2.0 400 CSeq Method Does Not Match Request"),
        ),
        (
            request("OPTIONS", "3", "", "").replace("Call-ID: 3@t\r\n", "").into_bytes(),
            Some("SIP/2.0 400 Missing Call-ID Header"),
        ),
        (
            request("OPTIONS", "4", "", "").replace("Content-Length: 0", "Content-Length: 99").into_bytes(),
            Some("SIP/2.0 400 Content-Length Larger Than Body"),
        ),
        (request("OPTIONS", "5", "", "").replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia").into_bytes(), Some("SIP/2.0 505")),
        (request("BREW", "6", "", "").into_bytes(), Some("SIP/2.0 501 Not Implemented")),
        (
            request("INVITE", "7", "", "").replace("<sip:x@127.0.0.1>", "\"unbalanced <sip:x@127.0.0.1>").into_bytes(),
            Some("SIP/2.0 400 Unbalanced Quotes"),
        ),
        (
            request("BYE", "8", "", "")
                .replace("To: <sip:2003@127.0.0.1>", "To: <sip:2003@127.0.0.1>;tag=zz")
                .into_bytes(),
            Some("SIP/2.0 481"),
        ),
        (b"\x00\x01\x02garbage".to_vec(), None),
        (b"INVITE sip:x SIP/2.0\r\n\r\n".to_vec(), None),
        (vec![b'A'; 65_000], None),
        (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKnope\r\nCSeq: 1 BYE\r\n\r\n".to_vec(), None),
    ];
    for (msg, want) in &cases {
        let got = udp_exchange(&sock, p, msg);
        match (want, &got) {
            (Some(w), Some(g)) => assert!(
                g.starts_with(w),
                "sent {:?}\nwanted {w}\ngot {g}",
                String::from_utf8_lossy(&msg[..msg.len().min(80)])
            ),
            (None, None) => {}
            _ => panic!("sent {:?}: wanted {want:?}, got {got:?}", String::from_utf8_lossy(&msg[..msg.len().min(80)])),
        }
    }
    // An INVITE whose SDP is garbage: answered (488), not a crash.
    let r = udp_exchange(
        &sock,
        p,
        request("INVITE", "9", "Content-Type: application/sdp\r\n", "v=0\r\nm=audio notaport RTP/AVP 0\r\n").as_bytes(),
    );
    assert!(r.as_deref().unwrap_or("").starts_with("SIP/2.0 100 Trying"), "{r:?}");
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 404"),
        "unknown mailbox 2003 is refused before the SDP is read"
    );

    // TCP: a stream that cannot be framed is closed; the server keeps answering.
    use std::io::{Read, Write};
    let mut t = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    t.write_all(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: banana\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = t.read_to_end(&mut rest);
    let mut t = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    t.write_all(request("OPTIONS", "10", "", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP").as_bytes()).unwrap();
    let mut buf = [0u8; 2048];
    let n = t.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200 OK"));

    assert!(server.is_running(), "server crashed:\n{}", server.log());
    assert!(udp_exchange(&sock, p, request("OPTIONS", "11", "", "").as_bytes()).unwrap().starts_with("SIP/2.0 200 OK"));
    assert!(server.stop(), "graceful stop on SIGTERM");
}

/// Everything the server sends on `t` until it closes the connection or `within` passes.
fn read_until_closed(t: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read;
    let end = std::time::Instant::now() + within;
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    while std::time::Instant::now() < end {
        t.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match t.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&got).into(), false)
}

#[test]
fn over_tcp_an_undelimitable_message_is_answered_and_a_half_closed_caller_still_hears_back() {
    use std::io::Write;
    use std::net::{Shutdown, TcpStream};
    let server = Server::start("");
    let connect = || TcpStream::connect(("127.0.0.1", server.sip_port)).unwrap();
    // Two Content-Lengths: where the message ends is unknowable, so the head is answered
    // and the stream closed (RFC 4475 §3.3.9; it used to close without a word).
    let mut t = connect();
    t.write_all(
        request("OPTIONS", "tcp1", "Content-Length: 13\r\n", "")
            .replace("Via: SIP/2.0/UDP", "Via: SIP/2.0/TCP")
            .as_bytes(),
    )
    .unwrap();
    let (got, closed) = read_until_closed(&mut t, Duration::from_secs(3));
    assert!(got.starts_with("SIP/2.0 400 Conflicting Content-Length Headers\r\n") && closed, "{got:?} closed={closed}");
    // A head without its blank line, then the caller shuts its side: answered all the same.
    let mut t = connect();
    let head = request("OPTIONS", "tcp2", "", "");
    t.write_all(head.strip_suffix("\r\n").unwrap().as_bytes()).unwrap();
    t.shutdown(Shutdown::Write).unwrap();
    let (got, _) = read_until_closed(&mut t, Duration::from_secs(3));
    assert!(got.starts_with("SIP/2.0 200 OK\r\n"), "{got:?}");
    // An INVITE and a half-close at once: the final answer comes after routing, and still
    // reaches the caller (here 404: there is no such mailbox).
    let mut t = connect();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    t.write_all(request("INVITE", "tcp3", "Content-Type: application/sdp\r\n", sdp).as_bytes()).unwrap();
    t.shutdown(Shutdown::Write).unwrap();
    let (got, _) = read_until_closed(&mut t, Duration::from_secs(5));
    assert!(got.contains("SIP/2.0 404 "), "{got:?}\n{}", server.log());
}
