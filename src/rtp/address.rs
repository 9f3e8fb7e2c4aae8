//! Which media addresses named in SDP we send to before the far end's own packets have
//! proved them. An INVITE can name any address: without this check the server is a
//! reflector that sends a greeting's worth of RTP wherever a stranger points it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `[rtp] sdp_addresses`: how far an address named in SDP is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemotePolicy {
    /// Any unicast address (private and loopback included): a LAN or a trunk.
    #[default]
    Unicast,
    /// Only public unicast addresses; private, loopback, link-local and shared
    /// (CGNAT) ranges are learned from the media instead (callers behind NAT).
    Public,
    /// None: media goes only where the caller's own RTP comes from.
    Learned,
}

impl RemotePolicy {
    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            RemotePolicy::Unicast => "unicast",
            RemotePolicy::Public => "public",
            RemotePolicy::Learned => "learned",
        }
    }
}

impl std::str::FromStr for RemotePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "unicast" => Ok(RemotePolicy::Unicast),
            "public" => Ok(RemotePolicy::Public),
            "learned" => Ok(RemotePolicy::Learned),
            _ => Err(format!("sdp_addresses must be \"unicast\", \"public\" or \"learned\", not {s:?}")),
        }
    }
}

/// Whether RTP may go to `addr` on the SDP's word alone; the error says why not.
pub fn check(addr: SocketAddr, policy: RemotePolicy) -> Result<(), &'static str> {
    if addr.port() == 0 {
        return Err("port 0");
    }
    match addr.ip() {
        IpAddr::V4(ip) => never_v4(ip)?,
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => never_v4(v4)?,
            None => never_v6(ip)?,
        },
    }
    match policy {
        RemotePolicy::Unicast => Ok(()),
        RemotePolicy::Learned => Err("only learned addresses are used"),
        RemotePolicy::Public if is_local(addr.ip()) => Err("a private or local address"),
        RemotePolicy::Public => Ok(()),
    }
}

fn never_v4(ip: Ipv4Addr) -> Result<(), &'static str> {
    let o = ip.octets();
    if ip.is_unspecified() || o[0] == 0 {
        return Err("an unspecified address");
    }
    if ip.is_multicast() {
        return Err("a multicast address");
    }
    if ip.is_broadcast() || o[0] >= 240 {
        return Err("a broadcast or reserved address");
    }
    if ip.is_documentation() || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        return Err("a documentation or benchmarking address");
    }
    Ok(())
}

fn never_v6(ip: Ipv6Addr) -> Result<(), &'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Err("an unspecified address");
    }
    if ip.is_multicast() {
        return Err("a multicast address");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Err("a documentation or benchmarking address");
    }
    Ok(())
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_local(IpAddr::V4(v4)),
            None => {
                let s0 = v6.segments()[0];
                v6.is_loopback() || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(a: &str, p: RemotePolicy) -> bool {
        check(a.parse().unwrap(), p).is_ok()
    }

    #[test]
    fn non_unicast_and_unroutable_addresses_are_never_sent_to() {
        for a in [
            "224.0.0.1:4000",
            "239.1.2.3:4000",
            "255.255.255.255:4000",
            "0.0.0.0:4000",
            "0.1.2.3:4000",
            "240.0.0.1:4000",
            "192.0.2.1:4000",
            "198.51.100.7:4000",
            "203.0.113.9:4000",
            "198.18.0.1:4000",
            "127.0.0.1:0",
            "[ff02::1]:4000",
            "[::]:4000",
            "[2001:db8::1]:4000",
            "[::ffff:224.0.0.1]:4000",
        ] {
            assert!(!ok(a, RemotePolicy::Unicast), "{a} must be refused");
        }
        assert_eq!(check("224.0.0.1:4000".parse().unwrap(), RemotePolicy::Unicast), Err("a multicast address"));
    }

    #[test]
    fn the_policy_decides_about_private_and_public_unicast() {
        for a in ["127.0.0.1:4000", "10.1.2.3:4000", "192.168.1.5:4000", "100.64.0.1:4000", "[fd00::1]:4000"] {
            assert!(ok(a, RemotePolicy::Unicast), "{a}");
            assert!(!ok(a, RemotePolicy::Public), "{a} is not public");
        }
        assert!(ok("8.8.8.8:4000", RemotePolicy::Public));
        assert!(ok("[2a00:1450::1]:4000", RemotePolicy::Public));
        assert!(!ok("8.8.8.8:4000", RemotePolicy::Learned));
        assert_eq!("public".parse(), Ok(RemotePolicy::Public));
        assert!("everything".parse::<RemotePolicy>().unwrap_err().contains("sdp_addresses"));
    }
}
