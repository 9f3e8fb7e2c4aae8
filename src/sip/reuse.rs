//! Connection reuse (RFC 5923): a peer whose requests over a TLS connection carry
//! `alias` in their top Via allows us to send our own requests to its sent-by address
//! over that connection instead of opening a new one — the way to reach a phone behind
//! NAT, or one that takes TLS only, with an unsolicited NOTIFY.
//!
//! RFC 5923 §5 wants the alias bound to an identity the TLS handshake proved. We have
//! no client certificates to match from phones, so the sent-by must be the very address
//! the connection comes from (its port may differ: the phone's listening port): only
//! that host could have claimed it. TCP (no TLS) never learns an alias, as §4 advises.

use super::txn::{Peer, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// The TLS connection port when a Via's sent-by names none (RFC 3261 §18.2.2).
const TLS_PORT: u16 = 5061;

/// Which TLS connection may carry our requests to which address.
#[derive(Debug, Default)]
pub struct Aliases {
    by_addr: HashMap<SocketAddr, u64>,
    /// One alias per connection: its latest (bounded by the connections open).
    by_conn: HashMap<u64, SocketAddr>,
}

impl Aliases {
    /// Learns from a request's top Via (`SIP/2.0/TLS host:port;branch=…;alias`) that
    /// arrived from `peer`.
    pub fn learn(&mut self, peer: Peer, top_via: &str) {
        let Transport::Tls(conn) = peer.transport else { return };
        if super::msg::header_param(top_via, "alias").is_none() {
            return;
        }
        let Some(addr) = sent_by(top_via).filter(|a| a.ip() == peer.addr.ip()) else { return };
        if self.by_conn.get(&conn) == Some(&addr) {
            return;
        }
        self.forget(conn);
        // A newer connection from the same address takes the alias over.
        if let Some(old) = self.by_addr.insert(addr, conn) {
            self.by_conn.remove(&old);
        }
        self.by_conn.insert(conn, addr);
    }

    /// The connection is closed: it carries nothing more.
    pub fn forget(&mut self, conn: u64) {
        if let Some(addr) = self.by_conn.remove(&conn) {
            if self.by_addr.get(&addr) == Some(&conn) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// How to reach `addr` over a connection it opened, if it allowed that.
    pub fn route(&self, addr: SocketAddr) -> Option<Transport> {
        self.by_addr.get(&addr).map(|&conn| Transport::Tls(conn))
    }
}

/// The sent-by of a Via as an address: an IP literal, its port or 5061. A host name
/// is no address we could compare with the connection's.
fn sent_by(via: &str) -> Option<SocketAddr> {
    let after_protocol = via.split_once(char::is_whitespace)?.1.trim_start();
    let host_port = after_protocol.split(';').next()?.trim();
    if let Ok(a) = host_port.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = host_port.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, TLS_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(conn: u64, from: &str) -> Peer {
        Peer { addr: from.parse().unwrap(), transport: Transport::Tls(conn) }
    }

    #[test]
    fn a_tls_peer_that_says_alias_can_be_reached_over_its_connection_until_it_closes() {
        let mut a = Aliases::default();
        let phone: SocketAddr = "192.0.2.7:5061".parse().unwrap();
        a.learn(tls(4, "192.0.2.7:40112"), "SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK1;alias");
        assert_eq!(a.route(phone), Some(Transport::Tls(4)));
        a.forget(4);
        assert_eq!(a.route(phone), None);
        // No port in the sent-by: TLS's 5061.
        a.learn(tls(5, "192.0.2.7:40113"), "SIP/2.0/TLS 192.0.2.7;alias;branch=z9hG4bK2");
        assert_eq!(a.route(phone), Some(Transport::Tls(5)));
    }

    #[test]
    fn no_alias_without_the_parameter_tls_or_the_connections_own_address() {
        let mut a = Aliases::default();
        a.learn(tls(1, "192.0.2.7:40112"), "SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK1");
        let tcp = Peer { addr: "192.0.2.7:40112".parse().unwrap(), transport: Transport::Tcp(2) };
        a.learn(tcp, "SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK1;alias");
        // Another host's address claimed: a hijack of its NOTIFYs.
        a.learn(tls(3, "198.51.100.9:40000"), "SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK1;alias");
        a.learn(tls(4, "192.0.2.7:40112"), "SIP/2.0/TLS phone.example:5061;branch=z9hG4bK1;alias");
        a.learn(tls(5, "192.0.2.7:40112"), "garbage");
        for port in [5060, 5061] {
            assert_eq!(a.route(SocketAddr::new("192.0.2.7".parse().unwrap(), port)), None);
        }
    }

    #[test]
    fn a_newer_connection_takes_the_alias_over_and_the_older_closing_keeps_it() {
        let mut a = Aliases::default();
        let phone: SocketAddr = "[2001:db8::7]:5061".parse().unwrap();
        a.learn(tls(1, "[2001:db8::7]:40000"), "SIP/2.0/TLS [2001:db8::7]:5061;alias;branch=z9hG4bK1");
        a.learn(tls(2, "[2001:db8::7]:40001"), "SIP/2.0/TLS [2001:db8::7]:5061;alias;branch=z9hG4bK2");
        assert_eq!(a.route(phone), Some(Transport::Tls(2)));
        a.forget(1);
        assert_eq!(a.route(phone), Some(Transport::Tls(2)));
        // One connection moving its alias elsewhere gives up the old one.
        a.learn(tls(2, "[2001:db8::7]:40001"), "SIP/2.0/TLS [2001:db8::7]:5071;alias;branch=z9hG4bK3");
        assert_eq!(a.route(phone), None);
        assert_eq!(a.route("[2001:db8::7]:5071".parse().unwrap()), Some(Transport::Tls(2)));
    }
}
