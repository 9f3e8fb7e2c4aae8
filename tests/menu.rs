//! The mailbox menu by phone (sipp with RFC 4733 keys) against a real Dovecot: what a
//! subscriber does by phone reaches their mail client through the sync engine.

mod common;
use common::*;
use std::time::Duration;

/// sipp steps after the call is up: press `keys` (RFC 4733), then wait `ms` more once
/// they are sent. sipp sends a digit every ~400 ms and a new `play_dtmf` cuts the one
/// still playing, so each step waits for its own digits first.
/// `"<audio>"` starts the caller's audio (tests/sipp audio.ulaw, looped), `"</audio>"`
/// stops it.
fn steps(list: &[(&str, u64)]) -> String {
    let mut s = String::from("  <pause milliseconds=\"1500\"/>\n");
    for (keys, ms) in list {
        if *keys == "<audio>" || *keys == "</audio>" {
            let what = if *keys == "<audio>" { "audio.ulaw,-1,0" } else { "pause" };
            s += &format!("  <nop><action><exec rtp_stream=\"{what}\"/></action></nop>\n");
            s += &format!("  <pause milliseconds=\"{ms}\"/>\n");
            continue;
        }
        if !keys.is_empty() {
            s += &format!("  <nop><action><exec play_dtmf=\"{keys}\"/></action></nop>\n");
        }
        s += &format!("  <pause milliseconds=\"{}\"/>\n", 400 * keys.len() as u64 + 900 + ms);
    }
    s
}

/// The caller hangs up.
const CALLER_HANGS_UP: &str = r#"  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:@CALLER@@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>"#;

/// sipp answers the request it just received with 200 OK.
const ANSWER_OK: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"#;

/// The server hangs up.
fn server_hangs_up() -> String {
    format!("  <recv request=\"BYE\" timeout=\"30000\"/>\n{ANSWER_OK}")
}

fn call(server: &Server, caller: &str, service: &str, keys: &[(&str, u64)], end: &str) {
    let end = end.replace("@CALLER@", caller);
    let run =
        sipp(server, "uac_menu.xml", &[("CALLER", caller), ("STEPS", &steps(keys)), ("END", &end)], service, 0, "udp");
    assert!(run.ok, "sipp failed:\n{}\n{}\n--- server log ---\n{}", run.output, run.messages, server.log());
}

