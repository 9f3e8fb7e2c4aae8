//! The receiving side of UDPTL: datagrams in any order, IFPs out in sequence order,
//! gaps filled from redundancy (the IFPs a datagram repeats) or repaired from FEC
//! parity, what cannot be recovered counted as lost.
//!
//! Sequence numbers are extended to 64 bits as they come (a fax sends far fewer than
//! 2^15 datagrams between two that arrive), so wrap-around needs no special case.

use super::packet::{Packet, Recovery, UdptlError};
use std::collections::{BTreeMap, VecDeque};

/// How many datagrams past a missing IFP FEC may still repair it: parity covers at most
/// `span * entries` earlier IFPs, which no sender sets above 15.
const FEC_HOLD: u64 = 16;
/// Delivered IFPs kept as the other operands of parity that arrives later.
const KEEP: u64 = 32;
/// A jump further than this is a new stream (the far end restarted), not a gap.
const MAX_GAP: u64 = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub recovered: u64,
    pub lost: u64,
    /// Datagrams repeating an IFP already delivered (or too late to deliver).
    pub late: u64,
}

/// Parity over `covered` (extended sequence numbers), from one FEC entry. An IFP
/// repaired from it has the parity's length: shorter ones come back with zero octets
/// after them.
struct Parity {
    covered: Vec<u64>,
    data: Vec<u8>,
}

pub struct Receiver {
    max_ifp: usize,
    /// The last sequence number seen, raw and extended.
    last: Option<(u16, u64)>,
    /// The next extended sequence number to deliver.
    next: u64,
    /// IFPs known: not yet delivered (at `next` and after), and the last delivered ones.
    known: BTreeMap<u64, Vec<u8>>,
    parity: VecDeque<Parity>,
    /// Whether the stream uses FEC (missing IFPs are waited for).
    fec: bool,
    pub counts: Counts,
}

