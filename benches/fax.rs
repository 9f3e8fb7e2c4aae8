//! Fax reception through real calls on loopback, over G.711 or (`--t38`) T.38: the time
//! a 3-page fax takes at the rate the machines agree (V.17, 14,400 bit/s), the server's
//! CPU seconds per fax, and how many concurrent receptions all succeed, in bounded
//! rounds (10, 25, 50, … up to --max). Each fax machine is spandsp in real time, one
//! thread each: behind the test phone for G.711 (tests/common/fax_machine.rs), a T.38
//! terminal on its own UDPTL socket offering T.38 in the INVITE for T.38
//! (tests/common/t38_machine.rs).
//! Run: `tools/bench-fax [--max 100] [--t38]` (or `cargo bench --bench fax`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::fax_machine::fax_machine_calls_port;
use common::t38_machine::{t38_machine_calls, T38Call};
use common::*;
use std::time::Instant;
use voxbridge::fax::spandsp::Outcome;

/// One fax machine's call: G.711 or T.38.
fn send(t38: bool, sip_port: u16, dialled: &str, src: &std::path::Path) -> Outcome {
    if t38 {
        t38_machine_calls(sip_port, dialled, src, T38Call::OFFER).outcome
    } else {
        fax_machine_calls_port(sip_port, dialled, src)
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let t38 = std::env::args().any(|a| a == "--t38");
    let how = if t38 { "T.38" } else { "G.711" };
    let max: usize = std::env::args()
        .skip_while(|a| a != "--max")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 100 } else { 2 });
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("dialplan.toml");
    std::fs::write(&plan, "[[route]]\npattern = \"_7XXX\"\napp = \"fax\"\nmailbox = \"4999\"\n").unwrap();
    let server = Server::start(&format!(
        "[dialplan]\nfile = \"{}\"\n[rtp]\nport_range = \"30000-30999\"\n[sip]\nrate_limit = 0\n",
        plan.display()
    ));
    server.cli_ok(&["mailbox", "add", "4999", "--pin", "1234"]);
    let pages: Vec<tiff::Page> =
        (0..if full { 3 } else { 1 }).map(|n| tiff::page(n, if full { 1100 } else { 200 })).collect();
    let src = work.path().join("fax.tif");
    tiff::write(&src, &pages, 98);

    // One fax alone: its duration and the server's CPU for it.
    let cpu0 = server.cpu_secs();
    let t = Instant::now();
    let one = send(t38, server.sip_port, "7001", &src);
    let secs = t.elapsed().as_secs_f64();
    assert!(one.ok(), "{one:?}");
    println!(
        "one {}-page fax over {how}: {secs:.1} s at {} bit/s (ECM {}), server CPU {:.2} s",
        pages.len(),
        one.bit_rate,
        if one.ecm { "on" } else { "off" },
        server.cpu_secs() - cpu0
    );

    let mut n = if full { 10 } else { 2 };
    while n <= max {
        let (cpu0, t, rss0) = (server.cpu_secs(), Instant::now(), server.rss_mib());
        let machines: Vec<_> = (0..n)
            .map(|i| {
                let (port, src) = (server.sip_port, src.clone());
                std::thread::spawn(move || send(t38, port, &format!("7{:03}", i % 1000), &src))
            })
            .collect();
        let ok = machines.into_iter().map(|m| m.join()).filter(|r| matches!(r, Ok(o) if o.ok())).count();
        let secs = t.elapsed().as_secs_f64();
        let cpu = server.cpu_secs() - cpu0;
        println!(
            "{n} concurrent {how} faxes: {ok} succeeded in {secs:.1} s; server CPU {cpu:.1} s ({:.2} s per fax), RSS {:.0} → {:.0} MiB",
            cpu / n as f64,
            rss0,
            server.rss_mib()
        );
        if ok < n {
            break;
        }
        n = if n < 25 { 25 } else { n * 2 };
    }
}
