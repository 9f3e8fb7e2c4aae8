//! The call loop with real and stub applications: re-INVITEs accepted, refused (488,
//! the call goes on) and handed over with the call (deposit → a stub fax application).

use super::app::{AppKind, Application, Effect, ReofferChoice};
use super::call::{CallLoop, LoopOutput, SipAction};
use super::media::{MediaSession, Reoffer};
use crate::ivr::deposit::{Deposit, DepositClips, DepositParams, DepositRequest, SaveRecording, StopReason};
use crate::media::prompts::Clip;
use crate::rtp::session::SessionParams;
use crate::sdp::{Codec, Negotiated};
use std::net::SocketAddr;
use std::sync::Arc;

const CALLER: &str = "127.0.0.1:6000";

fn media() -> MediaSession {
    let n = Negotiated { dtmf_pt: Some(101), ..Negotiated::plain(CALLER.parse().unwrap(), Codec::Pcmu) };
    MediaSession::new(n, "127.0.0.1:20000".parse().unwrap(), 42, &SessionParams::new(1))
}

fn audio_offer(port: u16, pt: u8) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    .into_bytes()
}

fn t38_offer() -> Vec<u8> {
    b"v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=image 7000 udptl t38\r\n\
a=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n"
        .to_vec()
}

fn clip(samples: usize) -> Arc<Clip> {
    Arc::new(Clip::from_pcm(vec![1000; samples], "test"))
}

/// A `#` as RFC 4733 packets (start and end), from the caller.
fn hash_key<A: Application>(l: &mut CallLoop<A>, seq: u16) {
    for (i, end) in [(0u16, 0u8), (1, 0x80)] {
        let pkt = rtp_rs::RtpPacketBuilder::new()
            .payload_type(101)
            .ssrc(9)
            .sequence((seq + i).into())
            .timestamp(1000 + seq as u32)
            .payload(&[11, end | 10, 0, 160])
            .build()
            .unwrap();
        l.handle_datagram(CALLER.parse().unwrap(), &pkt, std::time::Instant::now());
    }
}

struct Drained<R> {
    packets: Vec<(SocketAddr, Vec<u8>)>,
    sip: Vec<SipAction>,
    requests: Vec<R>,
    handed: Vec<(AppKind, Option<Vec<u8>>)>,
}

fn drain<A: Application>(l: &mut CallLoop<A>) -> Drained<A::Request> {
    let mut d = Drained { packets: vec![], sip: vec![], requests: vec![], handed: vec![] };
    while let Some(o) = l.poll_output() {
        match o {
            LoopOutput::Transmit { to, bytes } => d.packets.push((to, bytes)),
            LoopOutput::Rtcp { .. } => {}
            LoopOutput::Sip(a) => d.sip.push(a),
            LoopOutput::Request(r) => d.requests.push(r),
            LoopOutput::HandOver { to, reoffer } => d.handed.push((to, reoffer)),
        }
    }
    d
}

fn ticks<A: Application>(l: &mut CallLoop<A>, n: usize) -> Drained<A::Request> {
    let mut all = Drained { packets: vec![], sip: vec![], requests: vec![], handed: vec![] };
    for _ in 0..n {
        l.handle_tick();
        let d = drain(l);
        all.packets.extend(d.packets);
        all.sip.extend(d.sip);
        all.requests.extend(d.requests);
        all.handed.extend(d.handed);
    }
    all
}

fn deposit(fax_handover: bool) -> Deposit {
    let params = DepositParams {
        min_frames: 5,
        max_frames: 500,
        silence_frames: 400,
        silence_level: 0,
        operator: None,
        fax_handover,
        fax_on_cng: false,
    };
    let clips = DepositClips {
        greeting: vec![clip(320)],
        beep: clip(160),
        saved: clip(160),
        too_short: clip(160),
        transfer: clip(160),
    };
    Deposit::new(params, clips)
}

/// A stand-in application: plays one clip of `clip` samples, counts frames, and
/// answers re-offers with `answer` (its own description: a fax application) or, without
/// one, takes audio and refuses the rest.
struct Stub {
    clip: usize,
    started: bool,
    frames: usize,
    offers: Vec<Reoffer>,
    answer: Option<Vec<u8>>,
}

impl Stub {
    fn new(clip: usize, answer: Option<&[u8]>) -> Stub {
        Stub { clip, started: false, frames: 0, offers: vec![], answer: answer.map(<[u8]>::to_vec) }
    }
}

impl Application for Stub {
    type Request = ();
    type Reply = ();
    fn on_frame(&mut self, _: &[i16]) {
        self.frames += 1;
    }
    fn on_dtmf(&mut self, _: char) {}
    fn on_playback_done(&mut self) {}
    fn on_hangup(&mut self) {}
    fn on_reply(&mut self, _: ()) {}
    fn on_reoffer(&mut self, offer: &Reoffer) -> ReofferChoice {
        self.offers.push(offer.clone());
        match (&self.answer, offer) {
            (Some(answer), _) => ReofferChoice::Answer(answer.clone()),
            (None, Reoffer::Audio(..)) => ReofferChoice::Accept,
            (None, _) => ReofferChoice::Refuse,
        }
    }
    fn poll(&mut self) -> Option<Effect<()>> {
        if self.started {
            return None;
        }
        self.started = true;
        Some(Effect::Play(vec![clip(self.clip)]))
    }
    fn is_done(&self) -> bool {
        false
    }
}

