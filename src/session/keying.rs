//! Whether a call's audio is SRTP, and under which keys (SDES, RFC 4568): decided once
//! for every offer and answer, here, from the call's [`Keying`] — its SRTP policy
//! (`[rtp] srtp`, a trunk's `srtp`) and whether its signalling came over TLS.
//!
//! The rules, as an admin reads them:
//! - SDES keys travel in the SDP, so they are used only over TLS: over UDP or TCP an
//!   RTP/SAVP offer is refused and keys beside plain RTP are ignored;
//! - `required`: only SRTP over TLS — a plain offer, a call without TLS, an answer
//!   without keys are refused (488, its reason in the phrase);
//! - `optional`: SRTP when the far end offers or accepts it over TLS (RTP/SAVP, or keys
//!   beside RTP/AVP — "best effort"), plain RTP otherwise;
//! - `off`: plain RTP; an RTP/SAVP offer is refused.
//!
//! An answer picks the offerer's first usable attribute and names a fresh key of ours
//! under its tag; a re-offer repeating the far end's key keeps ours (a refresh).

use crate::sdp::crypto::{Agreed, OurOffer};
use crate::sdp::{Negotiated, SdpError};
use crate::srtp::{Keying, MasterKey, Policy};

fn refuse<T>(why: &str) -> Result<T, SdpError> {
    Err(SdpError::Srtp(why.to_string()))
}

/// Whether a call may be set up at all before any SDP is read (a delayed offer, a call
/// we place): SRTP required over a transport without TLS is refused.
pub fn check_transport(k: Keying) -> Result<(), SdpError> {
    if k.policy != Policy::Required {
        return Ok(());
    }
    if !k.over_tls {
        return refuse("SRTP is required, but the call did not come over TLS (its keys would travel in clear)");
    }
    Ok(())
}

/// Decides on an offer's keys and sets `n.srtp`: SRTP with the offerer's first usable
/// attribute, plain RTP, or the reason it is refused. `current` is the agreement in
/// force when this is a re-offer.
pub fn answer(n: &mut Negotiated, k: Keying, current: Option<&Agreed>) -> Result<(), SdpError> {
    n.srtp = None;
    if k.policy == Policy::Off {
        return if n.savp { refuse("SRTP offered, but it is off for these calls") } else { Ok(()) };
    }
    if !k.over_tls {
        check_transport(k)?;
        return if n.savp { refuse("SRTP offered without TLS: its keys travelled in clear") } else { Ok(()) };
    }
    let Some(c) = n.crypto.first() else {
        if n.savp {
            return refuse("RTP/SAVP offered without a usable a=crypto attribute");
        }
        if k.policy == Policy::Required {
            return refuse("SRTP is required, but the offer is plain RTP");
        }
        return Ok(());
    };
    let ours = match current {
        Some(a) if a.tag == c.tag && a.suite == c.suite && a.theirs == c.key => a.ours.clone(),
        _ => MasterKey::random(c.suite),
    };
    n.srtp = Some(Agreed { tag: c.tag, suite: c.suite, theirs: c.key.clone(), ours });
    Ok(())
}

/// The keys of an offer of ours: none when SRTP is off or there is no TLS;
/// RTP/SAVP when it is required, else RTP/AVP with keys beside it.
pub fn offer(k: Keying) -> OurOffer {
    if k.policy == Policy::Off || !k.over_tls {
        return OurOffer::default();
    }
    OurOffer::fresh(k.policy == Policy::Required)
}

