//! A fault-injecting proxy between voxbridge and a real mail server (IMAP or POP3): it
//! understands just enough of each protocol to find a command and its answer, and makes
//! a chosen command fail the ways real servers and relays fail — a tagged `NO`/`BAD`
//! (`-ERR`), an `EXISTS 0`, an answer cut off with a clean close or a half-close, an
//! answer lost after the server acted on the command — or cuts a connection after a
//! number of client lines (a server killed mid-pass).
//!
//! A fault is armed with a pattern (a case-insensitive substring of the command line,
//! tag left out: "UID FETCH 1:* (UID FLAGS)", "BODY.PEEK", "UIDL"), how many matching
//! commands to let through first, and fires once.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Pop3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The command is not passed on; the proxy answers `tag NO …` (POP3: `-ERR …`).
    No,
    /// The same with `BAD`.
    Bad,
    /// IMAP: passed on, but the answer's `* n EXISTS` says 0.
    Exists0,
    /// Passed on; the answer is cut after this many lines (IMAP: whole responses,
    /// literals included) and the connection closed both ways.
    CutClose(usize),
    /// The same, but only the direction towards the client is shut (a relay whose
    /// server died: the client reads end-of-file, its writes still go through).
    CutHalfClose(usize),
    /// Passed on (the server acts on it); its whole answer is dropped and the connection
    /// closed.
    LoseAnswer,
    /// Passed on; the answer's untagged response number k (from 0) is left out, the rest
    /// — the tagged OK included — comes through: a server that silently skips a message.
    Omit(usize),
}

#[derive(Debug, Clone)]
struct Armed {
    pattern: String,
    skip: usize,
    fault: Fault,
}

#[derive(Default)]
struct Shared {
    armed: Vec<Armed>,
    /// Every command line seen (tag stripped), and which fault it got.
    log: Vec<(String, Option<Fault>)>,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    /// Client lines each new connection may send before it is cut (u64::MAX: never).
    pub cut_after: Arc<AtomicU64>,
}

impl FaultProxy {
    pub fn start(target: u16, proto: Proto) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared: Arc<Mutex<Shared>> = Default::default();
        let cut_after = Arc::new(AtomicU64::new(u64::MAX));
        let (sh, cut) = (shared.clone(), cut_after.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let conn = Conn::new(client, upstream, proto, sh.clone(), cut.load(Ordering::SeqCst));
                conn.run();
            }
        });
        FaultProxy { port, shared, cut_after }
    }

    /// Arms `fault` for the first command matching `pattern` after `skip` matching ones.
    pub fn arm(&self, pattern: &str, skip: usize, fault: Fault) {
        self.shared.lock().unwrap().armed.push(Armed { pattern: pattern.to_ascii_uppercase(), skip, fault });
    }

    /// Drops every armed fault that has not fired; returns how many there were.
    pub fn disarm(&self) -> usize {
        std::mem::take(&mut self.shared.lock().unwrap().armed).len()
    }

    /// Faults fired so far, with the command each hit.
    pub fn fired(&self) -> Vec<(String, Fault)> {
        self.shared.lock().unwrap().log.iter().filter_map(|(c, f)| f.map(|f| (c.clone(), f))).collect()
    }

    /// Every command line seen so far.
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.iter().map(|(c, _)| c.clone()).collect()
    }
}

/// The command in flight on a connection and what to do to its answer.
#[derive(Default)]
struct InFlight {
    /// Counts commands: a new one starts a new answer.
    seq: u64,
    tag: String,
    /// POP3: the answer is multi-line if it starts with +OK.
    multiline: bool,
    fault: Option<Fault>,
}

struct Conn {
    client: TcpStream,
    upstream: TcpStream,
    proto: Proto,
    shared: Arc<Mutex<Shared>>,
    cut_after: u64,
    inflight: Arc<Mutex<InFlight>>,
}

/// Length of the first complete IMAP response in `buf` (a line, with any literals it
/// announces and the rest of the line after them), if it is complete.
fn imap_unit(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let nl = buf[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let line = &buf[..nl];
        // A literal: "{123}" (or "{123+}") at the end of the line, its bytes follow.
        if line.ends_with(b"}") {
            if let Some(open) = line.iter().rposition(|b| *b == b'{') {
                let digits = String::from_utf8_lossy(&line[open + 1..line.len() - 1]).trim_end_matches('+').to_string();
                if let Ok(n) = digits.parse::<usize>() {
                    pos = nl + 2 + n;
                    if pos > buf.len() {
                        return None;
                    }
                    continue;
                }
            }
        }
        return Some(nl + 2);
    }
}

