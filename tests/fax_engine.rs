//! The fax engine (spandsp through `voxbridge::fax::spandsp`) end to end in one process:
//! two engines, one sending a multi-page TIFF and one receiving it, connected back to
//! back — over G.711 audio samples, and over T.38 IFPs carried in UDPTL datagrams
//! (voxbridge's own `udptl`) with 5 % of them dropped. Every received page must equal
//! its source pixel for pixel.

mod common;

use common::tiff;
use voxbridge::fax::spandsp::{AudioFax, Job, Outcome, T38Fax};
use voxbridge::udptl::{ErrorCorrection, Receiver, Sender};

/// Three pages of 300 rows at standard resolution (short pages keep the test quick).
fn source(dir: &std::path::Path) -> (std::path::PathBuf, Vec<tiff::Page>) {
    let pages: Vec<tiff::Page> = (0..3).map(|n| tiff::page(n, 300)).collect();
    let path = dir.join("source.tif");
    tiff::write(&path, &pages, 98);
    (path, pages)
}

fn assert_same_pages(received: &std::path::Path, sent: &[tiff::Page], outcome: &Outcome) {
    assert!(outcome.ok(), "the receiver's T.30 result: {outcome:?}");
    assert_eq!(outcome.pages_received, sent.len() as u32);
    let got = tiff::decode(received);
    assert_eq!(got.len(), sent.len(), "pages in the received TIFF");
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        assert_eq!(g.len(), s.len(), "rows of page {}", i + 1);
        assert!(g == s, "page {} differs from its source", i + 1);
    }
}

/// Two G.711 engines connected back to back, 20 ms at a time, until both have ended or
/// 5 minutes of call time have passed.
fn back_to_back(tx: &mut AudioFax, rx: &mut AudioFax) {
    let (mut a, mut b) = ([0i16; 160], [0i16; 160]);
    for _ in 0..15_000 {
        let na = tx.transmit(&mut a);
        let nb = rx.transmit(&mut b);
        rx.receive(&a[..na]);
        tx.receive(&b[..nb]);
        if tx.outcome().is_some() && rx.outcome().is_some() {
            break;
        }
    }
}

#[test]
fn a_three_page_fax_over_g711_arrives_pixel_for_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let (src, pages) = source(dir.path());
    let dst = dir.path().join("received.tif");
    let mut tx = AudioFax::new(true, Job::Send(&src), "+1 555 0100").unwrap();
    let mut rx = AudioFax::new(false, Job::Receive(&dst), "voxbridge").unwrap();
    back_to_back(&mut tx, &mut rx);
    let done = rx.outcome().expect("the fax ended within 5 minutes of call time");
    assert_eq!(done.remote_ident, "+1 555 0100");
    assert!(tx.outcome().unwrap().ok(), "{:?}", tx.outcome());
    assert_same_pages(&dst, &pages, &done);
    // Its PDF, made from the TIFF without re-encoding, shows the same pixels.
    let pdf = dir.path().join("received.pdf");
    std::fs::write(&pdf, voxbridge::fax::pdf::from_tiff(&std::fs::read(&dst).unwrap()).unwrap()).unwrap();
    let shown = tiff::render_pdf(&pdf, 98);
    assert_eq!(shown.len(), pages.len(), "PDF pages");
    for (i, (g, s)) in shown.iter().zip(&pages).enumerate() {
        assert_eq!((g.len(), g[0].len()), (s.len(), s[0].len()), "page {} size", i + 1);
        assert!(g == s, "PDF page {} differs from the fax", i + 1);
    }
}

