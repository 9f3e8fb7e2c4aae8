//! Media on a hostile network and with real phones' habits: a stranger's RTP to a call's
//! port, SDP pointing at someone else, no ACK, hold and resume, audio during key
//! presses (baresip), long recordings (linphone's no-RTP timeout), a caller whose media
//! stops, an address family the server cannot reach.

mod common;
use common::phone::{Dial, Phone};
use common::*;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn ulaw_tone(freq: f64, millis: u32, amplitude: f64) -> Vec<u8> {
    voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(freq, millis, amplitude))
}

/// The one recording of `mailbox`, as 8 kHz samples.
fn recording(server: &Server, mailbox: &str) -> Vec<i16> {
    let dir = server.store_dir().join("recordings").join(mailbox);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    voxbridge::media::wav::decode_8k_mono(&std::fs::read(&files[0]).unwrap()).unwrap()
}

/// The value of `key=` in the last "call ended" line of the log.
fn call_ended(server: &Server, key: &str) -> u64 {
    let log = server.log();
    let line = log.lines().rev().find(|l| l.contains("call ended")).unwrap_or_else(|| panic!("no call ended:\n{log}"));
    let v = line.split(&format!(" {key}=")).nth(1).unwrap_or_else(|| panic!("no {key} in {line}"));
    v.split_whitespace().next().unwrap().parse().unwrap()
}

fn wait_call_ended(server: &Server, calls: usize) {
    wait_until(Duration::from_secs(10), "the call to end", || server.log().matches("call ended").count() >= calls);
}

/// A server with mailbox `mailbox` and a phone calling it from `caller`, past the
/// greeting and the beep: what the phone sends now is recorded.
fn recording_call(mailbox: &str, caller: &str) -> (Server, Phone) {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", mailbox, "--pin", "1234"]);
    let phone = Phone::call(server.sip_port, caller, mailbox);
    std::thread::sleep(Duration::from_millis(greeting_ms(mailbox) + 300));
    (server, phone)
}

/// Ends the recording with `#`, waits for the message, hangs up.
fn end_message(server: &Server, mut phone: Phone, mailbox: &str) {
    phone.press('#');
    wait_until(Duration::from_secs(10), "the message saved", || server.messages(mailbox).len() == 1);
    phone.hang_up();
    wait_call_ended(server, 1);
}

fn peak(pcm: &[i16]) -> i16 {
    pcm.iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
}

