//! Endpoint tests on a virtual clock: no sockets, no sleeps.

use super::*;
use crate::sip::msg::header_param;
use std::time::Duration;

fn ep() -> Endpoint {
    Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap(), "test"))
}

/// An endpoint that takes requests about mailboxes from 127.0.0.0/8 without digest
/// (a trusted trunk), for the tests of what comes after authentication.
fn ep_trusting_loopback() -> Endpoint {
    let mut cfg = EndpointConfig::new("127.0.0.1:5060".parse().unwrap(), "test");
    cfg.access.trunks.push(crate::sip::access::Trunk {
        name: "lo".into(),
        networks: vec!["127.0.0.0/8".parse().unwrap()],
        credentials: None,
        trusted: true,
        redirection: None,
    });
    Endpoint::new(cfg)
}

fn udp() -> Peer {
    Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Udp }
}

fn invite(branch: &str, call_id: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: \"Al\" <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn status_lines(ep: &mut Endpoint) -> Vec<String> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| String::from_utf8_lossy(&t.bytes).lines().next().unwrap_or("").to_string())
        .collect()
}

fn incoming(ep: &mut Endpoint) -> IncomingCall {
    match ep.poll_event() {
        Some(Event::IncomingCall(c)) => *c,
        other => panic!("expected IncomingCall, got {other:?}"),
    }
}

fn to_tag(ep: &mut Endpoint) -> String {
    let t = ep.poll_transmit().expect("a response");
    let raw = crate::sip::frame::RawMessage::parse(&t.bytes).unwrap();
    header_param(raw.header("To").unwrap(), "tag").unwrap().to_string()
}

#[test]
fn invite_answer_ack_bye() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bK1", "c1").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    let call = incoming(&mut e);
    assert_eq!(call.dialled, "100");
    assert_eq!(call.caller.as_deref(), Some("5551234"));
    assert!(String::from_utf8_lossy(&call.offer).contains("m=audio 6000"));

    e.answer(t0, call.call, b"v=0\r\n");
    let tag = to_tag(&mut e);
    // The 200 is retransmitted at T1, 2*T1... until the ACK.
    assert_eq!(e.poll_timeout(), Some(t0 + T1));
    e.handle_timeout(t0 + T1);
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    // A retransmitted INVITE in the Accepted state is absorbed (RFC 6026).
    e.handle_input(t0 + T1, udp(), invite("z9hG4bK1", "c1").as_bytes());
    assert!(e.poll_event().is_none());

    let ack = format!(
        "ACK sip:voxbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n\
From: <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\nCall-ID: c1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    e.handle_input(t0 + T1, udp(), ack.as_bytes());
    assert!(
        matches!(e.poll_event(), Some(Event::Confirmed { call: h, answer }) if h == call.call && answer.is_empty())
    );
    e.handle_timeout(t0 + T1 * 10);
    assert!(status_lines(&mut e).is_empty(), "no retransmission after ACK");

    let bye = ack.replace("ACK sip", "BYE sip").replace("1 ACK", "2 BYE").replace("z9hG4bK2", "z9hG4bK3");
    e.handle_input(t0 + T1 * 10, udp(), bye.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    assert!(matches!(e.poll_event(), Some(Event::RemoteHangup(h)) if h == call.call));
    assert_eq!(e.active_calls(), 0);
    // The same BYE again: the transaction answers from memory.
    e.handle_input(t0 + T1 * 11, udp(), bye.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    assert!(e.poll_event().is_none());
}

#[test]
fn cancel_before_answer_gets_487() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bKc", "c2").as_bytes());
    let call = incoming(&mut e);
    e.provisional(t0, call.call, 180, "Ringing");
    status_lines(&mut e);
    let cancel = "CANCEL sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc\r\n\
From: \"Al\" <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c2\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    e.handle_input(t0, udp(), cancel.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"][1..]);
    assert!(matches!(e.poll_event(), Some(Event::Cancelled(_))));
    // The 487 is retransmitted until its ACK.
    e.handle_timeout(t0 + T1);
    assert_eq!(status_lines(&mut e), ["SIP/2.0 487 Request Terminated"]);
    // Answering a cancelled call does nothing.
    e.answer(t0 + T1, call.call, b"v=0\r\n");
    assert!(status_lines(&mut e).is_empty());
    // CANCEL for an unknown transaction: 481.
    e.handle_input(t0, udp(), cancel.replace("z9hG4bKc", "z9hG4bKzz").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 481 Call/Transaction Does Not Exist"]);
}