#[test]
fn a_message_heard_by_phone_is_seen_in_the_mail_client_and_a_deleted_one_is_expunged() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4101", "--pin", "1234", "--imap", &dv.imap_url("gus")]);
    let mut client = MailClient::connect(&dv, "gus", "INBOX");
    let uid = client.append("INBOX", "<hello@example.test>", "Hello by phone");
    server.cli_ok(&["sync", "4101"]);
    assert_eq!(server.messages("4101")[0]["state"], "U");

    // Caller ID 4101 is the mailbox: PIN, 1 (listen), hear the envelope and the message.
    call(&server, "4101", "*98", &[("1234#", 500), ("1", 12000)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(15), "\\Seen in Dovecot", || client.flags() == vec![(uid, true, false)]);
    assert_eq!(server.messages("4101")[0]["state"], "R");
    let log = server.log();
    assert!(log.contains("message changed by phone"), "{log}");

    // From another phone: mailbox number, PIN, listen, 7 (delete), hang up → purged.
    call(&server, "5559999", "8500", &[("4101#", 0), ("1234#", 500), ("1", 1000), ("7", 500)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(15), "expunged in Dovecot", || client.flags().is_empty());
    wait_until(Duration::from_secs(5), "the row gone", || server.messages("4101").is_empty());
}

#[test]
fn wrong_pins_hang_up_and_lock_the_mailbox_across_calls() {
    let server = Server::start("[menu]\nmax_login_attempts = 3\nlockout_secs = 600\n");
    server.cli_ok(&["mailbox", "add", "4102", "--pin", "1234"]);
    // Two wrong PINs in one call, then the caller gives up.
    call(&server, "4102", "*98", &[("1111#", 0), ("4102#", 0), ("2222#", 1500)], CALLER_HANGS_UP);
    assert!(!server.log().contains("mailbox locked"), "two wrong PINs do not lock");
    // The third wrong PIN, in another call, locks it; the server says goodbye.
    call(&server, "4102", "*98", &[("3333#", 0)], &server_hangs_up());
    wait_until(Duration::from_secs(5), "the lock logged", || server.log().contains("mailbox locked after wrong PINs"));
    // Now even the right PIN is refused until the lock expires.
    call(&server, "4102", "*98", &[("1234#", 0)], &server_hangs_up());
    wait_until(Duration::from_secs(5), "the refusal logged", || server.log().contains("login refused: mailbox locked"));
    assert!(!server.log().contains("result=Ok"), "no login succeeded");
    // The admin sees the lock and lifts it; the right PIN works again.
    let list: serde_json::Value = serde_json::from_str(&server.cli_ok(&["mailbox", "list", "--json"])).unwrap();
    assert!(list[0]["locked_until"].as_i64().is_some(), "{list}");
    assert!(server.cli_ok(&["mailbox", "unlock", "4102"]).contains("unlocked"));
    call(&server, "4102", "*98", &[("1234#", 1500)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(5), "a login after the unlock", || server.log().contains("result=Ok"));
}

/// sipp checks for a NOTIFY whose body shows these counts, answered 200.
fn expect_notify(waiting: &str, voice: &str, n: usize) -> String {
    format!(
        r#"  <recv request="NOTIFY" timeout="90000">
    <action>
      <ereg regexp="Messages-Waiting: {waiting}" search_in="body" check_it="true" assign_to="w{n}"/>
      <ereg regexp="Voice-Message: {voice}" search_in="body" check_it="true" assign_to="v{n}"/>
      <ereg regexp="Subscription-State: active" search_in="msg" check_it="true" assign_to="s{n}"/>
    </action>
  </recv>
{ANSWER_OK}
  <Reference variables="w{n},v{n},s{n}"/>
"#
    )
}

fn mwi_logged(server: &Server, voice: &str) -> bool {
    server.log().lines().any(|l| l.contains("MWI changed") && l.contains(&format!("Voice-Message: {voice}")))
}

#[test]
fn a_subscribed_phone_hears_every_change_including_one_made_in_a_mail_client() {
    let dv = Dovecot::start();
    // sipp 3.6 answers only the first challenge and knows only MD5 digest: offer just that.
    let mut server = Server::configure("[sync]\npoll_secs = 3600.0\n[sip]\ndigest_algorithms = [\"MD5\"]\n");
    server.cli_ok(&["mailbox", "add", "4201", "--pin", "1234", "--imap", &dv.imap_url("hal")]);
    let secret = server.dir.path().join("sip-4201");
    std::fs::write(&secret, "hal-phone-secret\n").unwrap();
    server.cli_ok(&["mailbox", "set", "4201", "--sip-password-file", secret.to_str().unwrap()]);
    server.run();
    // The phone expects, in this order: nothing yet; a deposit; heard by phone; a second
    // deposit; the second read in a mail client; then it unsubscribes.
    let expect: String = [("no", "0/0"), ("yes", "1/0"), ("no", "0/1"), ("yes", "1/1"), ("no", "0/2")]
        .iter()
        .enumerate()
        .map(|(i, (w, v))| expect_notify(w, v, i))
        .collect();
    let port = server.sip_port;
    let phone = std::thread::spawn(move || {
        let subst = [("EXPECT", expect.as_str()), ("USER", "4201"), ("PASSWORD", "hal-phone-secret")];
        sipp_to(port, "uac_mwi.xml", &subst, "4201", 0, "udp")
    });
    wait_until(Duration::from_secs(20), "the subscription", || server.log().contains("MWI subscription"));

    let deposit = |n: usize| {
        let run = sipp(&server, "uac_deposit.xml", &[], "4201", greeting_ms("4201") + 4000, "udp");
        assert!(run.ok, "deposit failed:\n{}\n{}", run.output, server.log());
        wait_until(Duration::from_secs(30), "delivery to Dovecot", || {
            let m = server.messages("4201");
            m.len() == n && m.iter().all(|m| m["server_uid"].is_i64())
        });
    };
    deposit(1);
    wait_until(Duration::from_secs(10), "MWI 1/0", || mwi_logged(&server, "1/0"));
    call(&server, "4201", "*98", &[("1234#", 500), ("1", 12000)], CALLER_HANGS_UP);
    wait_until(Duration::from_secs(10), "MWI 0/1", || mwi_logged(&server, "0/1"));
    deposit(2);
    wait_until(Duration::from_secs(10), "MWI 1/1", || mwi_logged(&server, "1/1"));
    // Read in a mail client: IDLE → sync pass → the lamp goes off.
    let mut client = MailClient::connect(&dv, "hal", "INBOX");
    let unseen = client.flags().into_iter().find(|f| !f.1).expect("one unseen message").0;
    client.store(unseen, "+FLAGS (\\Seen)");
    wait_until(Duration::from_secs(15), "MWI 0/2", || mwi_logged(&server, "0/2"));

    let run = phone.join().unwrap();
    assert!(
        run.ok,
        "the phone saw a wrong NOTIFY:\n{}\n{}\n--- server log ---\n{}",
        run.output,
        run.messages,
        server.log()
    );
}

/// The PCMU bytes the server plays for these prompts, back to back.
fn prompt_audio(ids: &[&str]) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = voxbridge::media::prompts::Prompts::load(&root.join("prompts/en"), &prompt_cache().join("en"), "en-us")
        .unwrap();
    ids.iter().flat_map(|id| p.get(id).unwrap_or_else(|| panic!("no prompt {id}")).pcmu.clone()).collect()
}

#[test]
fn the_caller_hears_the_right_prompts_for_each_key() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4301", "--pin", "1234"]);
    let wait = Duration::from_secs(10);
    let mut phone = phone::Phone::call(server.sip_port, "4301", "*98");
    let t = std::time::Instant::now() - Duration::from_secs(1);
    // 25 frames (0.5 s) of each answer, compared byte for byte with the prompt's G.711.
    let frames = 25;
    let check = |phone: &phone::Phone, after, ids: &[&str], what: &str| {
        let heard = phone.audio_after(after, frames, wait);
        let want = prompt_audio(ids);
        assert!(heard == want[..frames * 160], "{what}: the audio is not {ids:?}");
    };
    check(&phone, t, &["vm-password"], "on answer");
    phone.keys("1234", Duration::from_millis(60));
    let t = phone.press('#');
    check(&phone, t, &["vm-you-have", "vm-no-messages", "vm-main-menu"], "after the PIN");
    let t = phone.press('*');
    check(&phone, t, &["vm-help", "vm-main-menu"], "after *");
    let t = phone.press('5');
    check(&phone, t, &["vm-invalid", "vm-main-menu"], "after a wrong key");
    let t = phone.press('#');
    check(&phone, t, &["vm-goodbye"], "after #");
    phone.hang_up();
}

