//! SRTP (RFC 3711) and SRTCP for one direction of one call, through webrtc-rs's
//! sans-IO `rtc-srtp` in [`transform`] (which says why not Debian's libsrtp2; libsrtp's
//! own known answer is a test here, and real phones' SRTP is tests/srtp.rs).
//!
//! Keys come from SDES (RFC 4568, [`crate::sdp::crypto`]): each side names its own
//! master key and salt for what it sends, so a call has two contexts — [`Srtp::inbound`]
//! with the far end's key, [`Srtp::outbound`] with ours. Both are sans-IO: packets in,
//! packets out.

mod transform;

use std::fmt;

/// Whether a call's media must, may or must not be SRTP (`[rtp] srtp`, `[[sip.trunk]] srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Only SRTP calls, and only over TLS: anything else is refused with 488.
    Required,
    /// SRTP when the far end offers or accepts it over TLS, plain RTP otherwise.
    #[default]
    Optional,
    /// Plain RTP only: an RTP/SAVP offer is refused, keys beside RTP/AVP are ignored.
    Off,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Required => "required",
            Policy::Optional => "optional",
            Policy::Off => "off",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "required" => Ok(Policy::Required),
            "optional" => Ok(Policy::Optional),
            "off" => Ok(Policy::Off),
            other => Err(format!("srtp must be \"required\", \"optional\" or \"off\", not {other:?}")),
        }
    }
}

/// What a call's media keying may do: its SRTP policy, and whether its signalling is
/// encrypted — SDES keys travel in the SDP, so they are only used over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keying {
    pub policy: Policy,
    pub over_tls: bool,
}

/// The crypto suites voxbridge offers and accepts, in our order of preference for offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// RFC 4568 §6.2.1: AES-128 in counter mode, an 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag on RTP (SRTCP keeps 80 bits, RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
    /// RFC 7714: AES-128 in Galois/counter mode, a 128-bit tag.
    AeadAes128Gcm,
    /// RFC 7714: AES-256-GCM.
    AeadAes256Gcm,
}

impl Suite {
    /// What our offers list, in this order: the suite every SDES peer has first, GCM
    /// after it for peers that prefer it (an answerer picks the first it supports).
    pub const OFFERED: [Suite; 4] =
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm, Suite::AeadAes256Gcm];

    /// The suite's name in an SDP `a=crypto` line.
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    pub fn from_sdes_name(name: &str) -> Option<Suite> {
        Suite::OFFERED.into_iter().find(|s| s.sdes_name() == name)
    }

    /// Master key and master salt, concatenated as SDES carries them.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 16 + 14,
            Suite::AeadAes128Gcm => 16 + 12,
            Suite::AeadAes256Gcm => 32 + 12,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdes_name())
    }
}

/// A master key and salt. Its bytes never reach a log: `Debug` says only how long it is,
/// and it is overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(Vec<u8>);

impl MasterKey {
    /// A fresh random key for `suite` (the thread's CSPRNG, seeded from the OS).
    pub fn random(suite: Suite) -> MasterKey {
        MasterKey((0..suite.key_len()).map(|_| rand::random::<u8>()).collect())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> MasterKey {
        MasterKey(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({} bytes)", self.0.len())
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // A key about to be freed is wiped; black_box keeps the optimizer from deciding
        // that writes nobody reads can go.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// A key of the wrong length for its suite.
    #[error("the {suite} key must be {want} bytes, not {got}")]
    KeyLength { suite: Suite, want: usize, got: usize },
    /// The packet's tag did not verify: not from the holder of the key, or altered.
    #[error("authentication failed")]
    AuthFailed,
    /// A packet index already seen or too old for the replay window.
    #[error("replayed or too old")]
    Replay,
    /// Too short or otherwise not an SRTP/SRTCP packet.
    #[error("not a valid SRTP packet")]
    Malformed,
    #[error("SRTP: {0}")]
    Library(String),
}

/// Which way a context works: it decrypts what the far end sends, or encrypts ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Inbound,
    Outbound,
}

/// One direction's SRTP and SRTCP context.
pub struct Srtp {
    ctx: transform::Context,
    suite: Suite,
}

impl fmt::Debug for Srtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Srtp({}, {:?})", self.suite, self.ctx.way())
    }
}

impl Srtp {
    /// Decrypts and checks what the far end sends, under the key its SDP named.
    pub fn inbound(suite: Suite, key: &MasterKey) -> Result<Srtp, SrtpError> {
        Srtp::new(suite, key, Way::Inbound)
    }

    /// Encrypts what we send, under the key our SDP named.
    pub fn outbound(suite: Suite, key: &MasterKey) -> Result<Srtp, SrtpError> {
        Srtp::new(suite, key, Way::Outbound)
    }

