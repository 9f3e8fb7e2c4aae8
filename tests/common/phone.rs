//! A minimal SIP/RTP phone for tests and the menu latency benchmark: calls voxbridge
//! over UDP, sends RFC 4733 key presses, and records every RTP packet it receives with
//! its arrival time, so tests can compare what was played with the prompt audio and the
//! benchmark can time a key press to the first frame of the answer (marker bit).

#![allow(dead_code)]

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub marker: bool,
    pub payload: Vec<u8>,
}

pub struct Phone {
    sip: UdpSocket,
    rtp: Arc<UdpSocket>,
    server_sip: String,
    server_rtp: std::net::SocketAddr,
    call_id: String,
    from_tag: String,
    to_tag: String,
    dialled: String,
    caller: String,
    dtmf_ts: u32,
    dtmf_seq: u16,
    audio_seq: u16,
    audio_ts: u32,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// The 200 OK to the INVITE.
    pub answer: String,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// How [`Phone::dial`] calls.
pub struct Dial<'a> {
    /// The address the INVITE's SDP names for our media (`c=`); ours is 127.0.0.1.
    pub sdp_ip: &'a str,
    /// Whether the 200 OK is ACKed at once (else [`Phone::ack`] does it).
    pub ack: bool,
    /// The whole offer instead of ours (a fax machine's `m=image`).
    pub sdp: Option<&'a str>,
    /// More INVITE headers, each ending in CRLF (`Diversion: …\r\n`).
    pub headers: &'a str,
}

/// The port of the first stream an answer accepted (m= port not 0).
pub fn answered_port(msg: &str) -> u16 {
    let body = &msg[msg.find("\r\n\r\n").unwrap() + 4..];
    body.lines()
        .filter_map(|l| l.strip_prefix("m=")?.split(' ').nth(1)?.parse::<u16>().ok())
        .find(|p| *p != 0)
        .expect("an accepted stream in the answer")
}

/// The phone's SDP offer: PCMU and telephone-event at `ip`:`port`, RTCP multiplexed.
fn offer(ip: &str, port: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\no=phone 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp-mux\r\na={direction}\r\n"
    )
}

impl Phone {
    /// Calls `dialled` at the server's SIP port from caller ID `caller` and waits for the
    /// answer (200 OK, ACKed).
    pub fn call(sip_port: u16, caller: &str, dialled: &str) -> Phone {
        Phone::dial(sip_port, caller, dialled, Dial { sdp_ip: "127.0.0.1", ack: true, sdp: None, headers: "" })
    }

