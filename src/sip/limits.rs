//! Per-source request limits: one token bucket per source address, sans-IO (the
//! caller gives the time). A source over its rate is dropped or refused; it is logged
//! once per [`LOG_EVERY`], not once per packet, so a flood cannot fill the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How often one limited source is logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Sources remembered at most; beyond it the ones whose buckets are full again (idle)
/// are forgotten, so spoofed sources cannot grow the table without bound.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over the limit; `log` is true the first time in [`LOG_EVERY`] for this source,
    /// with how many were limited since the last log line.
    Limited {
        log: bool,
        since_last_log: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    logged: Option<Instant>,
    limited: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, Bucket>,
    /// Counts for the status line and the benchmarks.
    pub passed: u64,
    pub limited: u64,
}

impl RateLimiter {
    /// `rate` requests per second with `burst` at once; a rate of 0 lets everything pass.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter { rate, burst: burst.max(1.0), buckets: HashMap::new(), passed: 0, limited: 0 }
    }

    pub fn check(&mut self, now: Instant, source: IpAddr) -> Verdict {
        if self.rate <= 0.0 {
            self.passed += 1;
            return Verdict::Pass;
        }
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&source) {
            self.forget_idle(now);
        }
        let burst = self.burst;
        let b = self.buckets.entry(source).or_insert(Bucket { tokens: burst, at: now, logged: None, limited: 0 });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            self.passed += 1;
            return Verdict::Pass;
        }
        self.limited += 1;
        b.limited += 1;
        let log = b.logged.is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        if log {
            b.logged = Some(now);
            let since = std::mem::take(&mut b.limited);
            return Verdict::Limited { log, since_last_log: since };
        }
        Verdict::Limited { log: false, since_last_log: 0 }
    }

    /// Seconds until one more request from `source` would pass (for Retry-After).
    pub fn retry_after(&self, source: IpAddr) -> u64 {
        let missing = self.buckets.get(&source).map_or(0.0, |b| (1.0 - b.tokens).max(0.0));
        if self.rate <= 0.0 {
            return 0;
        }
        (missing / self.rate).ceil().max(1.0) as u64
    }

    fn forget_idle(&mut self, now: Instant) {
        let refill = Duration::from_secs_f64(self.burst / self.rate);
        self.buckets.retain(|_, b| now.saturating_duration_since(b.at) < refill);
        if self.buckets.len() >= MAX_SOURCES {
            // Every source is busy: forget them all rather than grow (they start full).
            self.buckets.clear();
        }
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10.0, 5.0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(l.check(t0, a), Verdict::Pass);
        }
        assert_eq!(l.check(t0, a), Verdict::Limited { log: true, since_last_log: 1 });
        assert_eq!(l.check(t0, a), Verdict::Limited { log: false, since_last_log: 0 });
        assert_eq!(l.check(t0, b), Verdict::Pass, "another source has its own bucket");
        assert_eq!(l.retry_after(a), 1);
        // 100 ms later one token is back.
        assert_eq!(l.check(t0 + Duration::from_millis(100), a), Verdict::Pass);
        assert!(matches!(l.check(t0 + Duration::from_millis(100), a), Verdict::Limited { log: false, .. }));
        // Logged again after LOG_EVERY, with what was limited meanwhile.
        let later = t0 + LOG_EVERY;
        for _ in 0..5 {
            l.check(later, a);
        }
        assert!(matches!(l.check(later, a), Verdict::Limited { log: true, since_last_log: 3 }));
        assert_eq!((l.passed, l.limited), (12, 4));
    }

    #[test]
    fn no_limit_passes_everything_and_the_table_stays_bounded() {
        let t0 = Instant::now();
        let mut off = RateLimiter::new(0.0, 1.0);
        assert!((0..10_000).all(|_| off.check(t0, "127.0.0.1".parse().unwrap()) == Verdict::Pass));
        let mut l = RateLimiter::new(1.0, 1.0);
        for i in 0..(MAX_SOURCES as u32 + 10) {
            l.check(t0, IpAddr::V4(i.into()));
        }
        assert!(l.sources() <= MAX_SOURCES);
    }
}
