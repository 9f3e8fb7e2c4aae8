//! PBX integration: calls diverted by a SIP PBX (`Diversion`, `History-Info`) and calls
//! described over SMDI — through a pty pair (socat, the serial line) and a loopback TCP
//! socket (a serial-over-IP server) — reach the right mailbox with the right greeting
//! (the audio the caller hears is checked: the busy and unavailable greetings are tones
//! of different pitch); message lamps go on after a deposit, off after the message is
//! heard by phone or seen in a mail client, are all sent again after the link is cut and
//! restored; an `MWE … INV` reply is logged and does not stop other lamps; garbage on
//! the link crashes nothing.

mod common;
use common::phone::{Dial, Phone};
use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The unavailable and busy greetings' pitches.
const UNAVAILABLE_HZ: f64 = 600.0;
const BUSY_HZ: f64 = 1400.0;

fn write_tone(path: &Path, hz: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in voxbridge::media::tone(hz, 1500, 0.4) {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// Mailbox `number` (PIN 1234) with a 1.5 s unavailable greeting at 600 Hz and a busy
/// greeting at 1400 Hz.
fn mailbox_with_greetings(server: &Server, number: &str, extra: &[&str]) {
    let mut args = vec!["mailbox", "add", number, "--pin", "1234"];
    args.extend(extra);
    server.cli_ok(&args);
    let (u, b) = (server.dir.path().join("unavailable.wav"), server.dir.path().join("busy.wav"));
    write_tone(&u, UNAVAILABLE_HZ);
    write_tone(&b, BUSY_HZ);
    server.cli_ok(&["mailbox", "greeting", number, u.to_str().unwrap()]);
    server.cli_ok(&["mailbox", "greeting", number, b.to_str().unwrap(), "--busy"]);
}

/// The pitch of the first second the caller hears after the answer (zero crossings).
fn greeting_hz(p: &Phone, since: Instant) -> f64 {
    let audio = p.audio_after(since, 50, Duration::from_secs(10));
    let pcm: Vec<i16> = audio.iter().map(|&b| voxbridge::media::g711::ulaw_decode(b)).collect();
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (pcm.len() as f64 / 8000.0)
}

fn assert_pitch(hz: f64, want: f64, what: &str, server: &Server) {
    assert!((hz - want).abs() < 100.0, "{what}: heard {hz:.0} Hz, expected {want:.0} Hz\n{}", server.log());
}

fn dial(server: &Server, caller: &str, dialled: &str, headers: &str) -> (Phone, Instant) {
    let t = Instant::now();
    let p = Phone::dial(server.sip_port, caller, dialled, Dial { sdp_ip: "127.0.0.1", ack: true, sdp: None, headers });
    (p, t)
}

/// After the greeting and the beep, 2 s of the caller's voice, then the caller hangs up.
fn leave_message(mut p: Phone) {
    std::thread::sleep(Duration::from_millis(2000));
    let voice = voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &voxbridge::media::tone(440.0, 2000, 0.3));
    p.send_audio(&voice);
    p.hang_up();
}

#[test]
fn sip_diversions_reach_the_diverted_mailbox_with_the_greeting_for_the_reason() {
    let server = Server::start("");
    mailbox_with_greetings(&server, "1001", &[]);
    let cases = [
        ("Diversion: <sip:1001@pbx.example>;reason=user-busy;counter=1\r\n", BUSY_HZ, "Diversion user-busy"),
        ("Diversion: \"Ann\" <sip:1001@pbx.example>;reason=no-answer\r\n", UNAVAILABLE_HZ, "Diversion no-answer"),
        (
            "History-Info: <sip:1001@pbx.example>;index=1\r\nHistory-Info: <sip:8500@vm.example;cause=486>;index=1.1;mp=1\r\n",
            BUSY_HZ,
            "History-Info cause 486",
        ),
        (
            "History-Info: <sip:1001@pbx.example?Reason=SIP%3Bcause%3D408>;index=1, <sip:8500@vm.example;cause=408>;index=1.1;mp=1\r\n",
            UNAVAILABLE_HZ,
            "History-Info cause 408",
        ),
    ];
    for (headers, want, what) in cases {
        let (p, t) = dial(&server, "5550100", "8500", headers);
        assert_pitch(greeting_hz(&p, t), want, what, &server);
        p.hang_up();
    }
    // The pilot dialled directly: the mailbox menu.
    let (p, _) = dial(&server, "5550100", "8500", "");
    wait_logged(&server, "mailbox menu");
    p.hang_up();
    // sipp, diverted on busy: the message lands in 1001 (sipp sends its audio from the
    // answer on; the busy greeting is 1.5 s, then the beep).
    let run = sipp(
        &server,
        "uac_diverted.xml",
        &[("HEADERS", "Diversion: <sip:1001@pbx.example>;reason=user-busy")],
        "8500",
        1750 + 3000,
        "udp",
    );
    assert!(run.ok, "sipp:\n{}\n{}\n{}", run.output, run.messages, server.log());
    wait_until(Duration::from_secs(10), "the message in 1001", || server.messages("1001").len() == 1);
    assert!(server.log().contains("mailbox=1001 busy=true"), "{}", server.log());
}

/// The PBX's end of the SMDI link: what it sends, and everything it received.
struct Pbx {
    write: Box<dyn Write + Send>,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Pbx {
    fn new(read: impl Read + Send + 'static, write: impl Write + Send + 'static) -> Pbx {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut read = read;
            let mut buf = [0u8; 256];
            while let Ok(n) = read.read(&mut buf) {
                if n == 0 {
                    break;
                }
                g.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pbx { write: Box::new(write), got }
    }

    /// One message as switches send it: CR LF and ^Y after it.
    fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n\x19").as_bytes());
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).unwrap();
        self.write.flush().unwrap();
    }

    /// The lamp commands received so far, each up to its EOT.
    fn lamps(&self) -> Vec<String> {
        let got = self.got.lock().unwrap();
        got.split(|&b| b == 0x04).filter(|c| !c.is_empty()).map(|c| String::from_utf8_lossy(c).into_owned()).collect()
    }

    /// Waits until `command` arrives after the first `after` commands.
    fn wait_lamp(&self, command: &str, after: usize, server: &Server) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.lamps().iter().skip(after).any(|c| c == command) {
            assert!(
                Instant::now() < until,
                "no {command:?} after the first {after}: {:?}\n{}",
                self.lamps(),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A pty pair made by socat: the PBX's end and the server's (`vm`), both raw.
struct PtyPair {
    child: Child,
    pbx: PathBuf,
    vm: PathBuf,
}

impl PtyPair {
    fn start(dir: &Path) -> PtyPair {
        need("socat");
        let (pbx, vm) = (dir.join("pbx"), dir.join("vm"));
        let _ = std::fs::remove_file(&pbx);
        let _ = std::fs::remove_file(&vm);
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", pbx.display()))
            .arg(format!("pty,raw,echo=0,link={}", vm.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat");
        wait_until(Duration::from_secs(5), "socat's ptys", || pbx.exists() && vm.exists());
        PtyPair { child, pbx, vm }
    }

    fn pbx(&self) -> Pbx {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&self.pbx).unwrap();
        Pbx::new(f.try_clone().unwrap(), f)
    }

    /// The cable pulled: both ends close.
    fn cut(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Waits until the server's log holds `text`; the log is shown when it does not.
fn wait_logged(server: &Server, text: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        assert!(Instant::now() < until, "{text:?} never logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn smdi_status(server: &Server) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["smdi", "status", "--json"])).unwrap()
}

#[test]
fn smdi_over_a_serial_line_routes_by_terminal_and_drives_the_lamps() {
    let work = tempfile::tempdir().unwrap();
    let mut pty = PtyPair::start(work.path());
    let mut pbx = pty.pbx();
    let mut server = Server::configure(&format!(
        "[smdi]\nlink = \"serial:{}\"\nbaud = 1200\npilots = [\"8500\"]\nterminal_header = \"X-SMDI-Terminal\"\n\
         md_wait_ms = 8000\nlamp_retry_secs = 1.0\naudit_secs = 0.0\n",
        pty.vm.display()
    ));
    mailbox_with_greetings(&server, "1001", &[]);
    mailbox_with_greetings(&server, "1002", &["--station", "5551002"]);
    server.run();
    wait_logged(&server, "SMDI link up");
    // At start-up every lamp's state is sent: both dark.
    pbx.wait_lamp("RMV:MWI 1001!", 0, &server);
    pbx.wait_lamp("RMV:MWI 5551002!", 0, &server);

    // Line noise, a truncated and an overlong line: logged, nothing else.
    pbx.send_raw(b"\xff\xfe\x00garbage\r\nMD001\r\n");
    pbx.send_raw(&[b'7'; 600]);
    pbx.send_raw(b"\r\n");

    // Two calls; their call details arrive in the opposite order of the INVITEs.
    let port = server.sip_port;
    let call = move |caller: &'static str, terminal: &'static str| {
        std::thread::spawn(move || {
            let headers = format!("X-SMDI-Terminal: {terminal}\r\n");
            let t = Instant::now();
            let p = Phone::dial(
                port,
                caller,
                "8500",
                Dial { sdp_ip: "127.0.0.1", ack: true, sdp: None, headers: &headers },
            );
            (p, t)
        })
    };
    let first = call("3001", "0001");
    let second = call("3002", "0002");
    wait_until(Duration::from_secs(8), "two calls waiting", || smdi_status(&server)["waiting_calls"] == 2);
    pbx.send("MD0010002B5551002 3002"); // the second call: 1002's station was busy
    pbx.send("MD0010001N1001 3001"); // the first: 1001 did not answer
    let (p1, t1) = first.join().unwrap();
    let (p2, t2) = second.join().unwrap();
    assert_pitch(greeting_hz(&p1, t1), UNAVAILABLE_HZ, "terminal 1: 1001's unavailable greeting", &server);
    assert_pitch(greeting_hz(&p2, t2), BUSY_HZ, "terminal 2: 1002's busy greeting", &server);
    let (a, b) = (std::thread::spawn(move || leave_message(p1)), std::thread::spawn(move || leave_message(p2)));
    a.join().unwrap();
    b.join().unwrap();
    wait_until(Duration::from_secs(10), "both messages", || {
        server.messages("1001").len() == 1 && server.messages("1002").len() == 1
    });
    pbx.wait_lamp("OP:MWI 1001!", 2, &server);
    pbx.wait_lamp("OP:MWI 5551002!", 2, &server);

    // The PBX refuses one lamp: logged, retried, and the other lamps go on.
    let before = pbx.lamps().len();
    pbx.send("MWE 5551002 INV");
    wait_logged(&server, "SMDI lamp refused by the PBX");
    pbx.wait_lamp("OP:MWI 5551002!", before, &server);

    // A direct call from station 1001: the menu, for its mailbox; the message heard →
    // the lamp goes off.
    let n = pbx.lamps().len();
    pbx.send("MD0010003D 1001");
    let (mut p, _) = dial(&server, "5550000", "8500", "X-SMDI-Terminal: 0003\r\n");
    wait_logged(&server, "caller_mailbox=\"1001\"");
    std::thread::sleep(Duration::from_millis(500));
    p.keys("1234", Duration::from_millis(60));
    let t = p.press('#');
    p.first_marker_after(t, Duration::from_secs(10)).expect("the counts after login");
    std::thread::sleep(Duration::from_millis(500));
    p.press('1');
    pbx.wait_lamp("RMV:MWI 1001!", n, &server);
    p.hang_up();
    assert_eq!(server.messages("1001")[0]["state"], "R");

    // The status (rewritten every second): link up, each lamp's last state.
    let lit = |st: &serde_json::Value, station: &str| {
        st["lamps"].as_array().unwrap().iter().find(|l| l["station"] == station).map(|l| l["lit"].clone())
    };
    wait_until(Duration::from_secs(5), "the status with 1001 dark and 5551002 lit", || {
        let st = smdi_status(&server);
        st["link"]["up"] == true && lit(&st, "1001") == Some(false.into()) && lit(&st, "5551002") == Some(true.into())
    });
    let text = server.cli_ok(&["smdi", "status"]);
    assert!(text.contains("up") && text.contains("5551002"), "{text}");

    // The cable is pulled and put back: every lamp is sent again.
    pty.cut();
    wait_logged(&server, "SMDI link dropped");
    let mut pty = PtyPair::start(work.path());
    let pbx = pty.pbx();
    pbx.wait_lamp("RMV:MWI 1001!", 0, &server);
    pbx.wait_lamp("OP:MWI 5551002!", 0, &server);
    // A change made by a command (another process, so not on the server's change hub).
    let n = pbx.lamps().len();
    let id = server.messages("1002")[0]["id"].to_string();
    server.cli_ok(&["messages", "mark", "1002", &id, "read"]);
    pbx.wait_lamp("RMV:MWI 5551002!", n, &server);
    pty.cut();
    assert!(server.is_running(), "{}", server.log());
    assert!(server.log().contains("no SMDI message"), "garbage logged:\n{}", server.log());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn smdi_over_tcp_matches_by_calling_number_and_a_mail_client_turns_the_lamp_off() {
    let dv = Dovecot::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::configure(&format!(
        "[sync]\npoll_secs = 3600.0\n[smdi]\nlink = \"tcp:127.0.0.1:{port}\"\npilots = [\"8500\"]\nmd_wait_ms = 8000\naudit_secs = 0.0\n"
    ));
    mailbox_with_greetings(&server, "1001", &["--imap", &dv.imap_url("ann")]);
    server.run();
    listener.set_nonblocking(true).unwrap();
    let accept = |l: &std::net::TcpListener| {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    return (Pbx::new(s.try_clone().unwrap(), s.try_clone().unwrap()), s);
                }
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("the server did not connect: {e}\n{}", server.log()),
            }
        }
    };
    let (mut pbx, conn) = accept(&listener);
    pbx.wait_lamp("RMV:MWI 1001!", 0, &server);

    // No terminal is known for SIP calls here: the calling number matches.
    pbx.send("MD0010005B1001 2125550123");
    let (p, t) = dial(&server, "+12125550123", "8500", "");
    assert_pitch(greeting_hz(&p, t), BUSY_HZ, "1001's busy greeting", &server);
    leave_message(p);
    pbx.wait_lamp("OP:MWI 1001!", 1, &server);

    // The connection drops and comes back: the lamp is sent again.
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    let (pbx, _conn) = accept(&listener);
    pbx.wait_lamp("OP:MWI 1001!", 0, &server);

    // Seen in a mail client: IDLE → a sync pass → the lamp goes off.
    wait_until(Duration::from_secs(30), "delivery to Dovecot", || server.messages("1001")[0]["server_uid"].is_i64());
    let mut client = MailClient::connect(&dv, "ann", "INBOX");
    let uid = client.flags()[0].0;
    client.store(uid, "+FLAGS (\\Seen)");
    pbx.wait_lamp("RMV:MWI 1001!", 1, &server);
    assert!(server.log().contains("SMDI link dropped"), "{}", server.log());
}
