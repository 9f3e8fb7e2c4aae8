//! A priority queue of deadlines, one per key (a transaction, a call's 2xx, a
//! subscription), sans-IO: the cost of a timer event depends on what is due, not on
//! how many transactions or subscriptions exist.
//!
//! Setting a key's deadline again leaves its old entry in the heap; an entry is acted
//! on only if it is still its key's deadline when it comes up (lazy deletion), so
//! [`TimerQueue::next`] may name an instant at which nothing is due — an early
//! wake-up, never a late one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// Heap entries are small — an instant and a number — so that a push or pop among
/// tens of thousands of deadlines touches little memory; the key is looked up by number.
#[derive(Debug)]
pub struct TimerQueue<K: Hash + Eq + Clone> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Each key's deadline in force, and the number of its heap entry.
    current: HashMap<K, (Instant, u64)>,
    keys: HashMap<u64, K>,
    seq: u64,
}

impl<K: Hash + Eq + Clone> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue { heap: BinaryHeap::new(), current: HashMap::new(), keys: HashMap::new(), seq: 0 }
    }
}

impl<K: Hash + Eq + Clone> TimerQueue<K> {
    /// Sets (or, with `None`, clears) `key`'s deadline.
    pub fn set(&mut self, key: K, at: Option<Instant>) {
        match at {
            None => {
                if let Some((_, old)) = self.current.remove(&key) {
                    self.keys.remove(&old);
                }
            }
            Some(at) => {
                if self.current.get(&key).is_some_and(|(t, _)| *t == at) {
                    return;
                }
                self.seq += 1;
                if let Some((_, old)) = self.current.insert(key.clone(), (at, self.seq)) {
                    self.keys.remove(&old);
                }
                self.keys.insert(self.seq, key);
                self.heap.push(Reverse((at, self.seq)));
            }
        }
        // Stale entries are dropped as they come up; if they pile up (deadlines moved
        // often, far ahead), rebuild from the deadlines in force.
        if self.heap.len() > 64 && self.heap.len() > 4 * self.current.len() {
            self.heap = self.current.values().map(|&e| Reverse(e)).collect();
        }
    }

    /// The earliest entry's instant (possibly a stale one: an early wake-up).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The keys whose deadline has come, in deadline order; their deadlines are cleared
    /// (set them again for their next one).
    pub fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(&Reverse((at, seq))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if let Some(key) = self.keys.remove(&seq) {
                self.current.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// Deadlines in force.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_keys_come_in_order_and_moved_or_cleared_deadlines_do_not_fire() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = TimerQueue::default();
        q.set("a", Some(t0 + 3 * s));
        q.set("b", Some(t0 + s));
        q.set("c", Some(t0 + 2 * s));
        q.set("c", Some(t0 + 5 * s)); // moved later
        q.set("d", Some(t0 + s));
        q.set("d", None); // cleared
        assert_eq!(q.next(), Some(t0 + s));
        assert_eq!(q.pop_due(t0 + s), vec!["b"]);
        assert_eq!(q.pop_due(t0 + 2 * s), Vec::<&str>::new(), "c's old deadline is stale");
        assert_eq!(q.pop_due(t0 + 10 * s), vec!["a", "c"]);
        assert!(q.is_empty() && q.next().is_none());
    }

    #[test]
    fn stale_entries_are_bounded_when_deadlines_move_often() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        for i in 0..10_000u64 {
            q.set(i % 10, Some(t0 + Duration::from_secs(i)));
        }
        assert_eq!(q.len(), 10);
        assert!(q.heap.len() <= 64, "{} entries for 10 deadlines", q.heap.len());
        assert_eq!(q.pop_due(t0 + Duration::from_secs(20_000)).len(), 10);
    }
}
