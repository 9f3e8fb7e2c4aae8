//! Voice-mail deposit end to end: sipp calls, voxbridge records, Dovecot receives.

mod common;
use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use std::time::Duration;

/// Seconds of audio the caller speaks after the beep.
const SPEAK_MS: u64 = 4000;

fn deposit_call(server: &Server, number: &str, transport: &str) -> SippRun {
    deposit_call_after(server, number, transport, greeting_ms(number))
}

/// A deposit call where the caller starts speaking `greeting_ms` after the answer.
fn deposit_call_after(server: &Server, number: &str, transport: &str, greeting_ms: u64) -> SippRun {
    let pause = greeting_ms + SPEAK_MS;
    let run = sipp(server, "uac_deposit.xml", &[], number, pause, transport);
    assert!(run.ok, "sipp deposit failed:\n{}\n{}\nserver log:\n{}", run.output, run.messages, server.log());
    run
}

fn wait_delivered(server: &Server, number: &str) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let m = server.messages(number);
        if m.len() == 1 && m[0]["delivery"].as_str().unwrap_or("").starts_with("delivered") {
            return m[0].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not delivered once after 60 s; messages: {m:#?}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_voice_mail(raw: &[u8], row: &serde_json::Value, wav_len: usize) {
    let msg = MessageParser::default().parse(raw).expect("parsable mail");
    assert_eq!(msg.header_raw("Message-Context").map(str::trim), Some("voice-message"));
    let secs = (row["duration_ms"].as_i64().unwrap() + 500) / 1000;
    assert_eq!(msg.subject().unwrap(), format!("Voice message from 5551234 (0:{secs:02})"));
    assert_eq!(format!("<{}>", msg.message_id().unwrap()), row["message_id"].as_str().unwrap());
    assert!(msg.from().unwrap().first().unwrap().address().unwrap().starts_with("5551234@"));
    assert_eq!(msg.attachment_count(), 1);
    let att = msg.attachment(0).unwrap();
    assert_eq!(att.content_type().map(|c| (c.ctype(), c.subtype())), Some(("audio", Some("wav"))));
    assert_eq!(att.contents().len(), wav_len, "attachment is the whole recording");
    let duration = att
        .headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case("Content-Duration"))
        .and_then(|h| h.value.as_text());
    assert_eq!(duration.map(str::trim), Some(secs.to_string().as_str()));
}

#[test]
fn deposit_reaches_store_and_imap_mailbox() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&[
        "mailbox",
        "add",
        "1001",
        "--pin",
        "4321",
        "--name",
        "Ann",
        "--email",
        "ann@example.test",
        "--imap",
        &dv.imap_url("ann"),
    ]);
    deposit_call(&server, "1001", "udp");
    let row = wait_delivered(&server, "1001");
    assert_eq!(row["state"], "U");
    assert_eq!(row["kind"], "voice");
    assert_eq!(row["caller"], "5551234");
    let dur = row["duration_ms"].as_i64().unwrap();
    assert!((dur - SPEAK_MS as i64).abs() <= 200, "recorded {dur} ms, spoke {SPEAK_MS} ms");
    let wav = std::fs::read(server.store_dir().join(row["media_path"].as_str().unwrap())).unwrap();
    assert_eq!(wav.len(), 44 + dur as usize * 16, "8 kHz 16-bit mono WAV of the recorded length");
    let reader = hound::WavReader::new(&wav[..]).unwrap();
    assert_eq!(reader.spec().sample_rate, 8000);

    let in_box = imap_messages(&dv, "ann");
    assert_eq!(in_box.len(), 1, "exactly one copy in the mailbox");
    assert_eq!(Some(in_box[0].0 as i64), row["server_uid"].as_i64(), "server UID recorded");
    check_voice_mail(&in_box[0].1, &row, wav.len());
    let log = server.log();
    assert!(log.contains("rtp_lost=0"), "no RTP loss on loopback:\n{log}");
    // The delivery triggered a sync pass (polling is hourly here), which found the
    // message already linked by its UID: nothing imported twice.
    wait_until(Duration::from_secs(10), "a sync pass after the delivery", || {
        let log = server.log();
        let delivered = log.find("delivered").unwrap_or(usize::MAX);
        log.match_indices("sync pass").any(|(p, _)| {
            let line = log[p..].lines().next().unwrap_or("");
            p > delivered && line.contains("1 on server (") && line.contains("retrieved 0, linked 0")
        })
    });
    assert_eq!(server.messages("1001").len(), 1);
}

