//! A T.38 fax machine (a gateway, as a trunk presents one) for the fax tests and the
//! benchmark: spandsp's T.38 terminal sending a TIFF over its own UDPTL socket, with
//! voxbridge's `udptl` for the datagrams (3 redundant IFPs), in real time. It calls
//! with `m=image` in the INVITE, or with audio first and a re-INVITE to T.38 later
//! (what a gateway does once it hears the fax), may lose a share of the datagrams both
//! ways, and may refresh the session mid-fax with the same description (a session
//! timer).

#![allow(dead_code)]

use super::phone::{answered_port, Dial, Phone};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use voxbridge::fax::spandsp::{Job, Outcome, T38Fax};
use voxbridge::udptl::{ErrorCorrection, Receiver, Sender};

/// How the machine's call goes.
#[derive(Debug, Clone, Copy)]
pub struct T38Call {
    /// T.38 in the INVITE; else audio first and a re-INVITE to T.38 after this long.
    pub reinvite_after: Option<Duration>,
    /// Audio first, and T.38 when the server offers it (its re-INVITE, answered 200).
    pub await_offer: bool,
    /// A re-INVITE with the same description this long into the fax.
    pub refresh_after: Option<Duration>,
    /// Datagrams lost each way, in percent (a fixed pseudo-random pattern).
    pub loss_percent: u64,
    /// Hang up once this many pages went through (a fax cut part way).
    pub hang_up_after_pages: Option<u32>,
}

impl T38Call {
    pub const OFFER: T38Call = T38Call {
        reinvite_after: None,
        await_offer: false,
        refresh_after: None,
        loss_percent: 0,
        hang_up_after_pages: None,
    };
}

/// What the machine saw.
#[derive(Debug)]
pub struct T38Result {
    pub outcome: Outcome,
    /// The server's answers: to the T.38 offer (in the INVITE or the re-INVITE; with
    /// `await_offer`, the server's re-INVITE itself), and to the refresh if one was sent.
    pub answers: Vec<String>,
    pub dropped: u64,
    pub sent: u64,
}

/// The machine's T.38 description: version 0, 14,400 bit/s, transferred TCF, 400-octet
/// datagrams, redundancy.
pub fn t38_offer(port: u16, version: u32) -> String {
    format!(
        "v=0\r\no=fax 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=image {port} udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n\
         a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:800\r\na=T38FaxMaxDatagram:400\r\n\
         a=T38FaxUdpEC:t38UDPRedundancy\r\n"
    )
}

