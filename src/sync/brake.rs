//! The safety brake on removals (pure): a pass that would remove a large share of a
//! mailbox's rows as "gone from the server" at once is far more likely a mail server's
//! fault — an empty folder while storage is unmounted, an index rebuilt wrong, a proxy
//! that answers for a dead server — than a subscriber who emptied their mailbox. Such a
//! removal is held, and applied only when an admin confirms it or when the same
//! condition holds on consecutive passes at least `confirm_after_secs` apart.
//!
//! Only rows that would go because the server no longer lists them are braked: deletes
//! the subscriber asked for (a D) and rows the server reported deleted one by one in
//! small numbers pass at once, so deleting one voice mail in a mail client is carried
//! without delay.

/// When a pass's removals are held (`[sync] max_gone_fraction`, `max_gone_rows`,
/// `confirm_removals_after_secs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brake {
    /// A removal is held when it exceeds this share of the mailbox's rows on the server…
    pub max_gone_fraction: f64,
    /// …and more than this many rows.
    pub max_gone_rows: usize,
    /// A held removal is applied by a pass that finds it again this long after it was
    /// first held (every pass in between having found it too).
    pub confirm_after_secs: i64,
}

impl Default for Brake {
    fn default() -> Self {
        Brake { max_gone_fraction: 0.5, max_gone_rows: 10, confirm_after_secs: 3600 }
    }
}

/// What to do with the rows a pass found gone from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Remove them.
    Remove,
    /// Remove them: the brake would hold them, but the admin confirmed or the
    /// condition held long enough (since this time, unix seconds).
    Confirmed { held_since: Option<i64> },
    /// Keep them all; the removal is held since `since` (unix seconds).
    Hold { since: i64 },
}

impl Brake {
    /// Whether removing `gone` of the mailbox's `rows` (rows linked to the server, before
    /// the pass) is large enough to hold.
    pub fn trips(&self, gone: usize, rows: usize) -> bool {
        gone > self.max_gone_rows && gone as f64 > self.max_gone_fraction * rows as f64
    }

    /// How many rows a mailbox needs for removing `gone` of them to be within the share
    /// (`trips` is false for any number of rows from this one up).
    pub fn rows_that_allow(&self, gone: usize) -> usize {
        (gone as f64 / self.max_gone_fraction).floor() as usize + 1
    }

    /// The verdict for a pass at `now` that found `gone` of `rows` gone, given when an
    /// earlier consecutive pass first held a removal (`held_since`) and whether the admin
    /// confirmed removals for this pass.
    pub fn decide(&self, gone: usize, rows: usize, held_since: Option<i64>, confirmed: bool, now: i64) -> Verdict {
        if !self.trips(gone, rows) {
            return Verdict::Remove;
        }
        match held_since {
            _ if confirmed => Verdict::Confirmed { held_since },
            Some(since) if now - since >= self.confirm_after_secs => Verdict::Confirmed { held_since },
            Some(since) => Verdict::Hold { since },
            None => Verdict::Hold { since: now },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_or_proportionally_small_removals_pass() {
        let b = Brake::default();
        assert_eq!(b.decide(1, 1, None, false, 0), Verdict::Remove, "the one voice mail deleted in a mail client");
        assert_eq!(b.decide(10, 10, None, false, 0), Verdict::Remove, "not more than max_gone_rows");
        assert_eq!(b.decide(400, 1000, None, false, 0), Verdict::Remove, "not more than half");
        assert_eq!(b.decide(0, 0, None, false, 0), Verdict::Remove);
    }

    #[test]
    fn a_mass_removal_is_held_until_confirmed_or_seen_again_later() {
        let b = Brake { confirm_after_secs: 600, ..Brake::default() };
        assert_eq!(b.decide(20, 20, None, false, 1000), Verdict::Hold { since: 1000 });
        assert_eq!(b.decide(11, 20, None, false, 1000), Verdict::Hold { since: 1000 });
        // Seen again too soon: still held, since the first time.
        assert_eq!(b.decide(20, 20, Some(1000), false, 1599), Verdict::Hold { since: 1000 });
        // Seen again far enough apart: applied.
        assert_eq!(b.decide(20, 20, Some(1000), false, 1600), Verdict::Confirmed { held_since: Some(1000) });
        // The admin confirms at once.
        assert_eq!(b.decide(20, 20, None, true, 1000), Verdict::Confirmed { held_since: None });
        // A pass that no longer finds the condition simply removes what it finds.
        assert_eq!(b.decide(1, 20, Some(1000), false, 1100), Verdict::Remove);
    }

    #[test]
    fn rows_are_counted_only_as_far_as_the_share_needs() {
        for fraction in [0.5, 0.3, 1.0 / 3.0, 0.9, 1.0] {
            let b = Brake { max_gone_fraction: fraction, max_gone_rows: 0, ..Brake::default() };
            for gone in 1..200 {
                // A count capped at `enough` decides as the exact count would.
                let enough = b.rows_that_allow(gone);
                assert!((0..3 * enough).all(|rows| b.trips(gone, rows.min(enough)) == b.trips(gone, rows)));
            }
        }
    }
}
