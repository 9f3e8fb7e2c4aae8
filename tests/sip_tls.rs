//! SIP over TLS (issue 17): a client over TLS (rustls, trusting a CA made at test time)
//! gets OPTIONS answered with a TLS Via, leaves a message by INVITE over TLS (Contact
//! `transport=tls`), and a client that speaks plain TCP to the TLS port is closed. A new
//! certificate by `voxbridge reload` is what new connections get, while a call set up
//! before it keeps its connection and hangs up over it. A real softphone (baresip) calls
//! over TLS and leaves a message. A phone that allows connection reuse (Via `alias`, RFC
//! 5923) gets its unsolicited MWI NOTIFY over its own connection.

mod common;
use common::certs::{ca_and_server, client_cert};
use common::softphone::Baresip;
use common::tls_call::{connect, connect_as, final_response, header, invite, read_msg, Tls};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// A server with SIP over TLS on `port` and mailbox 1001.
fn tls_server(port: u16, cert: &Path, key: &Path) -> Server {
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    server
}

#[test]
fn calls_over_tls_deposit_plain_tcp_is_closed_and_a_new_certificate_keeps_calls_up() {
    let certs = tempfile::tempdir().unwrap();
    let (ca_a, cert_a, key_a) = ca_and_server(certs.path(), "a");
    let (ca_b, cert_b, key_b) = ca_and_server(certs.path(), "b");
    let (cert, key) = (certs.path().join("live.pem"), certs.path().join("live.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let port = free_port();
    let server = tls_server(port, &cert, &key);
    let status: serde_json::Value = serde_json::from_str(&server.cli_ok(&["status", "--json"])).unwrap();
    assert!(status["encryption"]["sip"].as_str().unwrap().starts_with(&format!("TLS on 127.0.0.1:{port}")), "{status}");

    // OPTIONS: answered over the connection, the Via says TLS.
    let mut s = connect(port, &ca_a).expect("TLS to the server");
    let local = s.sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:voxbridge@127.0.0.1:{port};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKopt\r\n\
         From: <sip:probe@127.0.0.1>;tag=o\r\nTo: <sip:voxbridge@127.0.0.1>\r\nCall-ID: opt-tls\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(options.as_bytes()).unwrap();
    let ok = final_response(&mut s);
    assert!(ok.starts_with("SIP/2.0 200") && header(&ok, "Via").starts_with("SIP/2.0/TLS"), "{ok}");
    drop(s);

    // A message left over TLS.
    let call = invite(port, &ca_a, "1001", 1);
    std::thread::sleep(Duration::from_millis(greeting_ms("1001")));
    call.speak(1.5);
    assert!(call.bye().starts_with("SIP/2.0 200"));
    wait_until(Duration::from_secs(10), "the message saved", || server.messages("1001").len() == 1);

    // Plain TCP to the TLS port: no SIP answer, the connection is closed.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    plain.write_all(options.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("SIP/2.0"), "{}", String::from_utf8_lossy(&got));
    wait_until(Duration::from_secs(5), "the failed handshake logged", || {
        server.log().contains("SIP TLS handshake failed")
    });

    // A call up; the certificate replaced by one of another CA and reloaded.
    let during = invite(port, &ca_a, "1001", 2);
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    let said = server.cli_ok(&["reload"]);
    assert!(said.contains("SIP TLS certificate reloaded"), "{said}");
    assert!(connect(port, &ca_a).is_err(), "a new connection gets the new certificate, which CA a did not sign");
    assert!(connect(port, &ca_b).is_ok(), "CA b's certificate is served");
    // A broken file: refused, the certificate in use stays.
    std::fs::write(&key, "not a key").unwrap();
    let said = server.cli_ok(&["reload"]);
    assert!(said.contains("SIP TLS certificate not reloaded, the old one stays"), "{said}");
    assert!(connect(port, &ca_b).is_ok());
    // The call from before keeps its connection: its BYE is answered over it.
    std::thread::sleep(Duration::from_millis(greeting_ms("1001")));
    during.speak(1.5);
    assert!(during.bye().starts_with("SIP/2.0 200"));
    wait_until(Duration::from_secs(10), "the second message saved", || server.messages("1001").len() == 2);
}

#[test]
fn a_real_softphone_leaves_a_message_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "phone");
    let port = free_port();
    let server = tls_server(port, &cert, &key);
    let phone = Baresip::new(&certs.path().join("baresip"), &ca, "", "1001", 4.0);
    let said = phone.dial(&format!("sip:1001@127.0.0.1:{port};transport=tls"), Duration::from_secs(40), |_| {
        server.log().contains("message saved")
    });
    let m = server.messages("1001");
    assert_eq!(m.len(), 1, "baresip:\n{said}\nserver:\n{}", server.log());
    assert!(said.contains("Call established") && said.contains("transport=tls"), "{said}");
    let ms = m[0]["duration_ms"].as_u64().unwrap_or(0);
    assert!(ms >= 2500, "a message of the tone after the greeting: {}", m[0]);
}

