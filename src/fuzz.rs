//! Fuzz bodies for every parser that sees hostile input. They live in the library so
//! they cannot rot: the seeded mutation test below runs them on every `cargo test`, and
//! a coverage-guided fuzzer (cargo fuzz, AFL++) can call the same functions.

use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::txn::{Peer, Transport};
use std::time::{Duration, Instant};

/// An endpoint that trusts the fuzz peer for requests about mailboxes (a trusted
/// trunk), so SUBSCRIBE mutations reach the subscription code, not only the challenge.
fn fuzz_endpoint() -> Endpoint {
    let mut cfg = EndpointConfig::new("127.0.0.1:5060".parse().expect("literal"), "fuzz");
    cfg.access.trunks.push(crate::sip::access::Trunk {
        name: "fuzz".into(),
        networks: vec!["127.0.0.0/8".parse().expect("literal")],
        credentials: None,
        trusted: true,
        redirection: None,
    });
    Endpoint::new(cfg)
}

/// An `Authorization` value through the digest parser and check.
pub fn digest_authorization(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::sip::digest::parse_authorization(text);
    let t0 = Instant::now();
    let algorithms = [crate::sip::digest::Algorithm::Sha256, crate::sip::digest::Algorithm::Md5];
    let mut auth = crate::sip::digest::DigestAuth::new("voxbridge", &algorithms, Duration::from_secs(60), t0);
    let _ = auth
        .verify(t0, "SUBSCRIBE", Some(text), |u| Some(crate::sip::digest::Ha1::new(u, "voxbridge", "fuzz-password")));
}

/// SIP bytes through the whole UA core: parse, validate, transactions, dialogs, timers.
pub fn sip_endpoint(data: &[u8]) {
    let mut ep = fuzz_endpoint();
    let peer = Peer { addr: "127.0.0.1:5070".parse().expect("literal"), transport: Transport::Udp };
    let t0 = Instant::now();
    ep.handle_input(t0, peer, data);
    while let Some(ev) = ep.poll_event() {
        match ev {
            crate::sip::endpoint::Event::IncomingCall(c) => {
                // Whatever the application does next must not panic either.
                let _ = crate::sdp::negotiate(&c.offer);
                ep.answer(t0, c.call, b"v=0\r\n");
                ep.handle_input(t0, peer, data);
                ep.hangup(t0, c.call);
            }
            crate::sip::endpoint::Event::Subscribed { sub, .. } | crate::sip::endpoint::Event::Ending(sub) => {
                ep.notify(t0, sub, "Messages-Waiting: no\r\n");
                ep.handle_input(t0, peer, data);
            }
            _ => {}
        }
    }
    ep.handle_timeout(t0 + Duration::from_secs(64));
    while ep.poll_transmit().is_some() {}
}

/// A TCP byte stream, split at every position, through the framer and the parser.
pub fn sip_tcp_stream(data: &[u8]) {
    let mut f = crate::sip::frame::TcpFramer::default();
    for chunk in data.chunks(7) {
        f.push(chunk);
        while let Ok(Some(m)) = f.next_message() {
            let _ = crate::sip::msg::parse(&m);
        }
    }
}

/// A message from a mail server (or anyone who can send mail): classification by the
/// retrieve agent, and an audio attachment's decoding for the phone (as WAV and as MP3).
pub fn mail_message(data: &[u8]) {
    let _ = crate::sync::retrieve::classify(data, "<fuzz@voxbridge.invalid>");
    let _ = crate::media::wav::decode_8k_mono(data);
    let _ = crate::media::decode::decode_8k_mono(data, Some("wav"));
    let _ = crate::media::decode::decode_8k_mono(data, Some("mp3"));
}

pub fn sdp_offer(data: &[u8]) {
    let ip = "127.0.0.1".parse().expect("literal");
    if let Ok((n, lines)) = crate::sdp::negotiate(data) {
        let _ = crate::sdp::answer(&n, &lines, ip, 20000, 1, 1);
    }
    // As a T.38 offer (first or re-offer) and as the answer to ours.
    if let Ok(o) = crate::sdp::t38::read_offer(data) {
        let _ = crate::sdp::t38::answer(&o, ip, 20000, 1, 1);
    }
    let _ = crate::sdp::t38::read_answer(data);
    let over_tls = crate::srtp::Keying { policy: crate::srtp::Policy::Optional, over_tls: true };
    let _ = crate::session::media::FirstOffer::read(data, ip, crate::session::media::Serves::FaxElseAudio, over_tls);
}

