//! `voxbridge fax send` against a real receiver: a running voxbridge whose fax number
//! takes the call — over G.711, and over T.38 when the receiver moves the call there
//! (`[fax] t38_reinvite`). Every page stored must equal the page sent. A busy line is
//! tried again; a wrong number and a file that is no fax page are clear errors.

mod common;

use common::*;
use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

/// A receiver whose 7XXX numbers are a fax number for mailbox 4910.
fn receiver(work: &std::path::Path, extra: &str) -> Server {
    let plan = work.join("dialplan.toml");
    std::fs::write(&plan, "[[route]]\npattern = \"_7XXX\"\napp = \"fax\"\nmailbox = \"4910\"\n").unwrap();
    let server = Server::start(&format!("[dialplan]\nfile = \"{}\"\n{extra}", plan.display()));
    server.cli_ok(&["mailbox", "add", "4910", "--pin", "1234"]);
    server
}

/// `fax send` of `src` to `number` at the receiver, with the sender's own config (its
/// own store and ports: a second installation, as a sender would be).
fn fax_send(sender: &Server, to: &str, src: &std::path::Path, more: &[&str]) -> std::process::Output {
    let mut args = vec!["fax", "send", src.to_str().unwrap(), "--to", to, "--json", "--from", "+1 555 0142"];
    args.extend(more);
    sender.cli(&args)
}

fn stored_pages(server: &Server) -> Vec<tiff::Page> {
    stored_pages_from(server, "+1 555 0142")
}

/// The pages of the fax 4910 received, from a machine whose ident is `ident`.
fn stored_pages_from(server: &Server, ident: &str) -> Vec<tiff::Page> {
    let mut m = Vec::new();
    wait_until(Duration::from_secs(90), "the fax stored", || {
        m = server.messages("4910");
        !m.is_empty()
    });
    assert_eq!(m[0]["caller_name"].as_str(), Some(ident), "the sender's ident reached the receiver: {m:?}");
    tiff::decode(&server.store_dir().join(m[0]["media_path"].as_str().unwrap()))
}