/// A 2 s chirp (300 → 1200 Hz) in µ-law: no 20 ms of it looks like another.
fn chirp() -> Vec<u8> {
    (0..16_000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let f = 300.0 + 450.0 * t;
            voxbridge::media::g711::ulaw_encode((8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16)
        })
        .collect()
}

/// Whether `heard` contains 20 frames of `sent` (from its 10th frame on) in order.
fn contains_audio(heard: &[u8], sent: &[u8]) -> bool {
    let want = &sent[1600..1600 + 20 * 160];
    heard.windows(want.len()).any(|w| w == want)
}

/// The G.711 the server plays for what `tts say` renders (`args`), made by the CLI in a
/// process of its own: espeak-ng's output depends on what it rendered before, so the
/// test process (where other tests render at the same time) cannot make it.
fn spoken(server: &Server, args: &[&str]) -> Vec<u8> {
    let out = std::env::temp_dir().join(format!("vb-spoken-{}-{}.wav", std::process::id(), server.sip_port));
    let mut all = vec!["tts", "say"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    server.cli_ok(&all);
    let pcm = voxbridge::media::wav::read_8k_mono(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    pcm.iter().map(|s| voxbridge::media::g711::ulaw_encode(*s)).collect()
}

fn log_in(server: &Server, mailbox: &str, pin: &str) -> phone::Phone {
    let mut p = phone::Phone::call(server.sip_port, mailbox, "*98");
    std::thread::sleep(Duration::from_millis(300));
    p.keys(pin, Duration::from_millis(60));
    let t = p.press('#');
    p.first_marker_after(t, Duration::from_secs(10)).expect("the counts after login");
    p
}

/// `from` logs in, listens to its first message and forwards it to `to` without a
/// comment; the menu confirms.
fn forward_first_message(server: &Server, from: &str, to: &str) {
    let gap = Duration::from_millis(80);
    let mut p = log_in(server, from, "1234");
    p.keys("1", gap);
    std::thread::sleep(Duration::from_millis(500));
    p.keys("8", gap);
    p.keys(&format!("{to}#"), gap);
    std::thread::sleep(Duration::from_millis(500));
    let t = p.press('#'); // no comment
    let said = p.audio_after(t, 25, Duration::from_secs(10));
    assert!(said == prompt_audio(&["vm-forwarded"])[..25 * 160], "no forward confirmation");
    p.hang_up();
}

#[test]
fn greetings_forward_and_pin_change_by_phone() {
    let server = Server::start("[[menu.list]]\nnumber = \"800\"\nmembers = [\"4501\", \"4502\", \"4503\"]\n");
    for mb in ["4501", "4502", "4503"] {
        server.cli_ok(&["mailbox", "add", mb, "--pin", "1234"]);
    }
    let gap = Duration::from_millis(80);

    // 4501 records an unavailable greeting: options, 1, skip to the beep, speak, #, accept.
    let mut p = log_in(&server, "4501", "1234");
    p.keys("01", gap);
    let t = p.press('9'); // cuts "record after the tone": the beep comes at once
    p.first_marker_after(t, Duration::from_secs(5)).expect("the beep");
    std::thread::sleep(Duration::from_millis(400));
    let greeting = chirp();
    p.send_audio(&greeting);
    p.press('#');
    std::thread::sleep(gap);
    let t = p.press('1');
    let saved = p.audio_after(t, 25, Duration::from_secs(10));
    assert!(saved == prompt_audio(&["vm-greeting-saved"])[..25 * 160], "accepting does not confirm the save");
    p.hang_up();
    wait_until(Duration::from_secs(5), "the greeting logged", || server.log().contains("greeting recorded by phone"));

    // A caller to 4501 hears that greeting and leaves a message.
    let mut caller = phone::Phone::call(server.sip_port, "5557777", "4501");
    std::thread::sleep(Duration::from_millis(3000));
    assert!(contains_audio(&caller.all_audio(), &greeting), "the caller does not hear the recorded greeting");
    caller.send_audio(&chirp());
    caller.press('#');
    wait_until(Duration::from_secs(10), "the message saved", || server.messages("4501").len() == 1);
    caller.hang_up();

    // 4501 forwards it to the list 800 without a comment: 4502 and 4503 get a copy from 4501.
    forward_first_message(&server, "4501", "800");
    for mb in ["4502", "4503"] {
        let m = server.messages(mb);
        assert_eq!(m.len(), 1, "{mb}: {m:?}");
        assert_eq!((m[0]["kind"].as_str(), m[0]["caller"].as_str()), (Some("voice"), Some("4501")));
    }
    assert!(server.messages("4501").len() == 1, "the sender keeps its message");

    // The list is in the store now: 4503 taken off it by the CLI while the server runs,
    // the next forward reaches 4502 only.
    assert_eq!(server.cli_ok(&["list", "members", "800", "--remove", "4503"]).trim(), "4501\n4502");
    forward_first_message(&server, "4501", "800");
    assert_eq!((server.messages("4502").len(), server.messages("4503").len()), (2, 1));

    // 4502 changes its PIN; the old one stops working, the new one works.
    let mut p = log_in(&server, "4502", "1234");
    p.keys("05", gap);
    p.keys("9876#", gap);
    std::thread::sleep(Duration::from_millis(300));
    p.keys("9876#", gap);
    wait_until(Duration::from_secs(5), "the PIN change", || server.log().contains("PIN changed by phone"));
    p.hang_up();
    let ok_logins =
        |s: &Server| s.log().lines().filter(|l| l.contains("mailbox=\"4502\"") && l.contains("result=Ok")).count();
    let before = ok_logins(&server);
    log_in(&server, "4502", "9876").hang_up();
    wait_until(Duration::from_secs(5), "a login with the new PIN", || ok_logins(&server) == before + 1);
}

#[test]
fn a_voice_reply_to_an_email_reaches_the_senders_mailbox_by_smtp() {
    let dv = Dovecot::start();
    let smtp = SmtpRelay::start(&dv);
    let server = Server::start(&format!("[delivery]\nsmtp_url = \"{}\"\n[sync]\npoll_secs = 3600.0\n", smtp.url()));
    server.cli_ok(&["mailbox", "add", "4601", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    client.append("INBOX", "<lunch@example.test>", "Lunch?");
    server.cli_ok(&["sync", "4601"]);

    let gap = Duration::from_millis(80);
    let mut p = log_in(&server, "4601", "1234");
    p.keys("1", gap);
    std::thread::sleep(Duration::from_millis(500));
    p.keys("3", gap); // reply, during the envelope
    std::thread::sleep(Duration::from_millis(300));
    p.keys("1", gap); // to the sender (2: to all)
    let t = p.press('9'); // skip to the beep
    p.first_marker_after(t, Duration::from_secs(5)).expect("the beep");
    std::thread::sleep(Duration::from_millis(400));
    p.send_audio(&chirp());
    let t = p.press('#');
    let said = p.audio_after(t, 25, Duration::from_secs(10));
    assert!(said == prompt_audio(&["vm-reply-sent"])[..25 * 160], "no confirmation of the reply");
    p.hang_up();

    let mut got = Vec::new();
    wait_until(Duration::from_secs(20), "the reply in the sender's mailbox", || {
        got = imap_messages(&dv, "sender");
        !got.is_empty()
    });
    assert_eq!(got.len(), 1, "exactly one reply");
    let raw = String::from_utf8_lossy(&got[0].1).to_string();
    for h in [
        "Subject: Re: Lunch?",
        "In-Reply-To: <lunch@example.test>",
        "Content-Type: audio/wav",
        "Message-Context: voice-message",
    ] {
        assert!(raw.contains(h), "{h} missing in the reply:\n{}", &raw[..raw.len().min(1500)]);
    }
    // The attachment is the recording: about the 2 s spoken (trailing silence cut).
    let msg = mail_parser::MessageParser::default().parse(&got[0].1).unwrap();
    let wav = msg.attachments().next().expect("an attachment").contents().to_vec();
    let secs = voxbridge::media::wav::decode_8k_mono(&wav).unwrap().len() as f64 / 8000.0;
    assert!((1.8..=2.4).contains(&secs), "the reply is {secs} s long");
}

/// Where the audio `want` (µ-law) begins among the packets received after `t`: the
/// arrival of its first packet.
fn heard_at(p: &phone::Phone, t: std::time::Instant, want: &[u8], timeout: Duration) -> Option<std::time::Instant> {
    let until = std::time::Instant::now() + timeout;
    loop {
        {
            let rec = p.received.lock().unwrap();
            let after: Vec<&phone::Received> = rec.iter().filter(|r| r.at > t).collect();
            let frames = want.len() / 160;
            for i in 0..after.len().saturating_sub(frames - 1) {
                if (0..frames).all(|k| after[i + k].payload == want[k * 160..(k + 1) * 160]) {
                    return Some(after[i].at);
                }
            }
        }
        if std::time::Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn in_a_call_the_skip_keys_land_on_the_next_sentence_and_paragraph() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4604", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    let para = |topic: &str| {
        format!(
            "The {topic} plan for next week needs a final decision from the whole team. \
             Please read the attached notes carefully before our meeting on Thursday. \
             We will collect every open question and answer them one by one."
        )
    };
    let raw = format!(
        "From: Ann Lee <ann@example.test>\r\nTo: ivy@example.test\r\nSubject: Plans\r\n\
         Message-ID: <plans@example.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n{}\r\n\r\n{}\r\n\r\n{}\r\n",
        para("travel"),
        para("budget"),
        para("hiring")
    );
    let mail = server.store_dir().join("plans.eml");
    std::fs::write(&mail, &raw).unwrap();
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    client.append_raw("INBOX", raw.as_bytes());
    server.cli_ok(&["sync", "4604"]);
    // The rendering and where its sentences and paragraphs start, as `tts say` says.
    let wav = server.store_dir().join("plans.wav");
    let out =
        server.cli_ok(&["tts", "say", "--mail", mail.to_str().unwrap(), "--timings", "--out", wav.to_str().unwrap()]);
    let sent: Vec<u8> = voxbridge::media::wav::read_8k_mono(&wav)
        .unwrap()
        .iter()
        .map(|s| voxbridge::media::g711::ulaw_encode(*s))
        .collect();
    let marks: Vec<(usize, bool)> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.parse().ok()?, f.nth(1)?.starts_with('¶')))
        })
        .collect();
    let sentences: Vec<usize> = marks.iter().map(|m| m.0).collect();
    let paragraphs: Vec<usize> = marks.iter().filter(|m| m.1).map(|m| m.0).collect();
    assert!(sentences.len() >= 10 && paragraphs.len() == 4, "{out}");
    let at = |s: usize| &sent[s..s + 10 * 160];

    let mut p = log_in(&server, "4604", "1234");
    let t = p.press('1');
    p.first_marker_after(t, Duration::from_secs(5)).expect("the envelope");
    let t = p.press('#'); // skip the envelope
    let body = heard_at(&p, t, at(0), Duration::from_secs(10)).expect("the mail from its start");
    // Halfway through the fourth sentence (the second paragraph's first): # → the fifth.
    let k = 3;
    let mid = |a: usize, b: usize| Duration::from_secs_f64((a + b) as f64 / 2.0 / 8000.0);
    std::thread::sleep(
        (body + mid(sentences[k], sentences[k + 1])).saturating_duration_since(std::time::Instant::now()),
    );
    let t = p.press('#');
    let landed = heard_at(&p, t, at(sentences[k + 1]), Duration::from_secs(5)).expect("the next sentence's audio");
    // Halfway between there and the next paragraph: 3 → that paragraph.
    let next_para = *paragraphs.iter().find(|&&q| q > sentences[k + 1]).unwrap();
    std::thread::sleep(
        (landed + mid(0, next_para - sentences[k + 1])).saturating_duration_since(std::time::Instant::now()),
    );
    let t = p.press('3');
    let landed = heard_at(&p, t, at(next_para), Duration::from_secs(5)).expect("the next paragraph's audio");
    // Two seconds into it: 1 → back to its start.
    std::thread::sleep((landed + Duration::from_secs(2)).saturating_duration_since(std::time::Instant::now()));
    let t = p.press('1');
    heard_at(&p, t, at(next_para), Duration::from_secs(5)).expect("back to this paragraph's start");
    p.hang_up();
}