    /// [`Phone::call`], with the SDP address and the ACK chosen.
    pub fn dial(sip_port: u16, caller: &str, dialled: &str, how: Dial<'_>) -> Phone {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let (lsip, lrtp) = (sip.local_addr().unwrap(), rtp.local_addr().unwrap());
        let server_sip = format!("127.0.0.1:{sip_port}");
        let call_id = format!("phone-{}-{}", std::process::id(), lrtp.port());
        let from_tag = format!("t{}", lrtp.port());
        let sdp = how.sdp.map_or_else(|| offer(how.sdp_ip, lrtp.port(), 1, "sendrecv"), str::to_string);
        let invite = format!(
            "INVITE sip:{dialled}@{server_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {lsip};branch=z9hG4bKinv{from_tag}\r\n\
             From: <sip:{caller}@127.0.0.1>;tag={from_tag}\r\nTo: <sip:{dialled}@{server_sip}>\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:{caller}@{lsip}>\r\nMax-Forwards: 70\r\n{}\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            how.headers,
            sdp.len()
        );
        sip.send_to(invite.as_bytes(), &server_sip).unwrap();
        let mut buf = vec![0u8; 65536];
        let ok = loop {
            let (n, _) = sip.recv_from(&mut buf).expect("an answer to the INVITE");
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let status: u16 = msg.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            if status >= 200 {
                assert_eq!(status, 200, "call refused: {msg}");
                break msg;
            }
        };
        let to = header(&ok, "To").unwrap();
        let to_tag = to.split("tag=").nth(1).unwrap().split(';').next().unwrap().to_string();
        let port = answered_port(&ok);
        let mut p = Phone {
            sip,
            rtp,
            server_sip,
            server_rtp: format!("127.0.0.1:{port}").parse().unwrap(),
            call_id,
            from_tag,
            to_tag,
            dialled: dialled.to_string(),
            caller: caller.to_string(),
            dtmf_ts: 1000,
            dtmf_seq: 1,
            audio_seq: 1000,
            audio_ts: 90_000,
            received: Arc::new(Mutex::new(Vec::new())),
            answer: ok.clone(),
        };
        if how.ack {
            p.ack();
        }
        let (sock, rec) = (p.rtp.clone(), p.received.clone());
        std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while let Ok((n, _)) = sock.recv_from(&mut b) {
                // RTCP comes here too (we offer rtcp-mux): only RTP is kept.
                if n < 12 || (192..=223).contains(&b[1]) {
                    continue;
                }
                let r = Received { at: Instant::now(), marker: b[1] & 0x80 != 0, payload: b[12..n].to_vec() };
                rec.lock().unwrap().push(r);
            }
        });
        p
    }

    /// ACKs the 200 OK (for a [`Phone::dial`] that did not).
    pub fn ack(&mut self) {
        self.send_in_dialog("ACK", 1);
    }

    /// Re-INVITEs with our media `a=<direction>` (hold: `sendonly`, resume: `sendrecv`),
    /// waits for the 200 OK and ACKs it. Returns the server's answer.
    pub fn reinvite(&mut self, direction: &str, cseq: u32) -> String {
        let sdp = offer("127.0.0.1", self.rtp.local_addr().unwrap().port(), cseq, direction);
        self.reinvite_with(&sdp, cseq)
    }

    /// Re-INVITEs with this offer, waits for the 200 OK and ACKs it. Returns the answer.
    pub fn reinvite_with(&mut self, sdp: &str, cseq: u32) -> String {
        let lsip = self.sip.local_addr().unwrap();
        let invite = self.in_dialog(
            "INVITE",
            cseq,
            &format!("re{cseq}"),
            &format!("Contact: <sip:{}@{lsip}>\r\n", self.caller),
            Some(sdp),
        );
        self.sip.send_to(invite.as_bytes(), &self.server_sip).unwrap();
        let mut buf = vec![0u8; 65536];
        let ok = loop {
            let (n, _) = self.sip.recv_from(&mut buf).expect("an answer to the re-INVITE");
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.starts_with("SIP/2.0 2") && msg.contains(&format!("CSeq: {cseq} INVITE")) {
                break msg;
            }
            assert!(!msg.starts_with("SIP/2.0 4") && !msg.starts_with("SIP/2.0 5"), "re-INVITE refused: {msg}");
        };
        self.send_in_dialog("ACK", cseq);
        ok
    }

    /// A request from the server (its re-INVITE, a BYE), if one comes within `wait`.
    pub fn poll_request(&self, wait: Duration) -> Option<String> {
        self.sip.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
        let mut buf = vec![0u8; 65536];
        let got = loop {
            match self.sip.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                    if !msg.starts_with("SIP/2.0 ") {
                        break Some(msg);
                    }
                }
                Err(_) => break None,
            }
        };
        self.sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        got
    }

    /// Answers a request of the server's with `status`, and an SDP body if given.
    pub fn respond(&self, request: &str, status: u16, reason: &str, sdp: Option<&str>) {
        let lsip = self.sip.local_addr().unwrap();
        let mut r = format!("SIP/2.0 {status} {reason}\r\n");
        for l in request.lines() {
            let name = l.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
            if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].contains(&name.as_str()) {
                r.push_str(l.trim_end_matches('\r'));
                r.push_str("\r\n");
            }
        }
        let body = sdp.unwrap_or("");
        r.push_str(&format!("Contact: <sip:{}@{lsip}>\r\n", self.caller));
        if sdp.is_some() {
            r.push_str("Content-Type: application/sdp\r\n");
        }
        r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.sip.send_to(r.as_bytes(), &self.server_sip).unwrap();
    }

    /// The server's media address for this call.
    pub fn server_rtp(&self) -> std::net::SocketAddr {
        self.server_rtp
    }

    fn send_in_dialog(&mut self, method: &str, cseq: u32) {
        let msg = self.in_dialog(method, cseq, method, "", None);
        self.sip.send_to(msg.as_bytes(), &self.server_sip).unwrap();
    }

    /// A request in this call's dialog; `branch` makes its Via branch, `extra` holds
    /// more header lines, `sdp` a body.
    fn in_dialog(&self, method: &str, cseq: u32, branch: &str, extra: &str, sdp: Option<&str>) -> String {
        let lsip = self.sip.local_addr().unwrap();
        let body = sdp.unwrap_or("");
        let ctype = if sdp.is_some() { "Content-Type: application/sdp\r\n" } else { "" };
        format!(
            "{method} sip:{}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {lsip};branch=z9hG4bK{branch}{}\r\n\
             From: <sip:{}@127.0.0.1>;tag={}\r\nTo: <sip:{}@{}>;tag={}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             {extra}Max-Forwards: 70\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            self.dialled,
            self.server_sip,
            self.from_tag,
            self.caller,
            self.from_tag,
            self.dialled,
            self.server_sip,
            self.to_tag,
            self.call_id,
            body.len()
        )
    }

    /// One key press (RFC 4733, payload type 101): a start packet, then three end
    /// packets. Returns when the first packet left.
    pub fn press(&mut self, key: char) -> Instant {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => panic!("no DTMF event for {key:?}"),
        };
        self.dtmf_ts = self.dtmf_ts.wrapping_add(8000);
        let packet = |seq: u16, ts: u32, marker: bool, end: bool, duration: u16| {
            let mut p = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
            p.extend(seq.to_be_bytes());
            p.extend(ts.to_be_bytes());
            p.extend(0x5eed_u32.to_be_bytes());
            p.extend([event, if end { 0x80 | 10 } else { 10 }]);
            p.extend(duration.to_be_bytes());
            p
        };
        let t0 = Instant::now();
        let first = packet(self.dtmf_seq, self.dtmf_ts, true, false, 160);
        self.rtp.send_to(&first, self.server_rtp).unwrap();
        self.dtmf_seq = self.dtmf_seq.wrapping_add(1);
        for _ in 0..3 {
            let end = packet(self.dtmf_seq, self.dtmf_ts, false, true, 800);
            self.rtp.send_to(&end, self.server_rtp).unwrap();
            self.dtmf_seq = self.dtmf_seq.wrapping_add(1);
        }
        t0
    }

    /// Presses each key, `gap` apart.
    pub fn keys(&mut self, keys: &str, gap: Duration) {
        for k in keys.chars() {
            self.press(k);
            std::thread::sleep(gap);
        }
    }

    /// The first packet with the marker bit that arrived after `t` (a new prompt), waiting
    /// up to `timeout`.
    pub fn first_marker_after(&self, t: Instant, timeout: Duration) -> Option<Instant> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(r) = self.received.lock().unwrap().iter().find(|r| r.at > t && r.marker) {
                return Some(r.at);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The payloads received since the first marker packet after `t`, `frames` of them.
    pub fn audio_after(&self, t: Instant, frames: usize, timeout: Duration) -> Vec<u8> {
        let until = Instant::now() + timeout;
        loop {
            {
                let rec = self.received.lock().unwrap();
                if let Some(i) = rec.iter().position(|r| r.at > t && r.marker) {
                    if rec.len() >= i + frames {
                        return rec[i..i + frames].iter().flat_map(|r| r.payload.clone()).collect();
                    }
                }
            }
            assert!(Instant::now() < until, "not {frames} frames of audio within {timeout:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends G.711 µ-law audio as RTP (payload type 0), one 20 ms frame at a time, and
    /// returns when the last frame left.
    pub fn send_audio(&mut self, pcmu: &[u8]) {
        let start = Instant::now();
        for (i, frame) in pcmu.chunks(160).enumerate() {
            let mut p = vec![0x80, if i == 0 { 0x80 } else { 0 }];
            p.extend(self.audio_seq.to_be_bytes());
            p.extend(self.audio_ts.to_be_bytes());
            p.extend(0x5eed_u32.to_be_bytes());
            p.extend(frame);
            self.rtp.send_to(&p, self.server_rtp).unwrap();
            self.audio_seq = self.audio_seq.wrapping_add(1);
            self.audio_ts = self.audio_ts.wrapping_add(160);
            let next = start + Duration::from_millis(20 * (i as u64 + 1));
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    /// Sends one 20 ms µ-law frame now, without pacing: for a caller that keeps its own
    /// clock (the fax machine in tests/fax.rs).
    pub fn send_frame(&mut self, pcmu: &[u8]) {
        let mut p = vec![0x80, if self.audio_seq == 0 { 0x80 } else { 0 }];
        p.extend(self.audio_seq.to_be_bytes());
        p.extend(self.audio_ts.to_be_bytes());
        p.extend(0x5eed_u32.to_be_bytes());
        p.extend(pcmu);
        self.rtp.send_to(&p, self.server_rtp).unwrap();
        self.audio_seq = self.audio_seq.wrapping_add(1);
        self.audio_ts = self.audio_ts.wrapping_add(160);
    }

    /// Sends µ-law audio as [`Phone::send_audio`] does, and presses `key` at each of
    /// `at` (frame indexes) without pausing the audio: the event's packets take
    /// sequence numbers from the audio's own space, as baresip's do.
    pub fn send_audio_pressing(&mut self, pcmu: &[u8], key: char, at: &[usize]) {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            _ => panic!("digits only"),
        };
        let start = Instant::now();
        for (i, frame) in pcmu.chunks(160).enumerate() {
            let ts = self.audio_ts;
            let mut p = vec![0x80, if i == 0 { 0x80 } else { 0 }];
            p.extend(self.audio_seq.to_be_bytes());
            p.extend(ts.to_be_bytes());
            p.extend(0x5eed_u32.to_be_bytes());
            p.extend(frame);
            self.rtp.send_to(&p, self.server_rtp).unwrap();
            self.audio_seq = self.audio_seq.wrapping_add(1);
            if at.contains(&i) {
                for (marker, end) in [(true, false), (false, true), (false, true), (false, true)] {
                    let mut e = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
                    e.extend(self.audio_seq.to_be_bytes());
                    e.extend(ts.to_be_bytes());
                    e.extend(0x5eed_u32.to_be_bytes());
                    e.extend([event, if end { 0x80 | 10 } else { 10 }]);
                    e.extend(800u16.to_be_bytes());
                    self.rtp.send_to(&e, self.server_rtp).unwrap();
                    self.audio_seq = self.audio_seq.wrapping_add(1);
                }
            }
            self.audio_ts = self.audio_ts.wrapping_add(160);
            let next = start + Duration::from_millis(20 * (i as u64 + 1));
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    /// Everything received so far, as one byte string of payloads.
    pub fn all_audio(&self) -> Vec<u8> {
        self.received.lock().unwrap().iter().flat_map(|r| r.payload.clone()).collect()
    }

    pub fn hang_up(mut self) {
        // Above any re-INVITE's CSeq.
        self.send_in_dialog("BYE", 100);
    }
}