/// RTP datagrams through a session, with ticks in between.
pub fn rtp_session(data: &[u8]) {
    let n = crate::sdp::Negotiated {
        dtmf_pt: Some(101),
        rtcp_mux: true,
        ..crate::sdp::Negotiated::plain("127.0.0.1:6000".parse().expect("literal"), crate::sdp::Codec::Pcma)
    };
    let mut s = crate::rtp::session::RtpSession::new(&n, &crate::rtp::session::SessionParams::new(2));
    let mut pcm = Vec::new();
    let now = std::time::Instant::now();
    for chunk in data.split(|&b| b == 0xAA) {
        // From the SDP address (learned at once) and from a stranger.
        s.handle_input("127.0.0.1:6000".parse().expect("literal"), chunk, now);
        s.handle_input("127.0.0.1:7000".parse().expect("literal"), chunk, now);
        s.handle_tick(&mut pcm);
        while s.poll_output().is_some() {}
    }
}

/// The compare agent on lists made from the bytes (sorted by UID, as the callers
/// guarantee), with the safety properties of its plan checked: a row is removed only if
/// it was in the store list, and only for a D or a UID gone from the server; what is
/// retrieved is on the server and not in the store.
pub fn compare_agent(data: &[u8]) {
    use crate::model::State;
    use crate::sync::compare::{compare, ServerMsg, StoreMsg};
    let state = |b: u8| [State::U, State::R, State::M, State::D][(b & 3) as usize];
    let mut store: Vec<StoreMsg> = Vec::new();
    let mut server: Vec<ServerMsg> = Vec::new();
    // 64 UIDs at most: longer inputs only repeat them (and make each run slow).
    for (i, c) in data.chunks(3).take(256).enumerate() {
        let [uid, a, b] = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let uid = uid as u32 % 64 + 1;
        if a & 0x80 == 0 {
            let synced = (a & 0x40 != 0).then(|| state(a >> 2));
            store.push(StoreMsg { id: i as i64 + 1, uid, state: state(a), synced });
        }
        if b & 0x80 == 0 {
            server.push(ServerMsg { uid, state: (b & 0x40 == 0).then(|| state(b)) });
        }
    }
    store.sort_by_key(|m| m.uid);
    store.dedup_by_key(|m| m.uid);
    server.sort_by_key(|m| m.uid);
    server.dedup_by_key(|m| m.uid);
    let plan = compare(&store, &server);
    let row = |id: i64| store.iter().find(|m| m.id == id).expect("a planned row is a store row");
    for &id in &plan.gone {
        assert!(!server.iter().any(|m| m.uid == row(id).uid), "row {id} removed though its UID is on the server");
    }
    for &(id, uid) in &plan.delete {
        assert_eq!(row(id).uid, uid);
    }
    for uid in &plan.retrieve {
        assert!(server.iter().any(|m| m.uid == *uid) && !store.iter().any(|m| m.uid == *uid));
    }
    for (id, _) in plan.to_store.iter().chain(&plan.synced) {
        row(*id);
    }
}

/// Text through the English and German readers with their rule files, and the bytes as
/// a mail through the clean-up: money, dates, links, HTML… never panic.
pub fn reading_en(data: &[u8]) {
    use crate::reading::{Lang, Reader, Rules};
    static READERS: std::sync::LazyLock<[Reader; 2]> = std::sync::LazyLock::new(|| {
        let en = Rules::parse(include_str!("../prompts/en/substitutions.toml")).unwrap_or_default();
        let de = Rules::parse(include_str!("../prompts/de/substitutions.toml")).unwrap_or_default();
        [Reader::new(en), Reader { lang: Lang::De, ..Reader::new(de) }]
    });
    let text = String::from_utf8_lossy(data);
    for r in READERS.iter() {
        let _ = r.paragraphs(&text);
    }
    let _ = READERS[0].mail(data);
    let _ = crate::reading::cleanup::html_to_text(&text);
}

/// Datagrams through a UDPTL receiver: any bytes as one datagram and, split at its
/// first octet, as a stream of them (redundancy, FEC repair, wrap-around, restarts).
pub fn udptl_datagram(data: &[u8]) {
    let mut rx = crate::udptl::Receiver::new(crate::udptl::MAX_IFP);
    let _ = rx.receive(data);
    let step = data.first().map_or(1, |b| (*b as usize % 24) + 1);
    for chunk in data.chunks(step) {
        let _ = rx.receive(chunk);
    }
    // What parses encodes back to itself (an empty IFP excepted: it is sent as one
    // zero octet, X.691 §10.1).
    use crate::udptl::{Packet, Recovery, MAX_IFP};
    if let Ok(p) = Packet::parse(data, MAX_IFP) {
        let others = match &p.recovery {
            Recovery::Redundancy(v) => v,
            Recovery::Fec { entries, .. } => entries,
        };
        if !p.primary.is_empty() && others.iter().all(|o| !o.is_empty()) {
            assert_eq!(Packet::parse(&p.encode(), MAX_IFP).as_ref(), Ok(&p), "re-encoding changes nothing");
        }
    }
}

