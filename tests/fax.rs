//! Fax reception on a call: a number the dialplan routes to `app = "fax"` answers a
//! G.711 fax machine (our spandsp test peer behind the test phone, in real time), and
//! the fax becomes a message of kind fax in the mailbox and a mail with its TIFF in
//! the subscriber's Dovecot INBOX, pixel for pixel.

mod common;

use common::fax_machine::{fax_machine_calls, fax_machine_refusing_t38};
use common::t38_machine::{t38_machine_calls, T38Call};
use common::*;
use mail_parser::MimeHeaders;
use std::time::Duration;

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

/// The dialplan of the T.38 tests: 7XXX is a fax number for 4903, the rest deposits.
fn fax_number_server(work: &std::path::Path, extra: &str) -> Server {
    let plan = work.join("dialplan.toml");
    std::fs::write(
        &plan,
        "[[route]]\npattern = \"_7XXX\"\napp = \"fax\"\nmailbox = \"4903\"\n\
         [[route]]\npattern = \"_X.\"\napp = \"deposit\"\n",
    )
    .unwrap();
    Server::start(&format!("[dialplan]\nfile = \"{}\"\n{extra}", plan.display()))
}

/// The stored fax of `mailbox` (waiting for it): its pages and the message row.
fn stored_fax(server: &Server, mailbox: &str) -> (Vec<tiff::Page>, serde_json::Value) {
    let mut m = Vec::new();
    wait_until(Duration::from_secs(20), "the fax stored", || {
        m = server.messages(mailbox);
        !m.is_empty()
    });
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["kind"].as_str(), Some("fax"), "{m:?}");
    let stored = server.store_dir().join(m[0]["media_path"].as_str().unwrap());
    (tiff::decode(&stored), m[0].clone())
}

#[test]
fn a_t38_fax_offered_in_the_invite_survives_loss_and_a_session_refresh_and_arrives_whole() {
    let work = tempfile::tempdir().unwrap();
    let server = fax_number_server(work.path(), "");
    server.cli_ok(&["mailbox", "add", "4903", "--pin", "1234"]);
    let pages = vec![tiff::page(3, 500), tiff::page(4, 450)];
    let src = work.path().join("pages.tif");
    tiff::write(&src, &pages, 98);

    let how = T38Call { refresh_after: Some(Duration::from_secs(6)), loss_percent: 5, ..T38Call::OFFER };
    let r = t38_machine_calls(server.sip_port, "7001", &src, how);
    assert!(r.outcome.ok() && r.outcome.pages_sent == 2, "{r:?}\n{}", server.log());
    assert!(r.dropped * 100 / r.sent.max(1) >= 3, "{} of {} datagrams lost", r.dropped, r.sent);
    // The refresh was answered with the description in force, its version unchanged,
    // and the fax went on (pages intact below) on one T.30 session.
    let [first, refresh] = &r.answers[..] else { panic!("the answer and the refresh's: {:?}", r.answers) };
    assert!(refresh.contains("m=image ") && refresh.contains("a=T38FaxUdpEC:t38UDPRedundancy"), "{refresh}");
    let origin = |m: &str| m.lines().find(|l| l.starts_with("o=")).unwrap().to_string();
    let log = server.log();
    assert_eq!(log.matches("T.38 accepted").count(), 1, "{log}");
    assert!(log.contains("answered with T.38"), "{log}");
    assert_eq!(origin(refresh), origin(first), "a refresh keeps the o= version");

    let (got, row) = stored_fax(&server, "4903");
    assert_eq!(got.len(), 2);
    assert!(got == pages, "the pages stored differ from the pages sent");
    assert_eq!((row["pages"].as_i64(), row["caller"].as_str()), (Some(2), Some("5550188")));
}

#[test]
fn a_t38_reinvite_during_the_greeting_of_a_voice_mailbox_is_received_as_a_fax() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4904", "--pin", "1234"]);
    let work = tempfile::tempdir().unwrap();
    let page = tiff::page(5, 300);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    // Audio first (the greeting plays), then the gateway switches to T.38.
    let how = T38Call { reinvite_after: Some(Duration::from_millis(800)), ..T38Call::OFFER };
    let r = t38_machine_calls(server.sip_port, "4904", &src, how);
    assert!(r.outcome.ok() && r.outcome.pages_sent == 1, "{r:?}\n{}", server.log());
    assert!(r.answers[0].contains("m=image "), "{}", r.answers[0]);
    let (got, _) = stored_fax(&server, "4904");
    assert!(got == [page], "the page stored differs from the page sent");
    assert!(server.log().contains("call handed over"), "{}", server.log());
}

