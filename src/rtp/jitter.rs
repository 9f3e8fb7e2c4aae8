//! Receive-side reorder/jitter buffer, paced by the 20 ms playout clock.
//!
//! Packets are keyed by their widened sequence number. Playout starts once `delay`
//! frames are buffered; each tick takes the next sequence number: present → frame,
//! missing while later ones wait → lost (concealed by silence), buffer empty → underrun
//! (silence, and buffering starts again, so a sender that pauses is not counted as loss).

use std::collections::BTreeMap;

/// Packets further ahead than this reset the buffer (a new stream or a sender jump).
const MAX_AHEAD: u64 = 500;
/// Above this depth the oldest frames are dropped so latency cannot grow without bound.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after their playout time had passed.
    pub late: u64,
    /// Dropped because the buffer was too deep.
    pub overflow: u64,
    /// Never arrived by their playout time.
    pub lost: u64,
    pub underruns: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    Frame(Vec<u8>),
    Lost,
    /// Nothing to play (not started, or the sender paused).
    Silence,
}

#[derive(Debug)]
pub struct JitterBuffer {
    slots: BTreeMap<u64, Vec<u8>>,
    next: Option<u64>,
    delay: usize,
    playing: bool,
    pub stats: JitterStats,
}

impl JitterBuffer {
    /// The playout delay in frames it was made with.
    pub fn delay(&self) -> usize {
        self.delay
    }

    pub fn new(delay: usize) -> JitterBuffer {
        JitterBuffer {
            slots: BTreeMap::new(),
            next: None,
            delay: delay.max(1),
            playing: false,
            stats: JitterStats::default(),
        }
    }

    pub fn push(&mut self, seq: u64, payload: &[u8]) {
        self.stats.received += 1;
        match self.next {
            Some(n) if seq < n => {
                self.stats.late += 1;
                return;
            }
            Some(n) if seq > n + MAX_AHEAD => {
                self.slots.clear();
                self.next = Some(seq);
                self.playing = false;
            }
            None => self.next = Some(seq),
            _ => {}
        }
        if self.slots.insert(seq, payload.to_vec()).is_some() {
            self.stats.duplicates += 1;
        }
        while self.slots.len() > MAX_DEPTH {
            if let Some((&k, _)) = self.slots.iter().next() {
                self.slots.remove(&k);
                self.stats.overflow += 1;
                self.next = Some(k + 1);
            }
        }
    }

    /// One playout tick.
    pub fn pop(&mut self) -> Playout {
        let Some(n) = self.next else {
            return Playout::Silence;
        };
        if !self.playing {
            if self.slots.len() < self.delay {
                return Playout::Silence;
            }
            self.playing = true;
            // Start at the oldest buffered packet (reordering may have put one before `n`).
            if let Some((&first, _)) = self.slots.iter().next() {
                self.next = Some(first.min(n));
            }
        }
        let n = self.next.expect("set above");
        if let Some(p) = self.slots.remove(&n) {
            self.next = Some(n + 1);
            return Playout::Frame(p);
        }
        if self.slots.is_empty() {
            self.stats.underruns += 1;
            self.playing = false;
            return Playout::Silence;
        }
        self.next = Some(n + 1);
        self.stats.lost += 1;
        Playout::Lost
    }

    /// Remaining buffered packets are counted at the end of a call: if the call ended
    /// with packets still waiting, they were not lost, just not yet played.
    pub fn buffered(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_and_conceals() {
        let mut j = JitterBuffer::new(2);
        j.push(10, &[10]);
        assert_eq!(j.pop(), Playout::Silence, "waits for the playout delay");
        j.push(12, &[12]);
        j.push(11, &[11]);
        assert_eq!(j.pop(), Playout::Frame(vec![10]));
        assert_eq!(j.pop(), Playout::Frame(vec![11]));
        assert_eq!(j.pop(), Playout::Frame(vec![12]));
        j.push(15, &[15]);
        j.push(16, &[16]);
        assert_eq!(j.pop(), Playout::Lost);
        assert_eq!(j.pop(), Playout::Lost);
        assert_eq!(j.pop(), Playout::Frame(vec![15]));
        j.push(13, &[13]);
        assert_eq!(j.stats.late, 1);
        j.push(16, &[16]);
        assert_eq!(j.stats.duplicates, 1);
        assert_eq!(j.pop(), Playout::Frame(vec![16]));
        assert_eq!(j.pop(), Playout::Silence);
        assert_eq!((j.stats.lost, j.stats.underruns), (2, 1));
    }

    #[test]
    fn sender_pause_is_not_loss_and_jump_resets() {
        let mut j = JitterBuffer::new(1);
        j.push(1, &[1]);
        assert_eq!(j.pop(), Playout::Frame(vec![1]));
        for _ in 0..10 {
            assert_eq!(j.pop(), Playout::Silence);
        }
        j.push(2, &[2]);
        assert_eq!(j.pop(), Playout::Frame(vec![2]));
        j.push(100_000, &[9]);
        assert_eq!(j.pop(), Playout::Frame(vec![9]));
        assert_eq!(j.stats.lost, 0);
    }
}
