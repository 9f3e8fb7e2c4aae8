//! Key press → first audio of an e-mail's body, through a real call on loopback.
//!
//! A release server whose mailbox holds two e-mails (a short and a long one, retrieved
//! from Dovecot) and a minimal phone (tests/common/phone.rs). Per round the phone picks a
//! message (`1`, then `6` next / `4` previous: each asks the server for that message's
//! speech), waits for the envelope's first packet and presses `#` at once, which skips the
//! envelope: the figure is the time from that key to the first packet of the spoken mail
//! (the first marked, non-silent packet), and from the key that picked the message.
//! Run twice: rendered fresh for each listen (`[menu] speech_cache_mb = 0`), and from the
//! store's speech cache once the long mail was rendered whole.
//! Run: `tools/bench-email [--rounds 50]` (or `cargo bench --bench email_latency`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::time::{Duration, Instant};

/// Everyday business prose, a sentence at a time (about 12 words each).
const SENTENCES: [&str; 6] = [
    "The quarterly review moved to Thursday afternoon in the large meeting room.",
    "Please bring the updated figures for the northern region and the budget.",
    "We expect about twenty new customers to sign before the end of the month.",
    "Call me if the numbers look different from what we discussed last week.",
    "The supplier confirmed that the parts will arrive early next Monday morning.",
    "Thanks again for taking care of the travel plans for the whole team.",
];

fn body(words: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut i = 0;
    while n < words {
        let s = SENTENCES[i % SENTENCES.len()];
        out.push_str(s);
        out.push(if i % 5 == 4 { '\n' } else { ' ' });
        if i % 5 == 4 {
            out.push('\n');
        }
        n += s.split_whitespace().count();
        i += 1;
    }
    out
}

fn mail(words: usize, day: u32) -> String {
    format!(
        "From: Ann Lee <ann@example.com>\r\nTo: ivy@example.com\r\nSubject: Report {words}\r\n\
         Date: {day} Nov 2026 09:00:00 +0000\r\nMessage-ID: <bench{words}@example.com>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
        body(words).replace('\n', "\r\n")
    )
}

/// The first packet after `t` that starts a talkspurt and is not silence: the start of
/// real audio (idle silence frames carry the marker bit too).
fn first_audio_after(p: &phone::Phone, t: Instant, timeout: Duration) -> Option<Instant> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(r) =
            p.received.lock().unwrap().iter().find(|r| r.at > t && r.marker && r.payload.iter().any(|b| *b != 0xff))
        {
            return Some(r.at);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Figures {
    skip: Vec<f64>,
    pick: Vec<f64>,
    missed: usize,
}

fn summary(name: &str, f: &mut Figures) {
    for v in [&mut f.skip, &mut f.pick] {
        v.sort_by(f64::total_cmp);
    }
    let q = |v: &[f64], p: f64| if v.is_empty() { f64::NAN } else { v[((v.len() as f64 - 1.0) * p).round() as usize] };
    println!(
        "{name}: # → first audio of the mail median {:.1} ms, p99 {:.1} ms; from the key that picked it median {:.1} ms, p99 {:.1} ms ({} listens, {} without audio)",
        q(&f.skip, 0.5),
        q(&f.skip, 0.99),
        q(&f.pick, 0.5),
        q(&f.pick, 0.99),
        f.skip.len(),
        f.missed
    );
}

fn run(rounds: usize, long_words: usize, cache_mb: u64) {
    let dv = Dovecot::start();
    let server = Server::start(&format!("[sync]\npoll_secs = 3600.0\n[menu]\nspeech_cache_mb = {cache_mb}\n"));
    server.cli_ok(&["mailbox", "add", "4801", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    dv.write_maildir("ivy", &[(mail(50, 1), ""), (mail(long_words, 2), "")]);
    server.cli_ok(&["sync", "4801"]);
    assert_eq!(server.messages("4801").len(), 2, "both mails retrieved");

    let mut p = phone::Phone::call(server.sip_port, "4801", "*98");
    std::thread::sleep(Duration::from_millis(300));
    p.keys("1234", Duration::from_millis(60));
    let t = p.press('#');
    p.first_marker_after(t, Duration::from_secs(10)).expect("the counts after login");
    std::thread::sleep(Duration::from_millis(300));

    let mut short = Figures { skip: Vec::new(), pick: Vec::new(), missed: 0 };
    let mut long = Figures { skip: Vec::new(), pick: Vec::new(), missed: 0 };
    let listen = |p: &mut phone::Phone, key: char, f: &mut Figures, stay: Duration| {
        let picked = p.press(key);
        if p.first_marker_after(picked, Duration::from_secs(5)).is_none() {
            f.missed += 1;
            return;
        }
        let skipped = p.press('#');
        match first_audio_after(p, skipped, Duration::from_secs(10)) {
            Some(at) => {
                f.skip.push((at - skipped).as_secs_f64() * 1e3);
                f.pick.push((at - picked).as_secs_f64() * 1e3);
            }
            None => f.missed += 1,
        }
        std::thread::sleep(stay);
    };
    // The first listen of each (1 picks the short one, 6 the long one).
    listen(&mut p, '1', &mut short, Duration::from_millis(600));
    // With the cache on, stay on the long mail until it is rendered whole and kept.
    let warm = if cache_mb > 0 { Duration::from_secs(long_words as u64 / 200 + 5) } else { Duration::from_millis(600) };
    listen(&mut p, '6', &mut long, warm);
    for i in 0..rounds {
        let stay = Duration::from_millis(500 + (i as u64 * 7) % 20);
        listen(&mut p, '4', &mut short, stay);
        listen(&mut p, '6', &mut long, stay);
    }
    p.hang_up();
    let how = if cache_mb > 0 { "from the speech cache" } else { "rendered for each listen" };
    summary(&format!("50 words, {how}"), &mut short);
    summary(&format!("{long_words} words, {how}"), &mut long);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(if full { 50 } else { 2 });
    let long_words = if full { 5000 } else { 300 };
    run(rounds, long_words, 0);
    run(rounds, long_words, 256);
}
