//! A call's T.38 stream: UDPTL datagrams on the call's media port once an
//! `m=image … udptl t38` offer is accepted, IFPs in sequence order to the fax
//! application and its IFPs out with the error correction agreed in SDP.
//!
//! Datagrams are taken only from the host the SDP or the signalling named (a stranger
//! spraying the port must not feed the fax engine); the first accepted source is where
//! ours go from then on (NAT moves the port). Nothing from the far end for the media
//! timeout ends the call, as for RTP.

use crate::sdp::t38::T38Session;
use crate::udptl::{Receiver, Sender, MAX_IFP};
use std::net::{IpAddr, SocketAddr};

pub struct T38Stream {
    session: T38Session,
    receiver: Receiver,
    sender: Sender,
    /// Where our datagrams go: the SDP's address until the far end's own prove another.
    to: SocketAddr,
    latched: bool,
    signalling: Option<IpAddr>,
    idle_ticks: u32,
    timeout_ticks: u32,
    /// Datagrams refused: from a stranger, or not UDPTL.
    pub refused: u64,
}

impl T38Stream {
    /// `timeout_ticks`: 20 ms ticks without a datagram before the far end is taken as
    /// gone (0: never); `signalling`: the SIP peer's host, also allowed to send.
    pub fn new(session: T38Session, timeout_ticks: u32, signalling: Option<IpAddr>) -> T38Stream {
        T38Stream {
            receiver: Receiver::new(MAX_IFP),
            sender: Sender::new(session.error_correction),
            to: session.remote,
            latched: false,
            signalling,
            idle_ticks: 0,
            timeout_ticks,
            refused: 0,
            session,
        }
    }

    pub fn session(&self) -> &T38Session {
        &self.session
    }

    /// A session-timer refresh or a re-INVITE naming a new address: the stream goes
    /// on (sequence numbers, history, the engine), only the address follows.
    pub fn retarget(&mut self, session: T38Session) {
        if session.remote != self.session.remote {
            self.to = session.remote;
            self.latched = false;
        }
        self.session = session;
    }

    /// One datagram from the media port: the IFPs it completes, in order.
    pub fn handle_input(&mut self, from: SocketAddr, bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let known = if self.latched { from == self.to } else { self.may_send(from.ip()) };
        if !known {
            self.refused += 1;
            return Vec::new();
        }
        match self.receiver.receive(bytes) {
            Ok(ifps) => {
                if !self.latched {
                    if from != self.to {
                        tracing::info!(sdp = %self.to, source = %from, "fax datagrams come from another address (NAT); learned");
                    }
                    self.to = from;
                    self.latched = true;
                }
                self.idle_ticks = 0;
                ifps
            }
            Err(e) => {
                self.refused += 1;
                tracing::debug!(error = %e, %from, "not a UDPTL datagram; dropped");
                Vec::new()
            }
        }
    }

    fn may_send(&self, ip: IpAddr) -> bool {
        ip == self.session.remote.ip() || self.signalling.is_none_or(|s| s == ip)
    }

    /// The datagram carrying `ifp`, and where it goes.
    pub fn datagram(&mut self, ifp: &[u8]) -> (SocketAddr, Vec<u8>) {
        (self.to, self.sender.datagram(ifp))
    }

    /// The 20 ms tick; true once the far end has been silent for the timeout.
    pub fn handle_tick(&mut self) -> bool {
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        self.timeout_ticks != 0 && self.idle_ticks >= self.timeout_ticks
    }

    pub fn counts(&self) -> &crate::udptl::receiver::Counts {
        &self.receiver.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udptl::ErrorCorrection;

    fn session(remote: &str) -> T38Session {
        T38Session {
            remote: remote.parse().unwrap(),
            version: 0,
            max_bit_rate: 14_400,
            rate_management: crate::sdp::t38::RateManagement::TransferredTcf,
            error_correction: ErrorCorrection::Redundancy(2),
            far_max_ifp: 300,
        }
    }

    #[test]
    fn only_the_far_ends_host_feeds_the_engine_and_its_source_is_learned() {
        let mut s = T38Stream::new(session("127.0.0.1:4000"), 3, Some("127.0.0.2".parse().unwrap()));
        let mut far = Sender::new(ErrorCorrection::None);
        let stranger: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        assert!(s.handle_input(stranger, &far.datagram(b"evil")).is_empty());
        assert_eq!(s.refused, 1);
        // The far end's host, another port (NAT): taken and learned.
        let nat: SocketAddr = "127.0.0.1:4555".parse().unwrap();
        assert_eq!(s.handle_input(nat, &far.datagram(b"cng")), vec![(1, b"cng".to_vec())]);
        assert_eq!(s.datagram(b"ced").0, nat);
        // Once learned, the old port is a stranger too; garbage is refused, not a panic.
        assert!(s.handle_input("127.0.0.1:4000".parse().unwrap(), &far.datagram(b"x")).is_empty());
        assert!(s.handle_input(nat, b"\xff\xff\xff").is_empty());
        assert_eq!(s.refused, 3);
    }

    #[test]
    fn silence_for_the_timeout_ends_it_and_a_datagram_resets_the_count() {
        let mut s = T38Stream::new(session("127.0.0.1:4000"), 3, None);
        assert!(!s.handle_tick() && !s.handle_tick());
        s.handle_input("127.0.0.1:4000".parse().unwrap(), &Sender::new(ErrorCorrection::None).datagram(b"a"));
        assert!(!s.handle_tick() && !s.handle_tick());
        assert!(s.handle_tick(), "three ticks without a datagram");
    }
}
