//! Re-INVITEs and the calls we place, on a virtual clock.

use super::*;
use crate::sip::msg::header_param;
use std::time::Duration;

fn ep() -> Endpoint {
    Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap(), "test"))
}

fn udp() -> Peer {
    Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Udp }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

/// A request from the caller of call `c1` (From tag `ft`), to us (To tag `tag`).
fn from_caller(method: &str, branch: &str, cseq: u32, tag: &str, body: &str) -> String {
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
    format!(
        "{method} sip:voxbridge@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
From: <sip:5551234@127.0.0.1>;tag=ft\r\nTo: <sip:100@127.0.0.1>{to_tag}\r\nCall-ID: c1\r\n\
CSeq: {cseq} {method}\r\nContact: <sip:a@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        to_tag = if tag.is_empty() { String::new() } else { format!(";tag={tag}") },
    )
}

fn sent(e: &mut Endpoint) -> Vec<crate::sip::frame::RawMessage> {
    std::iter::from_fn(|| e.poll_transmit()).map(|t| crate::sip::frame::RawMessage::parse(&t.bytes).unwrap()).collect()
}

fn lines(msgs: &[crate::sip::frame::RawMessage]) -> Vec<&str> {
    msgs.iter().map(|m| m.start_line.as_str()).collect()
}

/// An answered, ACKed call from the caller; returns its handle and our tag.
fn confirmed(e: &mut Endpoint, t0: Instant) -> (CallHandle, String) {
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK1", 1, "", SDP).as_bytes());
    let Some(Event::IncomingCall(inc)) = e.poll_event() else { panic!("an incoming call") };
    e.answer(t0, inc.call, b"v=0\r\nour answer\r\n");
    let ok = sent(e).pop().unwrap();
    let tag = header_param(ok.header("To").unwrap(), "tag").unwrap().to_string();
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK2", 1, &tag, "").as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Confirmed { .. })));
    (inc.call, tag)
}

#[test]
fn a_reoffer_goes_to_the_application_which_accepts_it() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, tag) = confirmed(&mut e, t0);
    let reinvite = from_caller("INVITE", "z9hG4bK3", 2, &tag, &SDP.replace("6000", "6100"));
    e.handle_input(t0, udp(), reinvite.as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 100 Trying"], "no answer before the application's");
    match e.poll_event() {
        Some(Event::Reoffer { call: c, offer }) => {
            assert_eq!(c, call);
            assert!(String::from_utf8_lossy(&offer).contains("m=audio 6100"));
        }
        other => panic!("expected Reoffer, got {other:?}"),
    }
    // A second re-INVITE while this one waits: 500 with Retry-After (RFC 3261 §14.2).
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK4", 3, &tag, SDP).as_bytes());
    let busy = sent(&mut e);
    assert_eq!(lines(&busy), ["SIP/2.0 500 Server Internal Error"]);
    assert!(busy[0].header("Retry-After").is_some());
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK4", 3, &tag, "").as_bytes());

    e.answer_reoffer(t0, call, ReofferAnswer::Accept(b"v=0\r\nnew answer\r\n".to_vec()));
    let ok = sent(&mut e);
    assert_eq!(lines(&ok), ["SIP/2.0 200 OK"]);
    assert_eq!(ok[0].body, b"v=0\r\nnew answer\r\n");
    assert_eq!(ok[0].header("CSeq"), Some("2 INVITE"));
    // Retransmitted until its own ACK: an old ACK (CSeq 1) does not stop it.
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK2", 1, &tag, "").as_bytes());
    e.handle_timeout(t0 + T1);
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 200 OK"]);
    e.handle_input(t0 + T1, udp(), from_caller("ACK", "z9hG4bK5", 2, &tag, "").as_bytes());
    assert!(e.poll_event().is_none(), "the ACK of a re-INVITE confirms nothing new");
    e.handle_timeout(t0 + 10 * T1);
    assert!(sent(&mut e).is_empty(), "no retransmission after its ACK");
    assert_eq!(e.active_calls(), 1);

    // A session refresh without an offer is answered at once with the newest description.
    e.handle_input(t0 + 10 * T1, udp(), from_caller("INVITE", "z9hG4bK6", 4, &tag, "").as_bytes());
    let ok = sent(&mut e);
    assert_eq!(lines(&ok), ["SIP/2.0 200 OK"]);
    assert_eq!(ok[0].body, b"v=0\r\nnew answer\r\n");
    assert!(e.poll_event().is_none());
}

