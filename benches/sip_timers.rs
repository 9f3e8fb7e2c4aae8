//! The SIP endpoint's cost per request with and without many live subscriptions: CPU
//! per 10,000 OPTIONS (each parsed, answered, and the next timer asked for, as the
//! driver does after every message; 500,000 of them, so that one-off costs such as a
//! hash table growing are spread as they are in a long-running server) with 0 and
//! with 20,000 subscriptions. With every
//! deadline in a priority queue the two should be equal; a scan of all transactions
//! and subscriptions per wake-up made the second ~7× slower.
//! Run: `cargo bench --bench sip_timers` (`cargo test --all-targets` runs a small smoke pass).

use std::time::{Duration, Instant};
use voxbridge::sip::access::Trunk;
use voxbridge::sip::endpoint::{Endpoint, EndpointConfig};
use voxbridge::sip::txn::{Peer, Transport};

fn subscribe(i: usize) -> String {
    format!(
        "SUBSCRIBE sip:{}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.{}.{}:5060;branch=z9hG4bKs{i}\r\n\
         From: <sip:{}@127.0.0.1>;tag=s{i}\r\nTo: <sip:{}@127.0.0.1>\r\nCall-ID: sub-{i}@bench\r\nCSeq: 1 SUBSCRIBE\r\n\
         Contact: <sip:p@10.0.0.1:5060>\r\nEvent: message-summary\r\nExpires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        1000 + i % 9000,
        i / 250,
        i % 250,
        1000 + i % 9000,
        1000 + i % 9000
    )
}

fn options(i: usize) -> String {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKo{i}\r\n\
         From: <sip:p@127.0.0.1>;tag=o\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: opt-{i}@bench\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = std::mem::MaybeUninit::<[i64; 2]>::uninit();
    // clock_gettime(CLOCK_THREAD_CPUTIME_ID = 3); std has no portable thread CPU clock.
    extern "C" {
        fn clock_gettime(clk: i32, ts: *mut [i64; 2]) -> i32;
    }
    // SAFETY: clock_gettime writes a timespec (two longs on 64-bit Linux) into `ts`.
    let ts = unsafe {
        clock_gettime(3, ts.as_mut_ptr());
        ts.assume_init()
    };
    Duration::new(ts[0] as u64, ts[1] as u32)
}

fn run(subscriptions: usize, requests: usize) -> Duration {
    // The phones sit behind a trusted PBX (10.0.0.0/8): no digest round per subscription.
    let mut cfg = EndpointConfig::new("127.0.0.1:5060".parse().unwrap(), "bench");
    cfg.access.trunks.push(Trunk {
        name: "pbx".into(),
        networks: vec!["10.0.0.0/8".parse().unwrap()],
        credentials: None,
        trusted: true,
        redirection: None,
    });
    let mut ep = Endpoint::new(cfg);
    let t0 = Instant::now();
    for i in 0..subscriptions {
        let peer =
            Peer { addr: format!("10.0.{}.{}:5060", i / 250, i % 250).parse().unwrap(), transport: Transport::Udp };
        ep.handle_input(t0, peer, subscribe(i).as_bytes());
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
    }
    assert_eq!(ep.subscription_count(), subscriptions);
    let peer = Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Udp };
    let cpu = thread_cpu();
    // 10,000 requests a second on a virtual clock, timers fired when due, as the driver
    // does: transactions end 32 s after their answer (Timer J), so their number levels off.
    let mut now = t0;
    for i in 0..requests {
        now += Duration::from_micros(100);
        ep.handle_input(now, peer, options(i).as_bytes());
        while ep.poll_transmit().is_some() {}
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }
    (thread_cpu() - cpu) * 10_000 / requests as u32
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (mut subs, mut requests) = if full { (20_000, 500_000) } else { (500, 2_000) };
    if let Some(n) = std::env::var("REQUESTS").ok().and_then(|v| v.parse().ok()) {
        requests = n;
    }
    if let Some(n) = std::env::var("SUBSCRIPTIONS").ok().and_then(|v| v.parse().ok()) {
        subs = n;
    }
    // Each measured twice, interleaved, the better kept: allocator and cache warm-up
    // would otherwise count against whichever runs first.
    let idle1 = run(0, requests);
    let busy1 = run(subs, requests);
    let idle = run(0, requests).min(idle1);
    let busy = run(subs, requests).min(busy1);
    println!(
        "CPU per 10,000 OPTIONS (of {requests}): {:.1} ms with 0 subscriptions, {:.1} ms with {subs} ({:.2}×)",
        idle.as_secs_f64() * 1000.0,
        busy.as_secs_f64() * 1000.0,
        busy.as_secs_f64() / idle.as_secs_f64()
    );
}
