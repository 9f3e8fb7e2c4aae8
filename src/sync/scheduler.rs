//! When sync sessions run: the account registry of seed section C, sans-IO.
//!
//! One session per account at a time. A trigger for an idle account starts a session;
//! a trigger for a busy account is coalesced into exactly one follow-up session, never
//! run in parallel. Each account is also polled every `poll` interval. A failed session
//! puts the account into exponential backoff; triggers meanwhile wait for its end. Other
//! accounts are never affected.
//!
//! Run loop: `trigger`/`handle_finished`/`handle_timeout` return the accounts to start
//! now; sleep until `poll_timeout`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub poll: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

#[derive(Debug)]
struct Account {
    running: bool,
    /// A trigger arrived while running or in backoff.
    pending: bool,
    failures: u32,
    /// Next poll (or, after a failure, next retry).
    next: Instant,
}

#[derive(Debug)]
pub struct Registry {
    timing: Timing,
    accounts: BTreeMap<String, Account>,
}

impl Registry {
    pub fn new(timing: Timing) -> Registry {
        Registry { timing, accounts: BTreeMap::new() }
    }

    /// Makes the set of accounts equal to `names` (mailboxes come and go); new ones are
    /// due at once.
    pub fn set_accounts(&mut self, now: Instant, names: &[String]) {
        self.accounts.retain(|k, _| names.contains(k));
        for n in names {
            self.accounts.entry(n.clone()).or_insert(Account {
                running: false,
                pending: false,
                failures: 0,
                next: now,
            });
        }
    }

    pub fn knows(&self, name: &str) -> bool {
        self.accounts.contains_key(name)
    }

    /// A reason to synchronize `name` now. Returns true if a session starts.
    pub fn trigger(&mut self, now: Instant, name: &str) -> bool {
        let Some(a) = self.accounts.get_mut(name) else { return false };
        if a.running || (a.failures > 0 && now < a.next) {
            a.pending = true;
            return false;
        }
        a.running = true;
        a.pending = false;
        true
    }

    /// A session ended. Returns true if a follow-up session starts at once.
    pub fn handle_finished(&mut self, now: Instant, name: &str, ok: bool) -> bool {
        let timing = self.timing;
        let Some(a) = self.accounts.get_mut(name) else { return false };
        a.running = false;
        if ok {
            a.failures = 0;
            a.next = now + timing.poll;
            if a.pending {
                a.pending = false;
                a.running = true;
                return true;
            }
        } else {
            a.failures += 1;
            let exp = timing.backoff_initial.saturating_mul(1 << (a.failures - 1).min(16));
            a.next = now + exp.min(timing.backoff_max);
        }
        false
    }

    /// The backoff delay an account is in, for logs.
    pub fn retry_in(&self, now: Instant, name: &str) -> Option<Duration> {
        self.accounts.get(name).filter(|a| a.failures > 0).map(|a| a.next.saturating_duration_since(now))
    }

    /// Accounts whose poll or retry is due: they start now.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for (name, a) in self.accounts.iter_mut() {
            if !a.running && now >= a.next {
                a.running = true;
                a.pending = false;
                out.push(name.clone());
            }
        }
        out
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.accounts.values().filter(|a| !a.running).map(|a| a.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(now: Instant) -> Registry {
        let mut r = Registry::new(Timing {
            poll: Duration::from_secs(60),
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(40),
        });
        r.set_accounts(now, &["a".into(), "b".into()]);
        r
    }

    #[test]
    fn triggers_on_a_busy_account_coalesce_into_one_follow_up() {
        let t = Instant::now();
        let mut r = reg(t);
        assert!(r.trigger(t, "a"));
        assert!(!r.trigger(t, "a"), "two triggers at once: one session");
        assert!(!r.trigger(t, "a"));
        assert!(r.handle_finished(t, "a", true), "exactly one follow-up");
        assert!(!r.handle_finished(t, "a", true), "and no more");
        assert!(r.trigger(t, "b"), "other accounts are independent");
    }

    #[test]
    fn polling_and_backoff() {
        let t = Instant::now();
        let mut r = reg(t);
        assert_eq!(r.handle_timeout(t), ["a", "b"], "new accounts are due at once");
        assert!(r.handle_timeout(t).is_empty(), "running accounts are not started twice");
        r.handle_finished(t, "a", true);
        r.handle_finished(t, "b", false);
        assert_eq!(r.poll_timeout(), Some(t + Duration::from_secs(5)), "b retries after the initial backoff");
        assert!(!r.trigger(t + Duration::from_secs(1), "b"), "a trigger waits for the backoff");
        assert_eq!(r.handle_timeout(t + Duration::from_secs(5)), ["b"]);
        r.handle_finished(t + Duration::from_secs(5), "b", false);
        assert_eq!(r.retry_in(t + Duration::from_secs(5), "b"), Some(Duration::from_secs(10)), "doubles");
        let t60 = t + Duration::from_secs(60);
        assert_eq!(r.handle_timeout(t60), ["a", "b"], "a polls on schedule, b retries");
        r.handle_finished(t60, "b", false);
        r.set_accounts(t60, &["b".into()]);
        let mut last = t;
        for _ in 0..6 {
            last = r.poll_timeout().unwrap();
            assert_eq!(r.handle_timeout(last), ["b"]);
            r.handle_finished(last, "b", false);
        }
        assert_eq!(r.retry_in(last, "b"), Some(Duration::from_secs(40)), "capped");
        let due = r.poll_timeout().unwrap();
        r.handle_timeout(due);
        r.handle_finished(due, "b", true);
        assert_eq!(r.retry_in(due, "b"), None, "success clears the backoff");
        assert_eq!(r.poll_timeout(), Some(due + Duration::from_secs(60)));
    }

    #[test]
    fn removed_accounts_are_forgotten() {
        let t = Instant::now();
        let mut r = reg(t);
        r.set_accounts(t, &["b".into()]);
        assert!(!r.trigger(t, "a"));
        assert_eq!(r.handle_timeout(t), ["b"]);
    }
}