#[test]
fn a_refused_reoffer_gets_488_and_the_call_goes_on() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, tag) = confirmed(&mut e, t0);
    let t38 = "v=0\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=image 7000 udptl t38\r\n";
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK3", 2, &tag, t38).as_bytes());
    sent(&mut e);
    assert!(matches!(e.poll_event(), Some(Event::Reoffer { .. })));
    e.answer_reoffer(t0, call, ReofferAnswer::Refuse(488, "Not Acceptable Here".into()));
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 488 Not Acceptable Here"]);
    // The error's ACK (same branch) is absorbed by the transaction.
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK3", 2, &tag, "").as_bytes());
    assert!(e.poll_event().is_none());
    // Answering again does nothing; the call is still up and ends normally.
    e.answer_reoffer(t0, call, ReofferAnswer::Accept(b"late".to_vec()));
    assert!(sent(&mut e).is_empty());
    assert_eq!(e.active_calls(), 1);
    e.hangup(t0, call);
    let bye = sent(&mut e);
    assert!(bye[0].start_line.starts_with("BYE sip:a@127.0.0.1:5070"), "{}", bye[0].start_line);
}

#[test]
fn a_reoffer_before_our_2xx_is_acked_gets_491() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK1", 1, "", SDP).as_bytes());
    let Some(Event::IncomingCall(inc)) = e.poll_event() else { panic!() };
    e.answer(t0, inc.call, b"v=0\r\n");
    let tag = header_param(sent(&mut e).pop().unwrap().header("To").unwrap(), "tag").unwrap().to_string();
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK3", 2, &tag, SDP).as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 491 Request Pending"]);
    assert!(e.poll_event().is_none());
}

// --- calls we place -------------------------------------------------------------

fn place(e: &mut Endpoint, t0: Instant, peer: Peer) -> (CallHandle, crate::sip::frame::RawMessage) {
    let out = OutgoingCall {
        target: "sip:5551234@127.0.0.1:5070".into(),
        peer,
        from_user: "100".into(),
        offer: SDP.as_bytes().to_vec(),
    };
    let call = e.place_call(t0, out);
    let mut msgs = sent(e);
    assert_eq!(msgs.len(), 1);
    (call, msgs.remove(0))
}

/// A response from the callee to `req` (its Via, From, Call-ID, CSeq), with `to_tag`.
fn respond(req: &crate::sip::frame::RawMessage, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let to = req.header("To").unwrap();
    let to = match to_tag {
        Some(t) => format!("{to};tag={t}"),
        None => to.to_string(),
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        req.header("Via").unwrap(),
        req.header("From").unwrap(),
        req.header("Call-ID").unwrap(),
        req.header("CSeq").unwrap(),
    )
}

fn branch(m: &crate::sip::frame::RawMessage) -> String {
    header_param(m.header("Via").unwrap(), "branch").unwrap().to_string()
}

#[test]
fn a_placed_call_rings_is_answered_acked_and_hung_up() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, invite) = place(&mut e, t0, udp());
    assert!(invite.start_line.starts_with("INVITE sip:5551234@127.0.0.1:5070 SIP/2.0"));
    assert!(invite.header("From").unwrap().contains("sip:100@127.0.0.1:5060"));
    assert!(header_param(invite.header("From").unwrap(), "tag").is_some());
    assert_eq!(invite.body, SDP.as_bytes());
    // Timer A over UDP.
    assert_eq!(e.poll_timeout(), Some(t0 + T1));
    e.handle_timeout(t0 + T1);
    assert_eq!(lines(&sent(&mut e)), [invite.start_line.as_str()]);

    e.handle_input(t0 + T1, udp(), respond(&invite, "180 Ringing", Some("cal"), "").as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Progress { call: c, status: 180 }) if c == call));
    e.handle_timeout(t0 + 10 * T1);
    assert!(sent(&mut e).is_empty(), "a provisional answer stops the retransmissions");

    let contact = "Contact: <sip:callee@127.0.0.1:5080>\r\nRecord-Route: <sip:p1@127.0.0.1;lr>\r\nRecord-Route: <sip:p2@127.0.0.1;lr>\r\n";
    let ok = respond(&invite, "200 OK", Some("cal"), contact);
    e.handle_input(t0 + 10 * T1, udp(), ok.as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Answered { call: c, .. }) if c == call));
    let ack = sent(&mut e);
    assert_eq!(lines(&ack), ["ACK sip:callee@127.0.0.1:5080 SIP/2.0"], "the 2xx's ACK goes to its Contact");
    assert_ne!(branch(&ack[0]), branch(&invite), "the 2xx's ACK is a transaction of its own");
    let cseq_n = invite.header("CSeq").unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(ack[0].header("CSeq").unwrap(), format!("{cseq_n} ACK"));
    assert!(ack[0].header("To").unwrap().contains("tag=cal"));
    let route: Vec<&str> = ack[0].headers_named("Route").collect();
    assert_eq!(route, ["<sip:p2@127.0.0.1;lr>", "<sip:p1@127.0.0.1;lr>"], "the route set reversed");
    // A retransmitted 2xx: the same ACK again, no second event.
    e.handle_input(t0 + 11 * T1, udp(), ok.as_bytes());
    assert_eq!(sent(&mut e)[0].to_bytes(), ack[0].to_bytes());
    assert!(e.poll_event().is_none());

    e.hangup(t0 + 12 * T1, call);
    let bye = sent(&mut e);
    assert_eq!(lines(&bye), ["BYE sip:callee@127.0.0.1:5080 SIP/2.0"]);
    assert!(bye[0].header("To").unwrap().contains("tag=cal"));
    assert_eq!(bye[0].header("From"), invite.header("From"));
    e.handle_input(t0 + 12 * T1, udp(), respond(&bye[0], "200 OK", None, "").as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Ended { call: c, .. }) if c == call));
    assert_eq!(e.active_calls(), 0);
}