/// Any bytes as a fax's TIFF: its pages counted and its PDF made, never a panic.
pub fn fax_tiff(data: &[u8]) {
    let _ = crate::fax::tiff::pages(data);
    let _ = crate::fax::tiff::sendable(data);
    let _ = crate::fax::pdf::from_tiff(data);
}

/// Any bytes handed to `fax send` as a PDF or an e-mail: the PDF's fax pages taken
/// out (lopdf), the e-mail's text made — errors, never a panic.
pub fn fax_document(data: &[u8]) {
    let _ = crate::fax::pdf_pages::to_tiff(data);
    let _ = crate::fax::text::email_text(data);
}

/// Bytes from a PBX's SMDI link, split anywhere: messages or garbage, never a panic.
pub fn smdi_stream(data: &[u8]) {
    let mut dec = crate::smdi::codec::Decoder::new(data.first().map_or(0, |b| (b % 4) as usize));
    let cut = data.len() / 2;
    let mut got = dec.push(&data[..cut]);
    got.extend(dec.push(&data[cut..]));
    for m in got {
        if let crate::smdi::codec::Inbound::CallDetail(d) = m {
            let _ = d.forwarding.as_deref().map(|s| crate::smdi::codec::lamp(s, true));
        }
    }
    // The same bytes through the message desk, with calls waiting and lamps wanted.
    use crate::smdi::desk::{Desk, DeskConfig, DeskEvent};
    use std::time::{Duration, Instant};
    let t0 = Instant::now();
    let mut desk = Desk::new(DeskConfig { strip: data.len() % 3, ..DeskConfig::default() });
    desk.link_up(t0);
    let _ = desk.call_arrived(t0, 1, Some("0001"), None, Duration::from_secs(1));
    let _ = desk.call_arrived(t0, 2, None, Some("5551234"), Duration::from_secs(1));
    for (i, chunk) in data.chunks(7).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 50);
        desk.receive(now, chunk);
        while let Some(ev) = desk.poll_event() {
            if let DeskEvent::Matched { detail, .. } = ev {
                if let Some(f) = detail.forwarding {
                    desk.want_lamp(now, &f, i % 2 == 0);
                }
            }
        }
        if let Some(t) = desk.poll_timeout() {
            desk.handle_timeout(t.max(now));
        }
        while desk.poll_transmit().is_some() {}
    }
    desk.link_down();
    desk.link_up(t0 + Duration::from_secs(60));
    desk.handle_timeout(t0 + Duration::from_secs(3600));
    let _ = desk.snapshot(t0 + Duration::from_secs(3600));
}

/// `Diversion` and `History-Info` values (one per line; lines starting `H` are
/// History-Info) through the redirection policy, both picks.
pub fn sip_redirection(data: &[u8]) {
    use crate::sip::redirection::{Pick, Policy, Source};
    let text = String::from_utf8_lossy(data);
    let (mut div, mut hi) = (Vec::new(), Vec::new());
    for line in text.lines() {
        match line.strip_prefix('H') {
            Some(h) => hi.push(h),
            None => div.push(line),
        }
    }
    for pick in [Pick::Latest, Pick::Original] {
        let p = Policy { trust: vec![Source::HistoryInfo, Source::Diversion], pick };
        let _ = p.diverted(&div, &hi);
    }
}

/// A fuzz body: one input, any bytes.
pub type Body = fn(&[u8]);

/// Every fuzz body by name, for the coverage-guided fuzzer (`tools/fuzz`).
pub const TARGETS: &[(&str, Body)] = &[
    ("sip_endpoint", sip_endpoint),
    ("sip_tcp_stream", sip_tcp_stream),
    ("sdp_offer", sdp_offer),
    ("rtp_session", rtp_session),
    ("mail_message", mail_message),
    ("digest_authorization", digest_authorization),
    ("compare_agent", compare_agent),
    ("reading_en", reading_en),
    ("udptl_datagram", udptl_datagram),
    ("fax_tiff", fax_tiff),
    ("fax_document", fax_document),
    ("smdi_stream", smdi_stream),
    ("sip_redirection", sip_redirection),
];