    fn new(suite: Suite, key: &MasterKey, way: Way) -> Result<Srtp, SrtpError> {
        if key.bytes().len() != suite.key_len() {
            return Err(SrtpError::KeyLength { suite, want: suite.key_len(), got: key.bytes().len() });
        }
        Ok(Srtp { ctx: transform::Context::new(suite, key, way)?, suite })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// An RTP packet made SRTP in place: its payload encrypted, the tag appended.
    pub fn protect(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.ctx.apply(packet, transform::Op::Protect)
    }

    /// An SRTP packet made RTP in place: checked (tag, replay) and decrypted.
    pub fn unprotect(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.ctx.apply(packet, transform::Op::Unprotect)
    }

    /// An RTCP compound packet made SRTCP (encrypted, index and tag appended).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.ctx.apply(packet, transform::Op::ProtectRtcp)
    }

    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.ctx.apply(packet, transform::Op::UnprotectRtcp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(0x1234_5678)
            .sequence(seq.into())
            .timestamp(160 * seq as u32)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn pair(suite: Suite) -> (Srtp, Srtp) {
        let key = MasterKey::random(suite);
        (Srtp::outbound(suite, &key).unwrap(), Srtp::inbound(suite, &key).unwrap())
    }

    #[test]
    fn every_suite_encrypts_authenticates_and_refuses_replays() {
        let payload = [0x55u8; 160];
        for suite in Suite::OFFERED {
            let (mut tx, mut rx) = pair(suite);
            let plain = rtp(1, &payload);
            let mut p = plain.clone();
            tx.protect(&mut p).unwrap();
            let tag = match suite {
                Suite::AesCm128HmacSha1_80 => 10,
                Suite::AesCm128HmacSha1_32 => 4,
                Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
            };
            assert_eq!(p.len(), plain.len() + tag, "{suite}: the tag is appended");
            assert_eq!(p[..12], plain[..12], "{suite}: the header stays in clear");
            assert!(!p.windows(16).any(|w| w == [0x55; 16]), "{suite}: the payload is not in clear");
            let wire = p.clone();
            rx.unprotect(&mut p).unwrap();
            assert_eq!(p, plain, "{suite}: decrypted back");
            // The same packet again is a replay.
            let mut again = wire.clone();
            assert_eq!(rx.unprotect(&mut again), Err(SrtpError::Replay), "{suite}");
            // A flipped payload bit fails authentication.
            let mut next = rtp(2, &payload);
            tx.protect(&mut next).unwrap();
            next[20] ^= 1;
            assert_eq!(rx.unprotect(&mut next), Err(SrtpError::AuthFailed), "{suite}");
            // A packet under another key fails too.
            let (mut stranger, _) = pair(suite);
            let mut other = rtp(3, &payload);
            stranger.protect(&mut other).unwrap();
            assert_eq!(rx.unprotect(&mut other), Err(SrtpError::AuthFailed), "{suite}");
            // RTCP both ways.
            let rtcp = crate::rtp::rtcp::build(
                &crate::rtp::rtcp::Report { ssrc: 0x1234_5678, cname: "x", sender: None },
                None,
                None,
            );
            let mut c = rtcp.clone();
            tx.protect_rtcp(&mut c).unwrap();
            assert_ne!(c, rtcp);
            rx.unprotect_rtcp(&mut c).unwrap();
            assert_eq!(c, rtcp, "{suite}: SRTCP decrypted back");
        }
    }

    #[test]
    fn hostile_packets_and_keys_are_errors() {
        let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
        for junk in [vec![], vec![0x80], vec![0x80; 11], vec![0xff; 40], vec![0u8; 3000]] {
            let mut j = junk.clone();
            assert!(rx.unprotect(&mut j).is_err(), "{junk:?}");
            let mut j = junk.clone();
            assert!(rx.unprotect_rtcp(&mut j).is_err());
        }
        // A packet too short to be RTP cannot be protected either.
        assert!(tx.protect(&mut vec![0x80, 0]).is_err());
        let short = MasterKey::from_bytes(vec![1; 10]);
        let e = Srtp::inbound(Suite::AesCm128HmacSha1_80, &short).unwrap_err();
        assert_eq!(e.to_string(), "the AES_CM_128_HMAC_SHA1_80 key must be 30 bytes, not 10");
        assert_eq!(format!("{:?}", MasterKey::random(Suite::AeadAes256Gcm)), "MasterKey(44 bytes)");
        assert_eq!(Suite::from_sdes_name("AEAD_AES_128_GCM"), Some(Suite::AeadAes128Gcm));
        assert_eq!(Suite::from_sdes_name("F8_128_HMAC_SHA1_80"), None);
    }

    /// The known answer of libsrtp's own validation (test/srtp_driver.c,
    /// `srtp_validate`): the default suite under its test key and SSRC 0xcafebabe —
    /// the transform here gives libsrtp's bytes.
    #[test]
    fn a_known_answer_from_libsrtp_own_tests() {
        let key = MasterKey::from_bytes(vec![
            0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39, 0x0e, 0xc6,
            0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
        ]);
        let mut tx = Srtp::outbound(Suite::AesCm128HmacSha1_80, &key).unwrap();
        let mut p = vec![
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
            0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
        ];
        tx.protect(&mut p).unwrap();
        let want = [
            0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c, 0xe7, 0x99,
            0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b,
            0x8d, 0xbb,
        ];
        assert_eq!(p, want);
    }
}