/// POP3 commands whose +OK answer is multi-line (ended by a lone ".").
fn pop3_multiline(cmd: &str) -> bool {
    let mut it = cmd.split_whitespace();
    match (it.next().map(|c| c.to_ascii_uppercase()), it.next()) {
        (Some(c), None) if c == "UIDL" || c == "LIST" || c == "CAPA" => true,
        (Some(c), _) if c == "RETR" || c == "TOP" => true,
        _ => false,
    }
}

impl Conn {
    fn new(client: TcpStream, upstream: TcpStream, proto: Proto, shared: Arc<Mutex<Shared>>, cut_after: u64) -> Conn {
        Conn { client, upstream, proto, shared, cut_after, inflight: Default::default() }
    }

    fn run(self) {
        let Conn { client, upstream, proto, shared, cut_after, inflight } = self;
        let client_w = Arc::new(Mutex::new(client.try_clone().unwrap()));
        let (c_rd, u_wr) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let (u_rd, c_all, u_all) = (upstream, client, u_wr.try_clone().unwrap());
        let (cw, inf, sh) = (client_w.clone(), inflight.clone(), shared.clone());
        std::thread::spawn(move || to_server(c_rd, u_wr, cw, proto, sh, inf, cut_after));
        std::thread::spawn(move || to_client(u_rd, client_w, c_all, u_all, proto, inflight));
    }
}

/// Client → server: finds each command, decides its fault, and passes it on or answers
/// it here.
fn to_server(
    mut c_rd: TcpStream,
    mut u_wr: TcpStream,
    client_w: Arc<Mutex<TcpStream>>,
    proto: Proto,
    shared: Arc<Mutex<Shared>>,
    inflight: Arc<Mutex<InFlight>>,
    cut_after: u64,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut lines = 0u64;
    // Bytes of a client literal still to pass through untouched.
    let mut literal = 0usize;
    'read: loop {
        let n = match c_rd.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if literal > 0 {
                let take = literal.min(buf.len());
                if take == 0 {
                    break;
                }
                if u_wr.write_all(&buf[..take]).is_err() {
                    break 'read;
                }
                buf.drain(..take);
                literal -= take;
                continue;
            }
            let Some(nl) = buf.windows(2).position(|w| w == b"\r\n") else { break };
            let line: Vec<u8> = buf.drain(..nl + 2).collect();
            lines += 1;
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).to_string();
            // A line after a literal (the end of an APPEND) is not a new command.
            let continuation = text.is_empty() || text.starts_with(' ');
            let (tag, cmd) = match proto {
                Proto::Imap => match text.split_once(' ') {
                    Some((t, c)) => (t.to_string(), c.to_string()),
                    None => (String::new(), text.clone()),
                },
                Proto::Pop3 => (String::new(), text.clone()),
            };
            let announces = |l: &str| -> usize {
                let l = l.trim_end();
                l.strip_suffix('}')
                    .and_then(|r| r.rsplit_once('{'))
                    .and_then(|(_, d)| d.trim_end_matches('+').parse().ok())
                    .unwrap_or(0)
            };
            let mut fault = None;
            if !continuation {
                let upper = cmd.to_ascii_uppercase();
                {
                    let mut sh = shared.lock().unwrap();
                    if let Some(i) = sh.armed.iter().position(|a| upper.contains(&a.pattern)) {
                        if sh.armed[i].skip > 0 {
                            sh.armed[i].skip -= 1;
                        } else {
                            fault = Some(sh.armed.remove(i).fault);
                        }
                    }
                    // PASS/LOGIN lines hold the password: logged by their verb only.
                    let shown = if upper.starts_with("LOGIN") || upper.starts_with("PASS") {
                        upper.split_whitespace().next().unwrap_or("").to_string()
                    } else {
                        cmd.clone()
                    };
                    sh.log.push((shown, fault));
                }
                let mut f = inflight.lock().unwrap();
                *f = InFlight {
                    seq: f.seq + 1,
                    tag: tag.clone(),
                    multiline: proto == Proto::Pop3 && pop3_multiline(&cmd),
                    fault,
                };
            }
            if let Some(f @ (Fault::No | Fault::Bad)) = fault {
                let answer = match (proto, f) {
                    (Proto::Pop3, _) => "-ERR [SYS/TEMP] injected fault\r\n".to_string(),
                    (Proto::Imap, Fault::No) => format!("{tag} NO [SERVERBUG] injected fault\r\n"),
                    _ => format!("{tag} BAD injected fault\r\n"),
                };
                let _ = client_w.lock().unwrap().write_all(answer.as_bytes());
                // A refused command's literal is never sent (the refusal came first).
                continue;
            }
            if u_wr.write_all(&line).is_err() {
                break 'read;
            }
            if proto == Proto::Imap {
                literal = announces(&text);
            }
            if lines >= cut_after {
                std::thread::sleep(Duration::from_millis(20));
                break 'read;
            }
        }
    }
    let _ = client_w.lock().unwrap().shutdown(Shutdown::Both);
    let _ = u_wr.shutdown(Shutdown::Both);
}

