//! The message desk, sans-IO: what the SMDI link task runs. Bytes from the PBX, calls
//! that wait for their call detail, wanted lamp states, the link going up and down and
//! the time go in; lamp commands to write, matched call details and what to log come
//! out, with the next time to be woken.
//!
//! **Matching.** A call detail (MD) names the terminal (logical port) its call arrives
//! on, and so does the SIP call when the configuration maps it: they are matched by
//! terminal, whichever comes first — never "the oldest MD", which hands a caller the
//! wrong mailbox as soon as two calls overlap (Asterisk's res_smdi). A call whose terminal
//! is unknown is matched by its calling number, within a window. An MD no call took is
//! dropped after `md_expire` (logged); a call that waits longer than its own wait gets
//! `NoDetail` and is routed as without SMDI.
//!
//! **Lamps.** Each station has a wanted state; a change is queued once per station
//! (repeated changes coalesce: only the latest is sent), and commands leave at the
//! line's speed (`chars_per_sec`, ten bits a character) so a burst cannot flood a
//! 1200-baud line. A change goes ahead of the re-sends: after a link outage every lamp
//! of a large site takes minutes to go out at 1200 baud, and a new message must not
//! wait behind them. An error reply (`MWE`) retries with backoff; when the link comes back
//! (and whenever the driver asks, for the periodic audit) every lamp is sent again.

use super::codec::{lamp, CallDetail, Decoder, Inbound};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The desk's settings (`[smdi]`).
#[derive(Debug, Clone)]
pub struct DeskConfig {
    /// Leading digits stripped from MD station numbers.
    pub strip: usize,
    /// How long an MD waits for its call.
    pub md_expire: Duration,
    /// How far apart an MD and a call without a known terminal may arrive and still be
    /// matched by calling number.
    pub match_window: Duration,
    /// The line's speed in characters per second (baud / 10).
    pub chars_per_sec: f64,
    /// First wait before a refused lamp command is sent again; doubled each time.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Attempts of one lamp state before it is left to the next change or audit.
    pub attempts: u32,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            strip: 0,
            md_expire: Duration::from_secs(30),
            match_window: Duration::from_secs(10),
            chars_per_sec: 960.0,
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            attempts: 5,
        }
    }
}

/// What the desk reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskEvent {
    /// The waiting call `call` has its call detail.
    Matched { call: u64, detail: CallDetail },
    /// The waiting call `call` got none within its wait.
    NoDetail { call: u64 },
    /// An MD no call took within `md_expire`.
    Expired(CallDetail),
    /// A lamp command went out.
    LampSent { station: String, on: bool },
    /// The PBX refused a lamp command; `retry_in`: when it is tried again (None: given
    /// up until the next change or audit).
    LampRefused { station: String, cause: String, retry_in: Option<Duration> },
    /// A line that is no SMDI message.
    Garbage(String),
    /// A lamp was asked for a station that cannot be sent (not digits).
    BadStation(String),
}

/// One lamp as the desk knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lamp {
    pub want: bool,
    /// The state last sent, and when (None: never sent, or refused since).
    pub sent: Option<(bool, Instant)>,
    /// The PBX's last refusal of it (its cause), cleared when a new state is wanted.
    pub error: Option<String>,
    attempts: u32,
    retry_at: Option<Instant>,
    queued: Option<Queue>,
}

/// Which queue a lamp waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    /// Its state changed (or a refusal's retry): first.
    Change,
    /// Sent again because the link came back, or the audit.
    Resend,
}

/// A call waiting for its MD.
#[derive(Debug, Clone)]
struct Waiter {
    call: u64,
    terminal: Option<String>,
    calling: Option<String>,
    since: Instant,
    until: Instant,
}

/// What `voxbridge smdi status` shows of the desk.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub link_up: bool,
    /// MDs waiting for their call, with their age.
    pub queued: Vec<(CallDetail, Duration)>,
    pub waiting_calls: usize,
    pub lamps: Vec<(String, Lamp)>,
    pub lamps_queued: usize,
}

#[derive(Debug)]
pub struct Desk {
    cfg: DeskConfig,
    decoder: Decoder,
    link_up: bool,
    details: VecDeque<(CallDetail, Instant)>,
    waiting: Vec<Waiter>,
    lamps: BTreeMap<String, Lamp>,
    /// Stations whose wanted state changed, in order of the first change; then those
    /// sent again. An entry whose lamp has moved to the other queue is skipped.
    changes: VecDeque<String>,
    resends: VecDeque<String>,
    /// The line is busy with earlier commands until then.
    line_free: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<DeskEvent>,
}

