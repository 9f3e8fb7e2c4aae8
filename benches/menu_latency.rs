//! Key press to first audio of the answer, in the mailbox menu, on loopback.
//!
//! A release server and a minimal phone (tests/common/phone.rs): log in, then press `*`
//! (help) in the main menu N times; each press cuts the prompt playing and starts the
//! help prompt, whose first RTP packet carries the marker bit. The figure is the time
//! from sending the key's first RFC 4733 packet to receiving that packet.
//! Run: `tools/bench-menu [--presses 1000]` (or `cargo bench --bench menu_latency`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::time::Duration;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a smoke test
    // with a few presses.
    let full = std::env::args().any(|a| a == "--bench");
    let presses: usize = std::env::args()
        .skip_while(|a| a != "--presses")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 1000 } else { 20 });
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4401", "--pin", "1234"]);
    let mut phone = phone::Phone::call(server.sip_port, "4401", "*98");
    let t = std::time::Instant::now();
    phone.first_marker_after(t - Duration::from_secs(1), Duration::from_secs(10)).expect("the PIN prompt");
    phone.keys("1234", Duration::from_millis(60));
    let t = phone.press('#');
    phone.first_marker_after(t, Duration::from_secs(10)).expect("the main menu");

    let mut lat: Vec<f64> = Vec::with_capacity(presses);
    let mut missed = 0;
    for i in 0..presses {
        // Spread the presses over the 20 ms tick: 40 ms plus a varying 0–19 ms.
        std::thread::sleep(Duration::from_millis(40 + (i as u64 * 7) % 20));
        let t = phone.press('*');
        match phone.first_marker_after(t, Duration::from_secs(2)) {
            Some(at) => lat.push((at - t).as_secs_f64() * 1000.0),
            None => missed += 1,
        }
    }
    phone.hang_up();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!("key press → first audio of the answer, {} presses ({missed} without an answer), ms:", presses);
    println!(
        "median {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  min {:.1}",
        q(0.5),
        q(0.9),
        q(0.99),
        lat.last().copied().unwrap_or(0.0),
        lat.first().copied().unwrap_or(0.0)
    );
}
