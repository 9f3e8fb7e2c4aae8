//! Who may do what over SIP, by configuration: trunks (source networks, optional digest
//! credentials, trusted or not for requests about mailboxes) and whether calls are
//! taken from anyone or only from trunks. No source is trusted by default, loopback
//! included: an address is trusted only because a trunk entry names it.

use super::digest::{Algorithm, Ha1};
use super::redirection::Policy;
use std::net::IpAddr;

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Network, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.trim().parse().map_err(|_| format!("{s:?} is not an address or network (10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix length in {s:?}"))?
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.addr.is_ipv4() => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A peer this server works with: a PBX, a carrier, an SBC.
#[derive(Debug, Clone)]
pub struct Trunk {
    pub name: String,
    pub networks: Vec<Network>,
    /// Digest credentials its calls must carry (user name and secrets), if any.
    pub credentials: Option<(String, Ha1)>,
    /// Requests about mailboxes from it (SUBSCRIBE for a phone behind a PBX) need no
    /// digest of their own: the trunk vouches for them.
    pub trusted: bool,
    /// Which redirection headers of its calls are believed (`None`: the default policy).
    pub redirection: Option<Policy>,
}

#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub realm: String,
    /// Digest algorithms offered, in order of preference.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is good for, in seconds.
    pub nonce_secs: u64,
    /// Calls only from configured trunks (`[sip] calls_from = "trunks"`).
    pub calls_from_trunks_only: bool,
    /// Redirection headers believed from sources without a policy of their own.
    pub redirection: Policy,
    pub trunks: Vec<Trunk>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            realm: "voxbridge".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_secs: 300,
            calls_from_trunks_only: false,
            redirection: Policy::default(),
            trunks: vec![],
        }
    }
}

impl AccessPolicy {
    /// The trunk `ip` belongs to, if any (the first that names it).
    pub fn trunk(&self, ip: IpAddr) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.networks.iter().any(|n| n.contains(ip)))
    }

    /// The redirection policy for a call from `trunk` (or from no trunk).
    pub fn redirection<'a>(&'a self, trunk: Option<&'a Trunk>) -> &'a Policy {
        trunk.and_then(|t| t.redirection.as_ref()).unwrap_or(&self.redirection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_match() {
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped");
        let one: Network = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()) && !v6.contains("10.0.0.1".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<Network>().unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