#[test]
fn the_callee_hangs_up_a_placed_call() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, invite) = place(&mut e, t0, udp());
    e.handle_input(
        t0,
        udp(),
        respond(&invite, "200 OK", Some("cal"), "Contact: <sip:callee@127.0.0.1:5080>\r\n").as_bytes(),
    );
    e.poll_event();
    sent(&mut e);
    let from = invite.header("From").unwrap();
    let bye = format!(
        "BYE sip:100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb1\r\n\
From: {};tag=cal\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        invite.header("To").unwrap(),
        invite.header("Call-ID").unwrap()
    );
    e.handle_input(t0, udp(), bye.as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 200 OK"]);
    assert!(matches!(e.poll_event(), Some(Event::RemoteHangup(c)) if c == call));
}

#[test]
fn cancel_waits_for_a_provisional_answer_then_the_487_is_acked() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, invite) = place(&mut e, t0, udp());
    e.hangup(t0, call);
    assert!(sent(&mut e).is_empty(), "no CANCEL before a provisional answer (RFC 3261 §9.1)");
    e.handle_input(t0, udp(), respond(&invite, "100 Trying", None, "").as_bytes());
    let cancel = sent(&mut e);
    assert_eq!(lines(&cancel), ["CANCEL sip:5551234@127.0.0.1:5070 SIP/2.0"]);
    assert_eq!(branch(&cancel[0]), branch(&invite), "CANCEL has its INVITE's branch");
    assert!(cancel[0].header("CSeq").unwrap().ends_with(" CANCEL"));
    assert_eq!(cancel[0].header("To"), invite.header("To"));
    assert!(matches!(e.poll_event(), Some(Event::Progress { status: 100, .. })));
    e.handle_input(t0, udp(), respond(&cancel[0], "200 OK", Some("cal"), "").as_bytes());
    assert!(e.poll_event().is_none(), "the CANCEL's 200 says nothing about the call");

    let terminated = respond(&invite, "487 Request Terminated", Some("cal"), "");
    e.handle_input(t0, udp(), terminated.as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Failed { call: c, status: 487, .. }) if c == call));
    let ack = sent(&mut e);
    assert_eq!(lines(&ack), ["ACK sip:5551234@127.0.0.1:5070 SIP/2.0"]);
    assert_eq!(branch(&ack[0]), branch(&invite), "an error's ACK belongs to the INVITE transaction");
    assert!(ack[0].header("To").unwrap().contains("tag=cal"));
    // The 487 again (our ACK lost): the same ACK, no second event (Timer D).
    e.handle_input(t0 + T1, udp(), terminated.as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["ACK sip:5551234@127.0.0.1:5070 SIP/2.0"]);
    assert!(e.poll_event().is_none());
    assert_eq!(e.active_calls(), 0);
    e.handle_timeout(t0 + Duration::from_secs(40));
    assert!(e.poll_timeout().is_none(), "Timer D over, nothing left");
}