#[test]
fn deposit_over_tcp_for_pop3_mailbox_goes_by_smtp() {
    let dv = Dovecot::start();
    let smtp = SmtpRelay::start(&dv);
    let server = Server::start("");
    server.cli_ok(
        &["mailbox", "add", "1002", "--pin", "1111", "--email", "bob@example.test"]
            .into_iter()
            .chain(["--pop3", &dv.pop3_url("bob"), "--smtp", &smtp.url()])
            .collect::<Vec<_>>(),
    );
    // A recorded greeting of 1.5 s (16 kHz stereo, converted on import) replaces the
    // default one; the recorded duration only comes out right if it is what was played.
    let wav = server.dir.path().join("greeting.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    for i in 0..24000 {
        let s = ((i as f64 * 0.2).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    assert!(server.cli_ok(&["mailbox", "greeting", "1002", wav.to_str().unwrap()]).contains("1.5 s"));
    deposit_call_after(&server, "1002", "tcp", 1500 + 250);
    let row = wait_delivered(&server, "1002");
    assert_eq!(row["delivery"], "delivered (smtp)");
    let dur = row["duration_ms"].as_i64().unwrap();
    assert!((dur - SPEAK_MS as i64).abs() <= 200, "recorded {dur} ms after the recorded greeting");
    let msgs = pop3_messages(dv.pop3, "bob");
    assert_eq!(msgs.len(), 1);
    let wav_len = std::fs::metadata(server.store_dir().join(row["media_path"].as_str().unwrap())).unwrap().len();
    check_voice_mail(&msgs[0], &row, wav_len as usize);
}

#[test]
fn mail_server_down_during_call_delivers_once_after_restart() {
    let mut dv = Dovecot::start();
    let server = Server::start("[delivery]\nretry_initial_secs = 0.5\nretry_max_secs = 2.0\n");
    server.cli_ok(&["mailbox", "add", "1003", "--pin", "1111", "--imap", &dv.imap_url("cat")]);
    dv.stop();
    deposit_call(&server, "1003", "udp");
    // Stored locally at once, delivery pending with the reason.
    wait_until(Duration::from_secs(20), "a failed attempt", || {
        let m = server.messages("1003");
        m.len() == 1 && m[0]["delivery"].as_str().unwrap().contains("last error")
    });
    let row = &server.messages("1003")[0];
    assert_eq!(row["state"], "U");
    assert!(row["delivery"].as_str().unwrap().contains("cannot connect"), "{row}");
    std::thread::sleep(Duration::from_secs(3));
    dv.restart();
    let row = wait_delivered(&server, "1003");
    let in_box = imap_messages(&dv, "cat");
    assert_eq!(in_box.len(), 1, "delivered exactly once after the restart");
    assert_eq!(Some(in_box[0].0 as i64), row["server_uid"].as_i64());
}

#[test]
fn repeated_append_of_same_message_id_makes_no_second_copy() {
    // The outbox retries after a lost answer: the same message appended twice must be
    // found by its Message-ID, not placed again.
    let dv = Dovecot::start();
    let acct = voxbridge::mail::account::Account::parse(&dv.imap_url("dan"), &[voxbridge::mail::account::Scheme::Imap])
        .unwrap();
    let wav = [1u8; 1000];
    let mail = voxbridge::mail::compose::voice_message(&voxbridge::mail::compose::VoiceMail {
        message_id: "<vb.retry@example.test>",
        mailbox: "1004",
        mailbox_name: None,
        to_addr: None,
        caller: Some("5551234"),
        caller_name: None,
        received_at: 1_700_000_000,
        duration_ms: 1000,
        domain: "example.test",
        wav: &wav,
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let a = rt.block_on(voxbridge::mail::deliver::imap_append(&acct, "<vb.retry@example.test>", &mail, false)).unwrap();
    let b = rt.block_on(voxbridge::mail::deliver::imap_append(&acct, "<vb.retry@example.test>", &mail, true)).unwrap();
    assert_eq!(a, b, "same UIDVALIDITY and UID");
    assert_eq!(imap_messages(&dv, "dan").len(), 1);
    // The UID comes from Dovecot's APPENDUID response code (UIDPLUS).
    let next = rt.block_on(async {
        let mut s = voxbridge::mail::imap::login(&acct).await.unwrap();
        voxbridge::mail::imap::append(&mut s, "INBOX", b"Subject: other\r\n\r\nx\r\n").await.unwrap()
    });
    assert_eq!(next, Some((a.0, a.1 + 1)));

    // The race a retry guards against: the earlier attempt's copy (`a`) committed only
    // after the retry looked for it, so the retry appended a second one. Checking after
    // its own APPEND, the retry keeps the first copy and expunges its own.
    let kept = rt.block_on(async {
        let mut s = voxbridge::mail::imap::login(&acct).await.unwrap();
        s.select("INBOX").await.unwrap();
        let (_, second) = voxbridge::mail::imap::append(&mut s, "INBOX", &mail).await.unwrap().unwrap();
        voxbridge::mail::deliver::keep_first_copy(&mut s, "<vb.retry@example.test>", second).await.unwrap()
    });
    assert_eq!(kept, a.1, "the first copy is kept");
    let copies =
        imap_messages(&dv, "dan").iter().filter(|(_, m)| m.windows(16).any(|w| w == b"vb.retry@example")).count();
    assert_eq!(copies, 1, "the retry's own copy was expunged");
}

#[test]
fn zero_transfers_to_the_operator_by_refer() {
    let server = Server::start("[deposit]\noperator = \"sip:operator@127.0.0.1\"\n");
    server.cli_ok(&["mailbox", "add", "1005", "--pin", "1111"]);
    let run = sipp(&server, "uac_operator.xml", &[("OPERATOR", "sip:operator@127.0.0.1")], "1005", 1500, "udp");
    assert!(run.ok, "transfer failed:\n{}\n{}\n{}", run.output, run.messages, server.log());
    assert!(server.messages("1005").is_empty(), "nothing was recorded");
}

#[test]
fn shutdown_during_recording_saves_the_message() {
    let dv = Dovecot::start();
    let mut server = Server::start("");
    server.cli_ok(&["mailbox", "add", "1006", "--pin", "1111", "--imap", &dv.imap_url("eve")]);
    let greeting = greeting_ms("1006");
    let port = server.sip_port;
    // The caller would talk for 8 s; the server is stopped (SIGTERM) 3 s into the message.
    let caller = std::thread::spawn(move || sipp_to(port, "uac_deposit.xml", &[], "1006", greeting + 8000, "udp"));
    wait_until(Duration::from_secs(30), "the call to be answered", || server.log().contains("answered"));
    std::thread::sleep(Duration::from_millis(greeting + 3000));
    assert!(server.stop(), "graceful stop:\n{}", server.log());
    let _ = caller.join();
    let log = server.log();
    assert!(log.contains("reason=Hangup"), "the recording was ended by the shutdown:\n{log}");
    let m = server.messages("1006");
    assert_eq!(m.len(), 1, "the message in progress was saved:\n{log}");
    let dur = m[0]["duration_ms"].as_i64().unwrap();
    assert!((2500..=3700).contains(&dur), "about 3 s recorded, got {dur} ms");
    // Delivered after the restart if the outbox had no time before the shutdown.
    server.run();
    let row = wait_delivered(&server, "1006");
    assert_eq!(imap_messages(&dv, "eve").len(), 1);
    assert_eq!(row["state"], "U");
}

#[test]
fn re_invites_during_a_deposit_are_answered_and_the_message_is_whole() {
    let dv = Dovecot::start();
    // Without fax detection a voice mailbox refuses T.38 (with it, the call goes to fax
    // reception: tests/fax.rs).
    let server = Server::start("[sync]\npoll_secs = 3600.0\n[deposit]\nfax_detect = false\n");
    server.cli_ok(&["mailbox", "add", "1007", "--pin", "1111", "--imap", &dv.imap_url("fay")]);
    // 1.5 s of speech, a T.38 re-INVITE (refused), 1 s, an audio re-INVITE (accepted),
    // 1.5 s, then #.
    let pause = greeting_ms("1007") + 1500;
    let run = sipp(&server, "uac_reinvite.xml", &[], "1007", pause, "udp");
    assert!(run.ok, "sipp failed:\n{}\n{}\nserver log:\n{}", run.output, run.messages, server.log());
    assert!(run.messages.contains("488 Not Acceptable Here (no fax reception on this call)"), "{}", run.messages);
    // The refresh is answered with our description, same version (nothing changed).
    let cseq3 = run.messages.rfind("CSeq: 3 INVITE").expect("the refresh and its answer");
    let refresh = run.messages[..cseq3].rfind("SIP/2.0 200 OK").expect("a 200 to the refresh");
    let body = &run.messages[refresh..];
    let body = &body[..body.find("CSeq: 3 ACK").unwrap_or(body.len())];
    assert!(body.contains("m=audio ") && body.contains("RTP/AVP 0 96"), "{body}");
    let row = wait_delivered(&server, "1007");
    let dur = row["duration_ms"].as_i64().unwrap();
    assert!((3700..=4800).contains(&dur), "the whole 4 s of speech recorded across both re-INVITEs, got {dur} ms");
    let log = server.log();
    assert!(log.contains("re-INVITE refused") && log.contains("re-INVITE accepted"), "{log}");
    assert!(log.contains("rtp_lost=0"), "no RTP loss across the re-INVITEs:\n{log}");
    assert_eq!(imap_messages(&dv, "fay").len(), 1);
}