#[test]
fn an_application_takes_an_audio_reoffer_and_the_media_follows_it() {
    let mut l = CallLoop::new(media(), Stub::new(8000, None));
    let before = ticks(&mut l, 2);
    assert!(before.packets.iter().all(|(to, _)| to.to_string() == CALLER));
    // Same media again (a refresh): the same description version.
    l.handle_reoffer(&audio_offer(6000, 0));
    let [SipAction::AcceptReoffer(same)] = &drain(&mut l).sip[..] else { panic!("an answer") };
    assert!(String::from_utf8_lossy(same).contains("o=voxbridge 42 42 "), "{}", String::from_utf8_lossy(same));
    // A new port and codec (PCMA): a new version, and the packets go there in PCMA.
    l.handle_reoffer(&audio_offer(6100, 8));
    let d = drain(&mut l);
    let [SipAction::AcceptReoffer(changed)] = &d.sip[..] else { panic!("an answer, got {:?}", d.sip) };
    let text = String::from_utf8_lossy(changed);
    assert!(text.contains("o=voxbridge 42 43 ") && text.contains("m=audio 20000 RTP/AVP 8 101"), "{text}");
    let after = ticks(&mut l, 2);
    assert_eq!(after.packets.len(), 2);
    for (to, bytes) in &after.packets {
        assert_eq!(to.port(), 6100);
        assert_eq!(rtp_rs::RtpReader::new(bytes).unwrap().payload_type(), 8);
    }
    let ssrc = |b: &Vec<u8>| rtp_rs::RtpReader::new(b).unwrap().ssrc();
    assert_eq!(ssrc(&before.packets[0].1), ssrc(&after.packets[0].1), "one stream throughout");
    assert_eq!(l.app().frames, 4);
}

#[test]
fn the_deposit_refuses_a_fax_reoffer_with_488_and_the_message_is_still_left() {
    let mut l = CallLoop::new(media(), deposit(false));
    let greeting = ticks(&mut l, 4); // greeting (2 frames) + beep (1 frame), then recording
    assert_eq!(greeting.packets.len(), 3, "greeting and beep; the caller records in silence");
    l.handle_reoffer(&t38_offer());
    let d = drain(&mut l);
    match &d.sip[..] {
        [SipAction::RefuseReoffer(488, why)] => assert!(why.contains("fax"), "{why}"),
        other => panic!("expected a 488, got {other:?}"),
    }
    assert!(d.handed.is_empty() && !l.is_done());
    // The call goes on: the recording continues, `#` ends it, the save is asked for.
    let rec = ticks(&mut l, 10);
    assert!(rec.requests.is_empty());
    hash_key(&mut l, 100);
    let d = drain(&mut l);
    let [DepositRequest::Save(SaveRecording { tail, samples, reason: StopReason::Key })] = &d.requests[..] else {
        panic!("a save, got {:?}", d.requests)
    };
    assert!(*samples >= 10 * 160 && tail.len() >= 10 * 160, "the frames after the refused re-INVITE are in it");
    l.handle_reply(true);
    let closing = ticks(&mut l, 3);
    let marked = |b: &Vec<u8>| rtp_rs::RtpReader::new(b).unwrap().mark();
    assert!(marked(&closing.packets[0].1), "\"saved\" starts at once");
    assert_eq!(closing.packets.len(), 1, "\"saved\" (one frame)");
    assert_eq!(closing.sip, [SipAction::Hangup]);
    assert!(l.is_done());
}

#[test]
fn the_deposit_hands_a_fax_call_over_with_its_media() {
    let mut l = CallLoop::new(media(), deposit(true));
    let first = ticks(&mut l, 5);
    l.handle_reoffer(&t38_offer());
    let d = drain(&mut l);
    assert!(d.sip.is_empty(), "the next application answers, not the deposit");
    assert!(d.requests.is_empty(), "fax tones are not saved as a voice message");
    assert_eq!(d.handed, [(AppKind::FaxReceive, Some(t38_offer()))]);
    assert!(l.is_done());
    // The loop is over: nothing more reaches the deposit.
    l.handle_tick();
    hash_key(&mut l, 200);
    assert!(l.poll_output().is_none());

    let media = l.into_media();
    let mut fax = CallLoop::new(media, Stub::new(160, Some(b"v=0\r\nm=image 30000 udptl t38\r\n")));
    fax.handle_reoffer(&t38_offer());
    let d = drain(&mut fax);
    assert_eq!(d.sip, [SipAction::AcceptReoffer(b"v=0\r\nm=image 30000 udptl t38\r\n".to_vec())]);
    assert!(matches!(fax.app().offers[..], [Reoffer::Fax(_)]), "{:?}", fax.app().offers);
    let after = ticks(&mut fax, 2);
    assert_eq!(fax.app().frames, 2);
    // The same RTP stream goes on under the new application (sequence continues).
    let seq = |b: &Vec<u8>| u16::from(rtp_rs::RtpReader::new(b).unwrap().sequence_number());
    let ssrc = |b: &Vec<u8>| rtp_rs::RtpReader::new(b).unwrap().ssrc();
    let (last, next) = (&first.packets.last().unwrap().1, &after.packets[0].1);
    assert_eq!(ssrc(last), ssrc(next));
    assert_eq!(seq(next), seq(last).wrapping_add(1));
}

