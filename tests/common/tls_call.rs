//! A SIP client over TLS for tests and benchmarks: rustls trusting the test CA (with a
//! client certificate if asked), SIP messages framed by Content-Length, and a call —
//! INVITE, ACK, audio, BYE — over its own connection.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn connect(port: u16, ca: &Path) -> std::io::Result<Tls> {
    connect_as(port, ca, None)
}

/// [`connect`], presenting a client certificate (PEM certificate and key) if given.
pub fn connect_as(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> std::io::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => config.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
            config.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now: a certificate that does not verify fails here.
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One SIP message from the stream: its head and a Content-Length body.
pub fn read_msg(s: &mut Tls) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("a SIP message");
        assert!(n == 1, "connection closed mid-message: {}", String::from_utf8_lossy(&buf));
        buf.push(b[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:").or_else(|| l.strip_prefix("l:")))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// The final response (provisional ones skipped).
pub fn final_response(s: &mut Tls) -> String {
    loop {
        let m = read_msg(s);
        let code: u16 = m.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        if code >= 200 {
            return m;
        }
    }
}

pub fn header<'a>(m: &'a str, name: &str) -> &'a str {
    m.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or("")
}

pub struct TlsCall {
    pub s: Tls,
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub rtp: UdpSocket,
    pub server_rtp: String,
    /// The 200 OK to the INVITE.
    pub answer: String,
}

/// A call by INVITE over its own TLS connection, offering plain PCMU; answered and ACKed.
pub fn invite(port: u16, ca: &Path, dialled: &str, n: u32) -> TlsCall {
    invite_offering(port, ca, dialled, n, "RTP/AVP", "")
}

/// [`invite`] with the audio stream's profile and more attributes (`a=crypto:…\r\n`).
pub fn invite_offering(port: u16, ca: &Path, dialled: &str, n: u32, profile: &str, attributes: &str) -> TlsCall {
    let mut s = connect(port, ca).expect("TLS connection");
    let local = s.sock.local_addr().unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp = format!(
        "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} {profile} 0\r\na=rtpmap:0 PCMU/8000\r\n{attributes}",
        rtp.local_addr().unwrap().port()
    );
    let (call_id, from) = (format!("tls-{n}-{}", std::process::id()), format!("<sip:5550100@127.0.0.1>;tag=f{n}"));
    let msg = format!(
        "INVITE sip:{dialled}@127.0.0.1:{port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKtls{n}\r\n\
         From: {from}\r\nTo: <sip:{dialled}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:5550100@{local};transport=tls>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    s.write_all(msg.as_bytes()).unwrap();
    let ok = final_response(&mut s);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(header(&ok, "Contact").contains("transport=tls"), "{ok}");
    let body = &ok[ok.find("\r\n\r\n").unwrap() + 4..];
    let rport = body.lines().find_map(|l| l.strip_prefix("m=audio ")).unwrap().split(' ').next().unwrap();
    let to = header(&ok, "To").to_string();
    let ack = format!(
        "ACK sip:{dialled}@127.0.0.1:{port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKack{n}\r\n\
         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(ack.as_bytes()).unwrap();
    TlsCall { s, call_id, from, to, rtp, server_rtp: format!("127.0.0.1:{rport}"), answer: ok }
}

impl TlsCall {
    pub fn speak(&self, secs: f64) {
        let pcmu = voxbridge::media::g711::encode(
            voxbridge::sdp::Codec::Pcmu,
            &voxbridge::media::tone(440.0, (secs * 1000.0) as u32, 0.3),
        );
        for (i, frame) in pcmu.chunks(160).enumerate() {
            let mut p = vec![0x80, 0x00];
            p.extend((i as u16 + 1).to_be_bytes());
            p.extend((i as u32 * 160).to_be_bytes());
            p.extend(0x1234_5678u32.to_be_bytes());
            p.extend(frame);
            self.rtp.send_to(&p, &self.server_rtp).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn bye(mut self) -> String {
        let local = self.s.sock.local_addr().unwrap();
        let bye = format!(
            "BYE sip:voxbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKbye{}\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.call_id, self.from, self.to, self.call_id
        );
        self.s.write_all(bye.as_bytes()).unwrap();
        final_response(&mut self.s)
    }
}