#[test]
fn a_voice_reply_to_all_reaches_every_recipient_but_the_subscriber_once_each() {
    let dv = Dovecot::start();
    let smtp = SmtpRelay::start(&dv);
    let server = Server::start(&format!("[delivery]\nsmtp_url = \"{}\"\n[sync]\npoll_secs = 3600.0\n", smtp.url()));
    server.cli_ok(&[
        "mailbox",
        "add",
        "4603",
        "--pin",
        "1234",
        "--email",
        "ivy@example.test",
        "--imap",
        &dv.imap_url("ivy"),
    ]);
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    client.append_raw(
        "INBOX",
        b"From: Ann <ann@example.test>\r\nTo: Ivy <IVY@example.test>, bob@example.test\r\n\
          Cc: carol@example.test, ann@example.test\r\nSubject: Offsite\r\nMessage-ID: <offsite@example.test>\r\n\
          Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nWho is in?\r\n",
    );
    server.cli_ok(&["sync", "4603"]);

    let gap = Duration::from_millis(80);
    let mut p = log_in(&server, "4603", "1234");
    p.keys("1", gap);
    std::thread::sleep(Duration::from_millis(500));
    let t = p.press('3');
    let said = p.audio_after(t, 25, Duration::from_secs(5));
    assert!(said == prompt_audio(&["vm-reply-choice"])[..25 * 160], "the reply choice was not asked");
    p.keys("2", gap); // to all
    let t = p.press('9'); // skip to the beep
    p.first_marker_after(t, Duration::from_secs(5)).expect("the beep");
    std::thread::sleep(Duration::from_millis(400));
    p.send_audio(&chirp());
    let t = p.press('#');
    let said = p.audio_after(t, 25, Duration::from_secs(10));
    assert!(said == prompt_audio(&["vm-reply-sent"])[..25 * 160], "no confirmation of the reply");
    p.hang_up();

    for user in ["ann", "bob", "carol"] {
        let mut got = Vec::new();
        wait_until(Duration::from_secs(20), &format!("the reply in {user}'s mailbox"), || {
            got = imap_messages(&dv, user);
            !got.is_empty()
        });
        assert_eq!(got.len(), 1, "exactly one reply for {user}");
        let msg = mail_parser::MessageParser::default().parse(&got[0].1).unwrap();
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.into_iter().flat_map(|l| l.iter()).filter_map(|x| x.address.as_deref().map(str::to_string)).collect()
        };
        assert_eq!(addrs(msg.to()), ["ann@example.test"]);
        assert_eq!(addrs(msg.cc()), ["bob@example.test", "carol@example.test"]);
        assert_eq!(msg.in_reply_to().as_text(), Some("offsite@example.test"));
    }
    // Ivy's own INBOX holds the original only: no copy back to the subscriber.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(imap_messages(&dv, "ivy").len(), 1);
}

