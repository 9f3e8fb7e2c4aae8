//! Test harness: real peers on loopback. Each test starts its own private Dovecot
//! (IMAP, POP3, LMTP on free ports), SMTP relay (aiosmtpd → Dovecot LMTP), voxbridge
//! server and sipp calls, so tests run in parallel and one may stop its Dovecot
//! without disturbing another. `tools/test` installs the programs and creates the
//! `vbmail` user the mail store runs as.

#![allow(dead_code)]

pub mod capture;
pub mod certs;
pub mod fault_proxy;
pub mod fax_machine;
pub mod phone;
pub mod softphone;
pub mod t38_machine;
pub mod tiff;
pub mod tls_call;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "pass";

/// A port free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        // (Linux hands out odd ports for bind(0); sipp and Dovecot accept any.)
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// The first of `n` consecutive ports free for UDP right now: sipp binds its audio RTP
/// port, the one after it, and a video pair after those (`-mp` + 2, + 3); a free first
/// port alone let a parallel test's socket sit on the video port.
pub fn free_udp_ports(n: u16) -> u16 {
    loop {
        let base = free_port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<UdpSocket> = (base..base + n).filter_map(|p| UdpSocket::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == n as usize {
            return base;
        }
    }
}

pub fn need(program: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{program} is not installed: run tools/test, which installs the test peers");
}

fn wait_tcp(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private Dovecot: any user name logs in with password "pass".
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub pop3: u16,
    pub lmtp: u16,
    child: Option<Child>,
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// A Dovecot with extra configuration lines (e.g. a reduced capability list).
    pub fn start_with(extra_conf: &str) -> Dovecot {
        need("dovecot");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let uid = String::from_utf8(Command::new("id").args(["-u", "vbmail"]).output().unwrap().stdout).unwrap();
        let uid: u32 = uid.trim().parse().expect("user vbmail missing: run tools/test, which creates it");
        let gid: u32 = String::from_utf8(Command::new("id").args(["-g", "vbmail"]).output().unwrap().stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(d.join("mail")).unwrap();
        std::os::unix::fs::chown(d.join("mail"), Some(uid), Some(gid)).unwrap();
        // A port found free may be taken by another test's socket before Dovecot binds
        // it (Dovecot then exits): a few tries, each with fresh ports.
        let mut last = String::new();
        for _ in 0..4 {
            let (imap, pop3, lmtp) = (free_port(), free_port(), free_port());
            let conf = include_str!("dovecot.conf.in")
                .replace("@DIR@", d.to_str().unwrap())
                .replace("@IMAP@", &imap.to_string())
                .replace("@POP3@", &pop3.to_string())
                .replace("@LMTP@", &lmtp.to_string())
                + extra_conf;
            std::fs::write(d.join("dovecot.conf"), conf).unwrap();
            match spawn_dovecot(d, [imap, pop3, lmtp]) {
                Ok(child) => return Dovecot { dir, imap, pop3, lmtp, child: Some(child) },
                Err(e) => last = e,
            }
        }
        panic!("dovecot did not start: {last}");
    }

    pub fn restart(&mut self) {
        // Its ports are in the kernel's ephemeral range (free_port asked for them): while
        // it was down, another test's outgoing connection may have used one as its local
        // port for a moment. Wait for that to end rather than fail.
        let mut tries = 0;
        loop {
            match spawn_dovecot(self.dir.path(), [self.imap, self.pop3, self.lmtp]) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if e.contains("Address already in use") && tries < 40 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("dovecot did not start again: {e}"),
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), 15);
            let _ = c.wait();
        }
        // Wait until the port is really closed (login processes exit with the master).
        wait_until(Duration::from_secs(10), "dovecot to stop", || {
            TcpStream::connect(("127.0.0.1", self.imap)).is_err()
        });
    }

    /// Kills every process of this Dovecot at once (SIGKILL to its process group), as a
    /// crash or power cut of the mail server would: open connections just drop.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-9", "--", &format!("-{}", c.id())]).status();
            let _ = c.wait();
        }
        wait_until(Duration::from_secs(10), "dovecot to die", || TcpStream::connect(("127.0.0.1", self.imap)).is_err());
    }

    pub fn imap_url(&self, user: &str) -> String {
        format!("imap://{user}:{PASSWORD}@127.0.0.1:{}/INBOX", self.imap)
    }

    pub fn pop3_url(&self, user: &str) -> String {
        format!("pop3://{user}:{PASSWORD}@127.0.0.1:{}", self.pop3)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Writes messages straight into `user`'s Maildir (`cur/`, with the Maildir flags
    /// given, e.g. "S"), as a delivery agent would: much faster than APPENDing thousands.
    pub fn write_maildir(&self, user: &str, messages: &[(String, &str)]) {
        let root = self.dir.path().join("mail").join(user);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for (i, (raw, flags)) in messages.iter().enumerate() {
            let name = format!("{}.M{i}P1.test,S={}:2,{flags}", 1_790_000_000 + i, raw.len());
            std::fs::write(root.join("cur").join(name), raw).unwrap();
        }
        let st = Command::new("chown").args(["-R", "vbmail:vbmail"]).arg(&root).status().unwrap();
        assert!(st.success(), "chown {root:?}");
    }
}