/// A T.38 application: takes fax offers, counts T.38 ticks and echoes every IFP back.
#[derive(Default)]
struct Echo {
    started: Vec<crate::sdp::t38::T38Session>,
    ifps: Vec<(u16, Vec<u8>)>,
    t38_ticks: usize,
    frames: usize,
    out: Vec<Effect<()>>,
}

impl Application for Echo {
    type Request = ();
    type Reply = ();
    fn on_frame(&mut self, _: &[i16]) {
        self.frames += 1;
    }
    fn on_dtmf(&mut self, _: char) {}
    fn on_playback_done(&mut self) {}
    fn on_hangup(&mut self) {}
    fn on_reply(&mut self, _: ()) {}
    fn on_reoffer(&mut self, _: &Reoffer) -> ReofferChoice {
        ReofferChoice::Accept
    }
    fn on_t38(&mut self, session: &crate::sdp::t38::T38Session) {
        self.started.push(session.clone());
    }
    fn on_ifp(&mut self, seq: u16, ifp: &[u8]) {
        self.ifps.push((seq, ifp.to_vec()));
        self.out.push(Effect::SendIfp(ifp.to_vec(), 2));
    }
    fn on_t38_tick(&mut self) {
        self.t38_ticks += 1;
    }
    fn poll(&mut self) -> Option<Effect<()>> {
        self.out.pop()
    }
    fn is_done(&self) -> bool {
        false
    }
}

#[test]
fn a_t38_reoffer_moves_the_call_to_udptl_on_the_same_port_and_a_refresh_changes_nothing() {
    let mut l = CallLoop::new(media(), Echo::default());
    l.handle_reoffer(&t38_offer());
    let [SipAction::AcceptReoffer(answer)] = &drain(&mut l).sip[..] else { panic!("an answer") };
    let text = String::from_utf8_lossy(answer);
    assert!(text.contains("o=voxbridge 42 43 ") && text.contains("m=image 20000 udptl t38"), "{text}");
    assert_eq!(l.app().started.len(), 1);
    // Ticks go to the T.38 side; no RTP leaves any more.
    let t = ticks(&mut l, 3);
    assert!(t.packets.is_empty() && l.app().frames == 0 && l.app().t38_ticks == 3);
    // The far end's IFP reaches the application; its answer goes out twice, as UDPTL.
    let far: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let mut sender = crate::udptl::Sender::new(crate::udptl::ErrorCorrection::None);
    l.handle_datagram(far, &sender.datagram(b"\x00\x01"), std::time::Instant::now());
    let d = drain(&mut l);
    assert_eq!(l.app().ifps, [(0, vec![0, 1])]);
    assert_eq!(d.packets.len(), 2);
    let mut rx = crate::udptl::Receiver::new(1400);
    for (to, bytes) in &d.packets {
        assert_eq!(*to, far);
        assert_eq!(rx.receive(bytes).unwrap().len(), 1);
    }
    // A stranger's datagram is not the fax's.
    l.handle_datagram("192.0.2.1:7000".parse().unwrap(), &sender.datagram(b"x"), std::time::Instant::now());
    assert_eq!(l.app().ifps.len(), 1);
    // A session timer's refresh: the same answer version, the engine not restarted.
    l.handle_reoffer(&t38_offer());
    let [SipAction::AcceptReoffer(again)] = &drain(&mut l).sip[..] else { panic!("an answer") };
    assert!(String::from_utf8_lossy(again).contains("o=voxbridge 42 43 "));
    assert_eq!(l.app().started.len(), 1, "a refresh does not restart the fax");
    // Back to audio: RTP again.
    l.handle_reoffer(&audio_offer(6000, 0));
    let [SipAction::AcceptReoffer(audio)] = &drain(&mut l).sip[..] else { panic!("an answer") };
    assert!(String::from_utf8_lossy(audio).contains("o=voxbridge 42 44 "));
    ticks(&mut l, 2);
    assert_eq!((l.app().frames, l.app().t38_ticks), (2, 3));
}

#[test]
fn a_first_offer_of_t38_starts_the_session_on_it() {
    let offer = crate::sdp::t38::read_offer(&t38_offer()).unwrap();
    let (media, answer) = MediaSession::new_t38(&offer, "127.0.0.1:20000".parse().unwrap(), 42, &SessionParams::new(1));
    assert!(String::from_utf8_lossy(&answer).contains("m=image 20000 udptl t38"));
    let mut l = CallLoop::new(media, Echo::default());
    assert_eq!(l.app().started.len(), 1, "the application hears it is on T.38 from the start");
    assert!(ticks(&mut l, 2).packets.is_empty());
}
