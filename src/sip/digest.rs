//! SIP digest authentication (RFC 3261 §22.4, RFC 7616 / RFC 8760: SHA-256 and MD5,
//! `qop=auth`), server side, sans-IO: challenges, and checking an answer against the
//! stored HA1 (`H(user:realm:password)`; the password itself is never stored).
//!
//! Nonces are stateless — the time they were made and an HMAC over it with a secret of
//! this process — so a flood of unauthenticated requests costs no memory; they expire
//! after `nonce_lifetime` (an expired one is answered `stale=true`, and phones retry
//! without asking the user). Replays are refused by nonce count: each nonce's `nc` must
//! grow, tracked only for nonces that authenticated someone.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The digest algorithms offered, the stronger first (RFC 8760 §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Algorithm, String> {
        match s.to_ascii_uppercase().as_str() {
            "SHA-256" => Ok(Algorithm::Sha256),
            "MD5" => Ok(Algorithm::Md5),
            _ => Err(format!("digest algorithm {s:?}: \"SHA-256\" or \"MD5\"")),
        }
    }
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One user's stored secrets: HA1 for each algorithm, for one realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ha1 {
    pub realm: String,
    pub md5: String,
    pub sha256: String,
}

impl Ha1 {
    pub fn new(user: &str, realm: &str, password: &str) -> Ha1 {
        let a1 = format!("{user}:{realm}:{password}");
        Ha1 { realm: realm.to_string(), md5: Algorithm::Md5.hash(&a1), sha256: Algorithm::Sha256.hash(&a1) }
    }

    fn for_algorithm(&self, a: Algorithm) -> &str {
        match a {
            Algorithm::Sha256 => &self.sha256,
            Algorithm::Md5 => &self.md5,
        }
    }
}

/// The fields of an `Authorization` header that matter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub nc: Option<String>,
    pub qop: Option<String>,
}

/// Parses `Digest k=v, k="v", ...`; `None` for another scheme or a malformed value.
pub fn parse_authorization(value: &str) -> Option<Credentials> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Credentials::default();
    let mut s = params.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            // A quoted string, with backslash escapes.
            let mut v = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                let (i, ch) = chars.next()?;
                match ch {
                    '\\' => v.push(chars.next()?.1),
                    '"' => break i + 1,
                    _ => v.push(ch),
                }
            };
            (v, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        match k.as_str() {
            "username" => c.username = v,
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "uri" => c.uri = v,
            "response" => c.response = v.to_ascii_lowercase(),
            "algorithm" => c.algorithm = Some(v),
            "cnonce" => c.cnonce = Some(v),
            "nc" => c.nc = Some(v),
            "qop" => c.qop = Some(v),
            _ => {}
        }
        s = next.trim_start().strip_prefix(',').unwrap_or(next).trim_start();
    }
    (!c.username.is_empty() && !c.nonce.is_empty() && !c.response.is_empty()).then_some(c)
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated as this user.
    Ok(String),
    /// No (usable) credentials: challenge.
    Challenge,
    /// Right credentials but an expired nonce: challenge with `stale=true`.
    Stale,
    /// Wrong password, unknown user, replayed or forged nonce: 403.
    Forbidden(&'static str),
}

/// How many nonces are remembered for replay protection at most.
const MAX_TRACKED: usize = 50_000;

pub struct DigestAuth {
    realm: String,
    /// Offered in this order, and the only ones accepted.
    algorithms: Vec<Algorithm>,
    secret: [u8; 32],
    lifetime: Duration,
    /// When this auth was made: nonces carry their age in seconds since.
    epoch: Instant,
    /// Highest nonce count seen per nonce that authenticated someone.
    seen: HashMap<String, (u64, u32)>,
}

type HmacSha256 = Hmac<Sha256>;

