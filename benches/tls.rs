//! TLS handshakes per second on SIP over TLS (release build, these 2 cores): clients on
//! two threads connect, complete the handshake (TLS 1.3, then TLS 1.2), send one OPTIONS
//! and read its answer, for `--secs` each; with the server's CPU per handshake.
//! Run: `tools/bench-tls [--secs 10] [--threads 2]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::certs::ca_and_server;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|n| n.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let (secs, threads) = (arg("--secs", if full { 10 } else { 1 }), arg("--threads", 2));
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(certs.path(), "bench");
    let port = free_port();
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nrate_limit = 1000000.0\nrate_burst = 1000000.0\n",
        cert.display(),
        key.display()
    ));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let roots = Arc::new(roots);
    for (name, version) in [("TLS 1.3", &rustls::version::TLS13), ("TLS 1.2", &rustls::version::TLS12)] {
        let config = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        let cpu0 = server.cpu_secs();
        let until = Instant::now() + Duration::from_secs(secs);
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let config = config.clone();
                std::thread::spawn(move || {
                    let mut done = 0u64;
                    while Instant::now() < until {
                        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        // As a SIP client would: small records at once (Nagle would hold
                        // TLS 1.2's Finished for the delayed ACK, 40 ms).
                        tcp.set_nodelay(true).unwrap();
                        let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
                        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
                        let mut s = rustls::StreamOwned::new(conn, tcp);
                        let local = s.sock.local_addr().unwrap();
                        let options = format!(
                            "OPTIONS sip:voxbridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK{t}x{done}\r\n\
                             From: <sip:b@127.0.0.1>;tag=b\r\nTo: <sip:voxbridge@127.0.0.1>\r\nCall-ID: bench-{t}-{done}\r\n\
                             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                        );
                        s.write_all(options.as_bytes()).unwrap();
                        let mut buf = [0u8; 4096];
                        let n = s.read(&mut buf).unwrap();
                        assert!(buf[..n].starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&buf[..n]));
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        let cpu = server.cpu_secs() - cpu0;
        println!(
            "{name}: {:.0} handshakes/s (each with an OPTIONS answered), {threads} client threads, {secs} s; \
             server CPU {:.2} ms per handshake",
            total as f64 / secs as f64,
            cpu * 1000.0 / total.max(1) as f64
        );
    }
}