#[test]
fn with_t38_reinvite_on_an_audio_fax_call_is_moved_to_t38_by_our_offer() {
    let work = tempfile::tempdir().unwrap();
    let server = fax_number_server(work.path(), "[fax]\nt38_reinvite = true\n");
    server.cli_ok(&["mailbox", "add", "4903", "--pin", "1234"]);
    let page = tiff::page(6, 350);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    let how = T38Call { await_offer: true, ..T38Call::OFFER };
    let r = t38_machine_calls(server.sip_port, "7002", &src, how);
    assert!(r.outcome.ok() && r.outcome.pages_sent == 1, "{r:?}\n{}", server.log());
    // Our offer keeps the audio line (refused) before the image stream.
    let offer = &r.answers[0];
    assert!(offer.contains("m=audio 0 RTP/AVP") && offer.contains("a=T38FaxUdpEC:t38UDPRedundancy"), "{offer}");
    let (got, _) = stored_fax(&server, "4903");
    assert!(got == [page], "the page stored differs from the page sent");
    assert!(server.log().contains("T.38 accepted by the far end"), "{}", server.log());
}

#[test]
fn a_refused_t38_offer_falls_back_to_g711_and_the_fax_still_arrives() {
    let work = tempfile::tempdir().unwrap();
    let server = fax_number_server(work.path(), "[fax]\nt38_reinvite = true\n");
    server.cli_ok(&["mailbox", "add", "4903", "--pin", "1234"]);
    let page = tiff::page(7, 300);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    let mut refused = 0;
    let sent = fax_machine_refusing_t38(server.sip_port, "7003", &src, &mut refused);
    assert!(sent.ok() && sent.pages_sent == 1, "{sent:?}\n{}", server.log());
    assert_eq!(refused, 1, "one T.38 offer, refused");
    let (got, _) = stored_fax(&server, "4903");
    assert!(got == [page]);
    assert!(server.log().contains("T.38 refused; receiving over G.711"), "{}", server.log());
}

#[test]
fn a_fax_cut_after_page_two_of_three_keeps_two_pages_and_says_why() {
    let work = tempfile::tempdir().unwrap();
    let server = fax_number_server(work.path(), "");
    server.cli_ok(&["mailbox", "add", "4903", "--pin", "1234"]);
    let pages = vec![tiff::page(1, 200), tiff::page(2, 200), tiff::page(3, 200)];
    let src = work.path().join("three.tif");
    tiff::write(&src, &pages, 98);
    let how = T38Call { hang_up_after_pages: Some(2), ..T38Call::OFFER };
    let r = t38_machine_calls(server.sip_port, "7004", &src, how);
    assert_eq!(r.outcome.pages_sent, 2, "{r:?}");
    let (got, row) = stored_fax(&server, "4903");
    assert!(got[..] == pages[..2], "the two pages that arrived are kept as sent");
    assert_eq!(row["pages"].as_i64(), Some(2));
    let result = row["fax_result"].as_str().unwrap_or_default();
    assert!(!result.is_empty() && result != "OK", "the failure is recorded: {row}");
}

#[test]
fn a_fax_heard_by_its_tone_in_a_voice_mailbox_is_moved_to_t38_by_our_offer() {
    let server = Server::start("[fax]\nt38_reinvite = true\n");
    server.cli_ok(&["mailbox", "add", "4905", "--pin", "1234"]);
    let work = tempfile::tempdir().unwrap();
    let page = tiff::page(8, 300);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    // The greeting plays; the machine's CNG is heard; the deposit hands the call to fax
    // reception, which offers T.38; the machine accepts and sends over T.38.
    let how = T38Call { await_offer: true, ..T38Call::OFFER };
    let r = t38_machine_calls(server.sip_port, "4905", &src, how);
    assert!(r.outcome.ok() && r.outcome.pages_sent == 1, "{r:?}\n{}", server.log());
    let (got, _) = stored_fax(&server, "4905");
    assert!(got == [page]);
    let log = server.log();
    assert!(log.contains("call handed over") && log.contains("T.38 accepted by the far end"), "{log}");
}

#[test]
fn a_mailbox_own_fax_number_receives_faxes_without_a_dialplan_route() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4907", "--pin", "1234", "--fax-number", "6907"]);
    let refused = server.cli(&["mailbox", "add", "4908", "--pin", "1234", "--fax-number", "6907"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("already mailbox 4907"));
    let bad = server.cli(&["mailbox", "set", "4907", "--fax-number", "69-07"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("1 to 32 digits"));
    let work = tempfile::tempdir().unwrap();
    let page = tiff::page(9, 250);
    let src = work.path().join("page.tif");
    tiff::write(&src, std::slice::from_ref(&page), 98);
    // The default dialplan would take 6907 for a (missing) mailbox: the fax number wins.
    let r = t38_machine_calls(server.sip_port, "6907", &src, T38Call::OFFER);
    assert!(r.outcome.ok(), "{r:?}\n{}", server.log());
    let (got, _) = stored_fax(&server, "4907");
    assert!(got == [page]);
    let list: serde_json::Value = serde_json::from_str(&server.cli_ok(&["mailbox", "list", "--json"])).unwrap();
    assert_eq!(list[0]["fax_number"].as_str(), Some("6907"), "{list}");
    server.cli_ok(&["mailbox", "set", "4907", "--fax-number", ""]);
    let list: serde_json::Value = serde_json::from_str(&server.cli_ok(&["mailbox", "list", "--json"])).unwrap();
    assert!(list[0]["fax_number"].is_null(), "{list}");
}
