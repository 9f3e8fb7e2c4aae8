//! A G.711 fax machine for the fax tests and benchmark: spandsp sending a TIFF behind
//! the test phone, in real time.

#![allow(dead_code)]

use super::phone;
use super::Server;
use std::time::{Duration, Instant};
use voxbridge::fax::spandsp::{AudioFax, Job};
use voxbridge::media::g711::{ulaw_decode, ulaw_encode};

/// A G.711 fax machine (spandsp behind the test phone) calls `dialled` from 5550199
/// and sends `tiff`: every 20 ms what the server sent goes into spandsp, and one frame
/// of spandsp's answer goes out, in real time. Returns how the machine saw it end.
pub fn fax_machine_calls(server: &Server, dialled: &str, tiff: &std::path::Path) -> voxbridge::fax::spandsp::Outcome {
    fax_machine_calls_port(server.sip_port, dialled, tiff)
}

/// The same, to a server at `sip_port`.
pub fn fax_machine_calls_port(
    sip_port: u16,
    dialled: &str,
    tiff: &std::path::Path,
) -> voxbridge::fax::spandsp::Outcome {
    fax_machine_refusing_t38(sip_port, dialled, tiff, &mut 0)
}

/// The same; a re-INVITE from the server (its T.38 offer) is refused with 488, as a
/// trunk without T.38 does, and counted in `refused`.
pub fn fax_machine_refusing_t38(
    sip_port: u16,
    dialled: &str,
    tiff: &std::path::Path,
    refused: &mut u32,
) -> voxbridge::fax::spandsp::Outcome {
    let mut machine = AudioFax::new(true, Job::Send(tiff), "+1 555 0199").unwrap();
    let mut p = phone::Phone::call(sip_port, "5550199", dialled);
    // A machine keeps its own clock: frame i leaves at start + 20 ms × i, however long
    // the work between took (sleeping 20 ms after each would run slow and starve the
    // server's jitter buffer, which a modem signal does not survive).
    let (mut seen, start) = (0, Instant::now());
    let mut frames = 0u32;
    while start.elapsed() < Duration::from_secs(120) && machine.outcome().is_none() {
        let heard: Vec<Vec<u8>> = {
            let rec = p.received.lock().unwrap();
            let new = rec[seen..].iter().map(|r| r.payload.clone()).collect();
            seen = rec.len();
            new
        };
        for payload in heard {
            machine.receive(&payload.iter().map(|b| ulaw_decode(*b)).collect::<Vec<i16>>());
        }
        let mut frame = [0i16; 160];
        let n = machine.transmit(&mut frame);
        frame[n..].fill(0);
        p.send_frame(&frame.iter().map(|s| ulaw_encode(*s)).collect::<Vec<u8>>());
        if let Some(req) = p.poll_request(Duration::ZERO) {
            if req.starts_with("INVITE ") {
                p.respond(&req, 488, "Not Acceptable Here", None);
                *refused += 1;
            }
        }
        frames += 1;
        std::thread::sleep((start + Duration::from_millis(20) * frames).saturating_duration_since(Instant::now()));
    }
    let outcome = machine.outcome().expect("the fax ended within two minutes");
    p.hang_up();
    outcome
}
