//! The SRTP and SRTCP transforms over webrtc-rs's `rtc-srtp` (sans-IO; AES and SHA-1
//! from RustCrypto, AES-GCM from ring, through `rtc-crypto`'s ring provider).
//!
//! Why not Debian's libsrtp2: it is built on NSS, whose AES-CTR context libsrtp creates
//! and destroys for every packet (`aes_icm_nss.c`, `set_iv`) under NSS's locks — half of
//! the server's CPU at 1000 SRTP calls went to NSS's softoken (perf), and the calls no
//! longer all held on two cores (docs/status.md).
//!
//! rtc-srtp keeps replay and rollover state per SSRC, made on the first packet of an
//! SSRC before its tag is checked: a stranger spraying SSRCs would grow it without end.
//! So inbound, each SSRC gets a context of its own only once one of its packets
//! authenticated, and a call keeps at most [`MAX_SOURCES`] of them.

use super::{MasterKey, SrtpError, Suite, Way};
use rtc_shared::error::Error;
use rtc_srtp::context::Context as RtcContext;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Packets of one SSRC accepted behind the newest (libsrtp's default window).
const REPLAY_WINDOW: usize = 128;

/// SSRCs one inbound direction follows: a phone's audio, perhaps a new SSRC after a
/// re-INVITE or a transfer, its RTCP. The oldest is dropped for a fifth.
pub const MAX_SOURCES: usize = 4;

/// Which transform [`Context::apply`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Protect,
    Unprotect,
    ProtectRtcp,
    UnprotectRtcp,
}

/// One direction's SRTP and SRTCP state.
pub struct Context {
    way: Way,
    profile: ProtectionProfile,
    /// Key then salt (wiped on drop), for each new inbound SSRC's context.
    master: MasterKey,
    /// Outbound: the one context (our SSRC is ours to choose).
    outbound: Option<RtcContext>,
    /// Inbound: a context per SSRC that authenticated, the newest last.
    sources: Vec<(u32, RtcContext)>,
}

fn profile(suite: Suite) -> ProtectionProfile {
    match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Suite::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

fn fresh(profile: ProtectionProfile, key: &[u8], salt: &[u8]) -> Result<RtcContext, SrtpError> {
    let crypto = rtc_srtp::crypto::providers::RingCrypto;
    RtcContext::new(
        key,
        salt,
        profile,
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        &crypto,
    )
    .map_err(|e| SrtpError::Library(e.to_string()))
}

fn split(profile: ProtectionProfile, master: &MasterKey) -> (&[u8], &[u8]) {
    let m = master.bytes();
    m.split_at(profile.key_len().min(m.len()))
}

/// What an error of rtc-srtp means to the caller.
fn meaning(e: Error) -> SrtpError {
    match e {
        Error::RtpFailedToVerifyAuthTag | Error::RtcpFailedToVerifyAuthTag | Error::ErrFailedToVerifyAuthTag => {
            SrtpError::AuthFailed
        }
        Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..) => SrtpError::Replay,
        _ => SrtpError::Malformed,
    }
}

