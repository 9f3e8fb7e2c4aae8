//! SMDI lamps: how soon a change reaches the link, and how many lamps a second the line
//! pacing lets through.
//!
//! A release server with its SMDI link on a loopback TCP socket (this program is the
//! PBX). (1) Deposits into `--mailboxes` mailboxes (8 calls at a time): from the
//! server's "message saved" log line to `OP:MWI` arriving. (2) The same messages, once
//! delivered to Dovecot, set `\Seen` by an IMAP client one at a time: from the STORE to
//! `RMV:MWI` arriving (IDLE → a sync pass → the change hub → the link). (3) A server
//! started with `--lamps` mailboxes at 1200 and at 9600 baud sends every lamp at start:
//! lamp commands per second as they arrive.
//! Run: `tools/bench-smdi [--mailboxes 40] [--lamps 300]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn arg(name: &str, default: usize) -> usize {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// Lamp commands as they arrive: (command, arrival as Unix seconds).
type Arrivals = Arc<Mutex<Vec<(String, f64)>>>;

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn pbx(listener: &TcpListener) -> (Arrivals, TcpStream) {
    let (s, _) = listener.accept().unwrap();
    let got: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let (g, mut r) = (got.clone(), s.try_clone().unwrap());
    std::thread::spawn(move || {
        let (mut buf, mut line) = ([0u8; 4096], Vec::new());
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let at = unix_now();
            for &b in &buf[..n] {
                if b == 0x04 {
                    g.lock().unwrap().push((String::from_utf8_lossy(&line).into_owned(), at));
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
    });
    (got, s)
}

fn wait_for(got: &Arrivals, command: &str, timeout: Duration) -> Option<f64> {
    let until = Instant::now() + timeout;
    loop {
        if let Some((_, at)) = got.lock().unwrap().iter().rev().find(|(c, _)| c == command) {
            return Some(*at);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The Unix time of a log line's RFC 3339 timestamp (`2026-12-02T02:18:59.184761Z`).
fn log_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let t: jiff::Timestamp = ts.parse().ok()?;
    Some(t.as_nanosecond() as f64 / 1e9)
}

fn quantiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!("n {}  median {:.1} ms  p99 {:.1} ms  max {:.1} ms", v.len(), q(0.5), q(0.99), v[v.len() - 1])
}

fn mailboxes(server: &Server, numbers: impl Iterator<Item = String>, imap: Option<&Dovecot>) {
    let store = voxbridge::store::Store::open(&server.store_dir()).unwrap();
    let greeting = voxbridge::media::tone(700.0, 200, 0.3);
    for n in numbers {
        let imap_url = imap.map(|dv| dv.imap_url(&format!("u{n}")));
        store
            .add_mailbox(&voxbridge::store::NewMailbox {
                number: n.clone(),
                pin: "1234".into(),
                imap_url,
                ..Default::default()
            })
            .unwrap();
        store.save_greeting(&n, voxbridge::model::GreetingKind::Unavailable, &greeting).unwrap();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = arg("--mailboxes", if full { 40 } else { 4 });
    let lamps = arg("--lamps", if full { 300 } else { 20 });

    // (1) and (2): deposits, then \Seen in a mail client.
    let dv = Dovecot::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::configure(&format!(
        "[sync]\npoll_secs = 3600.0\n[smdi]\nlink = \"tcp:127.0.0.1:{port}\"\nbaud = 9600\naudit_secs = 0.0\n"
    ));
    let numbers: Vec<String> = (0..n).map(|i| format!("{}", 3000 + i)).collect();
    mailboxes(&server, numbers.iter().cloned(), Some(&dv));
    server.run();
    let (got, _conn) = pbx(&listener);
    for m in &numbers {
        wait_for(&got, &format!("RMV:MWI {m}!"), Duration::from_secs(30)).expect("the start-up lamps");
    }
    let sip = server.sip_port;
    // The first half one call at a time (a lone change), the rest 8 at a time (a burst).
    let half = numbers.len() / 2;
    let batches = numbers[..half].chunks(1).chain(numbers[half..].chunks(8));
    for chunk in batches {
        let calls: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|m| {
                std::thread::spawn(move || {
                    let mut p = phone::Phone::call(sip, "5550199", &m);
                    std::thread::sleep(Duration::from_millis(700));
                    let voice = voxbridge::media::g711::encode(
                        voxbridge::sdp::Codec::Pcmu,
                        &voxbridge::media::tone(440.0, 1500, 0.3),
                    );
                    p.send_audio(&voice);
                    p.hang_up();
                })
            })
            .collect();
        for c in calls {
            c.join().unwrap();
        }
    }
    let (mut alone_ms, mut burst_ms) = (Vec::new(), Vec::new());
    for (i, m) in numbers.iter().enumerate() {
        let deposit_ms = if i < half { &mut alone_ms } else { &mut burst_ms };
        let Some(lit) = wait_for(&got, &format!("OP:MWI {m}!"), Duration::from_secs(30)) else {
            println!("mailbox {m}: no OP:MWI");
            continue;
        };
        let id = wait_rows(&server, m);
        let log = server.log();
        let saved = log.lines().find(|l| l.ends_with(&format!("message saved {id}"))).and_then(log_time);
        if let Some(saved) = saved {
            deposit_ms.push((lit - saved) * 1000.0);
        }
    }
    println!("deposit saved → OP:MWI on the link, one call at a time: {}", quantiles(alone_ms));
    println!("deposit saved → OP:MWI on the link, 8 calls at once: {}", quantiles(burst_ms));

    let (mut seen_ms, mut idle_ms) = (Vec::new(), Vec::new());
    for m in &numbers {
        wait_until(Duration::from_secs(60), "delivery to Dovecot", || {
            server.messages(m).first().is_some_and(|r| r["server_uid"].is_i64())
        });
        let mut client = MailClient::connect(&dv, &format!("u{m}"), "INBOX");
        let uid = client.flags()[0].0;
        let before = got.lock().unwrap().len();
        let t = unix_now();
        client.store(uid, "+FLAGS (\\Seen)");
        let off = format!("RMV:MWI {m}!");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let at = got.lock().unwrap().iter().skip(before).find(|(c, _)| *c == off).map(|(_, at)| *at);
            if let Some(at) = at {
                seen_ms.push((at - t) * 1000.0);
                // Of which ours: from Dovecot's IDLE report to the lamp.
                let log = server.log();
                let idle = format!("the mail server reported a change mailbox=\"{m}\"");
                if let Some(reported) = log.lines().rev().find(|l| l.contains(&idle)).and_then(log_time) {
                    idle_ms.push((at - reported) * 1000.0);
                }
                break;
            }
            if Instant::now() > until {
                println!("mailbox {m}: no RMV:MWI after \\Seen");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("\\Seen by an IMAP client → RMV:MWI on the link: {}", quantiles(seen_ms));
    println!("  of which from Dovecot's IDLE report → RMV:MWI: {}", quantiles(idle_ms));
    server.stop();

    // (3) Lamps a second at each line speed: every lamp sent at start-up.
    for baud in [1200, 9600] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server =
            Server::configure(&format!("[smdi]\nlink = \"tcp:127.0.0.1:{port}\"\nbaud = {baud}\naudit_secs = 0.0\n"));
        mailboxes(&server, (0..lamps).map(|i| format!("{}", 5_550_000 + i)), None);
        server.run();
        let (got, _conn) = pbx(&listener);
        let last = format!("RMV:MWI {}!", 5_550_000 + lamps - 1);
        wait_for(&got, &last, Duration::from_secs(600)).expect("every lamp");
        let arrivals = got.lock().unwrap().clone();
        let (first, end) = (arrivals[0].1, arrivals[arrivals.len() - 1].1);
        let bytes: usize = arrivals.iter().map(|(c, _)| c.len() + 1).sum();
        println!(
            "{baud} baud (7E1): {} lamps in {:.2} s: {:.1} lamps/s, {:.0} characters/s (line: {} characters/s)",
            arrivals.len(),
            end - first,
            (arrivals.len() - 1) as f64 / (end - first),
            bytes as f64 / (end - first),
            baud / 10
        );
        server.stop();
    }
}

/// The id of a mailbox's one message, once its row exists.
fn wait_rows(server: &Server, m: &str) -> i64 {
    wait_until(Duration::from_secs(10), "the message row", || !server.messages(m).is_empty());
    server.messages(m)[0]["id"].as_i64().unwrap()
}