/// Starts the Dovecot configured in `d` (its own process group, so that kill_hard
/// reaches every process of it); an error if it exits or does not listen on `ports`.
fn spawn_dovecot(d: &Path, ports: [u16; 3]) -> Result<Child, String> {
    let mut child = std::os::unix::process::CommandExt::process_group(
        Command::new("dovecot").args(["-F", "-c"]).arg(d.join("dovecot.conf")),
        0,
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(d.join("dovecot.stderr")).unwrap())
    .spawn()
    .expect("start dovecot");
    let exited = |child: &mut Child| -> Option<String> {
        let st = child.try_wait().ok().flatten()?;
        let err = std::fs::read_to_string(d.join("dovecot.stderr")).unwrap_or_default();
        Some(format!("dovecot exited ({st}): {err}"))
    };
    let start = Instant::now();
    for port in ports {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            // Exited: a port was taken meanwhile (its stderr says which).
            if let Some(e) = exited(&mut child) {
                return Err(e);
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = Command::new("kill").args(["-9", "--", &format!("-{}", child.id())]).status();
                let _ = child.wait();
                return Err(format!("dovecot did not start listening on {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Another test's listener on one of our ports answers too: Dovecot itself must still
    // be running once all three answer.
    std::thread::sleep(Duration::from_millis(50));
    match exited(&mut child) {
        Some(e) => Err(e),
        None => Ok(child),
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), 15);
            let _ = c.wait();
        }
    }
}

/// Sends a signal with the `kill` program (no libc dependency in tests).
pub fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

/// aiosmtpd on a free port, delivering into a Dovecot by LMTP.
pub struct SmtpRelay {
    pub port: u16,
    child: Child,
}

impl SmtpRelay {
    pub fn start(dv: &Dovecot) -> SmtpRelay {
        SmtpRelay::start_with(dv, &[])
    }

    /// With the relay's options: `--tls CERT KEY` (STARTTLS), `--auth USER PASSWORD`.
    pub fn start_with(dv: &Dovecot, options: &[&str]) -> SmtpRelay {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/smtp_relay.py");
        // Debian's python3 with Debian's python3-aiosmtpd (tools/test installs both).
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dv.lmtp.to_string())
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("start python3 smtp relay");
        wait_tcp(port, "SMTP relay (python3 -m pip install aiosmtpd; tools/test does it)");
        SmtpRelay { port, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

impl Drop for SmtpRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prompt audio is generated once per build directory and shared by every server.
pub fn prompt_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prompt-cache")
}

/// A voxbridge server with its own store, config and log.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub sip_port: u16,
    pub config: PathBuf,
    /// More environment for `serve` (set before [`Server::run`]).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voxbridge")
}

impl Server {
    /// Writes a config (`extra` is appended TOML) without starting the server.
    pub fn configure(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sip_port = free_port();
        let rtp_base = 20000 + (rand_u16() % 200) * 100;
        let root = env!("CARGO_MANIFEST_DIR");
        let config = dir.path().join("voxbridge.toml");
        let mut table: toml::Table = format!(
            "[sip]\nlisten = \"127.0.0.1:{sip_port}\"\n[rtp]\nport_range = \"{rtp_base}-{}\"\n[store]\npath = \"{}\"\n\
             [prompts]\ndir = \"{root}/prompts\"\ncache = \"{}\"\n[dialplan]\nfile = \"{root}/dialplans/default.toml\"\n",
            rtp_base + 99,
            dir.path().join("var").display(),
            prompt_cache().display(),
        )
        .parse()
        .unwrap();
        merge(&mut table, extra.parse().expect("extra config is TOML"));
        let toml = toml::to_string(&table).unwrap();
        std::fs::write(&config, toml).unwrap();
        Server { dir, sip_port, config, env: vec![], child: None }
    }

    pub fn start(extra: &str) -> Server {
        let mut s = Server::configure(extra);
        s.run();
        s
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("voxbridge.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn run(&mut self) {
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("VOXBRIDGE_LOG", "info,voxbridge=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_until(Duration::from_secs(60), "voxbridge to start", || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("voxbridge exited at start-up ({st}):\n{}", self.log());
                }
            }
            self.log().contains("voxbridge is running")
        });
    }

    /// Stops with SIGTERM (graceful) and returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        unsafe_kill(c.id(), 15);
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = c.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// CPU seconds (user + system) the server has used so far.
    pub fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which may hold spaces) start after ") ".
        let rest = &stat[stat.rfind(") ").unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin()).args(args).arg("--config").arg(&self.config).output().unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(o.status.success(), "voxbridge {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn messages(&self, number: &str) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.cli_ok(&["messages", "list", number, "--json"])).unwrap()
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Merges `extra` into `base`, table by table (extra wins).
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

pub fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    ((t ^ (std::process::id() << 8)) % 65521) as u16
}