#[test]
fn sipp_caller_forwards_an_email_and_replies_to_it_by_voice() {
    let dv = Dovecot::start();
    let smtp = SmtpRelay::start(&dv);
    let server = Server::start(&format!("[delivery]\nsmtp_url = \"{}\"\n[sync]\npoll_secs = 3600.0\n", smtp.url()));
    server.cli_ok(&["mailbox", "add", "4801", "--pin", "1234", "--imap", &dv.imap_url("kim")]);
    server.cli_ok(&["mailbox", "add", "4802", "--pin", "1234"]);
    let mut client = MailClient::connect(&dv, "kim", "INBOX");
    client.append("INBOX", "<hello-kim@example.test>", "Hello Kim");
    server.cli_ok(&["sync", "4801"]);

    // PIN, listen, forward to 4802 without a comment (# at the comment prompt), then
    // reply: speak for 3 s after the beep, #.
    let keys = [
        ("1234#", 500),
        ("1", 1500),
        ("8", 500),
        ("4802#", 1500),
        ("#", 2500),
        ("3", 300),
        ("1", 0),    // to the sender only
        ("9", 1000), // skips to the beep
        ("<audio>", 3000),
        ("</audio>", 0),
        ("#", 3000),
    ];
    call(&server, "4801", "*98", &keys, CALLER_HANGS_UP);
    let m = server.messages("4802");
    assert_eq!(m.len(), 1, "the forwarded copy: {m:?}\n{}", server.log());
    assert_eq!((m[0]["kind"].as_str(), m[0]["caller"].as_str()), (Some("voice"), Some("4801")));

    let mut got = Vec::new();
    wait_until(Duration::from_secs(20), "the reply at the SMTP server's mailbox", || {
        got = imap_messages(&dv, "sender");
        !got.is_empty()
    });
    let raw = String::from_utf8_lossy(&got[0].1).to_string();
    assert!(
        raw.contains("In-Reply-To: <hello-kim@example.test>") && raw.contains("Content-Type: audio/wav"),
        "{raw:.800}"
    );
    let msg = mail_parser::MessageParser::default().parse(&got[0].1).unwrap();
    let wav = msg.attachments().next().expect("an attachment").contents().to_vec();
    let secs = voxbridge::media::wav::decode_8k_mono(&wav).unwrap().len() as f64 / 8000.0;
    assert!(secs > 1.5, "the reply holds the caller's speech: {secs} s");
}