#[test]
fn reject_and_unknown_dialog_and_methods() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bK9", "c3").as_bytes());
    let call = incoming(&mut e);
    status_lines(&mut e);
    e.reject(t0, call.call, 404, "Not Found");
    assert_eq!(status_lines(&mut e), ["SIP/2.0 404 Not Found"]);
    assert_eq!(e.active_calls(), 0);

    let bye = "BYE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb\r\n\
From: <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>;tag=nope\r\nCall-ID: zz\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    e.handle_input(t0, udp(), bye.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 481 Call/Transaction Does Not Exist"]);

    let opt = bye.replace("BYE", "OPTIONS").replace(";tag=nope", "").replace("z9hG4bKb", "z9hG4bKo");
    e.handle_input(t0, udp(), opt.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    let unk = bye.replace("BYE", "FROB").replace(";tag=nope", "").replace("z9hG4bKb", "z9hG4bKu");
    e.handle_input(t0, udp(), unk.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 501 Not Implemented"]);
    let sub = bye.replace("BYE", "MESSAGE").replace(";tag=nope", "").replace("z9hG4bKb", "z9hG4bKm");
    e.handle_input(t0, udp(), sub.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 405 Method Not Allowed"]);
    let req = invite("z9hG4bKr", "c4").replace("Max-Forwards", "Require: 100rel\r\nMax-Forwards");
    e.handle_input(t0, udp(), req.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 420 Bad Extension"]);
    e.handle_input(t0, udp(), b"\x00\x01garbage");
    assert!(status_lines(&mut e).is_empty(), "unaddressable garbage is dropped");
}

#[test]
fn our_bye_is_retransmitted_and_answered() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bK5", "c5").as_bytes());
    let call = incoming(&mut e);
    status_lines(&mut e);
    e.answer(t0, call.call, b"v=0\r\n");
    status_lines(&mut e);
    e.hangup(t0, call.call);
    let bye = e.poll_transmit().unwrap();
    let text = String::from_utf8(bye.bytes.clone()).unwrap();
    assert!(text.starts_with("BYE sip:a@127.0.0.1:5070 SIP/2.0"), "{text}");
    assert!(text.contains("To: \"Al\" <sip:5551234@127.0.0.1>;tag=ft"));
    e.handle_timeout(t0 + T1);
    assert!(e.poll_transmit().unwrap().bytes.starts_with(b"BYE"));
    // Answer it.
    let raw = crate::sip::frame::RawMessage::parse(&bye.bytes).unwrap();
    let ok = build_response(&raw, 200, "OK", None, &[], None);
    e.handle_input(t0 + T1, udp(), &ok);
    assert!(matches!(e.poll_event(), Some(Event::Ended { .. })));
    assert_eq!(e.active_calls(), 0);
}

#[test]
fn missing_ack_ends_call_with_bye() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bK6", "c6").as_bytes());
    let call = incoming(&mut e);
    e.answer(t0, call.call, b"v=0\r\n");
    let mut now = t0;
    while now < t0 + Duration::from_secs(40) {
        match e.poll_timeout() {
            Some(t) => now = t,
            None => break,
        }
        e.handle_timeout(now);
        if let Some(Event::Ended { reason, .. }) = e.poll_event() {
            assert!(reason.contains("no ACK"));
            assert!(std::iter::from_fn(|| e.poll_transmit()).any(|t| t.bytes.starts_with(b"BYE")));
            return;
        }
        status_lines(&mut e);
    }
    panic!("call never ended");
}

#[test]
fn refer_then_bye_once_accepted() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), invite("z9hG4bK7", "c7").as_bytes());
    let call = incoming(&mut e);
    status_lines(&mut e);
    e.answer(t0, call.call, b"v=0\r\n");
    status_lines(&mut e);
    e.refer(t0, call.call, "sip:op@127.0.0.1");
    let refer = e.poll_transmit().unwrap();
    let text = String::from_utf8(refer.bytes.clone()).unwrap();
    assert!(text.starts_with("REFER sip:a@127.0.0.1:5070 SIP/2.0"), "{text}");
    assert!(text.contains("Refer-To: <sip:op@127.0.0.1>"));
    assert!(text.contains(" REFER\r\n"), "CSeq method");
    // The caller's NOTIFY about the transfer is answered.
    let raw = crate::sip::frame::RawMessage::parse(&refer.bytes).unwrap();
    let tag = header_param(raw.header("From").unwrap(), "tag").unwrap().to_string();
    let notify = format!(
        "NOTIFY sip:voxbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKn\r\n\
From: <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\nCall-ID: c7\r\nCSeq: 2 NOTIFY\r\n\
Event: refer\r\nContent-Length: 0\r\n\r\n"
    );
    e.handle_input(t0, udp(), notify.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    let accepted = build_response(&raw, 202, "Accepted", None, &[], None);
    e.handle_input(t0, udp(), &accepted);
    let bye = e.poll_transmit().expect("BYE after the transfer is accepted");
    assert!(bye.bytes.starts_with(b"BYE "));
}