/// Expected length of the default greeting for `number`, plus the beep, in ms.
pub fn greeting_ms(number: &str) -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = voxbridge::media::prompts::Prompts::load(&root.join("prompts/en"), &prompt_cache().join("en"), "en-us")
        .unwrap();
    let mut ids = vec!["vm-intro-person".to_string()];
    ids.extend(voxbridge::media::prompts::digits(number));
    ids.push("vm-unavailable".into());
    p.sequence(&ids).iter().map(|c| c.duration_ms()).sum::<u64>() + 250
}

/// Writes `secs` of a 440 Hz tone as raw µ-law: the caller's voice.
pub fn write_caller_audio(dir: &Path, secs: u32) {
    let pcm = voxbridge::media::tone(440.0, secs * 1000, 0.3);
    std::fs::write(dir.join("audio.ulaw"), voxbridge::media::g711::encode(voxbridge::sdp::Codec::Pcmu, &pcm)).unwrap();
}

pub struct SippRun {
    pub ok: bool,
    pub output: String,
    pub messages: String,
}

/// Runs one sipp call with scenario `name` from tests/sipp (with `@KEY@` substitutions)
/// against the server; `pause_ms` is sipp's `-d`.
pub fn sipp(
    server: &Server,
    name: &str,
    subst: &[(&str, &str)],
    service: &str,
    pause_ms: u64,
    transport: &str,
) -> SippRun {
    sipp_to(server.sip_port, name, subst, service, pause_ms, transport)
}

/// [`sipp`] against a SIP port, for callers that run while the test holds the server.
pub fn sipp_to(
    sip_port: u16,
    name: &str,
    subst: &[(&str, &str)],
    service: &str,
    pause_ms: u64,
    transport: &str,
) -> SippRun {
    need("sipp");
    let work = tempfile::tempdir().unwrap();
    let mut xml = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)).unwrap();
    for (k, v) in subst {
        xml = xml.replace(&format!("@{k}@"), v);
    }
    std::fs::write(work.path().join("scenario.xml"), xml).unwrap();
    write_caller_audio(work.path(), 30);
    let local = free_port();
    let media = free_udp_ports(4);
    let t = if transport == "tcp" { "t1" } else { "u1" };
    let out = Command::new("timeout")
        .arg("120")
        .arg("sipp")
        .arg(format!("127.0.0.1:{}", sip_port))
        .args(["-sf", "scenario.xml", "-s", service, "-m", "1", "-d", &pause_ms.to_string(), "-t", t])
        .args(["-i", "127.0.0.1", "-p", &local.to_string(), "-mi", "127.0.0.1", "-mp", &media.to_string()])
        .args(["-nostdin", "-trace_err", "-trace_msg", "-timeout", "90s", "-timeout_error", "-max_recv_loops", "1000"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let mut messages = String::new();
    for e in std::fs::read_dir(work.path()).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.ends_with("_messages.log") || n.ends_with("_errors.log") {
            let mut s = String::new();
            std::fs::File::open(e.path()).unwrap().read_to_string(&mut s).unwrap();
            messages.push_str(&s);
        }
    }
    SippRun {
        ok: out.status.success(),
        output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        messages,
    }
}

/// A minimal POP3 client for checks: returns every message of the maildrop.
pub fn pop3_messages(port: u16, user: &str) -> Vec<Vec<u8>> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut cmd = |w: &mut TcpStream, r: &mut BufReader<TcpStream>, c: &str| -> String {
        if !c.is_empty() {
            write!(w, "{c}\r\n").unwrap();
        }
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("+OK"), "POP3 {c}: {line}");
        line.clone()
    };
    cmd(&mut w, &mut r, "");
    cmd(&mut w, &mut r, &format!("USER {user}"));
    cmd(&mut w, &mut r, &format!("PASS {PASSWORD}"));
    let stat = cmd(&mut w, &mut r, "STAT");
    let n: usize = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut out = Vec::new();
    for i in 1..=n {
        cmd(&mut w, &mut r, &format!("RETR {i}"));
        let mut msg = Vec::new();
        loop {
            let mut l = Vec::new();
            r.read_until(b'\n', &mut l).unwrap();
            if l == b".\r\n" {
                break;
            }
            let l = if l.starts_with(b"..") { l[1..].to_vec() } else { l };
            msg.extend_from_slice(&l);
        }
        out.push(msg);
    }
    let _ = write!(w, "QUIT\r\n");
    out
}

