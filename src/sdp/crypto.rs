//! SDES (RFC 4568): SRTP keys in SDP `a=crypto` attributes.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<len>] [<session params>]`
//!
//! What is read: one key per attribute without an MKI, the lifetime (any, libsrtp
//! re-keys nothing and a call is far shorter than 2^31 packets), and no session
//! parameter but `WSH=` (a replay-window hint). An attribute with anything else —
//! `UNENCRYPTED_SRTP`, `UNAUTHENTICATED_SRTP`, `KDR=`, FEC parameters, several keys, an
//! MKI, an unknown suite — is not usable and skipped (RFC 4568 §6.3 and §7.1.1: an
//! answerer picks among the attributes it understands); only a line that is not the
//! grammar at all is an error here (and skipped all the same by the SDP reader).
//!
//! Keys are secrets: [`Crypto`]'s `Debug` never shows one.

use crate::srtp::{MasterKey, Suite};
use base64::Engine;

/// One usable `a=crypto` attribute: its tag, suite and the key its sender encrypts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
}

/// SRTP agreed for a call: the attribute chosen (its tag and suite), the far end's key
/// (what it sends is decrypted with it) and ours (what we send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    pub tag: u32,
    pub suite: Suite,
    pub theirs: MasterKey,
    pub ours: MasterKey,
}

/// The keys of an offer we make: the profile (RTP/SAVP when SRTP is required) and one
/// attribute of ours per suite. Empty: a plain RTP offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OurOffer {
    pub savp: bool,
    pub keys: Vec<Crypto>,
}

impl OurOffer {
    /// An attribute for each suite we offer, each with a fresh key, tags from 1.
    pub fn fresh(savp: bool) -> OurOffer {
        let keys = Suite::OFFERED
            .into_iter()
            .zip(1..)
            .map(|(suite, tag)| Crypto { tag, suite, key: MasterKey::random(suite) })
            .collect();
        OurOffer { savp, keys }
    }
}

/// What an `a=crypto` value is.
#[derive(Debug, PartialEq, Eq)]
pub enum Attribute {
    Usable(Crypto),
    /// Well-formed, but asking what we do not do (its reason, for the logs).
    Unusable(&'static str),
}

/// Reads the value after `a=crypto:`.
pub fn parse(value: &str) -> Result<Attribute, &'static str> {
    let mut fields = value.split_ascii_whitespace();
    let tag = fields.next().ok_or("empty crypto attribute")?;
    if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad crypto tag");
    }
    let tag: u32 = tag.parse().map_err(|_| "bad crypto tag")?;
    let suite_name = fields.next().ok_or("crypto attribute without a suite")?;
    let key_params = fields.next().ok_or("crypto attribute without key parameters")?;
    let session_params: Vec<&str> = fields.collect();
    let Some(suite) = Suite::from_sdes_name(suite_name) else {
        return Ok(Attribute::Unusable("unsupported crypto suite"));
    };
    if key_params.contains(';') {
        return Ok(Attribute::Unusable("several master keys"));
    }
    let Some(inline) = key_params.strip_prefix("inline:") else {
        return Ok(Attribute::Unusable("a key method other than inline"));
    };
    let mut parts = inline.split('|');
    let encoded = parts.next().unwrap_or_default();
    for extra in parts {
        if extra.contains(':') {
            return Ok(Attribute::Unusable("a master key identifier (MKI)"));
        }
        if !is_lifetime(extra) {
            return Err("bad crypto key lifetime");
        }
    }
    let key = decode(encoded).ok_or("crypto key is not base64")?;
    if key.len() != suite.key_len() {
        return Ok(Attribute::Unusable("a key of the wrong length for its suite"));
    }
    if session_params.iter().any(|p| !p.starts_with("WSH=")) {
        return Ok(Attribute::Unusable("a session parameter (unencrypted, unauthenticated, KDR or FEC)"));
    }
    Ok(Attribute::Usable(Crypto { tag, suite, key: MasterKey::from_bytes(key) }))
}

/// `2^20` or a decimal count.
fn is_lifetime(s: &str) -> bool {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Base64 with or without padding (peers differ).
fn decode(s: &str) -> Option<Vec<u8>> {
    let e = &base64::engine::general_purpose::STANDARD;
    e.decode(s).ok().or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s).ok())
}

/// Our attribute: `a=crypto:<tag> <suite> inline:<key>` (CRLF-terminated).
pub fn line(tag: u32, suite: Suite, key: &MasterKey) -> String {
    let k = base64::engine::general_purpose::STANDARD.encode(key.bytes());
    format!("a=crypto:{tag} {} inline:{k}\r\n", suite.sdes_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY30: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn attributes_from_real_phones_are_read() {
        // RFC 4568 §4's example, baresip's, Cisco's (lifetime), Polycom's (2^48, WSH).
        let cases = [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20|1:4 FEC_ORDER=FEC_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"),
            format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}|2^31"),
            format!("3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^48 WSH=64"),
        ];
        assert_eq!(parse(&cases[0]), Ok(Attribute::Unusable("a master key identifier (MKI)")));
        for c in &cases[1..] {
            let Ok(Attribute::Usable(a)) = parse(c) else { panic!("{c}") };
            assert_eq!(a.key.bytes().len(), 30);
        }
        let Ok(Attribute::Usable(a)) = parse(&cases[2]) else { panic!() };
        assert_eq!((a.tag, a.suite), (2, Suite::AesCm128HmacSha1_32));
        // Our line reads back, and shows the key only as base64 in the SDP itself.
        let key = MasterKey::random(Suite::AeadAes128Gcm);
        let ours = line(7, Suite::AeadAes128Gcm, &key);
        let value = ours.trim_end().strip_prefix("a=crypto:").unwrap();
        assert_eq!(parse(value), Ok(Attribute::Usable(Crypto { tag: 7, suite: Suite::AeadAes128Gcm, key })));
        assert!(!format!("{:?}", parse(value)).contains(&value[25..]), "Debug shows no key");
        // Without padding.
        let unpadded = value.trim_end_matches('=');
        assert!(matches!(parse(unpadded), Ok(Attribute::Usable(_))));
    }

    #[test]
    fn what_we_do_not_do_is_skipped_and_garbage_is_an_error() {
        let skipped = [
            format!("1 F8_128_HMAC_SHA1_80 inline:{KEY30}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30};inline:{KEY30}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNAUTHENTICATED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} KDR=1"),
            format!("1 AEAD_AES_256_GCM inline:{KEY30}"),
            "1 AES_CM_128_HMAC_SHA1_80 uri:http://x/key".to_string(),
        ];
        for s in &skipped {
            assert!(matches!(parse(s), Ok(Attribute::Unusable(_))), "{s}");
        }
        for bad in [
            "",
            "x AES_CM_128_HMAC_SHA1_80 inline:AAAA",
            "1234567890 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
            "1",
            "1 AES_CM_128_HMAC_SHA1_80",
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|2^x",
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
