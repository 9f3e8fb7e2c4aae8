//! SRTP (issue 17): a real softphone (baresip, its `srtp` module) calls over TLS with
//! RTP/SAVP and SDES keys and leaves a message that is stored correctly, while a capture
//! of the media on loopback shows no plain RTP payload either way; where the trunk
//! requires SRTP, the same phone without SRTP is refused, and so is SRTP over UDP (its
//! keys would travel in clear).

mod common;
use common::capture::{entropy, Capture, Udp};
use common::certs::ca_and_server;
use common::softphone::Baresip;
use common::*;
use std::path::Path;
use std::time::Duration;

/// A server with TLS on `tls_port`, UDP as usual, and loopback as a trunk with `srtp`.
fn server(tls_port: u16, cert: &Path, key: &Path, srtp: &str) -> Server {
    let server = Server::start(&format!(
        "[sip]\ntls_listen = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
         [[sip.trunk]]\nname = \"pbx\"\nnetworks = [\"127.0.0.1\"]\nsrtp = \"{srtp}\"\n",
        cert.display(),
        key.display()
    ));
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    server
}

/// The server's RTP port range, from its configuration.
fn rtp_range(server: &Server) -> (u16, u16) {
    let t: toml::Table = std::fs::read_to_string(&server.config).unwrap().parse().unwrap();
    let r = t["rtp"]["port_range"].as_str().unwrap();
    let (a, b) = r.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Normalized autocorrelation at the lag of one 440 Hz period (8000/440 ≈ 18 samples):
/// near 1 for the phone's tone, near 0 for noise.
fn tone_likeness(samples: &[i16]) -> f64 {
    let x: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
    let (num, den) = x.windows(19).fold((0.0, 0.0), |(n, d), w| (n + w[0] * w[18], d + w[0] * w[0]));
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[test]
fn a_softphone_over_tls_with_srtp_leaves_a_message_and_no_plain_audio_crosses_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(dir.path(), "srtp");
    let port = free_port();
    let server = server(port, &cert, &key, "required");
    let (lo, hi) = rtp_range(&server);
    let capture = Capture::start(dir.path(), &format!("udp portrange {lo}-{hi}"));
    let phone = Baresip::new(&dir.path().join("phone"), &ca, ";mediaenc=srtp-mand", "1001", 4.0);
    // The phone hangs up when its tone ends; the message is saved then.
    let said = phone.dial(&format!("sip:1001@127.0.0.1:{port};transport=tls"), Duration::from_secs(40), |_| {
        server.log().contains("message saved")
    });
    let packets = capture.stop();
    let log = server.log();
    let m = server.messages("1001");
    assert_eq!(m.len(), 1, "baresip:\n{said}\nserver:\n{log}");
    assert!(said.contains("Call established"), "{said}");
    assert!(log.contains("srtp=\"AES_CM_128_HMAC_SHA1_80\""), "answered with SRTP:\n{log}");

    // Stored correctly: the recording is the phone's tone, decrypted.
    let ms = m[0]["duration_ms"].as_u64().unwrap_or(0);
    assert!(ms >= 2500, "a message of the tone after the greeting: {}", m[0]);
    let wav = server.store_dir().join(m[0]["media_path"].as_str().unwrap());
    let recorded: Vec<i16> = hound::WavReader::open(&wav).unwrap().samples::<i16>().map(|s| s.unwrap()).collect();
    let heard = tone_likeness(&recorded[recorded.len() / 4..recorded.len() * 3 / 4]);
    assert!(heard > 0.9, "the recording is the 440 Hz tone (likeness {heard:.2})");

    // On the wire: RTP headers, payloads that are ciphertext both ways.
    let to_server: Vec<&Udp> = packets.iter().filter(|p| (lo..=hi).contains(&p.to.port())).collect();
    let from_server: Vec<&Udp> = packets.iter().filter(|p| (lo..=hi).contains(&p.from.port())).collect();
    assert!(
        to_server.len() > 100 && from_server.len() > 50,
        "media captured: {} in, {} out",
        to_server.len(),
        from_server.len()
    );
    let payloads = |ps: &[&Udp]| -> Vec<u8> {
        ps.iter()
            .filter(|p| p.payload.len() > 12 && !(192..=223).contains(&p.payload[1]))
            .flat_map(|p| p.payload[12..].to_vec())
            .collect()
    };
    let (inbound, outbound) = (payloads(&to_server), payloads(&from_server));
    for (what, bytes) in [("phone → server", &inbound), ("server → phone", &outbound)] {
        let e = entropy(bytes);
        eprintln!("{what}: {} payload bytes, {e:.3} bits/byte", bytes.len());
        assert!(
            bytes.len() > 8000 && e > 7.8,
            "{what}: {} payload bytes, {e:.2} bits/byte (G.711 in clear is far less)",
            bytes.len()
        );
    }
    // Decoded as PCMU, the phone's packets are noise, not its tone.
    let mut as_pcmu = Vec::new();
    voxbridge::media::g711::decode_into(voxbridge::sdp::Codec::Pcmu, &inbound, &mut as_pcmu);
    let likeness = tone_likeness(&as_pcmu);
    eprintln!("the phone's payloads as PCMU: tone likeness {likeness:.3}; the recording's {heard:.3}");
    assert!(likeness < 0.3, "the phone's payloads do not decode as its tone (likeness {likeness:.2})");
}

#[test]
fn where_srtp_is_required_plain_rtp_and_keys_without_tls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(dir.path(), "req");
    let port = free_port();
    let server = server(port, &cert, &key, "required");
    let refused = |said: &str| said.contains("488");

    // Over TLS without SRTP: refused, the reason in the phrase.
    let plain = Baresip::new(&dir.path().join("plain"), &ca, "", "1001", 1.0);
    let said = plain.dial(&format!("sip:1001@127.0.0.1:{port};transport=tls"), Duration::from_secs(20), refused);
    assert!(refused(&said), "baresip:\n{said}\nserver:\n{}", server.log());
    assert!(server.log().contains("SRTP is required, but the offer is plain RTP"), "{}", server.log());

    // SRTP over UDP: the keys crossed in clear; refused too.
    let udp = Baresip::new(&dir.path().join("udp"), &ca, ";mediaenc=srtp-mand", "1001", 1.0);
    let said = udp.dial(&format!("sip:1001@127.0.0.1:{}", server.sip_port), Duration::from_secs(20), refused);
    assert!(refused(&said), "baresip:\n{said}\nserver:\n{}", server.log());
    assert!(server.log().contains("did not come over TLS"), "{}", server.log());
    assert!(server.messages("1001").is_empty(), "no message from a refused call");

    // What the admin reads: the media's policy, the trunk's own.
    let shown = server.cli_ok(&["config", "show"]);
    assert!(
        shown.contains("# encryption: media SRTP when offered over TLS, else RTP in clear; trunk pbx: SRTP required"),
        "{shown}"
    );
    let status: serde_json::Value = serde_json::from_str(&server.cli_ok(&["status", "--json"])).unwrap();
    assert!(status["encryption"]["media"].as_str().unwrap().contains("trunk pbx: SRTP required"), "{status}");
}