fn subscribe(branch: &str, event: &str, expires: Option<u32>, to_tag: Option<&str>) -> String {
    format!(
        "SUBSCRIBE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:1000@127.0.0.1>;tag=pt\r\nTo: <sip:1000@127.0.0.1>{}\r\nCall-ID: s1\r\nCSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:phone@127.0.0.1:5070>\r\nEvent: {event}\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        to_tag.map(|t| format!(";tag={t}")).unwrap_or_default(),
        expires.map(|e| format!("Expires: {e}\r\n")).unwrap_or_default(),
    )
}

#[test]
fn subscribe_to_message_summary_then_notify_refresh_unsubscribe() {
    let t0 = Instant::now();
    let mut e = ep_trusting_loopback();
    e.handle_input(t0, udp(), subscribe("z9hG4bKs1", "presence", Some(600), None).as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 489 Bad Event"]);
    e.handle_input(t0, udp(), subscribe("z9hG4bKs2", "message-summary", Some(10), None).as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 423 Interval Too Brief"]);
    e.handle_input(t0, udp(), subscribe("z9hG4bKs3", "message-summary", Some(7200), None).as_bytes());
    let ok = e.poll_transmit().unwrap();
    let raw = crate::sip::frame::RawMessage::parse(&ok.bytes).unwrap();
    assert_eq!(raw.header("Expires"), Some("3600"), "capped at an hour");
    let tag = header_param(raw.header("To").unwrap(), "tag").unwrap().to_string();
    let Some(Event::Subscribed { sub, account }) = e.poll_event() else { panic!("no Subscribed event") };
    assert_eq!(account, "1000");

    e.notify(t0, sub, "Messages-Waiting: yes\r\n");
    let n = String::from_utf8(e.poll_transmit().unwrap().bytes).unwrap();
    assert!(n.starts_with("NOTIFY sip:phone@127.0.0.1:5070 SIP/2.0"), "{n}");
    for h in [
        "Event: message-summary",
        "Subscription-State: active;expires=3600",
        "Content-Type: application/simple-message-summary",
        &format!(";tag={tag}"),
        "Call-ID: s1",
    ] {
        assert!(n.contains(h), "{h} missing in {n}");
    }

    // A refresh within the dialog; an unknown dialog is 481.
    e.handle_input(t0, udp(), subscribe("z9hG4bKs4", "message-summary", Some(600), Some(&tag)).as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    assert!(matches!(e.poll_event(), Some(Event::Refreshed(s)) if s == sub));
    e.handle_input(t0, udp(), subscribe("z9hG4bKs5", "message-summary", Some(600), Some("nope")).as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 481 Subscription Does Not Exist"]);

    // Unsubscribe: the final NOTIFY says terminated and the subscription is gone.
    e.handle_input(t0, udp(), subscribe("z9hG4bKs6", "message-summary", Some(0), Some(&tag)).as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 200 OK"]);
    assert!(matches!(e.poll_event(), Some(Event::Ending(s)) if s == sub));
    e.notify(t0, sub, "Messages-Waiting: no\r\n");
    let n = String::from_utf8(e.poll_transmit().unwrap().bytes).unwrap();
    assert!(n.contains("Subscription-State: terminated"), "{n}");
    assert_eq!(e.subscription_count(), 0);
}

#[test]
fn subscriptions_expire_and_a_refused_notify_ends_one() {
    let t0 = Instant::now();
    let mut e = ep_trusting_loopback();
    e.handle_input(t0, udp(), subscribe("z9hG4bKx1", "message-summary", Some(60), None).as_bytes());
    status_lines(&mut e);
    let Some(Event::Subscribed { sub, .. }) = e.poll_event() else { panic!() };
    assert!(e.poll_timeout().is_some_and(|t| t <= t0 + Duration::from_secs(60 + 32)));
    e.handle_timeout(t0 + Duration::from_secs(100));
    assert!(matches!(e.poll_event(), Some(Event::Unsubscribed(s)) if s == sub));
    assert_eq!(e.subscription_count(), 0);

    e.handle_input(t0, udp(), subscribe("z9hG4bKx2", "message-summary", None, None).as_bytes());
    status_lines(&mut e);
    let Some(Event::Subscribed { sub, .. }) = e.poll_event() else { panic!() };
    e.notify(t0, sub, "Messages-Waiting: no\r\n");
    let n = String::from_utf8(e.poll_transmit().unwrap().bytes).unwrap();
    let via = n.lines().find(|l| l.starts_with("Via:")).unwrap().to_string();
    let cseq = n.lines().find(|l| l.starts_with("CSeq:")).unwrap().to_string();
    let resp = format!(
        "SIP/2.0 481 Call/Transaction Does Not Exist\r\n{via}\r\nFrom: <sip:1000@127.0.0.1>;tag=x\r\n\
To: <sip:1000@127.0.0.1>;tag=pt\r\nCall-ID: s1\r\n{cseq}\r\nContent-Length: 0\r\n\r\n"
    );
    e.handle_input(t0, udp(), resp.as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Unsubscribed(s)) if s == sub));
    assert_eq!(e.subscription_count(), 0);
}

#[test]
fn delayed_offer_invite_then_the_answer_arrives_with_the_ack() {
    let t0 = Instant::now();
    let mut e = ep();
    let full = invite("z9hG4bK1", "d1");
    let (head, _) = full.split_once("Content-Type").unwrap();
    e.handle_input(t0, udp(), format!("{head}Content-Length: 0\r\n\r\n").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    let call = incoming(&mut e);
    assert!(call.offer.is_empty(), "no offer: the call is answered with ours");
    e.answer(t0, call.call, b"v=0\r\n");
    let tag = to_tag(&mut e);
    let answer = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 8\r\n";
    let ack = format!(
        "ACK sip:voxbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n\
From: <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\nCall-ID: d1\r\nCSeq: 1 ACK\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    );
    e.handle_input(t0, udp(), ack.as_bytes());
    match e.poll_event() {
        Some(Event::Confirmed { call: h, answer: body }) => {
            assert_eq!(h, call.call);
            assert_eq!(body, answer.as_bytes(), "the ACK's SDP answer reaches the call");
        }
        other => panic!("expected Confirmed, got {other:?}"),
    }
    // A retransmitted ACK confirms nothing twice.
    e.handle_input(t0, udp(), ack.as_bytes());
    assert!(e.poll_event().is_none());
}

fn udp_from(addr: &str) -> Peer {
    Peer { addr: addr.parse().unwrap(), transport: Transport::Udp }
}

fn options(branch: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:a@127.0.0.1>;tag=o1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: opt-{branch}\r\nCSeq: 1 OPTIONS\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn requires_types_quotes_and_lengths_are_checked_on_every_request() {
    let t0 = Instant::now();
    let mut e = ep();
    // Require on a request other than INVITE: 420 with the tags we do not support.
    e.handle_input(t0, udp(), options("z9hG4bKq1", "Require: timer, 100rel\r\n").as_bytes());
    let t = e.poll_transmit().unwrap();
    let text = String::from_utf8_lossy(&t.bytes).to_string();
    assert!(text.starts_with("SIP/2.0 420 Bad Extension") && text.contains("Unsupported: timer, 100rel"), "{text}");
    // An INVITE whose body is not SDP, or is compressed: 415 saying what we read.
    let plain = invite("z9hG4bKq2", "q2").replace("application/sdp", "text/plain");
    e.handle_input(t0, udp(), plain.as_bytes());
    let text = String::from_utf8_lossy(&e.poll_transmit().unwrap().bytes).to_string();
    assert!(
        text.starts_with("SIP/2.0 415 Unsupported Media Type") && text.contains("Accept: application/sdp"),
        "{text}"
    );
    let gz = invite("z9hG4bKq3", "q3").replace("Max-Forwards", "Content-Encoding: gzip\r\nMax-Forwards");
    e.handle_input(t0, udp(), gz.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 415 Unsupported Media Type (Content-Encoding)"]);
    assert!(e.poll_event().is_none(), "no call for the application");
    // Escaped quotes in a display name are valid (RFC 3261 §25.1).
    let quoted = invite("z9hG4bKq4", "q4").replace("\"Al\"", "\"Al \\\"the pal\\\" <x>\"");
    e.handle_input(t0, udp(), quoted.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    let call = incoming(&mut e);
    assert_eq!(call.caller.as_deref(), Some("5551234"));
    assert_eq!(call.caller_name.as_deref(), Some("Al \"the pal\" <x>"));
    // Two different Content-Lengths: where the message ends is ambiguous.
    e.handle_input(t0, udp(), options("z9hG4bKq5", "Content-Length: 4\r\n").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 400 Conflicting Content-Length Headers"]);
    // An INVITE that accepts no SDP in our answer: 406 (RFC 4475 §3.3.15).
    let nobody = invite("z9hG4bKq7", "q7").replace("Max-Forwards", "Accept: text/nobodyKnowsThis\r\nMax-Forwards");
    e.handle_input(t0, udp(), nobody.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 406 Not Acceptable"]);
    let fine = invite("z9hG4bKq8", "q8").replace("Max-Forwards", "Accept: application/sdp, text/plain\r\nMax-Forwards");
    e.handle_input(t0, udp(), fine.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    let _ = e.poll_event();
    // A Request-URI scheme we cannot serve: 416 (RFC 4475 §3.3.2).
    let opaque = options("z9hG4bKq9", "")
        .replace("OPTIONS sip:100@127.0.0.1", "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent");
    e.handle_input(t0, udp(), opaque.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 416 Unsupported URI Scheme"]);
    let bracketed = options("z9hG4bKq10", "").replace("OPTIONS sip:100@127.0.0.1", "OPTIONS <sip:100@127.0.0.1>");
    e.handle_input(t0, udp(), bracketed.as_bytes());
    assert!(status_lines(&mut e)[0].starts_with("SIP/2.0 400"), "a malformed Request-URI is a 400 (RFC 4475 §3.1.2.7)");
    // A header that holds one value, twice.
    let two_from = options("z9hG4bKq6", "From: <sip:b@127.0.0.1>;tag=o2\r\n");
    e.handle_input(t0, udp(), two_from.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 400 Multiple From Headers"]);
    // Keep-alives are neither answered nor counted as refused.
    let before = e.rejected;
    e.handle_input(t0, udp(), b"\r\n\r\n");
    e.handle_input(t0, udp(), b"\r\n");
    assert!(status_lines(&mut e).is_empty());
    assert_eq!(e.rejected, before);
}

#[test]
fn addresses_vias_and_old_syntax_as_the_torture_tests_probe_them() {
    let t0 = Instant::now();
    let mut e = ep();
    let answer = |e: &mut Endpoint, msg: &str| {
        e.handle_input(t0, udp(), msg.as_bytes());
        status_lines(e).into_iter().next().unwrap_or_default()
    };
    // Malformed name-addrs and Vias are 400s that say which header (RFC 4475 §3.1.2.1,
    // §3.1.2.13–15), on any method — REGISTER included, before it is refused as such.
    for (from, to, why) in [
        ("To: <sip:100@127.0.0.1>", "To: \"Watson, T\" < sip:100@127.0.0.1 >", "400 Malformed To Header"),
        (
            "From: <sip:a@127.0.0.1>;tag=o1",
            "From: Bell, Alexander <sip:a@127.0.0.1>;tag=o1",
            "400 Malformed From Header",
        ),
        (
            "Content-Length",
            "Contact: \"Joe\" <sip:joe@example.org>;;;;\r\nContent-Length",
            "400 Malformed Contact Header",
        ),
        ("127.0.0.1:5070;branch=z9hG4bKb4", "127.0.0.1:5070;;,;,,", "400 Malformed Via"),
    ] {
        let msg = options("z9hG4bKb4", "").replace(from, to);
        assert!(answer(&mut e, &msg).starts_with(&format!("SIP/2.0 {why}")), "{msg}");
    }
    let register =
        options("z9hG4bKb5", "Contact: sip:user@example.com?Route=%3Csip:x%3E\r\n").replace("OPTIONS", "REGISTER");
    assert!(answer(&mut e, &register).starts_with("SIP/2.0 400 Malformed Contact Header"));
    // What the grammar allows: spaces around `/` and `;` in a Via, a user part with `;`.
    let spaced = options("z9hG4bKb6", "").replace("SIP/2.0/UDP 127.0.0.1:5070;", "SIP  /  2.0 /UDP 127.0.0.1:5070 ;");
    assert_eq!(answer(&mut e, &spaced), "SIP/2.0 200 OK");
    let semi = options("z9hG4bKb7", "").replace("OPTIONS sip:100@", "OPTIONS sip:100;par=u%40example.net@");
    assert_eq!(answer(&mut e, &semi), "SIP/2.0 200 OK");
    // An RFC 2543 INVITE (§3.4.1): no branch, no From tag, no Max-Forwards, no
    // Content-Length (the body is the rest of the datagram). It is a call like any other.
    let old = invite("x", "old").replace(";branch=x", "").replace(";tag=ft", "").replace("Max-Forwards: 70\r\n", "");
    let old = old.split("Content-Length").next().unwrap().to_string() + "\r\n" + old.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        answer(&mut e, &old.replacen("INVITE sip:100@", "INVITE sip:100;phone-context=x@", 1)),
        "SIP/2.0 100 Trying"
    );
    assert_eq!(incoming(&mut e).dialled, "100", "the user part without its parameters");
    // A datagram whose head ends without the blank line is all the message there is.
    let unterminated = options("z9hG4bKb8", "").replace("From: <sip:a@127.0.0.1>", "From: Bell, A <sip:a@127.0.0.1>");
    let unterminated = unterminated.strip_suffix("\r\n").unwrap();
    assert!(answer(&mut e, unterminated).starts_with("SIP/2.0 400 Malformed From Header"));
}

#[test]
fn a_branch_reused_from_another_source_is_a_new_transaction() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), options("z9hG4bKsame", "").as_bytes());
    let first = e.poll_transmit().unwrap();
    assert_eq!(first.peer, udp());
    // The same request again from the first source: the stored response, to it.
    e.handle_input(t0, udp(), options("z9hG4bKsame", "").as_bytes());
    assert_eq!(e.poll_transmit().unwrap().peer, udp());
    // From a stranger: its own answer, to the stranger — never the old one to the old sender.
    let stranger = udp_from("127.0.0.1:6666");
    e.handle_input(t0, stranger, options("z9hG4bKsame", "").as_bytes());
    let t = e.poll_transmit().unwrap();
    assert_eq!(t.peer, stranger);
    assert!(e.poll_transmit().is_none());
}

#[test]
fn finished_transactions_and_expired_subscriptions_go_on_their_own_deadlines() {
    let t0 = Instant::now();
    let mut e = ep_trusting_loopback();
    for i in 0..100 {
        e.handle_input(t0, udp(), options(&format!("z9hG4bKt{i}"), "").as_bytes());
    }
    // Two subscriptions (different dialogs) for 60 s and 120 s.
    for (i, secs) in [(1, 60), (2, 120)] {
        let sub = subscribe(&format!("z9hG4bKe{i}"), "message-summary", Some(secs), None)
            .replace("Call-ID: s1", &format!("Call-ID: exp{i}"));
        e.handle_input(t0, udp(), sub.as_bytes());
    }
    while e.poll_transmit().is_some() {}
    let subs: Vec<CallHandle> = std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| if let Event::Subscribed { sub, .. } = ev { Some(sub) } else { None })
        .collect();
    assert_eq!((e.server_txs.len(), subs.len()), (102, 2));
    // Timer J (64*T1 over UDP): every answered transaction is forgotten, nothing else.
    e.handle_timeout(t0 + 64 * T1);
    assert_eq!(e.server_txs.len(), 0);
    assert!(e.poll_event().is_none());
    assert_eq!(e.pending_timers(), 2, "only the subscriptions' deadlines are left");
    // Each subscription goes at its own expiry (plus the grace for a final NOTIFY).
    let first = e.poll_timeout().unwrap();
    assert_eq!(first, t0 + Duration::from_secs(60 + 32));
    e.handle_timeout(first);
    assert!(matches!(e.poll_event(), Some(Event::Unsubscribed(s)) if s == subs[0]));
    assert_eq!(e.subscription_count(), 1);
    e.handle_timeout(t0 + Duration::from_secs(120 + 32));
    assert!(matches!(e.poll_event(), Some(Event::Unsubscribed(s)) if s == subs[1]));
    assert_eq!((e.subscription_count(), e.pending_timers()), (0, 0));
    assert_eq!(e.poll_timeout(), None);
}

/// A SUBSCRIBE as a phone sends it, with `auth` as its Authorization (if any).
fn subscribe_as(mailbox: &str, branch: &str, auth: Option<&str>) -> String {
    format!(
        "SUBSCRIBE sip:{mailbox}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:{mailbox}@127.0.0.1>;tag=pt\r\nTo: <sip:{mailbox}@127.0.0.1>\r\nCall-ID: auth-{branch}\r\nCSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:phone@127.0.0.1:5070>\r\nEvent: message-summary\r\nExpires: 600\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
    )
}

fn response(e: &mut Endpoint) -> crate::sip::frame::RawMessage {
    crate::sip::frame::RawMessage::parse(&e.poll_transmit().expect("a response").bytes).unwrap()
}

#[test]
fn a_subscription_needs_the_mailboxs_digest_credentials_and_reveals_nothing_without() {
    use crate::sip::digest::{answer, Ha1};
    let t0 = Instant::now();
    let mut e = ep();
    e.set_credentials([("1000".to_string(), Ha1::new("1000", "voxbridge", "lamp-secret"))].into());
    // No credentials: 401 with a SHA-256 and an MD5 challenge, and no subscription.
    e.handle_input(t0, udp(), subscribe_as("1000", "z9hG4bKa1", None).as_bytes());
    let r = response(&mut e);
    assert!(r.start_line.starts_with("SIP/2.0 401"), "{}", r.start_line);
    let ch: Vec<&str> = r.headers_named("WWW-Authenticate").collect();
    assert!(ch.len() == 2 && ch[0].contains("SHA-256") && ch[1].contains("MD5"), "{ch:?}");
    assert!(e.poll_event().is_none() && e.subscription_count() == 0);
    // A mailbox that does not exist looks the same.
    e.handle_input(t0, udp(), subscribe_as("9999", "z9hG4bKa2", None).as_bytes());
    assert!(response(&mut e).start_line.starts_with("SIP/2.0 401"));
    // Wrong password; another mailbox's right password; an unknown mailbox: all 403.
    let uri = "sip:1000@127.0.0.1";
    let wrong = answer(ch[0], "SUBSCRIBE", uri, "1000", "guess", 1).unwrap();
    e.handle_input(t0, udp(), subscribe_as("1000", "z9hG4bKa3", Some(&wrong)).as_bytes());
    assert!(response(&mut e).start_line.starts_with("SIP/2.0 403"));
    let own = answer(ch[0], "SUBSCRIBE", "sip:2000@127.0.0.1", "1000", "lamp-secret", 2).unwrap();
    e.handle_input(t0, udp(), subscribe_as("2000", "z9hG4bKa4", Some(&own)).as_bytes());
    assert!(response(&mut e).start_line.starts_with("SIP/2.0 403"), "1000's credentials for 2000");
    let ghost = answer(ch[0], "SUBSCRIBE", "sip:9999@127.0.0.1", "9999", "lamp-secret", 3).unwrap();
    e.handle_input(t0, udp(), subscribe_as("9999", "z9hG4bKa5", Some(&ghost)).as_bytes());
    assert!(response(&mut e).start_line.starts_with("SIP/2.0 403"));
    assert_eq!(e.subscription_count(), 0);
    // The right password, by SHA-256 and by MD5: subscribed.
    for (i, c) in ch.iter().enumerate() {
        let ok = answer(c, "SUBSCRIBE", uri, "1000", "lamp-secret", 10 + i as u32).unwrap();
        e.handle_input(t0, udp(), subscribe_as("1000", &format!("z9hG4bKok{i}"), Some(&ok)).as_bytes());
        assert!(response(&mut e).start_line.starts_with("SIP/2.0 200"), "{c}");
        assert!(matches!(e.poll_event(), Some(Event::Subscribed { account, .. }) if account == "1000"));
    }
    // Another event package is refused as before, without a challenge.
    let presence = subscribe_as("1000", "z9hG4bKa6", None).replace("message-summary", "presence");
    e.handle_input(t0, udp(), presence.as_bytes());
    assert!(response(&mut e).start_line.starts_with("SIP/2.0 489"));
}

#[test]
fn calls_can_be_taken_from_trunks_only_and_a_trunk_can_require_digest() {
    use crate::sip::access::Trunk;
    use crate::sip::digest::{answer, Ha1};
    let t0 = Instant::now();
    let mut cfg = EndpointConfig::new("127.0.0.1:5060".parse().unwrap(), "test");
    cfg.access.calls_from_trunks_only = true;
    cfg.access.trunks.push(Trunk {
        name: "pbx".into(),
        networks: vec!["127.0.0.2".parse().unwrap()],
        credentials: Some(("pbx".into(), Ha1::new("pbx", "voxbridge", "trunk-secret"))),
        trusted: false,
        redirection: None,
    });
    let mut e = Endpoint::new(cfg);
    // Not a trunk: 403.
    e.handle_input(t0, udp(), invite("z9hG4bKc1", "tc1").as_bytes());
    let r = response(&mut e);
    assert_eq!(r.start_line, "SIP/2.0 403 Forbidden (calls are taken from configured trunks only)");
    // The trunk without credentials: challenged; with them: the call comes in.
    let pbx = udp_from("127.0.0.2:5070");
    e.handle_input(t0, pbx, invite("z9hG4bKc2", "tc2").as_bytes());
    let r = response(&mut e);
    assert!(r.start_line.starts_with("SIP/2.0 401"));
    let auth =
        answer(r.header("WWW-Authenticate").unwrap(), "INVITE", "sip:100@127.0.0.1", "pbx", "trunk-secret", 1).unwrap();
    let with =
        invite("z9hG4bKc3", "tc2").replace("CSeq: 1 INVITE", &format!("CSeq: 2 INVITE\r\nAuthorization: {auth}"));
    e.handle_input(t0, pbx, with.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    assert_eq!(incoming(&mut e).dialled, "100");
}

#[test]
fn a_sips_request_is_served_over_tls_only() {
    let t0 = Instant::now();
    let mut e = ep();
    let sips = invite("z9hG4bKs1", "s1").replacen("INVITE sip:100@", "INVITE sips:100@", 1);
    e.handle_input(t0, udp(), sips.as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 416 Unsupported URI Scheme (sips: needs TLS)"]);
    assert!(e.poll_event().is_none(), "no call for the application");
    let tcp = Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Tcp(1) };
    e.handle_input(t0, tcp, sips.replace("s1", "s2").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 416 Unsupported URI Scheme (sips: needs TLS)"]);
    let tls = Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Tls(2) };
    e.handle_input(t0, tls, sips.replace("s1", "s3").as_bytes());
    assert_eq!(status_lines(&mut e), ["SIP/2.0 100 Trying"]);
    assert!(matches!(e.poll_event(), Some(Event::IncomingCall(_))));
}
