//! RFC 3261 section 17 transactions as sans-IO state machines.
//!
//! Each transaction is fed the time explicitly and reports its next deadline through
//! `poll_timeout`; `handle_timeout(now)` fires whatever is due. The timer names follow
//! the RFC (G, H, I, J for servers; E, F, K for non-INVITE clients). For a 2xx to INVITE
//! the server transaction moves to `Accepted` (RFC 6026); retransmitting the 2xx until
//! the ACK arrives is the dialog's job (RFC 3261 13.3.1.4), see `endpoint.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RTT estimate (RFC 3261 17.1.1.1).
pub const T1: Duration = Duration::from_millis(500);
/// Maximum retransmit interval for non-INVITE requests and INVITE responses.
pub const T2: Duration = Duration::from_secs(4);
/// Maximum time a message may remain in the network.
pub const T4: Duration = Duration::from_secs(5);

/// How a message arrived, and so how its answer must leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    /// A TCP connection, by the driver's connection id.
    Tcp(u64),
    /// A TLS connection (over TCP), by the driver's connection id.
    Tls(u64),
}

impl Transport {
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp(_) | Transport::Tls(_))
    }
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) => "TCP",
            Transport::Tls(_) => "TLS",
        }
    }

    /// The Via of a request we send from `local`. Over TLS it says `alias` (RFC 5923):
    /// the far end may send its own requests back on this connection — the only way to
    /// reach us for a call placed from a connection of our own, where nothing listens.
    pub fn via(self, local: std::net::SocketAddr, branch: &str) -> String {
        let alias = if matches!(self, Transport::Tls(_)) { ";alias" } else { "" };
        format!("SIP/2.0/{} {local};branch={branch};rport{alias}", self.via_name())
    }
}

/// The remote end of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// Server transaction key (RFC 3261 17.2.3): branch, sent-by, and method, where ACK
/// matches the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    pub branch: String,
    pub sent_by: String,
    pub method: String,
    /// Where the request came from. Not in RFC 3261's match (§17.2.3), but a
    /// retransmission comes from where the original did: a request that reuses an older
    /// transaction's branch from elsewhere is someone else's new request, and must not
    /// be answered by sending the old response to the old sender.
    pub source: std::net::SocketAddr,
}

impl TxKey {
    pub fn new(branch: &str, sent_by: &str, method: &str, source: std::net::SocketAddr) -> TxKey {
        let method = if method == "ACK" { "INVITE" } else { method };
        TxKey { branch: branch.to_string(), sent_by: sent_by.to_ascii_lowercase(), method: method.to_string(), source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE request received, nothing sent yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE only: ACK received for a non-2xx final response.
    Confirmed,
    /// INVITE only: a 2xx was sent (RFC 6026).
    Accepted,
    Terminated,
}

/// A server transaction, INVITE or non-INVITE.
#[derive(Debug)]
pub struct ServerTx {
    pub invite: bool,
    pub state: ServerState,
    pub peer: Peer,
    last_response: Option<Vec<u8>>,
    /// Timer G: next retransmission of a non-2xx final response, and its interval.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H, I, J or L, depending on the state.
    end: Option<Instant>,
}

impl ServerTx {
    pub fn new(invite: bool, peer: Peer) -> ServerTx {
        ServerTx {
            invite,
            state: if invite { ServerState::Proceeding } else { ServerState::Trying },
            peer,
            last_response: None,
            retransmit: None,
            end: None,
        }
    }

    /// A retransmission of the request arrived: the bytes to send again, if any.
    pub fn handle_retransmit(&self) -> Option<&[u8]> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.last_response.as_deref(),
            _ => None,
        }
    }

    /// Records a response the TU sends through this transaction. Returns false if the
    /// transaction can no longer send (already final), in which case nothing is sent.
    pub fn send_response(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return false;
        }
        let reliable = self.peer.transport.reliable();
        self.last_response = Some(bytes);
        if status < 200 {
            self.state = ServerState::Proceeding;
        } else if self.invite && status < 300 {
            self.state = ServerState::Accepted;
            self.end = Some(now + 64 * T1); // Timer L
        } else if self.invite {
            self.state = ServerState::Completed;
            if !reliable {
                self.retransmit = Some((now + T1, T1)); // Timer G
            }
            self.end = Some(now + 64 * T1); // Timer H
        } else {
            self.state = ServerState::Completed;
            self.end = Some(if reliable { now } else { now + 64 * T1 }); // Timer J
        }
        true
    }

    /// ACK for a non-2xx final response. Returns true if it belonged here.
    pub fn handle_ack(&mut self, now: Instant) -> bool {
        if self.invite && self.state == ServerState::Completed {
            self.state = ServerState::Confirmed;
            self.retransmit = None;
            self.end = Some(if self.peer.transport.reliable() { now } else { now + T4 }); // Timer I
            return true;
        }
        self.invite && self.state == ServerState::Confirmed
    }

    /// Fires due timers; returns bytes to retransmit, if any.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.end.is_some_and(|t| now >= t) {
            self.state = ServerState::Terminated;
            self.retransmit = None;
            self.end = None;
            return None;
        }
        match self.retransmit {
            Some((at, interval)) if now >= at => {
                let next = (interval * 2).min(T2);
                self.retransmit = Some((now + next, next));
                self.last_response.clone()
            }
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.0), self.end].into_iter().flatten().min()
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    pub fn is_final(&self) -> bool {
        !matches!(self.state, ServerState::Trying | ServerState::Proceeding)
    }
}

/// What a client transaction reports.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOutput {
    Retransmit(Vec<u8>),
    /// Timer F fired without a final response (counts as 408).
    TimedOut,
}