/// Calls `dialled` at the server's SIP port from 5550188 and sends `tiff` over T.38.
pub fn t38_machine_calls(sip_port: u16, dialled: &str, tiff: &std::path::Path, how: T38Call) -> T38Result {
    let udptl = UdpSocket::bind("127.0.0.1:0").unwrap();
    udptl.set_nonblocking(true).unwrap();
    let offer = t38_offer(udptl.local_addr().unwrap().port(), 1);
    let mut answers = Vec::new();
    let (mut phone, server): (Phone, SocketAddr) = match how.reinvite_after {
        None if how.await_offer => {
            let mut p = Phone::call(sip_port, "5550188", dialled);
            // Until the offer comes, a fax machine's calling tone: 1100 Hz for 0.5 s,
            // then 3 s of silence, in real time (what a voice mailbox hears a fax by).
            let (start, mut frame) = (Instant::now(), 0u32);
            let invite = loop {
                if start.elapsed() > Duration::from_secs(15) {
                    panic!("no T.38 offer from the server within 15 s");
                }
                let on = frame % 175 < 25;
                let pcm: Vec<u8> = (0..160)
                    .map(|i| {
                        let t = (frame as f64 * 160.0 + i as f64) / 8000.0;
                        let v = if on { (t * 1100.0 * std::f64::consts::TAU).sin() * 8000.0 } else { 0.0 };
                        voxbridge::media::g711::ulaw_encode(v as i16)
                    })
                    .collect();
                p.send_frame(&pcm);
                frame += 1;
                if let Some(r) = p.poll_request(Duration::ZERO) {
                    if r.starts_with("INVITE ") {
                        break r;
                    }
                }
                std::thread::sleep(
                    (start + Duration::from_millis(20) * frame).saturating_duration_since(Instant::now()),
                );
            };
            let server = format!("127.0.0.1:{}", answered_port(&invite)).parse().unwrap();
            p.respond(&invite, 200, "OK", Some(&offer));
            answers.push(invite);
            (p, server)
        }
        None => {
            let dial = Dial { sdp_ip: "127.0.0.1", ack: true, sdp: Some(&offer), headers: "" };
            let p = Phone::dial(sip_port, "5550188", dialled, dial);
            let server = p.server_rtp();
            answers.push(p.answer.clone());
            (p, server)
        }
        Some(after) => {
            let mut p = Phone::call(sip_port, "5550188", dialled);
            std::thread::sleep(after);
            let answer = p.reinvite_with(&offer, 2);
            let server = format!("127.0.0.1:{}", answered_port(&answer)).parse().unwrap();
            answers.push(answer);
            (p, server)
        }
    };
    let mut machine = T38Fax::new(true, Job::Send(tiff), "+1 555 0188", 0, 400).unwrap();
    let (mut out, mut inp) = (Sender::new(ErrorCorrection::Redundancy(3)), Receiver::new(1400));
    let mut x: u64 = 0x5eed;
    let mut lose = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % 100 < how.loss_percent
    };
    let (mut sent, mut dropped) = (0u64, 0u64);
    let (start, mut ticks) = (Instant::now(), 0u32);
    let mut refreshed = how.refresh_after.is_none();
    let cut = how.hang_up_after_pages.unwrap_or(u32::MAX);
    while start.elapsed() < Duration::from_secs(150) && machine.outcome().is_none() && machine.pages_sent_so_far() < cut
    {
        step(&udptl, &mut machine, &mut out, &mut inp, server, &mut lose, &mut sent, &mut dropped);
        if !refreshed && start.elapsed() >= how.refresh_after.unwrap() {
            refreshed = true;
            // A session timer's refresh: the same description, the same o= version.
            answers.push(phone.reinvite_with(&offer, 3));
        }
        ticks += 1;
        std::thread::sleep((start + Duration::from_millis(20) * ticks).saturating_duration_since(Instant::now()));
    }
    if how.hang_up_after_pages.is_some() {
        phone.hang_up();
        machine.terminate();
        let outcome = machine.outcome().expect("T.30 ends when the machine hangs up");
        return T38Result { outcome, answers, dropped, sent };
    }
    let outcome = machine.outcome().expect("the fax ended within two and a half minutes");
    phone.hang_up();
    T38Result { outcome, answers, dropped, sent }
}

/// One 20 ms step of the machine: what arrived into spandsp, its time on, its IFPs out.
#[allow(clippy::too_many_arguments)]
fn step(
    udptl: &UdpSocket,
    machine: &mut T38Fax,
    out: &mut Sender,
    inp: &mut Receiver,
    server: SocketAddr,
    lose: &mut impl FnMut() -> bool,
    sent: &mut u64,
    dropped: &mut u64,
) {
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = udptl.recv_from(&mut buf) {
        if lose() {
            *dropped += 1;
            continue;
        }
        for (seq, ifp) in inp.receive(&buf[..n]).unwrap_or_default() {
            machine.receive(&ifp, seq);
        }
    }
    machine.advance(160);
    for (ifp, count) in machine.take_ifps() {
        for _ in 0..count {
            let d = out.datagram(&ifp);
            *sent += 1;
            if lose() {
                *dropped += 1;
                continue;
            }
            udptl.send_to(&d, server).unwrap();
        }
    }
}
