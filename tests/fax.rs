//! Fax reception on a call: a number the dialplan routes to `app = "fax"` answers a
//! G.711 fax machine (our spandsp test peer behind the test phone, in real time), and
//! the fax becomes a message of kind fax in the mailbox and a mail with its TIFF in
//! the subscriber's Dovecot INBOX, pixel for pixel.

mod common;

use common::*;
use mail_parser::MimeHeaders;
use std::time::{Duration, Instant};
use voxbridge::fax::spandsp::{AudioFax, Job};
use voxbridge::media::g711::{ulaw_decode, ulaw_encode};

/// A G.711 fax machine (spandsp behind the test phone) calls `dialled` from 5550199
/// and sends `tiff`: every 20 ms what the server sent goes into spandsp, and one frame
/// of spandsp's answer goes out, in real time. Returns how the machine saw it end.
fn fax_machine_calls(server: &Server, dialled: &str, tiff: &std::path::Path) -> voxbridge::fax::spandsp::Outcome {
    let mut machine = AudioFax::new(true, Job::Send(tiff), "+1 555 0199").unwrap();
    let mut p = phone::Phone::call(server.sip_port, "5550199", dialled);
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
        frames += 1;
        std::thread::sleep((start + Duration::from_millis(20) * frames).saturating_duration_since(Instant::now()));
    }
    let outcome = machine.outcome().expect("the fax ended within two minutes");
    p.hang_up();
    outcome
}

#[test]
fn a_fax_over_g711_to_a_fax_number_arrives_in_the_mailbox_and_in_dovecot() {
    let dv = Dovecot::start();
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("dialplan.toml");
    std::fs::write(
        &plan,
        "[[route]]\npattern = \"_7XXX\"\napp = \"fax\"\nmailbox = \"4901\"\n\
         [[route]]\npattern = \"_X.\"\napp = \"deposit\"\n",
    )
    .unwrap();
    let server = Server::start(&format!("[dialplan]\nfile = \"{}\"\n[sync]\npoll_secs = 3600.0\n", plan.display()));
    server.cli_ok(&["mailbox", "add", "4901", "--pin", "1234", "--imap", &dv.imap_url("fay")]);
    let page = tiff::page(1, 400);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);

    let sent = fax_machine_calls(&server, "7001", &src);
    assert!(sent.ok() && sent.pages_sent == 1, "{sent:?}\n{}", server.log());

    let mut m = Vec::new();
    wait_until(Duration::from_secs(20), "the fax stored", || {
        m = server.messages("4901");
        !m.is_empty()
    });
    assert_eq!(
        (m[0]["kind"].as_str(), m[0]["state"].as_str(), m[0]["pages"].as_i64()),
        (Some("fax"), Some("U"), Some(1)),
        "{m:?}"
    );
    assert_eq!(m[0]["caller"].as_str(), Some("5550199"));

    let mut got = Vec::new();
    wait_until(Duration::from_secs(30), "the fax in Dovecot", || {
        got = imap_messages(&dv, "fay");
        !got.is_empty()
    });
    let msg = mail_parser::MessageParser::default().parse(&got[0].1).unwrap();
    assert_eq!(msg.header_raw("Message-Context").map(str::trim), Some("fax-message"));
    assert!(msg.subject().unwrap_or("").starts_with("Fax from 5550199"), "{:?}", msg.subject());
    let tif = work.path().join("delivered.tif");
    std::fs::write(&tif, msg.attachments().next().expect("the TIFF").contents()).unwrap();
    let pages = tiff::decode(&tif);
    assert_eq!(pages.len(), 1);
    assert!(pages[0] == page, "the delivered page differs from the one sent");
    let pdf = work.path().join("delivered.pdf");
    let a = msg.attachments().find(|a| a.attachment_name() == Some("fax.pdf")).expect("the PDF");
    std::fs::write(&pdf, a.contents()).unwrap();
    assert!(tiff::render_pdf(&pdf, 98) == vec![page], "the PDF shows the page sent");
}

#[test]
fn a_fax_machine_calling_a_voice_mailbox_is_heard_by_its_tone_and_received_as_a_fax() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4902", "--pin", "1234"]);
    let work = tempfile::tempdir().unwrap();
    let page = tiff::page(2, 300);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    // The default dialplan: 4902 is a deposit; the greeting plays, the machine's CNG is
    // heard, and the call goes to fax reception for the same mailbox.
    let sent = fax_machine_calls(&server, "4902", &src);
    assert!(sent.ok() && sent.pages_sent == 1, "{sent:?}\n{}", server.log());
    let mut m = Vec::new();
    wait_until(Duration::from_secs(20), "the fax stored", || {
        m = server.messages("4902");
        !m.is_empty()
    });
    assert_eq!(m.len(), 1, "a fax and no voice message of its tones: {m:?}");
    assert_eq!((m[0]["kind"].as_str(), m[0]["pages"].as_i64()), (Some("fax"), Some(1)));
    let stored = server.store_dir().join(m[0]["media_path"].as_str().unwrap());
    assert!(tiff::decode(&stored)[0] == page);
    assert!(server.log().contains("call handed over"), "{}", server.log());
}