fn sends_two_pages(extra: &str, transport: &str) {
    let work = tempfile::tempdir().unwrap();
    let server = receiver(work.path(), extra);
    let sender = Server::configure("");
    let pages = vec![tiff::page(8, 400), tiff::page(9, 350)];
    let src = work.path().join("out.tif");
    tiff::write(&src, &pages, 98);
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{}", server.sip_port), &src, &["--retries", "0"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stderr), server.log()));
    assert!(o.status.success(), "{report}\n{}\n{}", String::from_utf8_lossy(&o.stderr), server.log());
    assert_eq!((report["ok"].as_bool(), report["pages_sent"].as_u64()), (Some(true), Some(2)), "{report}");
    assert_eq!(report["transport"].as_str(), Some(transport), "{report}\n{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!((report["result"].as_str(), report["attempts"].as_u64()), (Some("OK"), Some(1)));
    assert_eq!(report["remote_ident"].as_str(), Some("voxbridge"), "the receiver's CSI: {report}");
    assert!(stored_pages(&server) == pages, "the pages received differ from the pages sent");
}

#[test]
fn a_tiff_is_sent_over_g711_to_a_fax_number_and_arrives_pixel_for_pixel() {
    sends_two_pages("", "G.711");
}

#[test]
fn a_receiver_that_offers_t38_gets_the_fax_over_t38() {
    sends_two_pages("[fax]\nt38_reinvite = true\n", "T.38");
}

/// A receiver with SIP over TLS on a port of its own whose trunk (loopback) requires
/// SRTP: (receiver, its TLS port, the CA that signed its certificate).
fn tls_receiver(work: &std::path::Path) -> (Server, u16, std::path::PathBuf) {
    let (ca, cert, key) = common::certs::ca_and_server(work, "fax");
    let port = free_port();
    let server = receiver(
        work,
        &format!(
            "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
             [[sip.trunk]]\nname = \"sender\"\nnetworks = [\"127.0.0.1\"]\nsrtp = \"required\"\n",
            cert.display(),
            key.display()
        ),
    );
    (server, port, ca)
}

/// A sender whose trunk at loopback is reached over TLS, its certificate checked
/// against `ca`, with SRTP required.
fn tls_sender(ca: &std::path::Path) -> Server {
    Server::configure(&format!(
        "[[sip.trunk]]\nname = \"receiver\"\nnetworks = [\"127.0.0.1\"]\ntransport = \"tls\"\n\
         tls_ca = \"{}\"\nsrtp = \"required\"\n",
        ca.display()
    ))
}

#[test]
fn a_fax_to_a_trunk_marked_tls_goes_over_tls_with_srtp_and_arrives_pixel_for_pixel() {
    let work = tempfile::tempdir().unwrap();
    let (server, port, ca) = tls_receiver(work.path());
    let sender = tls_sender(&ca);
    let pages = vec![tiff::page(8, 300)];
    let src = work.path().join("out.tif");
    tiff::write(&src, &pages, 98);
    // A sip: URI: the trunk's `transport = "tls"` makes it TLS, to the receiver's TLS port.
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{port}"), &src, &["--retries", "0"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stderr), server.log()));
    assert!(o.status.success(), "{report}\n{}\n{}", String::from_utf8_lossy(&o.stderr), server.log());
    assert_eq!(report["signalling"].as_str(), Some("TLS"), "{report}");
    assert_eq!(report["srtp"].as_str(), Some("AES_CM_128_HMAC_SHA1_80"), "{report}");
    assert_eq!(report["transport"].as_str(), Some("G.711"), "{report}");
    assert!(stored_pages(&server) == pages, "the pages received differ from the pages sent");
    // The receiver's side of it: the call came over TLS (a trunk requiring SRTP takes no
    // other), its media SRTP.
    let log = server.log();
    assert!(log.contains("srtp=\"AES_CM_128_HMAC_SHA1_80\""), "{log}");
}

#[test]
fn a_trunk_certificate_from_another_ca_is_a_clear_error_and_no_call() {
    let work = tempfile::tempdir().unwrap();
    let (server, port, _ca) = tls_receiver(work.path());
    let other = tempfile::tempdir().unwrap();
    let (wrong_ca, _, _) = common::certs::ca_and_server(other.path(), "other");
    let sender = tls_sender(&wrong_ca);
    let src = work.path().join("out.tif");
    tiff::write(&src, &[tiff::page(8, 100)], 98);
    // sips: says TLS by itself; the certificate is checked against the trunk's tls_ca.
    let o = fax_send(&sender, &format!("sips:7001@127.0.0.1:{port}"), &src, &["--retries", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("certificate") && err.contains("tls_ca"), "says what is wrong and where: {err}");
    assert!(!err.contains("attempt 2"), "no retry mends a certificate: {err}");
    assert!(server.messages("4910").is_empty());
    assert!(!server.log().contains("answered"), "{}", server.log());

    // SRTP required over plain UDP is refused before any call: the keys would travel in clear.
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{};transport=udp", server.sip_port), &src, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("SRTP") && err.contains("TLS"), "{err}");
}

#[test]
fn a_busy_line_is_tried_again_and_a_wrong_number_is_not() {
    // A line that is always busy: every INVITE answered 486, its ACK awaited.
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = busy.local_addr().unwrap().port();
    let counter = std::thread::spawn(move || {
        let (mut invites, mut acks, mut buf) = (0, 0, [0u8; 4096]);
        while let Ok((n, from)) = busy.recv_from(&mut buf) {
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            if req.starts_with("ACK ") {
                acks += 1;
                if acks == 2 {
                    break;
                }
            }
            if !req.starts_with("INVITE ") {
                continue;
            }
            invites += 1;
            let keep: String = req
                .lines()
                .filter(|l| {
                    ["via:", "from:", "to:", "call-id:", "cseq:"].iter().any(|h| l.to_ascii_lowercase().starts_with(h))
                })
                .map(|l| {
                    if l.to_ascii_lowercase().starts_with("to:") {
                        format!("{l};tag=busy\r\n")
                    } else {
                        format!("{l}\r\n")
                    }
                })
                .collect();
            let resp = format!("SIP/2.0 486 Busy Here\r\n{keep}Content-Length: 0\r\n\r\n");
            busy.send_to(resp.as_bytes(), from).unwrap();
        }
        (invites, acks)
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("out.tif");
    tiff::write(&src, &[tiff::page(1, 100)], 98);
    let sender = Server::configure("");
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{port}"), &src, &["--retries", "1", "--retry-secs", "0.2"]);
    assert!(!o.status.success());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["attempts"].as_u64(), report["sip_status"].as_u64()), (Some(2), Some(486)), "{report}");
    assert!(report["result"].as_str().unwrap().contains("486 Busy Here"), "{report}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("the fax was not sent"));
    assert_eq!(counter.join().unwrap(), (2, 2), "two INVITEs, each error ACKed");

    // A number the receiver does not know: 404, not tried again.
    let server = receiver(work.path(), "");
    let o = fax_send(&sender, &format!("sip:9999@127.0.0.1:{}", server.sip_port), &src, &["--retries", "3"]);
    assert!(!o.status.success());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((report["attempts"].as_u64(), report["sip_status"].as_u64()), (Some(1), Some(404)), "{report}");
}

#[test]
fn a_file_that_is_no_document_or_a_bad_target_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let sender = Server::configure("");
    let png = work.path().join("logo.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe").unwrap();
    let ok = work.path().join("ok.tif");
    tiff::write(&ok, &[tiff::page(1, 10)], 98);
    for (file, to, want) in [
        (png, "sip:7001@127.0.0.1:5060", "not a TIFF, plain text (UTF-8) or an e-mail"),
        (work.path().join("missing.tif"), "sip:7001@127.0.0.1:5060", "cannot read"),
        (ok, "7001@127.0.0.1", "expected sip:NUMBER@HOST"),
    ] {
        let o = fax_send(&sender, to, &file, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{want}: {err}");
        assert!(o.stdout.is_empty(), "no report for a job that never started");
    }
}

/// Sends `file` to the receiver's fax number and returns the one page stored.
fn send_and_receive(file: &std::path::Path) -> (serde_json::Value, Vec<tiff::Page>) {
    let work = tempfile::tempdir().unwrap();
    let server = receiver(work.path(), "");
    let sender = Server::configure("");
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{}", server.sip_port), file, &["--retries", "0"]);
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(o.status.success(), "{report}\n{}", String::from_utf8_lossy(&o.stderr));
    (report, stored_pages(&server))
}

#[test]
fn a_grey_scan_of_another_width_is_scaled_onto_a_fax_page() {
    // A4 at 300 dpi (2480 × 3508), light grey, a black square from (300,300) to (600,600):
    // an inch wide, an inch from the top left. LZW-compressed, 8 bits a pixel.
    let work = tempfile::tempdir().unwrap();
    let (w, h) = (2480, 3508);
    let mut pixels = vec![220u8; w * h];
    for y in 300..600 {
        pixels[y * w + 300..y * w + 600].fill(10);
    }
    let scan = work.path().join("scan.tif");
    tiff::write_grey_lzw(&scan, w, h, &pixels, 300);
    let (report, pages) = send_and_receive(&scan);
    assert_eq!(report["pages_sent"].as_u64(), Some(1), "{report}");
    let p = &pages[0];
    // Fitted to 1728 px (8.47 in at 204 dpi): 1 in of the scan is 209 px across and,
    // at 196 lines per inch, 201 rows down.
    let (k, rows_per_in) = (1728.0 / 2480.0 * 300.0, 196.0 * (1728.0 / 204.0) / (2480.0 / 300.0));
    let (x, y) = ((1.5 * k) as usize, (1.5 * rows_per_in) as usize);
    assert!(tiff::black(p, x, y), "the square's middle is black");
    assert!(!tiff::black(p, (2.2 * k) as usize, y) && !tiff::black(p, x, (2.2 * rows_per_in) as usize));
    let want = (k * rows_per_in) as usize;
    let got = tiff::ink(p, 0, p.len());
    assert!(got.abs_diff(want) * 10 < want, "{got} black pixels, about {want} (the square) wanted");
}

#[test]
fn a_text_file_is_set_onto_a4_pages() {
    let work = tempfile::tempdir().unwrap();
    let note = work.path().join("note.txt");
    std::fs::write(&note, "Dear customer,\n\nyour order 4711 has shipped.\n").unwrap();
    let (report, pages) = send_and_receive(&note);
    assert_eq!(report["pages_sent"].as_u64(), Some(1), "{report}");
    let p = &pages[0];
    assert!((2250..=2300).contains(&p.len()), "an A4 page at fine resolution: {} rows", p.len());
    // Below the 12 mm margin (≈ 93 rows): two lines of ink with the empty line between
    // them, then nothing.
    let inked: Vec<usize> = (0..p.len()).filter(|&y| tiff::ink(p, y, y + 1) > 0).collect();
    let bands = inked.windows(2).filter(|w| w[1] - w[0] > 8).count() + 1;
    assert_eq!(bands, 2, "two lines of text: rows {inked:?}");
    assert!(
        inked[0] >= 85 && *inked.last().unwrap() < 250,
        "near the top: rows {}..{}",
        inked[0],
        inked.last().unwrap()
    );
    assert!(tiff::ink(p, 0, p.len()) > 2000, "letters, not specks");
}

#[test]
fn a_stored_fax_forwarded_to_a_fax_number_is_sent_by_the_server_and_arrives_intact() {
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("dialplan.toml");
    std::fs::write(
        &plan,
        "[[route]]\npattern = \"7001\"\napp = \"fax\"\nmailbox = \"4910\"\n\
         [[route]]\npattern = \"7002\"\napp = \"fax\"\nmailbox = \"4911\"\n",
    )
    .unwrap();
    let server = Server::start(&format!("[dialplan]\nfile = \"{}\"\n[fax]\nsend_retry_secs = 1.0\n", plan.display()));
    server.cli_ok(&["mailbox", "add", "4910", "--pin", "1234"]);
    server.cli_ok(&["mailbox", "add", "4911", "--pin", "1234"]);
    let pages = vec![tiff::page(4, 300), tiff::page(5, 250)];
    let src = work.path().join("out.tif");
    tiff::write(&src, &pages, 98);
    let sender = Server::configure("");
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{}", server.sip_port), &src, &["--retries", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = server.messages("4910")[0]["id"].as_i64().unwrap();

    // Wrong ids and kinds are refused before anything is queued.
    let to = format!("sip:7002@127.0.0.1:{}", server.sip_port);
    let bad = server.cli(&["fax", "forward", "4910", "999", "--to", &to]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("has no message 999"));
    let bad = server.cli(&["fax", "forward", "4910", &id.to_string(), "--to", "7002"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("expected sip:NUMBER@HOST"));

    let job: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["fax", "forward", "4910", &id.to_string(), "--to", &to, "--json"]))
            .unwrap();
    assert_eq!((job["state"].as_str(), job["pages"].as_i64()), (Some("queued"), Some(2)), "{job}");
    let mut jobs = serde_json::Value::Null;
    wait_until(Duration::from_secs(90), "the queued fax sent", || {
        jobs = serde_json::from_str(&server.cli_ok(&["fax", "jobs", "--json"])).unwrap();
        jobs[0]["state"].as_str() == Some("sent")
    });
    assert_eq!((jobs[0]["pages_sent"].as_i64(), jobs[0]["attempts"].as_i64()), (Some(2), Some(1)), "{jobs}");
    let mut m = Vec::new();
    wait_until(Duration::from_secs(20), "the forwarded fax stored", || {
        m = server.messages("4911");
        !m.is_empty()
    });
    let got = tiff::decode(&server.store_dir().join(m[0]["media_path"].as_str().unwrap()));
    assert!(got == pages, "the forwarded pages differ from the pages first sent");
    assert!(server.cli_ok(&["fax", "jobs"]).contains("sent"));
}

#[test]
fn a_fax_sent_on_from_the_mailbox_menu_reaches_the_fax_number_typed() {
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("dialplan.toml");
    std::fs::write(
        &plan,
        "[[route]]\npattern = \"*98\"\napp = \"menu\"\n\
         [[route]]\npattern = \"7001\"\napp = \"fax\"\nmailbox = \"4910\"\n\
         [[route]]\npattern = \"7002\"\napp = \"fax\"\nmailbox = \"4911\"\n",
    )
    .unwrap();
    let mut server = Server::configure(&format!("[dialplan]\nfile = \"{}\"\n", plan.display()));
    // The trunk fax numbers are called at: this same server.
    let mut cfg = std::fs::OpenOptions::new().append(true).open(&server.config).unwrap();
    writeln!(cfg, "[fax]\nsend_via = \"127.0.0.1:{}\"", server.sip_port).unwrap();
    server.run();
    server.cli_ok(&["mailbox", "add", "4910", "--pin", "1234"]);
    server.cli_ok(&["mailbox", "add", "4911", "--pin", "1234"]);
    let pages = vec![tiff::page(6, 300)];
    let src = work.path().join("out.tif");
    tiff::write(&src, &pages, 98);
    let sender = Server::configure("");
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{}", server.sip_port), &src, &["--retries", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until(Duration::from_secs(20), "the fax stored", || !server.messages("4910").is_empty());

    // 4910 logs in, listens to the fax, presses forward, 2 (a fax machine), 7002 #.
    let gap = Duration::from_millis(80);
    let mut p = phone::Phone::call(server.sip_port, "4910", "*98");
    std::thread::sleep(Duration::from_millis(300));
    p.keys("1234", gap);
    let t = p.press('#');
    p.first_marker_after(t, Duration::from_secs(10)).expect("the counts after login");
    p.keys("1", gap);
    std::thread::sleep(Duration::from_millis(500));
    p.keys("82", gap);
    std::thread::sleep(Duration::from_millis(300));
    p.keys("7002", gap);
    p.press('#');
    wait_until(Duration::from_secs(10), "the job queued", || server.log().contains("fax queued to send"));
    p.hang_up();
    let mut m = Vec::new();
    wait_until(Duration::from_secs(90), "the fax at the number typed", || {
        m = server.messages("4911");
        !m.is_empty()
    });
    let got = tiff::decode(&server.store_dir().join(m[0]["media_path"].as_str().unwrap()));
    assert!(got == pages, "the page sent on differs from the page received");
    let jobs: serde_json::Value = serde_json::from_str(&server.cli_ok(&["fax", "jobs", "--json"])).unwrap();
    assert_eq!(jobs[0]["target"].as_str(), Some(format!("sip:7002@127.0.0.1:{}", server.sip_port).as_str()));
}

#[test]
fn an_e_mail_forwarded_to_a_fax_number_arrives_as_pages_of_text() {
    let dv = Dovecot::start();
    let work = tempfile::tempdir().unwrap();
    let server = receiver(work.path(), "[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4920", "--pin", "1234", "--imap", &dv.imap_url("erin")]);
    let raw = b"From: Ann Example <ann@example.com>\r\nTo: erin@example.com\r\nSubject: Order 4711\r\n\
        Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <order-4711@example.com>\r\n\r\n\
        Your order has shipped.\r\nThe parcel number is 0042.\r\n";
    MailClient::connect(&dv, "erin", "INBOX").append_raw("INBOX", raw);
    server.cli_ok(&["sync", "4920"]);
    let m = server.messages("4920");
    let email = m.iter().find(|m| m["kind"].as_str() == Some("email")).expect("the e-mail synced");
    let to = format!("sip:7001@127.0.0.1:{}", server.sip_port);
    server.cli_ok(&["fax", "forward", "4920", &email["id"].as_i64().unwrap().to_string(), "--to", &to]);
    let pages = stored_pages_from(&server, "voxbridge");
    assert_eq!(pages.len(), 1);
    assert!(tiff::ink(&pages[0], 85, 400) > 3000, "the headers and text are on the page");
}

#[test]
fn a_pdf_of_fax_pages_is_sent_without_re_encoding_and_arrives_pixel_for_pixel() {
    // Two pages, compressed by libtiff (G4), embedded in a PDF as CCITT images by our
    // own received-fax PDF writer (what scanners' fax profiles make too).
    let work = tempfile::tempdir().unwrap();
    let pages = vec![tiff::page(2, 300), tiff::page(3, 280)];
    let plain = work.path().join("plain.tif");
    tiff::write(&plain, &pages, 98);
    let g4 = work.path().join("g4.tif");
    // One strip a page, as a fax TIFF has it (G4 strips cannot be joined).
    let st =
        std::process::Command::new("tiffcp").args(["-c", "g4", "-r", "100000"]).arg(&plain).arg(&g4).status().unwrap();
    assert!(st.success());
    let pdf = work.path().join("pages.pdf");
    std::fs::write(&pdf, voxbridge::fax::pdf::from_tiff(&std::fs::read(&g4).unwrap()).unwrap()).unwrap();
    let (report, got) = send_and_receive(&pdf);
    assert_eq!(report["pages_sent"].as_u64(), Some(2), "{report}");
    assert!(got == pages, "the pages received differ from the PDF's");
}

#[test]
fn a_crash_mid_job_never_sends_confirmed_pages_twice_and_resends_a_job_with_none() {
    let work = tempfile::tempdir().unwrap();
    let plan = |dir: &std::path::Path, mailbox: &str| {
        let p = dir.join(format!("plan-{mailbox}.toml"));
        std::fs::write(&p, format!("[[route]]\npattern = \"7001\"\napp = \"fax\"\nmailbox = \"{mailbox}\"\n")).unwrap();
        format!("[dialplan]\nfile = \"{}\"\n[fax]\nsend_retry_secs = 1.0\n", p.display())
    };
    // A holds the fax and sends the jobs; B receives them.
    let mut a = Server::start(&plan(work.path(), "4910"));
    let b = Server::start(&plan(work.path(), "4930"));
    a.cli_ok(&["mailbox", "add", "4910", "--pin", "1234"]);
    b.cli_ok(&["mailbox", "add", "4930", "--pin", "1234"]);
    let pages = vec![tiff::page(1, 600), tiff::page(2, 600), tiff::page(3, 600)];
    let src = work.path().join("three.tif");
    tiff::write(&src, &pages, 98);
    let sender = Server::configure("");
    let o = fax_send(&sender, &format!("sip:7001@127.0.0.1:{}", a.sip_port), &src, &["--retries", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until(Duration::from_secs(20), "the fax stored", || !a.messages("4910").is_empty());
    let id = a.messages("4910")[0]["id"].as_i64().unwrap().to_string();
    let to = format!("sip:7001@127.0.0.1:{}", b.sip_port);
    let jobs =
        |s: &Server| -> serde_json::Value { serde_json::from_str(&s.cli_ok(&["fax", "jobs", "--json"])).unwrap() };

    // Job 1 runs until the far machine confirmed a page; job 2 is queued and taken.
    a.cli_ok(&["fax", "forward", "4910", &id, "--to", &to]);
    wait_until(Duration::from_secs(60), "job 1's first page confirmed", || {
        jobs(&a)[0]["pages_sent"].as_i64() >= Some(1)
    });
    a.cli_ok(&["fax", "forward", "4910", &id, "--to", &to]);
    wait_until(Duration::from_secs(10), "job 2 sending", || jobs(&a)[1]["state"].as_str() == Some("sending"));
    let before = jobs(&a);
    assert_eq!(before[1]["pages_sent"].as_i64(), Some(0), "{before}");
    assert_eq!(before[0]["state"].as_str(), Some("sending"), "{before}");
    // The server dies with both calls under way.
    unsafe_kill(a.pid(), 9);
    a.stop();
    a.run();
    wait_until(Duration::from_secs(10), "the jobs recovered", || a.log().contains("fax jobs interrupted"));
    let after = jobs(&a);
    assert_eq!(after[0]["state"].as_str(), Some("failed"), "pages went through: never sent again: {after}");
    let why = after[0]["result"].as_str().unwrap();
    assert!(why.contains("interrupted after") && why.contains("of 3 pages; not sent again"), "{why}");
    wait_until(Duration::from_secs(120), "job 2 sent again, whole", || jobs(&a)[1]["state"].as_str() == Some("sent"));
    assert_eq!(jobs(&a)[1]["attempts"].as_i64(), Some(2));
    let mut whole = None;
    wait_until(Duration::from_secs(60), "B has the whole fax", || {
        whole = b.messages("4930").into_iter().find(|m| m["pages"].as_i64() == Some(3));
        whole.is_some()
    });
    let got = tiff::decode(&b.store_dir().join(whole.unwrap()["media_path"].as_str().unwrap()));
    assert!(got == pages);
}
