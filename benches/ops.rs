//! What an admin's commands cost on a running server (release build): `voxbridge status`
//! and `calls` as a whole command (process start, configuration, the control socket) and
//! the control socket's round trip alone, idle and with `--calls` calls in progress; a
//! metrics scrape; `voxbridge reload` (configuration and dialplan read again); `prompts
//! import` of a 60 s 44.1 kHz stereo MP3.
//! Run: `tools/bench-ops [--calls 20] [--runs 50]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::phone::Phone;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// Median and 99th percentile in milliseconds.
fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    format!("median {:.2} ms, p99 {:.2} ms ({} runs)", at(0.5), at(0.99), ms.len())
}

fn timed(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn socket_round_trip(server: &Server, request: &str) {
    let mut s = std::os::unix::net::UnixStream::connect(server.store_dir().join("control.sock")).unwrap();
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\""), "{line}");
}

fn scrape(port: u16) -> usize {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.contains("voxbridge_"), "{body}");
    body.len()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let (calls, runs) = (arg("--calls", if full { 20 } else { 2 }), arg("--runs", if full { 50 } else { 3 }));
    let metrics = free_port();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[deposit]\nsilence_secs = 600.0\nmax_secs = 600.0\n"
    ));
    for n in 0..calls.max(1) {
        server.cli_ok(&["mailbox", "add", &format!("{}", 2000 + n), "--pin", "1234"]);
    }
    let status = r#"{"command":"status"}"#;
    println!("idle:");
    println!("  voxbridge status --json: {}", summary(timed(runs, || drop(server.cli_ok(&["status", "--json"])))));
    println!("  control socket, status:  {}", summary(timed(runs, || socket_round_trip(&server, status))));
    let bytes = scrape(metrics);
    println!(
        "  metrics scrape ({bytes} bytes): {}",
        summary(timed(runs, || {
            scrape(metrics);
        }))
    );

    let phones: Vec<Phone> =
        (0..calls).map(|n| Phone::call(server.sip_port, "5550100", &format!("{}", 2000 + n))).collect();
    wait_until(Duration::from_secs(30), "the calls up", || {
        server.cli_ok(&["calls", "--json"]).matches("\"app\"").count() == calls
    });
    println!("with {calls} calls in progress:");
    println!("  voxbridge status --json: {}", summary(timed(runs, || drop(server.cli_ok(&["status", "--json"])))));
    println!("  voxbridge calls --json:  {}", summary(timed(runs, || drop(server.cli_ok(&["calls", "--json"])))));
    println!("  control socket, status:  {}", summary(timed(runs, || socket_round_trip(&server, status))));
    println!(
        "  control socket, calls:   {}",
        summary(timed(runs, || socket_round_trip(&server, r#"{"command":"calls"}"#)))
    );
    println!(
        "  metrics scrape:          {}",
        summary(timed(runs, || {
            scrape(metrics);
        }))
    );
    println!("  voxbridge reload:        {}", summary(timed(runs.min(20), || drop(server.cli_ok(&["reload"])))));
    for p in phones {
        p.hang_up();
    }

    // A minute of studio audio at 44.1 kHz stereo as MP3.
    let mp3 = work.path().join("minute.mp3");
    let st = std::process::Command::new("sox")
        .args(["-n", "-r", "44100", "-c", "2"])
        .arg(&mp3)
        .args(["synth", "60", "pinknoise", "gain", "-20"])
        .status()
        .unwrap();
    assert!(st.success());
    let copy = work.path().join("prompts");
    std::fs::create_dir_all(copy.join("en")).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/en/prompts.toml"), copy.join("en/prompts.toml"))
        .unwrap();
    let other = Server::configure(&format!("[prompts]\ndir = \"{}\"\n", copy.display()));
    let m = mp3.to_str().unwrap();
    println!(
        "prompts import of a 60 s 44.1 kHz stereo MP3: {}",
        summary(timed(if full { 5 } else { 1 }, || drop(other.cli_ok(&[
            "prompts",
            "import",
            m,
            "--id",
            "vm-goodbye"
        ]))))
    );
}