/// Seed inputs: valid messages of every kind, so mutations start deep in the stack
/// (the mutation test below and the coverage-guided fuzzer's corpora in `fuzz/`).
pub const SEEDS: &[&[u8]] = &[
    b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 88\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    b"\x80\x00\x00\x01\x00\x00\x00\xa0\x00\x00\x00\x05\xff\xff\xaa\x80\x65\x00\x02\x00\x00\x01\x00\x00\x00\x00\x05\x0b\x8a\x00\xa0",
    b"SUBSCRIBE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKs\r\nFrom: <sip:1000@b>;tag=p\r\nTo: <sip:1000@b>\r\nCall-ID: s\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:p@127.0.0.1:5070>\r\nEvent: message-summary\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
    b"From: A <a@b.c>\r\nMessage-ID: <m@b.c>\r\nMessage-Context: voice-message\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: audio/wav\r\nContent-Duration: 1\r\nContent-Transfer-Encoding: base64\r\n\r\nUklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQgAAAAAAAEAAgADAA==\r\n--x--\r\n",
    b"\x52\x49\x46\x46\x2c\x00\x00\x00\x57\x41\x56\x45\x66\x6d\x74\x20\x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00\x64\x61\x74\x61\x08\x00\x00\x00\x00\x00\xe8\x03\x18\xfc\x05\x00",
    "Dear Dr. Smith, the $1,234.56 invoice (due 12/25/2024 at 10:30 a.m. EST) is 45% paid. Call (555) 123-4567 ext. 89 or mail ann.lee@example.com; see https://example.com/x?y=1. FYI: 5 km, 20°C, Chapter IV, the 1990s, 3/4, 21st :) 👍 PLEASE REPLY ASAP!!!".as_bytes(),
    b"Digest username=\"1000\", realm=\"voxbridge\", nonce=\"1a.00112233445566778899aabbccddeeff\", uri=\"sip:1000@127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"c\", nc=00000001, qop=auth",
    b"\x00\x05\x02\xaa\xbb\x00\x01\x01\xcc",
    b"\x00\x09\x01\x01\x80\x01\x03\x02\x01\x02\x02\x03\x04",
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=image 6002 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxDatagram:400\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n",
];

#[cfg(test)]
mod tests {
    use super::SEEDS;
    use rand::{Rng, SeedableRng};

    fn mutate(rng: &mut rand::rngs::StdRng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..rng.random_range(1..8) {
            let len = v.len().max(1);
            match rng.random_range(0..5) {
                0 => {
                    let i = rng.random_range(0..len);
                    if i < v.len() {
                        v[i] = rng.random();
                    }
                }
                1 => {
                    let i = rng.random_range(0..=v.len());
                    v.insert(i, *b"\r\n:;<>\"=, \x00\xff".get(rng.random_range(0..12)).unwrap_or(&0));
                }
                2 if !v.is_empty() => {
                    let i = rng.random_range(0..v.len());
                    v.remove(i);
                }
                3 => v.truncate(rng.random_range(0..=v.len())),
                _ => {
                    let i = rng.random_range(0..=v.len());
                    let j = rng.random_range(i..=v.len());
                    let dup = v[i..j].to_vec();
                    v.splice(i..i, dup);
                }
            }
        }
        v
    }

    #[test]
    fn seeds_reach_deep_into_the_stack() {
        // The INVITE seed is a valid call with a usable offer, so mutations of it start
        // from the far end of the pipeline, not from the first parse error.
        let mut ep = super::fuzz_endpoint();
        let peer = crate::sip::txn::Peer {
            addr: "127.0.0.1:5070".parse().unwrap(),
            transport: crate::sip::txn::Transport::Udp,
        };
        ep.handle_input(std::time::Instant::now(), peer, SEEDS[0]);
        let Some(crate::sip::endpoint::Event::IncomingCall(c)) = ep.poll_event() else { panic!("seed is not a call") };
        assert!(crate::sdp::negotiate(&c.offer).is_ok());
        assert!(matches!(crate::rtp::classify(SEEDS[2]), crate::rtp::Datagram::Rtp(_)));
        ep.handle_input(std::time::Instant::now(), peer, SEEDS[3]);
        assert!(
            std::iter::from_fn(|| ep.poll_event()).any(|e| matches!(e, crate::sip::endpoint::Event::Subscribed { .. })),
            "the SUBSCRIBE seed subscribes"
        );
        let mail = crate::sync::retrieve::classify(SEEDS[4], "<f@x>");
        assert_eq!((mail.kind, mail.duration_ms), (crate::sync::retrieve::Kind::Voice, Some(1000)));
        assert_eq!(crate::media::wav::decode_8k_mono(SEEDS[5]).unwrap(), [0, 1000, -1000, 5]);
        assert!(crate::sdp::t38::read_offer(SEEDS[10]).is_ok(), "the T.38 seed is an offer");
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..8_000 {
            let seed = SEEDS[rng.random_range(0..SEEDS.len())];
            let input = mutate(&mut rng, seed);
            super::sip_endpoint(&input);
            super::sip_tcp_stream(&input);
            super::sdp_offer(&input);
            super::rtp_session(&input);
            super::mail_message(&input);
            super::digest_authorization(&input);
            super::compare_agent(&input);
        }
    }
}