/// Reads the far end's answer to our offer `ours` and sets `n.srtp`: its attribute
/// must be one we offered (tag and suite).
pub fn accept_answer(n: &mut Negotiated, ours: &OurOffer, k: Keying) -> Result<(), SdpError> {
    n.srtp = None;
    let Some(c) = n.crypto.first() else {
        if k.policy == Policy::Required && k.over_tls {
            return refuse("SRTP is required, but the answer is plain RTP");
        }
        return if n.savp { refuse("RTP/SAVP answered without a usable a=crypto attribute") } else { Ok(()) };
    };
    let Some(mine) = ours.keys.iter().find(|m| m.tag == c.tag && m.suite == c.suite) else {
        return refuse("the answer's a=crypto is none we offered");
    };
    n.srtp = Some(Agreed { tag: c.tag, suite: c.suite, theirs: c.key.clone(), ours: mine.key.clone() });
    // The profile follows the offer's (RFC 4568 §7.1.2): our answer logic never writes
    // it, but a far end answering RTP/AVP to our RTP/SAVP is taken as SRTP all the same.
    n.savp = ours.savp;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{self, Codec};
    use crate::srtp::Suite;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn offer_of(proto: &str, crypto: bool) -> Negotiated {
        let c = if crypto {
            format!("a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\na=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")
        } else {
            String::new()
        };
        let sdp = format!("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 {proto} 0\r\n{c}");
        sdp::negotiate(sdp.as_bytes()).unwrap().0
    }

    fn k(policy: Policy, over_tls: bool) -> Keying {
        Keying { policy, over_tls }
    }

    #[test]
    fn offers_are_answered_as_policy_and_transport_allow() {
        use Policy::*;
        // (profile, keys, policy, TLS) → SRTP, plain, or refused.
        type Case = (&'static str, bool, Policy, bool, Result<bool, &'static str>);
        let cases: [Case; 12] = [
            ("RTP/SAVP", true, Optional, true, Ok(true)),
            ("RTP/SAVP", true, Required, true, Ok(true)),
            ("RTP/AVP", true, Optional, true, Ok(true)),
            ("RTP/AVP", false, Optional, true, Ok(false)),
            ("RTP/AVP", false, Required, true, Err("SRTP is required, but the offer is plain RTP")),
            ("RTP/SAVP", false, Optional, true, Err("RTP/SAVP offered without a usable a=crypto attribute")),
            ("RTP/SAVP", true, Off, true, Err("SRTP offered, but it is off for these calls")),
            ("RTP/AVP", true, Off, true, Ok(false)),
            ("RTP/SAVP", true, Optional, false, Err("SRTP offered without TLS: its keys travelled in clear")),
            ("RTP/AVP", true, Optional, false, Ok(false)),
            (
                "RTP/SAVP",
                true,
                Required,
                false,
                Err("SRTP is required, but the call did not come over TLS (its keys would travel in clear)"),
            ),
            ("RTP/SAVPF", true, Required, true, Ok(true)),
        ];
        for (proto, keys, policy, tls, want) in cases {
            let mut n = offer_of(proto, keys);
            let got = answer(&mut n, k(policy, tls), None).map(|()| n.srtp.is_some()).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{proto} keys={keys} {policy:?} tls={tls}");
        }
    }

    #[test]
    fn the_answer_takes_the_first_attribute_and_a_refresh_keeps_our_key() {
        let mut n = offer_of("RTP/SAVP", true);
        answer(&mut n, k(Policy::Optional, true), None).unwrap();
        let a = n.srtp.clone().unwrap();
        assert_eq!((a.tag, a.suite), (5, Suite::AesCm128HmacSha1_32), "the offerer's first choice");
        assert_eq!(a.theirs.bytes().len(), 30);
        assert_ne!(a.ours, a.theirs, "our own key, not an echo");
        let text =
            String::from_utf8(sdp::answer(&n, &[String::new()], "127.0.0.1".parse().unwrap(), 20000, 1, 1)).unwrap();
        assert!(text.contains("m=audio 20000 RTP/SAVP 0\r\n"), "{text}");
        assert!(text.contains("a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:"), "{text}");
        // The same offer again keeps our key; a new key of theirs gets a new one of ours.
        let mut again = offer_of("RTP/SAVP", true);
        answer(&mut again, k(Policy::Optional, true), Some(&a)).unwrap();
        assert_eq!(again.srtp.as_ref(), Some(&a));
        let mut rekeyed = again.clone();
        rekeyed.crypto[0].key = MasterKey::random(Suite::AesCm128HmacSha1_32);
        answer(&mut rekeyed, k(Policy::Optional, true), Some(&a)).unwrap();
        assert_ne!(rekeyed.srtp.unwrap().ours, a.ours);
    }

    #[test]
    fn our_offer_and_its_answer() {
        assert!(offer(k(Policy::Optional, false)).keys.is_empty(), "no keys without TLS");
        assert!(offer(k(Policy::Off, true)).keys.is_empty());
        let ours = offer(k(Policy::Required, true));
        assert!(ours.savp && ours.keys.len() == Suite::OFFERED.len());
        let sdp = String::from_utf8(sdp::offer("127.0.0.1".parse().unwrap(), 20000, 1, &ours)).unwrap();
        assert!(
            sdp.contains("m=audio 20000 RTP/SAVP 0 8 101\r\n") && sdp.contains("a=crypto:4 AEAD_AES_256_GCM"),
            "{sdp}"
        );
        let best_effort = offer(k(Policy::Optional, true));
        assert!(!best_effort.savp && !best_effort.keys.is_empty());
        // The far end takes our second suite: its key decrypts, ours encrypts.
        let theirs = MasterKey::random(Suite::AesCm128HmacSha1_32);
        let answer_sdp = format!(
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/SAVP 0\r\n{}",
            crate::sdp::crypto::line(2, Suite::AesCm128HmacSha1_32, &theirs)
        );
        let mut n = sdp::read_answer(answer_sdp.as_bytes()).unwrap();
        accept_answer(&mut n, &ours, k(Policy::Required, true)).unwrap();
        let a = n.srtp.unwrap();
        assert_eq!((a.tag, a.suite, &a.theirs, &a.ours), (2, Suite::AesCm128HmacSha1_32, &theirs, &ours.keys[1].key));
        // A tag we never offered, or a plain answer to a required offer: refused.
        let wrong = answer_sdp.replace("a=crypto:2", "a=crypto:9");
        let mut n = sdp::read_answer(wrong.as_bytes()).unwrap();
        assert!(accept_answer(&mut n, &ours, k(Policy::Required, true)).is_err());
        let plain = Negotiated::plain("127.0.0.1:7000".parse().unwrap(), Codec::Pcmu);
        let e = accept_answer(&mut plain.clone(), &ours, k(Policy::Required, true)).unwrap_err();
        assert_eq!(e.to_string(), "SRTP is required, but the answer is plain RTP");
        assert!(accept_answer(&mut plain.clone(), &best_effort, k(Policy::Optional, true)).is_ok());
        assert!(check_transport(k(Policy::Required, false)).is_err());
        assert!(check_transport(k(Policy::Optional, false)).is_ok());
    }
}
