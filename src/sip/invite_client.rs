//! The INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state), as
//! a sans-IO state machine: for the calls voxbridge places (sending a fax, notification
//! calls).
//!
//! Run loop: send the INVITE once yourself, then feed every response of this
//! transaction to [`InviteClientTx::handle_response`] and call
//! [`InviteClientTx::handle_timeout`] at [`InviteClientTx::poll_timeout`]; each returns
//! what to do. Timers: A (retransmit the INVITE over UDP, doubling from T1), B (no
//! answer after 64·T1: timed out), D (after a 3xx–6xx, absorb its retransmissions — 32 s
//! over UDP, none over TCP — answering each with the same ACK), M (after a 2xx, let its
//! retransmissions through to the dialog for 64·T1, RFC 6026). The ACK of a 3xx–6xx is
//! the transaction's (same branch); the ACK of a 2xx is the dialog's.

use super::txn::{Peer, T1};
use std::time::{Duration, Instant};

/// Timer D over an unreliable transport (RFC 3261: at least 32 s).
const TIMER_D: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, nothing heard yet (Timers A and B run).
    Calling,
    /// A provisional response came: wait for the final one.
    Proceeding,
    /// A 3xx–6xx came and was ACKed: absorb its retransmissions (Timer D).
    Completed,
    /// A 2xx came: its retransmissions go to the dialog (Timer M).
    Accepted,
    Terminated,
}

/// What the transaction asks of its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteOutput {
    /// Send these bytes to the peer (a retransmitted INVITE, or the ACK of an error).
    Transmit(Vec<u8>),
    /// A provisional response (180 Ringing, 183 Session Progress): the call is ringing.
    Provisional(u16),
    /// A 2xx: the call is answered (again, for a retransmitted 2xx: ACK it again).
    Answered(u16),
    /// A 3xx–6xx: the call failed with this status (its ACK is sent too).
    Failed(u16),
    /// Timer B: no response at all.
    TimedOut,
}

/// One INVITE we sent.
#[derive(Debug)]
pub struct InviteClientTx {
    pub peer: Peer,
    invite: Vec<u8>,
    phase: Phase,
    /// Timer A: next retransmission and its interval (UDP only).
    timer_a: Option<(Instant, Duration)>,
    /// Timer B in Calling; Timer D or M once final.
    deadline: Option<Instant>,
    /// The ACK of a 3xx–6xx, repeated for each retransmission of it.
    ack: Option<Vec<u8>>,
    pub final_status: Option<u16>,
}

impl InviteClientTx {
    /// The transaction of `invite`, just sent to `peer` at `now`.
    pub fn new(now: Instant, peer: Peer, invite: Vec<u8>) -> InviteClientTx {
        let timer_a = (!peer.transport.reliable()).then_some((now + T1, T1));
        InviteClientTx {
            peer,
            invite,
            phase: Phase::Calling,
            timer_a,
            deadline: Some(now + 64 * T1),
            ack: None,
            final_status: None,
        }
    }

    /// A response of this transaction with `status`. `ack` builds the ACK of a 3xx–6xx
    /// (RFC 3261 §17.1.1.3: the INVITE's Request-URI, Call-ID, From, CSeq number and
    /// branch, the response's To); it is called at most once.
    pub fn handle_response(&mut self, now: Instant, status: u16, ack: impl FnOnce() -> Vec<u8>) -> Vec<InviteOutput> {
        match (self.phase, status) {
            (Phase::Calling | Phase::Proceeding, 100..=199) => {
                self.phase = Phase::Proceeding;
                // A provisional answer stops Timers A and B: the far end has it.
                self.timer_a = None;
                self.deadline = None;
                vec![InviteOutput::Provisional(status)]
            }
            (Phase::Calling | Phase::Proceeding, 200..=299) => {
                self.phase = Phase::Accepted;
                self.timer_a = None;
                self.deadline = Some(now + 64 * T1); // Timer M
                self.final_status = Some(status);
                vec![InviteOutput::Answered(status)]
            }
            (Phase::Calling | Phase::Proceeding, 300..=699) => {
                self.phase = Phase::Completed;
                self.timer_a = None;
                self.deadline = Some(if self.peer.transport.reliable() { now } else { now + TIMER_D });
                self.final_status = Some(status);
                let ack = ack();
                self.ack = Some(ack.clone());
                vec![InviteOutput::Failed(status), InviteOutput::Transmit(ack)]
            }
            // A retransmitted 2xx: the dialog ACKs it again (RFC 6026 §7.2).
            (Phase::Accepted, 200..=299) => vec![InviteOutput::Answered(status)],
            // A retransmitted error: our ACK was lost; send it again.
            (Phase::Completed, 300..=699) => self.ack.clone().map(InviteOutput::Transmit).into_iter().collect(),
            // Late provisionals, a 2xx after an error or the reverse: nothing to do.
            _ => Vec::new(),
        }
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<InviteOutput> {
        if self.deadline.is_some_and(|d| now >= d) {
            let timed_out = self.phase == Phase::Calling;
            self.phase = Phase::Terminated;
            self.timer_a = None;
            self.deadline = None;
            return timed_out.then_some(InviteOutput::TimedOut);
        }
        match self.timer_a {
            Some((at, interval)) if now >= at => {
                // Timer A doubles without the T2 cap of non-INVITE requests.
                let next = interval * 2;
                self.timer_a = Some((now + next, next));
                Some(InviteOutput::Transmit(self.invite.clone()))
            }
            _ => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timer_a, self.deadline) {
            (Some((a, _)), Some(d)) => Some(a.min(d)),
            (Some((a, _)), None) => Some(a),
            (None, d) => d,
        }
    }

    /// Whether a CANCEL may be sent now: only once a provisional response came, and
    /// before the final one (RFC 3261 §9.1).
    pub fn can_cancel(&self) -> bool {
        self.phase == Phase::Proceeding
    }

    pub fn is_terminated(&self) -> bool {
        self.phase == Phase::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::super::txn::Transport;
    use super::InviteOutput::*;
    use super::*;

    fn peer(transport: Transport) -> Peer {
        Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport }
    }

    /// Every output due up to `until`, stepping the virtual clock to each wake-up.
    fn run_until(tx: &mut InviteClientTx, until: Instant) -> Vec<InviteOutput> {
        let mut out = Vec::new();
        while let Some(at) = tx.poll_timeout().filter(|at| *at <= until) {
            out.extend(tx.handle_timeout(at));
        }
        out
    }

    #[test]
    fn timer_a_doubles_until_timer_b_times_the_call_out() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, peer(Transport::Udp), b"INVITE".to_vec());
        let mut sends = Vec::new();
        while let Some(at) = tx.poll_timeout() {
            match tx.handle_timeout(at) {
                Some(Transmit(b)) => sends.push(((at - t0).as_millis(), b)),
                Some(TimedOut) => {
                    assert_eq!(at - t0, 64 * T1, "Timer B");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        let at: Vec<u128> = sends.iter().map(|s| s.0).collect();
        assert_eq!(at, [500, 1500, 3500, 7500, 15500, 31500], "A doubles from T1, uncapped");
        assert!(sends.iter().all(|s| s.1 == b"INVITE"));
        assert!(tx.is_terminated() && tx.poll_timeout().is_none());
    }

    #[test]
    fn a_provisional_stops_the_retransmissions_and_allows_cancel() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, peer(Transport::Udp), b"INVITE".to_vec());
        assert!(!tx.can_cancel(), "no CANCEL before a provisional response");
        assert_eq!(tx.handle_timeout(t0 + T1), Some(Transmit(b"INVITE".to_vec())));
        assert_eq!(tx.handle_response(t0 + T1, 180, || unreachable!()), [Provisional(180)]);
        assert!(tx.can_cancel());
        assert_eq!(tx.poll_timeout(), None, "Proceeding waits for the final answer");
        assert!(run_until(&mut tx, t0 + Duration::from_secs(120)).is_empty());
        assert_eq!(tx.handle_response(t0 + T1, 183, || unreachable!()), [Provisional(183)]);
    }