/// A voice mail from another system, its audio as a WAV attachment (`name`, `ctype`).
fn foreign_voice_mail(mid: &str, date: &str, name: &str, ctype: &str, audio: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(audio);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "From: PBX <pbx@example.test>\r\nTo: sub@example.test\r\nSubject: New voicemail\r\nMessage-ID: {mid}\r\n\
         Date: {date}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nYou have a new voicemail.\r\n--b\r\nContent-Type: {ctype}\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename={name}\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

/// Voice mails left by other systems (Asterisk, gateways) carry µ-law WAV or MP3: the
/// caller hears the recording itself, not "a voice message without playable audio".
#[test]
fn a_retrieved_voice_mail_in_mu_law_wav_or_mp3_plays_to_the_caller() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4601", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let (ulaw, mp3) =
        (std::fs::read(root.join("tone-ulaw.wav")).unwrap(), std::fs::read(root.join("tone.mp3")).unwrap());
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    let older = "Tue, 24 Nov 2026 10:00:00 +0000";
    let newer = "Tue, 24 Nov 2026 11:00:00 +0000";
    client.append_raw("INBOX", &foreign_voice_mail("<vm1@pbx.test>", older, "msg0001.wav", "audio/x-wav", &ulaw));
    client.append_raw("INBOX", &foreign_voice_mail("<vm2@pbx.test>", newer, "msg0002.mp3", "audio/mpeg", &mp3));
    server.cli_ok(&["sync", "4601"]);
    let kinds: Vec<String> = server.messages("4601").iter().map(|m| m["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["voice", "voice"]);

    let mut p = log_in(&server, "4601", "1234");
    p.press('1'); // the first new message (the older one): envelope, then its audio
    std::thread::sleep(Duration::from_secs(12));
    p.press('6'); // the next one
    std::thread::sleep(Duration::from_secs(12));
    let heard = p.all_audio();
    p.hang_up();
    for (what, bytes, ext) in [("µ-law WAV", &ulaw, "wav"), ("MP3", &mp3, "mp3")] {
        let pcm = voxbridge::media::decode::decode_8k_mono(bytes, Some(ext)).unwrap();
        let sent: Vec<u8> = pcm.iter().map(|s| voxbridge::media::g711::ulaw_encode(*s)).collect();
        // 20 frames from the 10th on, byte for byte, in what the caller received.
        let want = &sent[1600..1600 + 20 * 160];
        assert!(heard.windows(want.len()).any(|w| w == want), "the {what} recording was not played");
    }
}

#[test]
fn an_email_is_read_to_the_caller_exactly_as_its_preview_says() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4602", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail/thunderbird_bottom_posting.eml");
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    client.append_raw("INBOX", &std::fs::read(&fixture).unwrap());
    server.cli_ok(&["sync", "4602"]);
    // What `tts preview` says will be spoken: the sender's answers, not the quotes.
    let preview = server.cli_ok(&["tts", "preview", "--mail", fixture.to_str().unwrap()]);
    assert!(preview.contains("Yes, the fifteenth works.") && !preview.contains("ship"), "{preview}");
    // The stored message previews the same, through the phone's own service path.
    let id = server.messages("4602")[0]["id"].as_i64().unwrap().to_string();
    let stored = server.cli_ok(&["tts", "preview", "4602", &id]);
    let lines = |t: &str| t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(lines(&stored), lines(&preview));
    let o = server.cli(&["tts", "preview", "4699", &id]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("mailbox 4699 has no message"));
    let sent = spoken(&server, &["--mail", fixture.to_str().unwrap()]);

    let mut p = log_in(&server, "4602", "1234");
    p.press('1'); // the first new message: envelope, then the e-mail read out
                  // 30 frames from three quarters in (the body, past the sender and subject that a
                  // description would say too), byte for byte: the rendering of the preview's text.
    let from = sent.len() * 3 / 4 / 160 * 160;
    let want = &sent[from..(from + 30 * 160).min(sent.len())];
    wait_until(Duration::from_secs(40), "the e-mail read as its preview says", || {
        p.all_audio().windows(want.len()).any(|w| w == want)
    });
    p.hang_up();
}