/// A non-INVITE client transaction (RFC 3261 17.1.2), used for BYE.
#[derive(Debug)]
pub struct ClientTx {
    pub peer: Peer,
    request: Vec<u8>,
    /// Timer E.
    retransmit: Option<(Instant, Duration)>,
    /// Timer F while waiting, then Timer K after the final response.
    end: Instant,
    pub final_status: Option<u16>,
    done: bool,
}

impl ClientTx {
    /// Starts the transaction; the caller transmits `request` once itself.
    pub fn new(now: Instant, peer: Peer, request: Vec<u8>) -> ClientTx {
        let retransmit = (!peer.transport.reliable()).then_some((now + T1, T1));
        ClientTx { peer, request, retransmit, end: now + 64 * T1, final_status: None, done: false }
    }

    /// A response matched this transaction. Returns the status if it was the first final one.
    pub fn handle_response(&mut self, now: Instant, status: u16) -> Option<u16> {
        if self.final_status.is_some() {
            return None;
        }
        if status < 200 {
            // Proceeding: keep retransmitting, at T2 (17.1.2.2).
            if let Some((at, _)) = self.retransmit {
                self.retransmit = Some((at, T2));
            }
            return None;
        }
        self.final_status = Some(status);
        self.retransmit = None;
        self.end = if self.peer.transport.reliable() { now } else { now + T4 }; // Timer K
        Some(status)
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<ClientOutput> {
        if self.done {
            return None;
        }
        if now >= self.end {
            self.done = true;
            self.retransmit = None;
            return self.final_status.is_none().then_some(ClientOutput::TimedOut);
        }
        match self.retransmit {
            Some((at, interval)) if now >= at => {
                let next = (interval * 2).min(T2);
                self.retransmit = Some((now + next, next));
                Some(ClientOutput::Retransmit(self.request.clone()))
            }
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        Some(self.retransmit.map_or(self.end, |r| r.0.min(self.end)))
    }

    pub fn is_terminated(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_via_offers_connection_reuse_over_tls_only() {
        let local = "192.0.2.1:5061".parse().unwrap();
        assert_eq!(Transport::Tls(3).via(local, "z9hG4bKa"), "SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKa;rport;alias");
        assert_eq!(Transport::Tcp(3).via(local, "z9hG4bKa"), "SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKa;rport");
        assert_eq!(Transport::Udp.via(local, "z9hG4bKa"), "SIP/2.0/UDP 192.0.2.1:5061;branch=z9hG4bKa;rport");
    }

    fn udp() -> Peer {
        Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport: Transport::Udp }
    }

    #[test]
    fn invite_error_response_retransmits_until_ack() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, udp());
        assert!(tx.send_response(t0, 100, b"100".to_vec()));
        assert_eq!(tx.handle_retransmit(), Some(&b"100"[..]));
        assert!(tx.send_response(t0, 486, b"486".to_vec()));
        assert!(!tx.send_response(t0, 200, b"200".to_vec()), "no second final response");
        // Timer G: T1, then 2*T1, then 4*T1...
        assert_eq!(tx.poll_timeout(), Some(t0 + T1));
        assert_eq!(tx.handle_timeout(t0 + T1), Some(b"486".to_vec()));
        assert_eq!(tx.poll_timeout(), Some(t0 + T1 + 2 * T1));
        assert!(tx.handle_ack(t0 + T1 * 2));
        assert_eq!(tx.state, ServerState::Confirmed);
        assert_eq!(tx.handle_timeout(t0 + T1 * 3), None, "ACK stops retransmission");
        tx.handle_timeout(t0 + T1 * 2 + T4);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_error_without_ack_ends_at_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, udp());
        tx.send_response(t0, 404, b"404".to_vec());
        let mut now = t0;
        let mut sent = 0;
        while !tx.is_terminated() {
            now = tx.poll_timeout().unwrap();
            if tx.handle_timeout(now).is_some() {
                sent += 1;
            }
        }
        assert_eq!(now, t0 + 64 * T1);
        // 0.5, 1.5, 3.5, 7.5, then every 4 s up to 32 s.
        assert_eq!(sent, 10);
    }

    #[test]
    fn tcp_has_no_retransmissions() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new(true, Peer { transport: Transport::Tcp(1), ..udp() });
        tx.send_response(t0, 487, b"487".to_vec());
        assert_eq!(tx.poll_timeout(), Some(t0 + 64 * T1));
        let mut nt = ServerTx::new(false, Peer { transport: Transport::Tcp(1), ..udp() });
        nt.send_response(t0, 200, b"200".to_vec());
        nt.handle_timeout(t0);
        assert!(nt.is_terminated());
    }

    #[test]
    fn client_tx_retransmits_and_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(t0, udp(), b"BYE".to_vec());
        assert_eq!(tx.handle_timeout(t0 + T1), Some(ClientOutput::Retransmit(b"BYE".to_vec())));
        let mut now = t0 + T1;
        let mut last = None;
        while let Some(t) = tx.poll_timeout() {
            now = t;
            last = tx.handle_timeout(now).or(last);
            if tx.is_terminated() {
                break;
            }
        }
        assert_eq!(last, Some(ClientOutput::TimedOut));
        assert_eq!(now, t0 + 64 * T1);

        let mut tx = ClientTx::new(t0, udp(), b"BYE".to_vec());
        assert_eq!(tx.handle_response(t0, 200), Some(200));
        assert_eq!(tx.handle_response(t0, 200), None, "retransmitted response is absorbed");
        assert_eq!(tx.handle_timeout(t0 + T1), None);
        assert_eq!(tx.handle_timeout(t0 + T4), None);
        assert!(tx.is_terminated());
    }
}
