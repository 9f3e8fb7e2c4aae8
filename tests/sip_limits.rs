//! What a hostile peer can hold of the SIP side: a flood from one source, TCP
//! connections by the hundred, slow-loris, idle connections, running out of file
//! descriptors. Each time a legitimate request must still be answered, and the server
//! must stay within CPU and log bounds.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn options(branch: &str, via: &str) -> String {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:9;branch=z9hG4bK{branch}\r\n\
         From: <sip:p@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// One OPTIONS over UDP from a fresh socket: the status line of the answer.
fn udp_options(port: u16, branch: &str) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(options(branch, "UDP").as_bytes(), ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_string)
}

fn tcp_options(port: u16, branch: &str) -> Option<String> {
    let mut t = TcpStream::connect(("127.0.0.1", port)).ok()?;
    t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    t.write_all(options(branch, "TCP").as_bytes()).ok()?;
    let mut buf = [0u8; 4096];
    let n = t.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_string)
}

/// Whether the server closed `t` (EOF) within `within`.
fn closed_within(t: &mut TcpStream, within: Duration) -> bool {
    t.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 64];
    matches!(t.read(&mut b), Ok(0)) || matches!(t.read(&mut b), Ok(0))
}

#[test]
fn a_flood_from_one_source_is_limited_logged_once_and_others_are_still_answered() {
    let server = Server::start("[sip]\nrate_limit = 50.0\nrate_burst = 50.0\nrate_limit_action = \"503\"\n");
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let reader = flood.try_clone().unwrap();
    let answers = std::thread::spawn(move || {
        let (mut ok, mut busy, mut retry_after) = (0, 0, true);
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) = reader.recv_from(&mut buf) {
            let r = String::from_utf8_lossy(&buf[..n]);
            if r.starts_with("SIP/2.0 200") {
                ok += 1;
            } else if r.starts_with("SIP/2.0 503") {
                busy += 1;
                retry_after &= r.contains("Retry-After: ");
            }
        }
        (ok, busy, retry_after)
    });
    // 400 requests in about 0.4 s: eight times the rate.
    for i in 0..400 {
        flood.send_to(options(&format!("f{i}"), "UDP").as_bytes(), ("127.0.0.1", server.sip_port)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let (ok, busy, retry_after) = answers.join().unwrap();
    // The burst and the rate over the flood's half second or so pass; the rest is refused.
    assert!((50..=110).contains(&ok), "{ok} answered 200");
    assert!(busy >= 250 && retry_after, "{busy} answered 503 (all with Retry-After: {retry_after})");
    // Another source is not affected.
    assert_eq!(udp_options(server.sip_port, "other").as_deref(), Some("SIP/2.0 200 OK"));
    let log = server.log();
    assert_eq!(log.matches("SIP rate limit").count(), 1, "logged once per source per interval:\n{log}");
}

#[test]
fn tcp_connections_are_capped_and_slow_or_idle_ones_closed() {
    let server = Server::start(
        "[sip]\nrate_limit = 0.0\n[sip.tcp]\nmax_connections = 12\nmax_per_source = 6\nidle_secs = 2\nmessage_secs = 1\n",
    );
    let p = server.sip_port;
    // Six connections from one address are held; the seventh is closed at once.
    let mut held: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut seventh = TcpStream::connect(("127.0.0.1", p)).unwrap();
    assert!(closed_within(&mut seventh, Duration::from_millis(500)), "the 7th connection from one address was kept");

    // Slow-loris: a message that trickles in is cut off after message_secs.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(100));
    let mut slow = TcpStream::connect(("127.0.0.1", p)).unwrap();
    let start = Instant::now();
    let text = options("slow", "TCP");
    let mut cut = false;
    for b in text.as_bytes() {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(cut || closed_within(&mut slow, Duration::from_millis(500)), "a 100 ms/byte message was not cut off");
    assert!(start.elapsed() < Duration::from_secs(4), "cut off after {:?}", start.elapsed());

    // Idle connections go after idle_secs; a keep-alive ping is answered with a pong.
    let mut pinger = held.pop().unwrap();
    pinger.write_all(b"\r\n\r\n").unwrap();
    pinger.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut pong = [0u8; 8];
    let n = pinger.read(&mut pong).unwrap();
    assert_eq!(&pong[..n], b"\r\n", "RFC 5626 pong");
    std::thread::sleep(Duration::from_millis(2500));
    for mut c in held {
        assert!(closed_within(&mut c, Duration::from_millis(500)), "an idle connection was kept");
    }
    // And a legitimate request over TCP is answered throughout.
    assert_eq!(tcp_options(p, "legit").as_deref(), Some("SIP/2.0 200 OK"));
}

#[test]
fn running_out_of_file_descriptors_pauses_accept_without_spinning() {
    let server = Server::start("[sip]\nrate_limit = 0.0\n[sip.tcp]\nmax_connections = 1000\nmax_per_source = 1000\n");
    let limit = std::process::Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), "--nofile=64:64"])
        .status()
        .unwrap();
    assert!(limit.success());
    let cpu0 = server.cpu_secs();
    let log0 = server.log().len();
    // Far more connections than descriptors: the kernel queues them, accept fails.
    let conns: Vec<TcpStream> =
        (0..150).filter_map(|_| TcpStream::connect(("127.0.0.1", server.sip_port)).ok()).collect();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = server.cpu_secs() - cpu0;
    let log = &server.log()[log0..];
    assert!(cpu < 0.5, "{cpu} CPU seconds in 3 s of EMFILE");
    assert!(log.len() < 4000, "{} bytes of log in 3 s:\n{log}", log.len());
    assert!(log.contains("pausing accept"), "{log}");
    // UDP is still answered, and TCP again once descriptors are free.
    assert_eq!(udp_options(server.sip_port, "during").as_deref(), Some("SIP/2.0 200 OK"));
    drop(conns);
    let mut answered = None;
    wait_until(Duration::from_secs(10), "TCP answered again", || {
        answered = tcp_options(server.sip_port, "after");
        answered.is_some()
    });
    assert_eq!(answered.as_deref(), Some("SIP/2.0 200 OK"));
}

#[test]
fn a_trunk_is_not_held_to_the_per_source_limit() {
    let server = Server::start(
        "[sip]\nrate_limit = 20.0\nrate_burst = 20.0\n[[sip.trunk]]\nname = \"pbx\"\nnetworks = [\"127.0.0.2\"]\n",
    );
    let count_answers = |from: &str| {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let reader = s.try_clone().unwrap();
        let answers = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            std::iter::from_fn(|| reader.recv_from(&mut buf).ok()).count()
        });
        for i in 0..200 {
            s.send_to(options(&format!("t{from}{i}"), "UDP").as_bytes(), ("127.0.0.1", server.sip_port)).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
        answers.join().unwrap()
    };
    assert_eq!(count_answers("127.0.0.2"), 200, "the trunk's requests are all answered");
    let phone = count_answers("127.0.0.3");
    assert!(phone < 100, "another address is limited: {phone} of 200 answered");
}