#[test]
fn filters_keep_a_mailing_list_back_from_the_phone_but_it_still_syncs() {
    let dv = Dovecot::start();
    let server = Server::start("[sync]\npoll_secs = 3600.0\n");
    server.cli_ok(&["mailbox", "add", "4603", "--pin", "1234", "--imap", &dv.imap_url("ivy")]);
    let mut client = MailClient::connect(&dv, "ivy", "INBOX");
    let newsletter = "From: Acme News <news@acme.example>\r\nTo: ivy@example.test\r\nSubject: Weekly digest\r\n\
        Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMessage-ID: <n@acme.example>\r\nList-Id: <news.acme.example>\r\n\r\nAll the news.\r\n";
    let boss = "From: Boss <boss@corp.example>\r\nTo: ivy@example.test\r\nSubject: Budget\r\n\
        Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <b@corp.example>\r\n\r\nThe budget is approved.\r\n";
    client.append_raw("INBOX", newsletter.as_bytes());
    client.append_raw("INBOX", boss.as_bytes());
    server.cli_ok(&["sync", "4603"]);
    let o = server.cli(&["filters", "add", "4603", "block from x"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("starts with allow, deny or only"));
    server.cli_ok(&["filters", "add", "4603", "deny header List-Id"]);
    assert!(server.cli_ok(&["filters", "list", "4603"]).contains("deny header List-Id"));
    let verdicts: Vec<serde_json::Value> =
        serde_json::from_str(&server.cli_ok(&["filters", "test", "4603", "--json"])).unwrap();
    let offered: Vec<(String, bool)> = verdicts
        .iter()
        .map(|v| (v["subject"].as_str().unwrap().to_string(), v["offered"].as_bool().unwrap()))
        .collect();
    assert_eq!(offered, [("Weekly digest".to_string(), false), ("Budget".to_string(), true)]);
    assert_eq!(server.messages("4603").len(), 2, "the filtered mail is still in the store and syncs");

    // By phone the first new message is the boss's: the digest is not offered.
    let sent = spoken(&server, &["An e-mail from Boss. Subject: Budget.\n\nThe budget is approved."]);
    let from = sent.len() * 3 / 4 / 160 * 160;
    let want = &sent[from..(from + 25 * 160).min(sent.len())];
    let mut p = log_in(&server, "4603", "1234");
    p.press('1');
    wait_until(Duration::from_secs(40), "the boss's e-mail as the first message", || {
        p.all_audio().windows(want.len()).any(|w| w == want)
    });
    p.hang_up();
}
