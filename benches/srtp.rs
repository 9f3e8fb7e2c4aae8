//! SRTP against plain RTP: the server's CPU per concurrent call (release build, these 2
//! cores). For each mode a fresh server takes N deposits over SIP-over-TLS, each call on
//! its own connection: RTP/SAVP with an SDES key where its trunk requires SRTP, plain
//! RTP/AVP where SRTP is off — the same calls otherwise, so the difference is SRTP's.
//! Each call waits out the greeting, then streams `--speak` seconds of tone at 50
//! packets/s (one pacing thread sends every call's packet each 20 ms) and hangs up. The
//! client encrypts the tone once, with one master key that every call offers:
//! each call's packets are the same ciphertext, so the two cores measure the server —
//! which still keys, authenticates and decrypts every call's packets in contexts of its
//! own — not the client's cipher. Reported: calls answered, messages stored, the
//! server's CPU over a window while all N stream (% of a core per concurrent call) and
//! over the whole run (CPU s per call). sipp here has no TLS, hence this client.
//! Run: `tools/bench-srtp [--counts 1000] [--speak 20] [--rate 100]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::certs::ca_and_server;
use common::tls_call::{invite_offering, TlsCall};
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voxbridge::srtp::{MasterKey, Srtp, Suite};

fn arg(name: &str, default: u64) -> u64 {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// One call's outgoing audio, sent by the pacer.
struct Stream {
    socket: UdpSocket,
    to: SocketAddr,
    seq: u16,
    start: Instant,
    end: Instant,
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let n = arg("--counts", if full { 1000 } else { 3 }) as usize;
    let speak = arg("--speak", if full { 20 } else { 1 });
    let rate = arg("--rate", 100).max(1);
    cipher_cost(if full { 200_000 } else { 1000 });
    if std::env::args().any(|a| a == "--cipher-only") {
        return;
    }
    println!("| mode | calls | answered | stored | CPU % of a core per concurrent call | CPU s per call | window s |");
    println!("|---|---|---|---|---|---|---|");
    let only_srtp = std::env::args().any(|a| a == "--srtp-only");
    for srtp in [false, true].into_iter().filter(|s| *s || !only_srtp) {
        run(n, speak, rate, srtp);
    }
}

fn run(n: usize, speak: u64, rate: u64, srtp: bool) {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "bench");
    let port = free_port();
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nrate_limit = 1000000.0\n\
         rate_burst = 1000000.0\n[sip.tcp]\nmax_connections = 8192\nmax_per_source = 8192\n\
         [rtp]\nport_range = \"20000-39999\"\n[[sip.trunk]]\nname = \"load\"\nnetworks = [\"127.0.0.1\"]\nsrtp = \"{}\"\n",
        cert.display(),
        key.display(),
        if srtp { "required" } else { "off" }
    ));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let greeting = Duration::from_millis(greeting_ms("1001"));
    let speak = Duration::from_secs(speak);
    let tone = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 1000, 0.3));
    let key = MasterKey::random(Suite::AesCm128HmacSha1_80);
    let wire = Arc::new(packets(&tone, speak.as_secs() as usize * 50 + 100, srtp.then_some(&key)));
    let streams: Arc<Mutex<Vec<Stream>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pacer = {
        let (streams, running) = (streams.clone(), running.clone());
        let wire = wire.clone();
        std::thread::spawn(move || pace(&streams, &running, &wire))
    };

    let t0 = Instant::now();
    let cpu0 = server.cpu_secs();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let at = t0 + Duration::from_secs_f64(i as f64 / rate as f64);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let (ca, streams, key) = (ca.clone(), streams.clone(), key.clone());
            std::thread::spawn(move || {
                let (profile, attrs) = if srtp {
                    ("RTP/SAVP", voxbridge::sdp::crypto::line(1, Suite::AesCm128HmacSha1_80, &key))
                } else {
                    ("RTP/AVP", String::new())
                };
                let call: TlsCall = invite_offering(port, &ca, "1001", i as u32, profile, &attrs);
                let start = Instant::now() + greeting;
                let stream = Stream {
                    socket: call.rtp.try_clone().unwrap(),
                    to: call.server_rtp.parse().unwrap(),
                    seq: 1,
                    start,
                    end: start + speak,
                };
                streams.lock().unwrap().push(stream);
                std::thread::sleep(
                    (start + speak + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
                );
                call.bye().starts_with("SIP/2.0 200")
            })
        })
        .collect();
    // Every call streams from the last one's start (plus its greeting) until the first
    // one's end: the window of N concurrent calls.
    let last_start = t0 + Duration::from_secs_f64((n - 1) as f64 / rate as f64) + greeting + Duration::from_millis(500);
    let first_end = t0 + greeting + speak;
    let window = first_end.saturating_duration_since(last_start).saturating_sub(Duration::from_millis(500));
    std::thread::sleep(last_start.saturating_duration_since(Instant::now()));
    let (w0, c0) = (Instant::now(), server.cpu_secs());
    std::thread::sleep(window);
    let (window_secs, window_cpu) = (w0.elapsed().as_secs_f64(), server.cpu_secs() - c0);
    let answered = calls.into_iter().filter_map(|c| c.join().ok()).filter(|ok| *ok).count();
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    pacer.join().unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while Instant::now() < until {
        stored = server.messages("1001").len();
        if stored >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let total_cpu = server.cpu_secs() - cpu0;
    let per_call = if window_secs > 0.5 {
        format!("{:.3}", window_cpu / window_secs / n as f64 * 100.0)
    } else {
        "(window too short: raise --speak)".into()
    };
    println!(
        "| {} | {n} | {answered} | {stored} | {per_call} | {:.4} | {window_secs:.1} |",
        if srtp { "SRTP (AES_CM_128_HMAC_SHA1_80)" } else { "plain RTP" },
        total_cpu / n as f64
    );
    assert_eq!((answered, stored), (n, n), "every call answered and its message stored:\n{}", server.log());
}