    #[test]
    fn an_error_is_acked_by_the_transaction_and_its_retransmissions_absorbed() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, peer(Transport::Udp), b"INVITE".to_vec());
        tx.handle_response(t0, 100, || unreachable!());
        let mut built = 0;
        let out = tx.handle_response(t0 + Duration::from_secs(2), 486, || {
            built += 1;
            b"ACK".to_vec()
        });
        assert_eq!(out, [Failed(486), Transmit(b"ACK".to_vec())]);
        assert!(!tx.can_cancel());
        // The 486 again (our ACK was lost): the same ACK, no second failure.
        let again = tx.handle_response(t0 + Duration::from_secs(3), 486, || panic!("built once"));
        assert_eq!(again, [Transmit(b"ACK".to_vec())]);
        assert_eq!(built, 1);
        assert!(tx.handle_response(t0 + Duration::from_secs(3), 200, || unreachable!()).is_empty());
        // Timer D: 32 s after the error, gone, no output.
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(2) + TIMER_D));
        assert_eq!(tx.handle_timeout(t0 + Duration::from_secs(34)), None);
        assert!(tx.is_terminated());
        assert_eq!(tx.final_status, Some(486));
    }

    #[test]
    fn a_2xx_goes_to_the_dialog_each_time_until_timer_m() {
        for status in [200, 202] {
            let t0 = Instant::now();
            let mut tx = InviteClientTx::new(t0, peer(Transport::Udp), b"INVITE".to_vec());
            assert_eq!(tx.handle_response(t0, status, || unreachable!()), [Answered(status)]);
            assert_eq!(tx.handle_response(t0 + T1, status, || unreachable!()), [Answered(status)], "ACK again");
            assert!(tx.handle_response(t0 + T1, 180, || unreachable!()).is_empty());
            assert!(tx.handle_response(t0 + T1, 500, || unreachable!()).is_empty());
            assert_eq!(tx.poll_timeout(), Some(t0 + 64 * T1), "Timer M");
            assert_eq!(tx.handle_timeout(t0 + 64 * T1), None);
            assert!(tx.is_terminated());
        }
    }

    #[test]
    fn over_tcp_nothing_is_retransmitted_and_an_error_ends_at_once() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, peer(Transport::Tcp(3)), b"INVITE".to_vec());
        assert_eq!(tx.poll_timeout(), Some(t0 + 64 * T1), "Timer B only");
        let out = tx.handle_response(t0, 603, || b"ACK".to_vec());
        assert_eq!(out, [Failed(603), Transmit(b"ACK".to_vec())]);
        assert_eq!(tx.poll_timeout(), Some(t0), "Timer D is zero over TCP");
        assert_eq!(tx.handle_timeout(t0), None);
        assert!(tx.is_terminated());
        let mut tx = InviteClientTx::new(t0, peer(Transport::Tcp(3)), b"INVITE".to_vec());
        assert_eq!(tx.handle_timeout(t0 + 64 * T1), Some(TimedOut));
    }
}
