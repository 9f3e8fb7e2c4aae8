//! The sending side of UDPTL: one datagram per IFP, carrying the error correction the
//! SDP negotiated (`T38FaxUdpEC`): repeated earlier IFPs or FEC parity over them.

use super::packet::{Packet, Recovery};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCorrection {
    None,
    /// Repeat the last `n` IFPs in each datagram (t38UDPRedundancy).
    Redundancy(u8),
    /// Parity over `span` IFPs in each of `entries` interleaved groups (t38UDPFEC).
    Fec {
        span: u8,
        entries: u8,
    },
}

pub struct Sender {
    ec: ErrorCorrection,
    /// Extended number of the next datagram; its low 16 bits go on the wire.
    next: u64,
    /// The IFPs sent last, newest at the back.
    history: VecDeque<Vec<u8>>,
    sent: u64,
}

/// IFPs remembered for redundancy and parity.
const HISTORY: usize = 16;

impl Sender {
    pub fn new(ec: ErrorCorrection) -> Sender {
        let ec = match ec {
            ErrorCorrection::Redundancy(n) => ErrorCorrection::Redundancy(n.min(8)),
            // span × entries within the history (and the receiver's hold-back window).
            ErrorCorrection::Fec { span, entries } => {
                let entries = entries.clamp(1, 5);
                ErrorCorrection::Fec { span: span.clamp(1, (HISTORY / entries as usize).min(255) as u8), entries }
            }
            e => e,
        };
        Sender { ec, next: 0, history: VecDeque::new(), sent: 0 }
    }

    /// The sequence number the next datagram carries (tests; a far end starts anywhere).
    pub fn set_next_seq(&mut self, seq: u16) {
        self.next = seq as u64;
    }

    /// The datagram for one IFP.
    pub fn datagram(&mut self, ifp: &[u8]) -> Vec<u8> {
        let recovery = match self.ec {
            ErrorCorrection::None => Recovery::Redundancy(Vec::new()),
            ErrorCorrection::Redundancy(n) => {
                Recovery::Redundancy(self.history.iter().rev().take(n as usize).cloned().collect())
            }
            ErrorCorrection::Fec { span, entries } => {
                // Wound up as the stream starts: only groups whose IFPs all exist.
                let (span, entries) = (span as u64, entries as u64);
                let have = self.sent;
                let (span, entries) = if have < span * entries {
                    let e = have / span;
                    (if e == 0 { 0 } else { span }, e)
                } else {
                    (span, entries)
                };
                let parity = (0..entries)
                    .map(|m| {
                        // IFPs `sent + m - span*entries`, every `entries`-th, before `sent + m`.
                        let mut x: Vec<u8> = Vec::new();
                        for k in 0..span {
                            let idx = have + m - span * entries + k * entries; // ≥ 0 by the wind-up
                            let back = (have - idx) as usize; // 1 = the IFP sent last
                            if let Some(p) = self.history.get(self.history.len().wrapping_sub(back)) {
                                if x.len() < p.len() {
                                    x.resize(p.len(), 0);
                                }
                                for (b, o) in x.iter_mut().zip(p) {
                                    *b ^= o;
                                }
                            }
                        }
                        x
                    })
                    .collect();
                Recovery::Fec { span: span as u8, entries: parity }
            }
        };
        let p = Packet { seq: self.next as u16, primary: ifp.to_vec(), recovery };
        self.history.push_back(ifp.to_vec());
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.next += 1;
        self.sent += 1;
        p.encode()
    }
}