impl DigestAuth {
    /// `algorithms` in order of preference (RFC 8760 §2.4: one challenge each).
    pub fn new(realm: &str, algorithms: &[Algorithm], lifetime: Duration, epoch: Instant) -> DigestAuth {
        DigestAuth {
            realm: realm.to_string(),
            algorithms: algorithms.to_vec(),
            secret: rand::random(),
            lifetime,
            epoch,
            seen: HashMap::new(),
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, secs: u64) -> String {
        let mut m = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        m.update(&secs.to_be_bytes());
        m.update(self.realm.as_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    fn nonce(&self, now: Instant) -> String {
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        format!("{secs:x}.{}", self.mac(secs))
    }

    /// The nonce's age, if this process made it.
    fn nonce_age(&self, nonce: &str, now: Instant) -> Option<Duration> {
        let (secs, mac) = nonce.split_once('.')?;
        let secs = u64::from_str_radix(secs, 16).ok()?;
        if !constant_eq(mac.as_bytes(), self.mac(secs).as_bytes()) {
            return None;
        }
        let made = self.epoch + Duration::from_secs(secs);
        Some(now.saturating_duration_since(made))
    }

    /// The `WWW-Authenticate` values of a 401: SHA-256 first, MD5 for older phones.
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let stale = if stale { ", stale=true" } else { "" };
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.realm,
                    a.name()
                )
            })
            .collect()
    }

    /// Checks `authorization` (the header value, if any) for `method`; `ha1` looks up a
    /// user's secrets. An unknown user fails exactly like a wrong password.
    pub fn verify(
        &mut self,
        now: Instant,
        method: &str,
        authorization: Option<&str>,
        ha1: impl Fn(&str) -> Option<Ha1>,
    ) -> Verdict {
        let Some(c) = authorization.and_then(parse_authorization) else { return Verdict::Challenge };
        if c.realm != self.realm {
            return Verdict::Challenge;
        }
        let Some(age) = self.nonce_age(&c.nonce, now) else { return Verdict::Forbidden("not our nonce") };
        let algorithm = match c.algorithm.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("MD5") => Algorithm::Md5,
            Some("SHA-256") => Algorithm::Sha256,
            Some(_) => return Verdict::Challenge,
        };
        if !self.algorithms.contains(&algorithm) {
            return Verdict::Challenge;
        }
        // qop=auth only: without it a response can be replayed for the nonce's life.
        let (Some("auth"), Some(cnonce), Some(nc)) = (c.qop.as_deref(), c.cnonce.as_deref(), c.nc.as_deref()) else {
            return Verdict::Challenge;
        };
        let Ok(count) = u32::from_str_radix(nc, 16) else { return Verdict::Forbidden("malformed nonce count") };
        // An unknown user is checked against a throwaway secret: same work, same answer.
        let stored = ha1(&c.username).filter(|h| h.realm == self.realm);
        let known = stored.is_some();
        let secret = stored.unwrap_or_else(|| Ha1::new(&c.username, &self.realm, &hex(&rand::random::<[u8; 16]>())));
        let ha2 = algorithm.hash(&format!("{method}:{}", c.uri));
        let expected =
            algorithm.hash(&format!("{}:{}:{nc}:{cnonce}:auth:{ha2}", secret.for_algorithm(algorithm), c.nonce));
        if !constant_eq(expected.as_bytes(), c.response.as_bytes()) || !known {
            return Verdict::Forbidden("wrong credentials");
        }
        if age > self.lifetime {
            return Verdict::Stale;
        }
        // Replay protection: the count must grow for each use of a nonce.
        let secs = now.saturating_duration_since(self.epoch).as_secs();
        match self.seen.get(&c.nonce) {
            Some((_, last)) if count <= *last => return Verdict::Forbidden("replayed nonce count"),
            _ => {}
        }
        if self.seen.len() >= MAX_TRACKED {
            let oldest_kept = secs.saturating_sub(self.lifetime.as_secs());
            self.seen.retain(|_, (made, _)| *made >= oldest_kept);
            if self.seen.len() >= MAX_TRACKED {
                // Every tracked nonce is live: ask for new ones rather than grow.
                return Verdict::Stale;
            }
        }
        self.seen.insert(c.nonce.clone(), (secs, count));
        Verdict::Ok(c.username)
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a phone does with a challenge: the `Authorization` value for `method` and
/// `uri` (for tests and the probe tools; a UAC core would use it too).
pub fn answer(challenge: &str, method: &str, uri: &str, user: &str, password: &str, nc: u32) -> Option<String> {
    let c = parse_authorization(&challenge.replacen("Digest", "Digest username=\"x\", response=\"x\",", 1))?;
    let algorithm = match c.algorithm.as_deref() {
        Some("SHA-256") => Algorithm::Sha256,
        _ => Algorithm::Md5,
    };
    let ha1 = Ha1::new(user, &c.realm, password);
    let cnonce = format!("{:08x}", rand::random::<u32>());
    let nc = format!("{nc:08x}");
    let ha2 = algorithm.hash(&format!("{method}:{uri}"));
    let response = algorithm.hash(&format!("{}:{}:{nc}:{cnonce}:auth:{ha2}", ha1.for_algorithm(algorithm), c.nonce));
    Some(format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", \
         algorithm={}, cnonce=\"{cnonce}\", nc={nc}, qop=auth",
        c.realm,
        c.nonce,
        algorithm.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[Algorithm] = &[Algorithm::Sha256, Algorithm::Md5];

    fn users(u: &str) -> Option<Ha1> {
        (u == "1000").then(|| Ha1::new("1000", "vb", "secret"))
    }

    #[test]
    fn a_challenge_answered_with_the_right_password_authenticates_once_per_count() {
        let t0 = Instant::now();
        let mut a = DigestAuth::new("vb", BOTH, Duration::from_secs(300), t0);
        assert_eq!(a.verify(t0, "SUBSCRIBE", None, users), Verdict::Challenge);
        let ch = a.challenges(t0, false);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"), "{ch:?}");
        // Both challenges carry the same nonce: one count sequence across them.
        for (c, nc) in ch.iter().zip([1, 3]) {
            let auth = answer(c, "SUBSCRIBE", "sip:1000@vb", "1000", "secret", nc).unwrap();
            assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&auth), users), Verdict::Ok("1000".into()), "{c}");
            // The same answer again is a replay.
            assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&auth), users), Verdict::Forbidden("replayed nonce count"));
            let next = answer(c, "SUBSCRIBE", "sip:1000@vb", "1000", "secret", nc + 1).unwrap();
            assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&next), users), Verdict::Ok("1000".into()));
        }
    }

    #[test]
    fn wrong_passwords_unknown_users_forged_and_old_nonces_are_refused() {
        let t0 = Instant::now();
        let mut a = DigestAuth::new("vb", BOTH, Duration::from_secs(300), t0);
        let ch = &a.challenges(t0, false)[0];
        let wrong = answer(ch, "SUBSCRIBE", "sip:1000@vb", "1000", "guess", 1).unwrap();
        assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&wrong), users), Verdict::Forbidden("wrong credentials"));
        let stranger = answer(ch, "SUBSCRIBE", "sip:2000@vb", "2000", "secret", 1).unwrap();
        assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&stranger), users), Verdict::Forbidden("wrong credentials"));
        // Another method than the one answered for: the response does not fit.
        let for_subscribe = answer(ch, "SUBSCRIBE", "sip:1000@vb", "1000", "secret", 1).unwrap();
        assert!(matches!(a.verify(t0, "INVITE", Some(&for_subscribe), users), Verdict::Forbidden(_)));
        // A nonce from another server (or made up).
        let other = DigestAuth::new("vb", BOTH, Duration::from_secs(300), t0);
        let foreign = answer(&other.challenges(t0, false)[0], "SUBSCRIBE", "sip:1000@vb", "1000", "secret", 1).unwrap();
        assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&foreign), users), Verdict::Forbidden("not our nonce"));
        // Expired: stale, so the phone retries with a fresh nonce without asking anyone.
        let later = t0 + Duration::from_secs(301);
        let old = answer(ch, "SUBSCRIBE", "sip:1000@vb", "1000", "secret", 5).unwrap();
        assert_eq!(a.verify(later, "SUBSCRIBE", Some(&old), users), Verdict::Stale);
        assert!(a.challenges(later, true)[0].ends_with("stale=true"));
        // Without qop (RFC 2069 style) or another realm: challenged again.
        let no_qop = for_subscribe.replace(", qop=auth", "");
        assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&no_qop), users), Verdict::Challenge);
        let realm = for_subscribe.replace("realm=\"vb\"", "realm=\"other\"");
        assert_eq!(a.verify(t0, "SUBSCRIBE", Some(&realm), users), Verdict::Challenge);
        // An algorithm not offered (MD5 switched off) is not accepted.
        let mut sha_only = DigestAuth::new("vb", &[Algorithm::Sha256], Duration::from_secs(300), t0);
        let md5 = answer(&a.challenges(t0, false)[1], "SUBSCRIBE", "sip:1000@vb", "1000", "secret", 1).unwrap();
        let md5 = md5.replace(&parse_authorization(&md5).unwrap().nonce, &sha_only.nonce(t0));
        assert_eq!(sha_only.challenges(t0, false).len(), 1);
        assert_eq!(sha_only.verify(t0, "SUBSCRIBE", Some(&md5), users), Verdict::Challenge);
    }

    #[test]
    fn authorization_values_parse_with_quotes_escapes_and_garbage() {
        let c = parse_authorization(
            "Digest username=\"a\\\"b\", realm=\"vb\",nonce=\"n\", uri=\"sip:x\", response=\"ABC\", nc=00000001, qop=auth",
        )
        .unwrap();
        assert_eq!((c.username.as_str(), c.response.as_str(), c.nc.as_deref()), ("a\"b", "abc", Some("00000001")));
        for bad in ["Basic abc", "Digest", "Digest username=\"unterminated", "Digest =x", ""] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_rfc_7616_example_responses_come_out() {
        // §3.9.1: Mufasa / http-auth@example.org / "Circle of Life", GET /dir/index.html.
        let ha1 = Ha1::new("Mufasa", "http-auth@example.org", "Circle of Life");
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let response = |a: Algorithm| {
            let ha2 = a.hash("GET:/dir/index.html");
            a.hash(&format!("{}:{nonce}:00000001:{cnonce}:auth:{ha2}", ha1.for_algorithm(a)))
        };
        assert_eq!(response(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(response(Algorithm::Sha256), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }
}