impl Receiver {
    pub fn new(max_ifp: usize) -> Receiver {
        Receiver {
            max_ifp,
            last: None,
            next: 0,
            known: BTreeMap::new(),
            parity: VecDeque::new(),
            fec: false,
            counts: Counts::default(),
        }
    }

    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            // Start far from zero so that IFPs "before" the first stay representable.
            None => (1 << 32) + seq as u64,
            Some((raw, ext)) => ext.wrapping_add(seq.wrapping_sub(raw) as i16 as i64 as u64),
        };
        if self.last.is_none_or(|(_, e)| ext > e) {
            self.last = Some((seq, ext));
        }
        ext
    }

    /// One datagram: the IFPs it makes deliverable, in order, with their sequence
    /// numbers. A malformed datagram is an error and changes nothing.
    pub fn receive(&mut self, datagram: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, UdptlError> {
        let p = Packet::parse(datagram, self.max_ifp)?;
        self.counts.received += 1;
        let first = self.last.is_none();
        let s = self.extend(p.seq);
        if first {
            self.next = s;
        } else if s > self.next + MAX_GAP {
            // A restarted stream: what was missing will not come.
            self.counts.lost += s - self.next;
            self.known.clear();
            self.parity.clear();
            self.next = s;
        }
        // Already delivered, or held already (a repeat).
        if !self.missing(s) {
            self.counts.late += 1;
        }
        self.learn(s, p.primary);
        match p.recovery {
            Recovery::Redundancy(older) => {
                self.fec = false;
                for (k, ifp) in older.into_iter().enumerate() {
                    if let Some(seq) = s.checked_sub(k as u64 + 1) {
                        if self.missing(seq) {
                            self.counts.recovered += 1;
                            self.learn(seq, ifp);
                        }
                    }
                }
            }
            Recovery::Fec { span, entries } => {
                self.fec = true;
                let n = entries.len() as u64;
                for (m, data) in entries.into_iter().enumerate() {
                    let limit = s + m as u64;
                    let Some(start) = limit.checked_sub(span as u64 * n) else { continue };
                    let covered: Vec<u64> = (0..span as u64).map(|k| start + k * n).collect();
                    self.parity.push_back(Parity { covered, data });
                }
                self.repair();
            }
        }
        Ok(self.deliver(s))
    }

    /// Not yet known and still deliverable.
    fn missing(&self, seq: u64) -> bool {
        seq >= self.next && !self.known.contains_key(&seq)
    }

    fn learn(&mut self, seq: u64, ifp: Vec<u8>) {
        if seq + KEEP >= self.next {
            self.known.entry(seq).or_insert(ifp);
        }
    }

    /// XOR parity with exactly one operand missing gives that operand; repeated until
    /// nothing more comes of it.
    fn repair(&mut self) {
        loop {
            let mut repaired = None;
            for p in &self.parity {
                let absent: Vec<u64> = p.covered.iter().copied().filter(|s| !self.known.contains_key(s)).collect();
                if let [only] = absent[..] {
                    if self.missing(only) {
                        let mut ifp = p.data.clone();
                        for s in &p.covered {
                            if let Some(other) = self.known.get(s) {
                                for (b, o) in ifp.iter_mut().zip(other) {
                                    *b ^= o;
                                }
                            }
                        }
                        repaired = Some((only, ifp));
                        break;
                    }
                }
            }
            match repaired {
                Some((seq, ifp)) => {
                    self.counts.recovered += 1;
                    self.known.insert(seq, ifp);
                }
                None => break,
            }
        }
    }

    /// Everything in order from `next`; a missing IFP is skipped (lost) at once with
    /// redundancy — no later datagram repeats it — and after [`FEC_HOLD`] datagrams with
    /// FEC, whose later parity may still repair it.
    fn deliver(&mut self, newest: u64) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let highest = self.last.map_or(newest, |(_, e)| e);
        while self.next <= highest {
            match self.known.get(&self.next) {
                Some(ifp) => out.push((self.next as u16, ifp.clone())),
                None if !self.fec || highest - self.next >= FEC_HOLD => self.counts.lost += 1,
                None => break,
            }
            self.next += 1;
        }
        // Keep the last delivered ones for parity still to come, nothing older.
        let floor = self.next.saturating_sub(KEEP);
        self.known = self.known.split_off(&floor);
        self.parity.retain(|p| p.covered.iter().any(|s| *s >= self.next));
        while self.parity.len() > 64 {
            self.parity.pop_front();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::sender::{ErrorCorrection, Sender};
    use super::*;

    fn ifps(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| (0..(5 + i % 7)).map(|k| (i * 31 + k) as u8).collect()).collect()
    }

    /// Sends `n` IFPs with `ec`, drops the datagrams `drop` says, and returns what the
    /// receiver delivered and its counts.
    fn run(ec: ErrorCorrection, n: usize, mut drop: impl FnMut(usize) -> bool) -> (Vec<Vec<u8>>, Counts) {
        let mut tx = Sender::new(ec);
        let mut rx = Receiver::new(1400);
        let mut got = Vec::new();
        for (i, ifp) in ifps(n).iter().enumerate() {
            let d = tx.datagram(ifp);
            if !drop(i) {
                got.extend(rx.receive(&d).unwrap().into_iter().map(|(_, v)| v));
            }
        }
        (got, rx.counts)
    }

    #[test]
    fn in_order_without_loss_every_ifp_once() {
        for ec in [ErrorCorrection::None, ErrorCorrection::Redundancy(3), ErrorCorrection::Fec { span: 3, entries: 3 }]
        {
            let (got, c) = run(ec, 100, |_| false);
            assert_eq!(got.len(), 100, "{ec:?}");
            // FEC holds nothing back when nothing is missing.
            assert_eq!(got, ifps(100), "{ec:?}");
            assert_eq!((c.lost, c.recovered), (0, 0));
        }
    }

    #[test]
    fn redundancy_fills_every_gap_shorter_than_its_depth() {
        // Every 5th datagram and pairs of them lost: 2 redundant IFPs cover both.
        let (got, c) = run(ErrorCorrection::Redundancy(2), 200, |i| i % 5 == 2 || i % 17 == 8);
        assert_eq!(got, ifps(200));
        assert!(c.recovered > 40 && c.lost == 0, "{c:?}");
        // Without redundancy the same loss loses IFPs, counted.
        let (got, c) = run(ErrorCorrection::None, 200, |i| i % 5 == 2);
        assert_eq!((got.len(), c.lost), (160, 40));
    }

    #[test]
    fn five_percent_random_loss_with_three_repeats_loses_nothing() {
        // A fixed pseudo-random 5 % (a linear congruential generator, so the run repeats).
        let mut x: u64 = 0x5eed;
        let mut dropped = 0;
        let (got, c) = run(ErrorCorrection::Redundancy(3), 10_000, |i: usize| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let drop = i > 0 && (x >> 33) % 100 < 5;
            dropped += drop as usize;
            drop
        });
        assert!((400..600).contains(&dropped), "{dropped} dropped");
        assert_eq!((got.len(), c.lost), (10_000, 0));
        assert_eq!(got, ifps(10_000));
    }

    #[test]
    fn fec_repairs_isolated_losses_and_delivers_in_order() {
        // One loss in every 10: within a parity group of span 3 only one is ever missing.
        let (got, c) = run(ErrorCorrection::Fec { span: 3, entries: 3 }, 300, |i| i % 10 == 7 && i > 20);
        // The last few stay held for parity that never comes; all before are there. A
        // repaired IFP is as long as the longest in its parity group (T.38 gives no
        // length for it): the original, then zero octets — as Asterisk and spandsp
        // deliver it too.
        let sent = ifps(300);
        for (i, g) in got.iter().enumerate() {
            assert!(g.starts_with(&sent[i]) && g[sent[i].len()..].iter().all(|b| *b == 0), "IFP {i}: {g:?}");
        }
        assert!(got.len() >= 300 - 16, "{}", got.len());
        assert!(c.recovered >= 25 && c.lost == 0, "{c:?}");
    }

    #[test]
    fn late_duplicates_and_sequence_wrap_are_handled() {
        let mut tx = Sender::new(ErrorCorrection::Redundancy(1));
        tx.set_next_seq(65534);
        let mut rx = Receiver::new(1400);
        let d: Vec<Vec<u8>> = ifps(6).iter().map(|i| tx.datagram(i)).collect();
        let mut got = Vec::new();
        for i in [0, 1, 3, 2, 2, 4, 5] {
            got.extend(rx.receive(&d[i]).unwrap());
        }
        let seqs: Vec<u16> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, [65534, 65535, 0, 1, 2, 3], "across the wrap, each once");
        assert_eq!(rx.counts.late, 2, "datagram 2 came after 3 repeated it, then again");
        assert!(rx.receive(&[0, 1, 0xff]).is_err());
    }
}