/// What the SRTP transform costs per 20 ms PCMU packet (172 bytes), each suite, one thread.
fn cipher_cost(packets: u32) {
    println!("| suite | protect µs/packet | unprotect µs/packet | a context µs |");
    println!("|---|---|---|---|");
    for suite in Suite::OFFERED {
        let key = MasterKey::random(suite);
        let t = Instant::now();
        for _ in 0..200 {
            drop(Srtp::outbound(suite, &key).unwrap());
        }
        let create = t.elapsed().as_secs_f64() * 1e6 / 200.0;
        let (mut tx, mut rx) = (Srtp::outbound(suite, &key).unwrap(), Srtp::inbound(suite, &key).unwrap());
        let plain: Vec<Vec<u8>> = (0..packets)
            .map(|i| {
                rtp_rs::RtpPacketBuilder::new()
                    .payload_type(0)
                    .ssrc(7)
                    .sequence((i as u16).into())
                    .timestamp(i * 160)
                    .payload(&[0x55; 160])
                    .build()
                    .unwrap()
            })
            .collect();
        let t = Instant::now();
        let wire: Vec<Vec<u8>> = plain
            .into_iter()
            .map(|mut p| {
                tx.protect(&mut p).unwrap();
                p
            })
            .collect();
        let protect = t.elapsed().as_secs_f64() * 1e6 / packets as f64;
        let t = Instant::now();
        for mut p in wire {
            // Past 65,535 packets the sequence wraps: a replay to the receiver, still timed.
            let _ = rx.unprotect(&mut p);
        }
        let unprotect = t.elapsed().as_secs_f64() * 1e6 / packets as f64;
        println!("| {suite} | {protect:.2} | {unprotect:.2} | {create:.0} |");
    }
}

/// `n` packets of the tone, from sequence number 1, encrypted with `key` if given.
fn packets(tone: &[u8], n: usize, key: Option<&MasterKey>) -> Vec<Vec<u8>> {
    let mut srtp = key.map(|k| Srtp::outbound(Suite::AesCm128HmacSha1_80, k).unwrap());
    (1..=n)
        .map(|seq| {
            let frame = &tone[(seq * 160) % (tone.len() - 160)..][..160];
            let mut p = rtp_rs::RtpPacketBuilder::new()
                .payload_type(0)
                .ssrc(0x1234_5678)
                .sequence((seq as u16).into())
                .timestamp(seq as u32 * 160)
                .payload(frame)
                .build()
                .unwrap();
            if let Some(srtp) = &mut srtp {
                srtp.protect(&mut p).unwrap();
            }
            p
        })
        .collect()
}

/// Every 20 ms, the next packet for each stream whose time has come; streams past
/// their end are dropped.
fn pace(streams: &Mutex<Vec<Stream>>, running: &std::sync::atomic::AtomicBool, wire: &[Vec<u8>]) {
    let mut next = Instant::now();
    while running.load(std::sync::atomic::Ordering::Relaxed) {
        let now = Instant::now();
        let mut all = streams.lock().unwrap();
        all.retain(|s| s.end > now);
        for s in all.iter_mut().filter(|s| s.start <= now) {
            if let Some(p) = wire.get(s.seq as usize - 1) {
                let _ = s.socket.send_to(p, s.to);
            }
            s.seq = s.seq.saturating_add(1);
        }
        drop(all);
        next += Duration::from_millis(20);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