#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_ended() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, invite) = place(&mut e, t0, udp());
    e.handle_input(t0, udp(), respond(&invite, "180 Ringing", Some("cal"), "").as_bytes());
    e.poll_event();
    e.hangup(t0, call);
    assert_eq!(lines(&sent(&mut e)), ["CANCEL sip:5551234@127.0.0.1:5070 SIP/2.0"]);
    e.handle_input(
        t0,
        udp(),
        respond(&invite, "200 OK", Some("cal"), "Contact: <sip:callee@127.0.0.1:5080>\r\n").as_bytes(),
    );
    let out = sent(&mut e);
    assert_eq!(lines(&out), ["ACK sip:callee@127.0.0.1:5080 SIP/2.0", "BYE sip:callee@127.0.0.1:5080 SIP/2.0"]);
    assert!(e.poll_event().is_none(), "no Answered for a call we cancelled");
    e.handle_input(t0, udp(), respond(&out[1], "200 OK", None, "").as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::Ended { call: c, .. }) if c == call));
}

#[test]
fn an_error_or_silence_fails_the_placed_call() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, invite) = place(&mut e, t0, udp());
    e.handle_input(t0, udp(), respond(&invite, "486 Busy Here", Some("cal"), "").as_bytes());
    match e.poll_event() {
        Some(Event::Failed { call: c, status: 486, reason }) => {
            assert_eq!(c, call);
            assert_eq!(reason, "Busy Here");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(sent(&mut e)[0].start_line.starts_with("ACK "));

    // Nothing at all: Timer B after 64·T1 over UDP, with A's retransmissions before it.
    let (call, _) = place(&mut e, t0, udp());
    let mut resent = 0;
    while let Some(at) = e.poll_timeout() {
        e.handle_timeout(at);
        resent += sent(&mut e).len();
        if let Some(ev) = e.poll_event() {
            assert!(matches!(ev, Event::Failed { call: c, status: 408, .. } if c == call), "{ev:?}");
            assert_eq!(at - t0, 64 * T1);
            break;
        }
    }
    assert_eq!(resent, 6, "Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    // Over TCP: no retransmission, only Timer B.
    let tcp = Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Tcp(7) };
    let (_, invite) = place(&mut e, t0, tcp);
    assert!(invite.header("Via").unwrap().starts_with("SIP/2.0/TCP"));
    assert_eq!(e.poll_timeout(), Some(t0 + 64 * T1));
}

#[test]
fn a_reoffer_still_waiting_when_the_caller_hangs_up_gets_487() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, tag) = confirmed(&mut e, t0);
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK3", 2, &tag, SDP).as_bytes());
    sent(&mut e);
    assert!(matches!(e.poll_event(), Some(Event::Reoffer { .. })));
    e.handle_input(t0, udp(), from_caller("BYE", "z9hG4bK4", 3, &tag, "").as_bytes());
    let out = sent(&mut e);
    assert_eq!(lines(&out), ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]);
    assert_eq!(out[1].header("CSeq"), Some("2 INVITE"), "the re-INVITE gets its final answer");
    assert!(matches!(e.poll_event(), Some(Event::RemoteHangup(c)) if c == call));
    // The application's late answer finds nothing to answer.
    e.answer_reoffer(t0, call, ReofferAnswer::Accept(b"late".to_vec()));
    assert!(sent(&mut e).is_empty());
}

/// `respond` with an SDP body.
fn respond_sdp(req: &crate::sip::frame::RawMessage, status: &str, sdp: &str) -> String {
    respond(req, status, None, "Content-Type: application/sdp\r\n")
        .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()))
}