/// The SSRC of an RTP packet (bytes 8..12) or of an RTCP packet's sender (4..8).
fn ssrc(packet: &[u8], at: usize) -> Result<u32, SrtpError> {
    let b = packet.get(at..at + 4).ok_or(SrtpError::Malformed)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Context {
    /// `master` is the master key then the master salt, as SDES carries them.
    pub fn new(suite: Suite, master: &MasterKey, way: Way) -> Result<Context, SrtpError> {
        let profile = profile(suite);
        let (key, salt) = split(profile, master);
        let outbound = match way {
            Way::Outbound => Some(fresh(profile, key, salt)?),
            Way::Inbound => {
                // Checked now, not at the first packet: a key that cannot work is the SDP's fault.
                fresh(profile, key, salt)?;
                None
            }
        };
        Ok(Context { way, profile, master: master.clone(), outbound, sources: Vec::new() })
    }

    pub fn way(&self) -> Way {
        self.way
    }

    /// Transforms `packet` in place; on an error it is left as it was.
    pub fn apply(&mut self, packet: &mut Vec<u8>, op: Op) -> Result<(), SrtpError> {
        let out = match (op, self.outbound.as_mut()) {
            (Op::Protect, Some(ctx)) => {
                if packet.len() < 12 {
                    return Err(SrtpError::Malformed);
                }
                ctx.encrypt_rtp(packet).map_err(meaning)?
            }
            (Op::ProtectRtcp, Some(ctx)) => {
                if packet.len() < 8 {
                    return Err(SrtpError::Malformed);
                }
                ctx.encrypt_rtcp(packet).map_err(meaning)?
            }
            (Op::Unprotect, None) => self.unprotect(packet, 8, |c, p| c.decrypt_rtp(p))?,
            (Op::UnprotectRtcp, None) => self.unprotect(packet, 4, |c, p| c.decrypt_rtcp(p))?,
            _ => return Err(SrtpError::Library(format!("{op:?} on an {:?} context", self.way))),
        };
        packet.clear();
        packet.extend_from_slice(&out);
        Ok(())
    }

    /// Decrypts with the context of the packet's SSRC; a new SSRC gets one only when
    /// its packet authenticates under the key.
    fn unprotect(
        &mut self,
        packet: &[u8],
        ssrc_at: usize,
        decrypt: impl Fn(&mut RtcContext, &[u8]) -> rtc_shared::error::Result<bytes::BytesMut>,
    ) -> Result<bytes::BytesMut, SrtpError> {
        let ssrc = ssrc(packet, ssrc_at)?;
        if packet.first().is_none_or(|b| b >> 6 != 2) {
            return Err(SrtpError::Malformed);
        }
        if let Some((_, ctx)) = self.sources.iter_mut().find(|(s, _)| *s == ssrc) {
            return decrypt(ctx, packet).map_err(meaning);
        }
        let (key, salt) = split(self.profile, &self.master);
        let mut ctx = fresh(self.profile, key, salt)?;
        let plain = decrypt(&mut ctx, packet).map_err(meaning)?;
        if self.sources.len() == MAX_SOURCES {
            self.sources.remove(0);
        }
        self.sources.push((ssrc, ctx));
        Ok(plain)
    }

    /// How many SSRCs this inbound direction follows.
    #[cfg(test)]
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(ssrc)
            .sequence(seq.into())
            .timestamp(160 * seq as u32)
            .payload(&[0x55; 160])
            .build()
            .unwrap()
    }

    #[test]
    fn only_sources_whose_packets_authenticate_are_kept_and_at_most_four() {
        let suite = Suite::AesCm128HmacSha1_80;
        let key = MasterKey::random(suite);
        let mut tx = Context::new(suite, &key, Way::Outbound).unwrap();
        let mut rx = Context::new(suite, &key, Way::Inbound).unwrap();
        // A stranger's packets under SSRCs of its choosing, with forged tags: no state.
        for ssrc in 0..1000u32 {
            let mut forged = rtp(ssrc, 1);
            forged.extend_from_slice(&[0xab; 10]);
            assert_eq!(rx.apply(&mut forged, Op::Unprotect), Err(SrtpError::AuthFailed));
        }
        assert_eq!(rx.sources(), 0);
        // The holder of the key: each new SSRC is followed, the oldest dropped past four.
        for ssrc in 1..=6u32 {
            let mut p = rtp(ssrc, 7);
            tx.apply(&mut p, Op::Protect).unwrap();
            rx.apply(&mut p, Op::Unprotect).unwrap();
            assert_eq!(p, rtp(ssrc, 7));
        }
        assert_eq!(rx.sources(), MAX_SOURCES);
        // A replay of a followed source is refused by its own window.
        let mut p = rtp(6, 8);
        tx.apply(&mut p, Op::Protect).unwrap();
        let again = p.clone();
        rx.apply(&mut p, Op::Unprotect).unwrap();
        assert_eq!(rx.apply(&mut again.clone(), Op::Unprotect), Err(SrtpError::Replay));
        // A direction is one way: no decrypting with an outbound context.
        assert!(tx.apply(&mut again.clone(), Op::Unprotect).is_err());
    }
}