/// Server → client: passes answers on, applying the in-flight command's fault.
fn to_client(
    mut u_rd: TcpStream,
    client_w: Arc<Mutex<TcpStream>>,
    client_all: TcpStream,
    upstream_all: TcpStream,
    proto: Proto,
    inflight: Arc<Mutex<InFlight>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    // Lines of the current answer passed on so far; POP3: inside a multi-line answer.
    let (mut sent, mut in_multi) = (0usize, false);
    let mut last_seq = 0;
    'read: loop {
        let n = match u_rd.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let len = match proto {
                Proto::Imap => imap_unit(&buf),
                Proto::Pop3 => buf.windows(2).position(|w| w == b"\r\n").map(|p| p + 2),
            };
            let Some(len) = len else { break };
            let mut unit: Vec<u8> = buf.drain(..len).collect();
            let (seq, tag, multiline, fault) = {
                let f = inflight.lock().unwrap();
                (f.seq, f.tag.clone(), f.multiline, f.fault)
            };
            if seq != last_seq {
                (sent, last_seq) = (0, seq);
            }
            // Is this the last line of the command's answer?
            let ends = match proto {
                Proto::Imap => !tag.is_empty() && unit.starts_with(format!("{tag} ").as_bytes()),
                Proto::Pop3 => {
                    if in_multi {
                        unit == b".\r\n"
                    } else {
                        let ok = unit.starts_with(b"+OK");
                        in_multi = ok && multiline;
                        !in_multi
                    }
                }
            };
            if ends && proto == Proto::Pop3 {
                in_multi = false;
            }
            match fault {
                Some(Fault::Exists0) if !ends => {
                    let text = String::from_utf8_lossy(&unit).to_string();
                    if text.starts_with("* ") && text.trim_end().ends_with(" EXISTS") {
                        unit = b"* 0 EXISTS\r\n".to_vec();
                    }
                }
                Some(Fault::CutClose(k)) | Some(Fault::CutHalfClose(k)) if sent >= k => {
                    let half = matches!(fault, Some(Fault::CutHalfClose(_)));
                    std::thread::sleep(Duration::from_millis(20));
                    if half {
                        let _ = client_w.lock().unwrap().shutdown(Shutdown::Write);
                        // The rest of the server's answer goes nowhere.
                        let mut sink = [0u8; 65536];
                        while matches!(u_rd.read(&mut sink), Ok(n) if n > 0) {}
                    } else {
                        let _ = client_all.shutdown(Shutdown::Both);
                        let _ = upstream_all.shutdown(Shutdown::Both);
                    }
                    break 'read;
                }
                Some(Fault::Omit(k)) if !ends && sent == k && !unit.starts_with(b"+") => {
                    // Counted as sent, so that only this one is left out.
                    sent += 1;
                    continue;
                }
                // The go-ahead for an APPEND's literal still comes: the server must get
                // the message to act on it.
                Some(Fault::LoseAnswer) if unit.starts_with(b"+") && proto == Proto::Imap => {}
                Some(Fault::LoseAnswer) => {
                    if ends {
                        std::thread::sleep(Duration::from_millis(20));
                        let _ = client_all.shutdown(Shutdown::Both);
                        let _ = upstream_all.shutdown(Shutdown::Both);
                        break 'read;
                    }
                    continue;
                }
                _ => {}
            }
            if client_w.lock().unwrap().write_all(&unit).is_err() {
                break 'read;
            }
            sent += 1;
        }
    }
    let _ = client_w.lock().unwrap().shutdown(Shutdown::Write);
}