#[test]
fn a_strangers_rtp_during_a_call_reaches_nobody_and_is_not_recorded() {
    let (server, mut phone) = recording_call("4601", "5550001");
    let target = phone.server_rtp();

    // While the caller speaks softly, a stranger who found the port sends loud audio and
    // a `#` (which would end the recording) from its own socket.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let s2 = stranger.try_clone().unwrap();
    let attack = std::thread::spawn(move || {
        let loud = ulaw_tone(1000.0, 2000, 0.9);
        for (i, frame) in loud.chunks(160).enumerate() {
            let mut p = vec![0x80, 0];
            p.extend((i as u16).to_be_bytes());
            p.extend((i as u32 * 160).to_be_bytes());
            p.extend(0xbad_u32.to_be_bytes());
            p.extend(frame);
            s2.send_to(&p, target).unwrap();
            if i % 10 == 5 {
                let mut e = vec![0x80, 101];
                e.extend((i as u16).to_be_bytes());
                e.extend((i as u32 * 160).to_be_bytes());
                e.extend(0xbad_u32.to_be_bytes());
                e.extend([11, 0x8a, 3, 0x20]);
                s2.send_to(&e, target).unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    phone.send_audio(&ulaw_tone(440.0, 3000, 0.2));
    attack.join().unwrap();
    end_message(&server, phone, "4601");

    let mut buf = [0u8; 2048];
    assert!(stranger.recv_from(&mut buf).is_err(), "the stranger received media");
    let pcm = recording(&server, "4601");
    assert!(pcm.len() >= 8000 * 5 / 2, "the stranger's # did not end the recording: {} samples", pcm.len());
    assert!(peak(&pcm) < (0.3 * 32767.0) as i16, "the stranger's loud audio is in the recording: peak {}", peak(&pcm));
    assert!(peak(&pcm) > (0.1 * 32767.0) as i16, "the caller's audio is: peak {}", peak(&pcm));
    assert!(call_ended(&server, "rtp_foreign_source") >= 100, "{}", server.log());
}

#[test]
fn nothing_is_sent_before_the_ack_nor_to_an_address_the_sdp_names_for_someone_else() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4602", "--pin", "1234"]);

    // No ACK yet: no greeting, however long we wait; the ACK starts it.
    let mut p = Phone::dial(
        server.sip_port,
        "5550002",
        "4602",
        Dial { sdp_ip: "127.0.0.1", ack: false, sdp: None, headers: "" },
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(p.received.lock().unwrap().len(), 0, "RTP before the ACK");
    p.ack();
    wait_until(Duration::from_secs(3), "the greeting after the ACK", || p.received.lock().unwrap().len() > 10);
    p.hang_up();
    wait_call_ended(&server, 1);

    // An SDP naming a multicast group or a documentation address (someone else's): the
    // call is answered, nothing is ever sent, with or without the ACK.
    for (n, (ip, ack)) in [("224.0.0.1", true), ("192.0.2.1", true), ("192.0.2.1", false)].into_iter().enumerate() {
        let p = Phone::dial(server.sip_port, "5550002", "4602", Dial { sdp_ip: ip, ack, sdp: None, headers: "" });
        std::thread::sleep(Duration::from_millis(1000));
        p.hang_up();
        wait_call_ended(&server, n + 2);
        assert_eq!(call_ended(&server, "rtp_sent"), 0, "RTP sent toward {ip}:\n{}", server.log());
        assert!(call_ended(&server, "rtp_withheld") >= 40, "{}", server.log());
    }
    assert!(server.log().contains("SDP media address not used until the caller's own RTP proves one"));
}

#[test]
fn a_60_second_recording_keeps_rtp_flowing_to_the_caller() {
    let (server, mut phone) = recording_call("4603", "5550003");
    let start = Instant::now();
    phone.send_audio(&ulaw_tone(440.0, 60_000, 0.3));
    let end = Instant::now();
    let received = phone.received.clone();
    end_message(&server, phone, "4603");

    let rec = received.lock().unwrap();
    let during: Vec<Instant> = rec.iter().map(|r| r.at).filter(|t| *t > start && *t < end).collect();
    // A silence frame every second while the caller speaks (none at all before).
    assert!(during.len() >= 55, "{} packets to the caller in 60 s of recording", during.len());
    let gap = during.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gap < Duration::from_millis(1500), "a {gap:?} gap without RTP");
    let m = server.messages("4603");
    assert!(m[0]["duration_ms"].as_i64().unwrap() >= 59_000, "{m:?}");
}

#[test]
fn audio_during_key_presses_in_one_sequence_space_is_recorded_without_delay_or_loss() {
    let (server, mut phone) = recording_call("4604", "5550004");
    // 3 s of soft audio with ten presses of 5 (ignored while recording) in the middle of
    // it, then 0.5 s of loud audio, then #. Four event packets per press: had they been
    // counted as lost audio, playout would run 800 ms behind and the loud end be cut.
    let mut audio = ulaw_tone(440.0, 3000, 0.15);
    audio.extend(ulaw_tone(1000.0, 500, 0.8));
    let presses: Vec<usize> = (0..10).map(|i| 20 + i * 12).collect();
    phone.send_audio_pressing(&audio, '5', &presses);
    end_message(&server, phone, "4604");

    let pcm = recording(&server, "4604");
    let tail = &pcm[pcm.len().saturating_sub(8000 * 3 / 10)..];
    assert!(peak(tail) > (0.6 * 32767.0) as i16, "the last 300 ms are not the loud end: peak {}", peak(tail));
    assert_eq!(call_ended(&server, "rtp_lost"), 0, "{}", server.log());
}

#[test]
fn hold_stops_our_audio_and_resume_brings_it_back() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4605", "--pin", "1234"]);
    let mut phone = Phone::call(server.sip_port, "5550005", "4605");
    std::thread::sleep(Duration::from_millis(400));
    let answer = phone.reinvite("sendonly", 2);
    assert!(answer.contains("a=recvonly"), "hold answered recvonly (RFC 3264 §8.4):\n{answer}");
    std::thread::sleep(Duration::from_millis(200)); // what was in flight
    let held = phone.received.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(phone.received.lock().unwrap().len(), held, "RTP sent while on hold");
    let answer = phone.reinvite("sendrecv", 3);
    assert!(answer.contains("a=sendrecv"), "{answer}");
    wait_until(Duration::from_secs(3), "audio after resume", || phone.received.lock().unwrap().len() > held + 20);
    let resumed = phone.received.lock().unwrap()[held].clone();
    assert!(resumed.marker, "the resumed greeting starts a talkspurt");
    phone.hang_up();
}

#[test]
fn a_caller_whose_media_stops_is_hung_up_after_the_timeout() {
    let server = Server::start("[rtp]\ntimeout_secs = 2\n");
    server.cli_ok(&["mailbox", "add", "4606", "--pin", "1234"]);
    let _phone = Phone::call(server.sip_port, "5550006", "*98");
    // The phone sends nothing at all: after 2 s the server gives up on it.
    wait_until(Duration::from_secs(8), "the call ended by the server", || server.log().contains("call ended"));
    assert!(server.log().contains("no RTP or RTCP from the caller"), "{}", server.log());
}

#[test]
fn an_ipv6_media_address_on_an_ipv4_server_gets_488_with_the_reason() {
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4607", "--pin", "1234"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 2001:db8::7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:4607@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKv6\r\nFrom: <sip:x@127.0.0.1>;tag=a\r\n\
         To: <sip:4607@127.0.0.1>\r\nCall-ID: v6@t\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{me}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), ("127.0.0.1", server.sip_port)).unwrap();
    let mut buf = [0u8; 4096];
    let final_response = loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a final response");
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        if !msg.starts_with("SIP/2.0 1") {
            break msg;
        }
    };
    assert!(
        final_response.starts_with("SIP/2.0 488 Not Acceptable Here (media address 2001:db8::7 cannot be reached"),
        "{final_response}"
    );
}

/// Files in `mailbox`'s recordings directory: (name, size).
fn recording_files(server: &Server, mailbox: &str) -> Vec<(String, u64)> {
    let dir = server.store_dir().join("recordings").join(mailbox);
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| (e.file_name().to_string_lossy().to_string(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_recording_is_written_to_disk_while_the_caller_speaks() {
    let (server, mut phone) = recording_call("4608", "5550008");
    phone.send_audio(&ulaw_tone(440.0, 4000, 0.3));
    // Before the end: a temporary file already holds most of what was said.
    let during = recording_files(&server, "4608");
    assert!(
        during.len() == 1 && during[0].0.ends_with(".tmp") && during[0].1 >= 44 + 2 * 8000 * 3,
        "no growing temporary file while recording: {during:?}"
    );
    end_message(&server, phone, "4608");
    let after = recording_files(&server, "4608");
    assert!(after.len() == 1 && after[0].0.ends_with(".wav"), "{after:?}");
    let pcm = recording(&server, "4608");
    // The 4 s the phone spoke are all there, once: measured from the tone's first to its
    // last loud sample, so the pause between the beep and the phone's first packet (longer
    // on a loaded machine) and the moment of the `#` do not count.
    let loud = |s: &i16| s.saturating_abs() > 2000;
    let first = pcm.iter().position(loud).expect("the tone is in the recording");
    let last = pcm.iter().rposition(loud).unwrap();
    let spoken = last + 1 - first;
    assert!((8000 * 39 / 10..=8000 * 41 / 10).contains(&spoken), "{spoken} samples of tone for 4 s");
    let around = pcm.len() - spoken;
    assert!(around <= 8000 * 3, "{around} samples of silence around 4 s of tone");
    let ms = server.messages("4608")[0]["duration_ms"].as_i64().unwrap();
    assert_eq!(ms, pcm.len() as i64 / 8, "the row says what the file holds");
}

#[test]
fn a_full_disk_fails_the_message_cleanly_and_leaves_no_temporary_file() {
    if unsafe_geteuid() != 0 {
        panic!("this test mounts a tmpfs: run it as root (tools/test does)");
    }
    let server = Server::start("");
    server.cli_ok(&["mailbox", "add", "4609", "--pin", "1234"]);
    // The mailbox's recordings directory on a 64 KiB tmpfs: 2 s of audio fill it.
    let dir = server.store_dir().join("recordings").join("4609");
    std::fs::create_dir_all(&dir).unwrap();
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "vbfull", dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mount.success(), "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.clone());
    let mut phone = Phone::call(server.sip_port, "5550009", "4609");
    std::thread::sleep(Duration::from_millis(greeting_ms("4609") + 300));
    phone.send_audio(&ulaw_tone(440.0, 5000, 0.3));
    phone.press('#');
    wait_until(Duration::from_secs(10), "the failure logged", || server.log().contains("writing the recording failed"));
    std::thread::sleep(Duration::from_millis(500));
    phone.hang_up();
    wait_call_ended(&server, 1);
    assert!(recording_files(&server, "4609").is_empty(), "{:?}", recording_files(&server, "4609"));
    assert!(server.messages("4609").is_empty(), "no message row for a recording that is not on disk");
    assert!(!server.log().contains("message saved"), "{}", server.log());
}

fn unsafe_geteuid() -> u32 {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() }
}