/// OPTIONS over `s`; the status line of the answer, or why there was none.
fn options_status(s: &mut Tls) -> String {
    let local = s.sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:voxbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bKmtls\r\n\
         From: <sip:pbx@127.0.0.1>;tag=m\r\nTo: <sip:voxbridge@127.0.0.1>\r\nCall-ID: mtls-{}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        local.port()
    );
    if let Err(e) = s.write_all(options.as_bytes()).and_then(|_| s.flush()) {
        return format!("write failed: {e}");
    }
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => "closed".into(),
        Ok(n) => String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string(),
        Err(e) => format!("read failed: {e}"),
    }
}

#[test]
fn a_trunk_with_a_client_ca_must_present_a_certificate_it_signed() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "srv");
    let (pbx_ca, _, _) = ca_and_server(certs.path(), "pbx");
    ca_and_server(certs.path(), "other"); // the CA of a stranger's certificate
    let (pbx_cert, pbx_key) = client_cert(certs.path(), "pbx", "pbx.example");
    let (stranger_cert, stranger_key) = client_cert(certs.path(), "other", "stranger.example");
    let port = free_port();
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
         [[sip.trunk]]\nname = \"pbx\"\nnetworks = [\"127.0.0.1\"]\ntls_client_ca = \"{}\"\n",
        cert.display(),
        key.display(),
        pbx_ca.display()
    ));
    // The PBX's own certificate: answered.
    let mut s = connect_as(port, &ca, Some((&pbx_cert, &pbx_key))).expect("mutual TLS");
    assert!(options_status(&mut s).starts_with("SIP/2.0 200"));
    // No certificate, or one of another CA: no SIP answer (the handshake fails; with TLS
    // 1.3 the client learns it at its first read).
    for client in [None, Some((stranger_cert.as_path(), stranger_key.as_path()))] {
        let said = match connect_as(port, &ca, client) {
            Err(e) => format!("handshake failed: {e}"),
            Ok(mut s) => options_status(&mut s),
        };
        assert!(!said.starts_with("SIP/2.0"), "{client:?}: {said}");
    }
    wait_until(Duration::from_secs(5), "the refusals logged", || {
        server.log().matches("SIP TLS handshake failed").count() >= 2
    });
}

/// A message left over TLS in 1001: the `n`th.
fn deposit_over_tls(server: &Server, port: u16, ca: &Path, n: u32) {
    let call = invite(port, ca, "1001", 10 + n);
    std::thread::sleep(Duration::from_millis(greeting_ms("1001")));
    call.speak(1.0);
    assert!(call.bye().starts_with("SIP/2.0 200"));
    wait_until(Duration::from_secs(10), "the message saved", || server.messages("1001").len() == n as usize);
}

#[test]
fn an_mwi_notify_to_a_tls_phone_goes_over_the_connection_it_allowed_reuse_of() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "mwi");
    let (port, phone_port) = (free_port(), free_port());
    // The phone's address is its TLS port, where nothing would take a new connection.
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
         [[mwi.phone]]\nmailbox = \"1001\"\nuri = \"sips:1001@127.0.0.1:{phone_port}\"\n",
        cert.display(),
        key.display()
    ));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    let not_sent = |log: &str| log.matches("MWI NOTIFY not sent: the phone wants TLS").count();

    // No connection from the phone yet: nothing goes out in clear, and the log says why.
    let before = not_sent(&server.log());
    deposit_over_tls(&server, port, &ca, 1);
    wait_until(Duration::from_secs(10), "the unsent NOTIFY logged", || not_sent(&server.log()) > before);

    // The phone connects and allows reuse for its address.
    let mut phone = connect(port, &ca).expect("TLS to the server");
    let options = format!(
        "OPTIONS sip:voxbridge@127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:{phone_port};branch=z9hG4bKalias;alias\r\n\
         From: <sip:1001@127.0.0.1>;tag=p\r\nTo: <sip:voxbridge@127.0.0.1>\r\nCall-ID: alias-{phone_port}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    phone.write_all(options.as_bytes()).unwrap();
    assert!(final_response(&mut phone).starts_with("SIP/2.0 200"));

    // The next change of the counts reaches it over that connection.
    deposit_over_tls(&server, port, &ca, 2);
    let notify = read_msg(&mut phone);
    assert!(notify.starts_with(&format!("NOTIFY sips:1001@127.0.0.1:{phone_port} SIP/2.0")), "{notify}");
    assert!(header(&notify, "Via").starts_with("SIP/2.0/TLS"), "{notify}");
    assert!(notify.contains("Messages-Waiting: yes") && notify.contains("Voice-Message: 2/0"), "{notify}");
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=ph\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&notify, "Via"),
        header(&notify, "From"),
        header(&notify, "To"),
        header(&notify, "Call-ID"),
        header(&notify, "CSeq")
    );
    phone.write_all(ok.as_bytes()).unwrap();
}