#[test]
fn our_reinvite_is_answered_and_acked_and_a_crossing_one_gets_491() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, tag) = confirmed(&mut e, t0);
    assert!(e.reinvite(t0, call, b"v=0\r\nm=image 30000 udptl t38\r\n"));
    let invite = sent(&mut e).remove(0);
    assert_eq!(invite.start_line, "INVITE sip:a@127.0.0.1:5070 SIP/2.0", "to the caller's Contact");
    assert!(invite.header("From").unwrap().contains(&format!("tag={tag}")), "our side is the From");
    assert!(invite.header("To").unwrap().contains("tag=ft"));
    assert!(invite.header("Contact").is_some() && invite.body.starts_with(b"v=0"));
    assert!(!e.reinvite(t0, call, b"v=0\r\n"), "one offer at a time");
    // The caller's own re-INVITE crossing ours: 491 (glare).
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK9", 2, &tag, SDP).as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["SIP/2.0 491 Request Pending"]);
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK9", 2, &tag, "").as_bytes());
    sent(&mut e);

    e.handle_input(t0, udp(), respond(&invite, "100 Trying", None, "").as_bytes());
    let ok = respond_sdp(&invite, "200 OK", "v=0\r\nm=image 5004 udptl t38\r\n");
    e.handle_input(t0, udp(), ok.as_bytes());
    let ack = sent(&mut e);
    assert_eq!(lines(&ack), ["ACK sip:a@127.0.0.1:5070 SIP/2.0"]);
    let cseq = invite.header("CSeq").unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(ack[0].header("CSeq"), Some(format!("{cseq} ACK").as_str()));
    assert_ne!(branch(&ack[0]), branch(&invite), "the 2xx's ACK is a new transaction");
    match e.poll_event() {
        Some(Event::ReinviteAnswered { call: c, answer }) => {
            assert_eq!(c, call);
            assert!(answer.starts_with(b"v=0\r\nm=image 5004"));
        }
        other => panic!("expected ReinviteAnswered, got {other:?}"),
    }
    // A retransmitted 2xx: the same ACK again, no second event.
    e.handle_input(t0, udp(), ok.as_bytes());
    assert_eq!(sent(&mut e)[0].header("CSeq"), ack[0].header("CSeq"));
    assert!(e.poll_event().is_none());
}

#[test]
fn a_refused_or_cancelled_reinvite_is_acked_and_the_call_goes_on() {
    let t0 = Instant::now();
    let mut e = ep();
    let (call, _) = confirmed(&mut e, t0);
    assert!(e.reinvite(t0, call, b"v=0\r\n"));
    let invite = sent(&mut e).remove(0);
    e.handle_input(t0, udp(), respond(&invite, "488 Not Acceptable Here", None, "").as_bytes());
    let ack = sent(&mut e);
    assert_eq!(lines(&ack), ["ACK sip:a@127.0.0.1:5070 SIP/2.0"]);
    assert_eq!(branch(&ack[0]), branch(&invite), "an error's ACK is the INVITE's transaction's");
    assert!(matches!(e.poll_event(), Some(Event::ReinviteFailed { status: 488, .. })));
    assert_eq!(e.active_calls(), 1, "the call goes on");

    // Withdrawn before any answer: the CANCEL waits for the far end's 100.
    assert!(e.reinvite(t0, call, b"v=0\r\n"));
    let invite = sent(&mut e).remove(0);
    e.cancel_reinvite(t0, call);
    assert!(sent(&mut e).is_empty(), "no CANCEL before a provisional answer");
    e.handle_input(t0, udp(), respond(&invite, "100 Trying", None, "").as_bytes());
    let cancel = sent(&mut e);
    assert_eq!(lines(&cancel), ["CANCEL sip:a@127.0.0.1:5070 SIP/2.0"]);
    assert_eq!(branch(&cancel[0]), branch(&invite));
    e.handle_input(t0, udp(), respond(&invite, "487 Request Terminated", None, "").as_bytes());
    assert!(matches!(e.poll_event(), Some(Event::ReinviteFailed { status: 487, .. })));
    // Silence: Timer B ends the re-INVITE with 408, not the call.
    assert!(e.reinvite(t0, call, b"v=0\r\n"));
    for s in 1..=40 {
        e.handle_timeout(t0 + Duration::from_secs(s));
    }
    sent(&mut e);
    assert!(matches!(e.poll_event(), Some(Event::ReinviteFailed { status: 408, .. })));
    assert_eq!(e.active_calls(), 1);
}

#[test]
fn our_reinvite_before_the_ack_waits_for_it() {
    let t0 = Instant::now();
    let mut e = ep();
    e.handle_input(t0, udp(), from_caller("INVITE", "z9hG4bK1", 1, "", SDP).as_bytes());
    let Some(Event::IncomingCall(inc)) = e.poll_event() else { panic!("an incoming call") };
    e.answer(t0, inc.call, b"v=0\r\nour answer\r\n");
    let ok = sent(&mut e).pop().unwrap();
    let tag = header_param(ok.header("To").unwrap(), "tag").unwrap().to_string();
    // The application offers at once (a fax number offering T.38): held, not refused.
    assert!(e.reinvite(t0, inc.call, b"v=0\r\nm=image 1 udptl t38\r\n"));
    assert!(sent(&mut e).is_empty(), "nothing before the ACK");
    e.handle_input(t0, udp(), from_caller("ACK", "z9hG4bK2", 1, &tag, "").as_bytes());
    assert_eq!(lines(&sent(&mut e)), ["INVITE sip:a@127.0.0.1:5070 SIP/2.0"]);
}