#[test]
fn a_three_page_fax_over_t38_with_five_percent_loss_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (src, pages) = source(dir.path());
    let dst = dir.path().join("received.tif");
    let mut tx = T38Fax::new(true, Job::Send(&src), "+1 555 0100", 0, 400).unwrap();
    let mut rx = T38Fax::new(false, Job::Receive(&dst), "voxbridge", 0, 400).unwrap();
    // Each direction: our UDPTL with 3 redundant IFPs, a fixed pseudo-random 5 % lost.
    let (mut tx_out, mut rx_out) =
        (Sender::new(ErrorCorrection::Redundancy(3)), Sender::new(ErrorCorrection::Redundancy(3)));
    let (mut tx_in, mut rx_in) = (Receiver::new(1400), Receiver::new(1400));
    let mut x: u64 = 0x0f0f;
    let (mut sent, mut dropped) = (0u32, 0u32);
    let mut lose = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % 100 < 5
    };
    for _ in 0..15_000 {
        tx.advance(160);
        rx.advance(160);
        for (ifp, count) in tx.take_ifps() {
            for _ in 0..count {
                let d = tx_out.datagram(&ifp);
                sent += 1;
                if lose() {
                    dropped += 1;
                    continue;
                }
                for (seq, got) in rx_in.receive(&d).unwrap() {
                    rx.receive(&got, seq);
                }
            }
        }
        for (ifp, count) in rx.take_ifps() {
            for _ in 0..count {
                let d = rx_out.datagram(&ifp);
                sent += 1;
                if lose() {
                    dropped += 1;
                    continue;
                }
                for (seq, got) in tx_in.receive(&d).unwrap() {
                    tx.receive(&got, seq);
                }
            }
        }
        if tx.outcome().is_some() && rx.outcome().is_some() {
            break;
        }
    }
    assert!(dropped > 0 && dropped * 100 / sent.max(1) >= 3, "{dropped} of {sent} datagrams dropped");
    let done = rx.outcome().expect("the fax ended within 5 minutes of call time");
    assert_eq!(done.remote_ident, "+1 555 0100");
    assert_same_pages(&dst, &pages, &done);
    assert_eq!(
        rx_in.counts.lost + tx_in.counts.lost,
        0,
        "redundancy filled every gap: {:?} {:?}",
        rx_in.counts,
        tx_in.counts
    );
}

#[test]
fn a_file_that_cannot_be_sent_ends_the_fax_with_the_reason_and_no_pages() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tif");
    let dst = dir.path().join("received.tif");
    let mut tx = AudioFax::new(true, Job::Send(&missing), "+1 555 0100").unwrap();
    let mut rx = AudioFax::new(false, Job::Receive(&dst), "voxbridge").unwrap();
    back_to_back(&mut tx, &mut rx);
    let sent = tx.outcome().expect("the sender gave up");
    assert!(!sent.ok() && !sent.text.is_empty(), "{sent:?}");
    assert_eq!(sent.pages_sent, 0);
    if let Some(r) = rx.outcome() {
        assert_eq!(r.pages_received, 0, "{r:?}");
    }
}

#[test]
fn the_fax_application_receives_a_call_frame_by_frame() {
    use voxbridge::session::app::{Application, Effect};
    let dir = tempfile::tempdir().unwrap();
    let (src, pages) = source(dir.path());
    let dst = dir.path().join("received.tif");
    let mut caller = AudioFax::new(true, Job::Send(&src), "+1 555 0100").unwrap();
    let mut app = voxbridge::ivr::fax::FaxCall::receive(dst.clone(), "voxbridge", 300, None).unwrap();
    let mut frame = [0i16; 160];
    let mut finished = None;
    let mut hung_up = false;
    // The call loop's part: a frame of the caller's audio in, what the app plays out.
    for _ in 0..15_000 {
        let n = caller.transmit(&mut frame);
        frame[n..].fill(0);
        app.on_frame(&frame);
        while let Some(e) = app.poll() {
            match e {
                Effect::Play(clips) => clips.iter().for_each(|c| caller.receive(&c.pcm)),
                Effect::Request(voxbridge::ivr::fax::FaxRequest::Finished(f)) => finished = Some(f),
                Effect::Hangup => hung_up = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        if finished.is_some() {
            break;
        }
    }
    let f = finished.expect("the fax finished");
    assert!(hung_up && app.is_done());
    assert_eq!(f.path, dst);
    assert!(f.frames > 100, "{} frames", f.frames);
    assert_same_pages(&dst, &pages, f.outcome.as_ref().expect("T.30 ended"));
}