impl Desk {
    pub fn new(cfg: DeskConfig) -> Desk {
        Desk {
            decoder: Decoder::new(cfg.strip),
            cfg,
            link_up: false,
            details: VecDeque::new(),
            waiting: Vec::new(),
            lamps: BTreeMap::new(),
            changes: VecDeque::new(),
            resends: VecDeque::new(),
            line_free: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The link is (again) connected: every lamp is sent again, in station order.
    pub fn link_up(&mut self, now: Instant) {
        self.link_up = true;
        self.decoder = Decoder::new(self.cfg.strip);
        self.line_free = None;
        self.resend_all();
        self.send_due(now);
    }

    /// The link dropped: nothing is written until it is back. Half a line read is
    /// thrown away; queued lamps wait.
    pub fn link_down(&mut self) {
        self.link_up = false;
        self.transmit.clear();
    }

    pub fn is_up(&self) -> bool {
        self.link_up
    }

    /// Queues every known lamp to be sent again (the link came back, or the audit).
    pub fn resend_all(&mut self) {
        self.resends.clear();
        for (s, l) in self.lamps.iter_mut() {
            (l.attempts, l.retry_at) = (0, None);
            // A changed lamp stays ahead where it is.
            if l.queued != Some(Queue::Change) {
                l.queued = Some(Queue::Resend);
                self.resends.push_back(s.clone());
            }
        }
    }

    /// Bytes read from the link.
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        for m in self.decoder.push(bytes) {
            match m {
                Inbound::CallDetail(d) => self.call_detail(now, d),
                Inbound::LampError { station, cause } => self.refused(now, station, cause),
                Inbound::Garbage(g) => self.events.push_back(DeskEvent::Garbage(g)),
            }
        }
    }

    fn call_detail(&mut self, now: Instant, d: CallDetail) {
        let by_terminal = self.waiting.iter().position(|w| w.terminal.as_deref() == Some(d.terminal.as_str()));
        let by_calling = || {
            self.waiting.iter().position(|w| {
                w.terminal.is_none()
                    && now.duration_since(w.since) <= self.cfg.match_window
                    && same_number(w.calling.as_deref(), d.calling.as_deref())
            })
        };
        match by_terminal.or_else(by_calling) {
            Some(i) => {
                let w = self.waiting.remove(i);
                self.events.push_back(DeskEvent::Matched { call: w.call, detail: d });
            }
            None => self.details.push_back((d, now)),
        }
    }

    /// A call that wants its MD: the matching one already here, or `None` — then the
    /// call waits up to `wait` for `DeskEvent::Matched` or `NoDetail`. `terminal`: the
    /// call's terminal when the configuration knows it; `calling`: its caller's number.
    pub fn call_arrived(
        &mut self,
        now: Instant,
        call: u64,
        terminal: Option<&str>,
        calling: Option<&str>,
        wait: Duration,
    ) -> Option<CallDetail> {
        self.expire(now);
        let found = match terminal {
            Some(t) => self.details.iter().position(|(d, _)| d.terminal == t),
            None => self.details.iter().position(|(d, at)| {
                now.duration_since(*at) <= self.cfg.match_window && same_number(calling, d.calling.as_deref())
            }),
        };
        if let Some(i) = found {
            return self.details.remove(i).map(|(d, _)| d);
        }
        self.waiting.push(Waiter {
            call,
            terminal: terminal.map(str::to_string),
            calling: calling.map(str::to_string),
            since: now,
            until: now + wait,
        });
        None
    }

    /// A waiting call ended before its MD came (the caller hung up).
    pub fn call_gone(&mut self, call: u64) {
        self.waiting.retain(|w| w.call != call);
    }

    /// The lamp of `station` should be lit (`on`) or dark.
    pub fn want_lamp(&mut self, now: Instant, station: &str, on: bool) {
        if lamp(station, on).is_none() {
            self.events.push_back(DeskEvent::BadStation(station.to_string()));
            return;
        }
        let l = self.lamps.entry(station.to_string()).or_insert(Lamp {
            want: on,
            sent: None,
            error: None,
            attempts: 0,
            retry_at: None,
            queued: None,
        });
        let settled = l.want == on && l.sent.map(|s| s.0) == Some(on) && l.error.is_none();
        if settled {
            return;
        }
        if l.want != on {
            (l.error, l.attempts, l.retry_at) = (None, 0, None);
        }
        l.want = on;
        self.enqueue(station);
        self.send_due(now);
    }

    /// Queues a changed lamp (ahead of the re-sends; one already waiting among them
    /// moves up).
    fn enqueue(&mut self, station: &str) {
        if let Some(l) = self.lamps.get_mut(station) {
            if l.queued != Some(Queue::Change) {
                l.queued = Some(Queue::Change);
                self.changes.push_back(station.to_string());
            }
        }
    }

    /// The next station to send, the changes first.
    fn next_queued(&mut self) -> Option<String> {
        loop {
            let (station, from) = match self.changes.pop_front() {
                Some(s) => (s, Queue::Change),
                None => (self.resends.pop_front()?, Queue::Resend),
            };
            if self.lamps.get(&station).is_some_and(|l| l.queued == Some(from)) {
                return Some(station);
            }
        }
    }

    fn lamps_queued(&self) -> usize {
        self.lamps.values().filter(|l| l.queued.is_some()).count()
    }

    fn refused(&mut self, now: Instant, station: String, cause: String) {
        let Some(l) = self.lamps.get_mut(&station) else {
            self.events.push_back(DeskEvent::LampRefused { station, cause, retry_in: None });
            return;
        };
        l.sent = None;
        l.error = Some(if cause.is_empty() { "refused".into() } else { cause.clone() });
        l.attempts += 1;
        let retry_in = (l.attempts < self.cfg.attempts).then(|| {
            let backoff = self.cfg.retry_initial.saturating_mul(1 << (l.attempts - 1).min(16));
            backoff.min(self.cfg.retry_max)
        });
        l.retry_at = retry_in.map(|d| now + d);
        self.events.push_back(DeskEvent::LampRefused { station, cause, retry_in });
    }

    /// Writes queued lamp commands the line has room for now.
    fn send_due(&mut self, now: Instant) {
        if !self.link_up {
            return;
        }
        while self.line_free.is_none_or(|t| t <= now) {
            let Some(station) = self.next_queued() else { return };
            let Some(l) = self.lamps.get_mut(&station) else { continue };
            l.queued = None;
            let Some(bytes) = lamp(&station, l.want) else { continue };
            l.sent = Some((l.want, now));
            let on = l.want;
            // The line is busy while the command's characters go out.
            let busy = Duration::from_secs_f64(bytes.len() as f64 / self.cfg.chars_per_sec.max(1.0));
            self.line_free = Some(self.line_free.map_or(now, |t| t.max(now)) + busy);
            self.transmit.push_back(bytes);
            self.events.push_back(DeskEvent::LampSent { station, on });
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((d, at)) = self.details.front() {
            if now.duration_since(*at) < self.cfg.md_expire {
                break;
            }
            let d = d.clone();
            self.details.pop_front();
            self.events.push_back(DeskEvent::Expired(d));
        }
    }

    /// The time has come (as `poll_timeout` asked, or later).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        let (gone, waiting): (Vec<Waiter>, Vec<Waiter>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| w.until <= now);
        self.waiting = waiting;
        self.events.extend(gone.into_iter().map(|w| DeskEvent::NoDetail { call: w.call }));
        let due: Vec<String> = self
            .lamps
            .iter_mut()
            .filter(|(_, l)| l.retry_at.is_some_and(|t| t <= now))
            .map(|(s, l)| {
                l.retry_at = None;
                s.clone()
            })
            .collect();
        for s in due {
            self.enqueue(&s);
        }
        self.send_due(now);
    }

    /// When to call `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.details.front().map(|(_, at)| *at + self.cfg.md_expire);
        let wait = self.waiting.iter().map(|w| w.until).min();
        let retry = self.lamps.values().filter_map(|l| l.retry_at).min();
        let waiting = !self.changes.is_empty() || !self.resends.is_empty();
        let line = self.line_free.filter(|_| self.link_up && waiting);
        [expiry, wait, retry, line].into_iter().flatten().min()
    }