/// Fetches every message of an IMAP folder with its UID, via the crate's own client.
pub fn imap_messages(dv: &Dovecot, user: &str) -> Vec<(u32, Vec<u8>)> {
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let acct =
            voxbridge::mail::account::Account::parse(&dv.imap_url(user), &[voxbridge::mail::account::Scheme::Imap])
                .unwrap();
        let mut s = voxbridge::mail::imap::login(&acct).await.unwrap();
        s.select("INBOX").await.unwrap();
        let mut out = Vec::new();
        {
            let mut fetches = s.uid_fetch("1:*", "(UID BODY.PEEK[])").await.unwrap();
            while let Some(f) = fetches.next().await {
                let f = f.unwrap();
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    out.push((uid, body.to_vec()));
                }
            }
        }
        let _ = s.logout().await;
        out
    })
}

/// A mail client acting on a Dovecot account (the other access point of the seed).
pub struct MailClient {
    rt: tokio::runtime::Runtime,
    session: voxbridge::mail::imap::ImapSession,
}

impl MailClient {
    pub fn connect(dv: &Dovecot, user: &str, folder: &str) -> MailClient {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = format!("imap://{user}:{PASSWORD}@127.0.0.1:{}/{folder}", dv.imap);
        let acct = voxbridge::mail::account::Account::parse(&url, &[voxbridge::mail::account::Scheme::Imap]).unwrap();
        let session = rt.block_on(async {
            let mut s = voxbridge::mail::imap::login(&acct).await.unwrap();
            if folder != "INBOX" {
                let _ = s.create(folder).await;
            }
            s.select(folder).await.unwrap();
            s
        });
        MailClient { rt, session }
    }

    /// Appends a plain e-mail; returns its UID.
    pub fn append(&mut self, folder: &str, message_id: &str, subject: &str) -> u32 {
        let raw = format!("From: Sender <sender@example.test>\r\nTo: sub@example.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nHello.\r\n");
        self.append_raw(folder, raw.as_bytes())
    }

    pub fn append_raw(&mut self, folder: &str, raw: &[u8]) -> u32 {
        let s = &mut self.session;
        self.rt.block_on(async {
            let r = voxbridge::mail::imap::append(s, folder, raw).await.unwrap().expect("APPENDUID");
            s.noop().await.unwrap();
            r.1
        })
    }

    pub fn store(&mut self, uid: u32, query: &str) {
        use futures::TryStreamExt;
        let s = &mut self.session;
        self.rt.block_on(async {
            let _: Vec<_> = s.uid_store(uid.to_string(), query).await.unwrap().try_collect().await.unwrap();
        });
    }

    pub fn expunge(&mut self, uid: u32) {
        use futures::TryStreamExt;
        self.store(uid, "+FLAGS.SILENT (\\Deleted)");
        let s = &mut self.session;
        self.rt.block_on(async {
            let _: Vec<_> = s.uid_expunge(uid.to_string()).await.unwrap().try_collect().await.unwrap();
        });
    }

    /// (UID, \Seen, \Deleted) of every message.
    pub fn flags(&mut self) -> Vec<(u32, bool, bool)> {
        use futures::TryStreamExt;
        let s = &mut self.session;
        self.rt.block_on(async {
            s.noop().await.unwrap();
            let fetched: Vec<_> = match s.uid_fetch("1:*", "(UID FLAGS)").await {
                Ok(st) => st.try_collect().await.unwrap_or_default(),
                Err(_) => vec![],
            };
            let mut out: Vec<(u32, bool, bool)> = fetched
                .iter()
                .filter_map(|f| {
                    let uid = f.uid?;
                    let flags: Vec<_> = f.flags().collect();
                    Some((
                        uid,
                        flags.iter().any(|f| matches!(f, async_imap::types::Flag::Seen)),
                        flags.iter().any(|f| matches!(f, async_imap::types::Flag::Deleted)),
                    ))
                })
                .collect();
            out.sort();
            out
        })
    }

    pub fn delete_folder(&mut self, folder: &str) {
        let s = &mut self.session;
        self.rt.block_on(async {
            s.select("INBOX").await.unwrap();
            s.delete(folder).await.unwrap();
            s.create(folder).await.unwrap();
            s.select(folder).await.unwrap();
        });
    }
}