    /// The next bytes to write to the link.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DeskEvent> {
        self.events.pop_front()
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            link_up: self.link_up,
            queued: self.details.iter().map(|(d, at)| (d.clone(), now.duration_since(*at))).collect(),
            waiting_calls: self.waiting.len(),
            lamps: self.lamps.iter().map(|(s, l)| (s.clone(), l.clone())).collect(),
            lamps_queued: self.lamps_queued(),
        }
    }
}

/// Whether a SIP caller's number and an MD's calling station are one number: their
/// digits equal, or (national and international forms) the longer ends with the shorter
/// and the shorter has at least 7 digits. An absent number matches nothing.
pub fn same_number(a: Option<&str>, b: Option<&str>) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (Some(a), Some(b)) = (a.map(digits), b.map(digits)) else { return false };
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    !short.is_empty() && (short == long || (short.len() >= 7 && long.ends_with(short.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smdi::codec::CallType;

    fn desk() -> (Desk, Instant) {
        let mut d = Desk::new(DeskConfig { chars_per_sec: 120.0, ..DeskConfig::default() });
        let t0 = Instant::now();
        d.link_up(t0);
        (d, t0)
    }

    fn events(d: &mut Desk) -> Vec<DeskEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn sent(d: &mut Desk) -> Vec<String> {
        std::iter::from_fn(|| d.poll_transmit()).map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
    }

    const SEC: Duration = Duration::from_secs(1);

    /// Wakes the desk whenever it asks, up to `until`.
    fn run_until(d: &mut Desk, until: Instant) {
        while let Some(t) = d.poll_timeout().filter(|t| *t <= until) {
            d.handle_timeout(t);
        }
    }

    #[test]
    fn calls_and_details_are_matched_by_terminal_in_either_order() {
        let (mut d, t0) = desk();
        // Two calls' MDs in the opposite order of their INVITEs.
        d.receive(t0, b"MD0010002B1002 3000\r\n\x19MD0010001N1001 3001\r\n\x19");
        let a = d.call_arrived(t0, 1, Some("0001"), Some("3001"), SEC).unwrap();
        let b = d.call_arrived(t0, 2, Some("0002"), Some("3000"), SEC).unwrap();
        assert_eq!((a.forwarding.as_deref(), a.call_type), (Some("1001"), CallType::NoAnswer));
        assert_eq!((b.forwarding.as_deref(), b.call_type), (Some("1002"), CallType::Busy));
        // The call first, its MD after; another terminal's MD does not go to it.
        assert!(d.call_arrived(t0, 3, Some("0003"), None, SEC).is_none());
        d.receive(t0, b"MD0010004A1004 3004\r\n");
        assert!(events(&mut d).is_empty(), "terminal 4's MD is not call 3's");
        d.receive(t0 + SEC / 4, b"MD0010003A1003 3003\r\n");
        assert!(
            matches!(&events(&mut d)[..], [DeskEvent::Matched { call: 3, detail }] if detail.forwarding.as_deref() == Some("1003"))
        );
        // Terminal 4's MD expires unmatched.
        d.handle_timeout(t0 + Duration::from_secs(31));
        assert!(matches!(&events(&mut d)[..], [DeskEvent::Expired(x)] if x.terminal == "0004"));
        assert!(d.snapshot(t0).queued.is_empty());
    }

    #[test]
    fn without_a_terminal_the_calling_number_matches_within_the_window() {
        let (mut d, t0) = desk();
        d.receive(t0, b"MD0010009B1001 2125559876\r\nMD0010008B1002 5551111\r\n");
        // National vs international form of one number.
        let m = d.call_arrived(t0 + SEC, 1, None, Some("+12125559876"), SEC).unwrap();
        assert_eq!(m.forwarding.as_deref(), Some("1001"));
        // Outside the window: no match, the call waits and gets NoDetail.
        assert!(d.call_arrived(t0 + Duration::from_secs(11), 2, None, Some("5551111"), SEC).is_none());
        d.handle_timeout(t0 + Duration::from_secs(12));
        assert!(events(&mut d).contains(&DeskEvent::NoDetail { call: 2 }));
        // A withheld number matches nothing.
        d.receive(t0, b"MD0010007D 5552222\r\n");
        assert!(d.call_arrived(t0, 3, None, None, SEC).is_none());
        d.call_gone(3);
        assert_eq!(d.snapshot(t0).waiting_calls, 0);
        assert!(same_number(Some("1001"), Some("1001")) && !same_number(Some("1001"), Some("21001")));
        assert!(!same_number(Some(""), Some("")) && !same_number(None, Some("1")));
    }

    #[test]
    fn lamps_coalesce_and_leave_at_the_lines_speed() {
        let (mut d, t0) = desk();
        d.want_lamp(t0, "1001", true);
        d.want_lamp(t0, "1002", true);
        d.want_lamp(t0, "1002", false); // coalesced: only the latest state goes
        d.want_lamp(t0, "1003", true);
        assert_eq!(sent(&mut d), ["OP:MWI 1001!\x04"], "the line is busy with the first");
        // 13 characters at 120/s: 108 ms each.
        let next = d.poll_timeout().unwrap();
        assert_eq!(next - t0, Duration::from_secs_f64(13.0 / 120.0));
        d.handle_timeout(next);
        assert_eq!(sent(&mut d), ["RMV:MWI 1002!\x04"]);
        d.handle_timeout(d.poll_timeout().unwrap());
        assert_eq!(sent(&mut d), ["OP:MWI 1003!\x04"]);
        // The same state again: nothing.
        d.want_lamp(t0 + SEC, "1001", true);
        d.handle_timeout(t0 + 2 * SEC);
        assert!(sent(&mut d).is_empty());
        d.want_lamp(t0, "12a", true);
        assert!(events(&mut d).contains(&DeskEvent::BadStation("12a".into())));
    }

    #[test]
    fn a_refused_lamp_is_retried_with_backoff_and_others_go_on() {
        let (mut d, t0) = desk();
        d.want_lamp(t0, "1001", true);
        sent(&mut d);
        d.receive(t0, b"MWE 1001 INV\r\n");
        d.want_lamp(t0, "1002", true);
        d.handle_timeout(t0 + SEC);
        assert_eq!(sent(&mut d), ["OP:MWI 1002!\x04"], "an error does not stop other lamps");
        let ev = events(&mut d);
        assert!(ev.contains(&DeskEvent::LampRefused {
            station: "1001".into(),
            cause: "INV".into(),
            retry_in: Some(Duration::from_secs(5))
        }));
        let snap = d.snapshot(t0);
        assert_eq!(snap.lamps[0].1.error.as_deref(), Some("INV"));
        d.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(sent(&mut d), ["OP:MWI 1001!\x04"]);
        // After `attempts` refusals: left for the next change or audit.
        for _ in 1..5 {
            d.receive(t0, b"MWE1001 BLK\r\n");
        }
        let last = events(&mut d).into_iter().rev().find(|e| matches!(e, DeskEvent::LampRefused { .. }));
        assert!(matches!(last, Some(DeskEvent::LampRefused { retry_in: None, .. })), "{last:?}");
        // A refusal for a station never asked about is reported, nothing else.
        d.receive(t0, b"MWE 9999 INV\r\n");
        assert!(matches!(&events(&mut d)[..], [DeskEvent::LampRefused { retry_in: None, .. }]));
    }

    #[test]
    fn every_lamp_is_sent_again_when_the_link_comes_back() {
        let (mut d, t0) = desk();
        d.want_lamp(t0, "1001", true);
        d.want_lamp(t0, "1002", false);
        d.handle_timeout(t0 + SEC);
        assert_eq!(sent(&mut d).len(), 2);
        d.link_down();
        d.want_lamp(t0 + SEC, "1002", true); // changed while down: waits
        d.handle_timeout(t0 + 2 * SEC);
        assert!(sent(&mut d).is_empty(), "nothing written while the link is down");
        d.link_up(t0 + 3 * SEC);
        d.handle_timeout(t0 + 4 * SEC);
        assert_eq!(sent(&mut d), ["OP:MWI 1002!\x04", "OP:MWI 1001!\x04"], "the change first, then the re-send");
        // A change goes ahead of the re-sends.
        for i in 0..20 {
            d.want_lamp(t0 + 4 * SEC, &format!("2{i:03}"), false);
        }
        run_until(&mut d, t0 + 10 * SEC);
        assert_eq!(sent(&mut d).len(), 20);
        d.resend_all();
        d.want_lamp(t0 + 10 * SEC, "1001", false);
        assert_eq!(sent(&mut d), ["RMV:MWI 1001!\x04"], "the change first, of 22 lamps waiting");
        assert_eq!(d.snapshot(t0).lamps_queued, 21);
        run_until(&mut d, t0 + 20 * SEC);
        let rest = sent(&mut d);
        assert_eq!(rest.len(), 21, "the others once each, 1001 not again: {rest:?}");
        assert!(!rest.contains(&"RMV:MWI 1001!\x04".to_string()));
        // The audit sends them all again too, one after the other.
        d.resend_all();
        run_until(&mut d, t0 + 30 * SEC);
        assert_eq!(sent(&mut d).len(), 22);
    }

    #[test]
    fn garbage_on_the_link_is_reported_and_the_desk_goes_on() {
        let (mut d, t0) = desk();
        d.receive(t0, b"\xff\xfeNOISE\r\nMD001\r\n");
        d.receive(t0, &[b'9'; 1000]);
        d.receive(t0, b"\r\nMD0010001B1001 2000\r\n");
        assert_eq!(events(&mut d).iter().filter(|e| matches!(e, DeskEvent::Garbage(_))).count(), 3);
        assert!(d.call_arrived(t0, 1, Some("0001"), None, SEC).is_some());
    }
}
