//! Message-waiting indication: the counts a phone's lamp shows, as the RFC 3842
//! `application/simple-message-summary` body, and which subscribers must hear of a change.
//! Pure data; the driver (`driver/mwi_io.rs`) reads counts from the store and sends.

use std::collections::{BTreeSet, HashMap};

/// New and old (heard/read) messages of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewOld {
    pub new: u32,
    pub old: u32,
}

/// A mailbox's counts by kind. Messages marked for deletion (M) count as neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub voice: NewOld,
    pub fax: NewOld,
    pub email: NewOld,
}

impl Counts {
    /// From (kind, state, count) rows.
    pub fn from_rows(rows: &[(String, String, u32)]) -> Counts {
        let mut c = Counts::default();
        for (kind, state, n) in rows {
            let slot = match kind.as_str() {
                "voice" => &mut c.voice,
                "fax" => &mut c.fax,
                _ => &mut c.email,
            };
            match state.as_str() {
                "U" => slot.new += n,
                "R" => slot.old += n,
                _ => {}
            }
        }
        c
    }

    /// The lamp is lit by unheard voice messages and unseen faxes; e-mail is reported
    /// (Text-Message) but does not light it — a desk phone's lamp means "call your voice
    /// mail", and every newsletter would otherwise keep it on.
    pub fn waiting(&self) -> bool {
        self.voice.new + self.fax.new > 0
    }

    /// The RFC 3842 body for `account` (a SIP URI).
    pub fn body(&self, account: &str) -> String {
        let line = |name: &str, c: NewOld| format!("{name}: {}/{}\r\n", c.new, c.old);
        format!(
            "Messages-Waiting: {}\r\nMessage-Account: {account}\r\n{}{}{}",
            if self.waiting() { "yes" } else { "no" },
            line("Voice-Message", self.voice),
            line("Fax-Message", self.fax),
            line("Text-Message", self.email),
        )
    }
}

/// Subscriptions by mailbox and the last counts each mailbox announced. Indexed both
/// ways: a change reaches its mailbox's subscribers without a scan of everyone's.
#[derive(Debug, Default)]
pub struct Registry {
    subs: HashMap<u64, String>,
    by_mailbox: HashMap<String, BTreeSet<u64>>,
    last: HashMap<String, Counts>,
}

impl Registry {
    pub fn subscribe(&mut self, sub: u64, mailbox: &str) {
        self.unsubscribe(sub);
        self.subs.insert(sub, mailbox.to_string());
        self.by_mailbox.entry(mailbox.to_string()).or_default().insert(sub);
    }

    pub fn unsubscribe(&mut self, sub: u64) -> Option<String> {
        let mailbox = self.subs.remove(&sub)?;
        if let Some(set) = self.by_mailbox.get_mut(&mailbox) {
            set.remove(&sub);
            if set.is_empty() {
                self.by_mailbox.remove(&mailbox);
            }
        }
        Some(mailbox)
    }

    pub fn is_watched(&self, mailbox: &str) -> bool {
        self.by_mailbox.contains_key(mailbox)
    }

    /// Mailboxes someone listens to.
    pub fn watched(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_mailbox.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn last(&self, mailbox: &str) -> Option<Counts> {
        self.last.get(mailbox).copied()
    }

    /// Records fresh counts; returns the subscriptions to notify when they differ from
    /// the last announced ones (all of the mailbox's subscriptions), else none.
    pub fn update(&mut self, mailbox: &str, counts: Counts) -> Option<Vec<u64>> {
        if self.last.get(mailbox) == Some(&counts) {
            return None;
        }
        self.last.insert(mailbox.to_string(), counts);
        Some(self.by_mailbox.get(mailbox).map(|s| s.iter().copied().collect()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_follows_rfc_3842() {
        let rows = vec![
            ("voice".to_string(), "U".to_string(), 2),
            ("voice".into(), "R".into(), 8),
            ("voice".into(), "M".into(), 5),
            ("email".into(), "U".into(), 3),
        ];
        let c = Counts::from_rows(&rows);
        assert_eq!(
            c.body("sip:1000@vb.test"),
            "Messages-Waiting: yes\r\nMessage-Account: sip:1000@vb.test\r\nVoice-Message: 2/8\r\n\
             Fax-Message: 0/0\r\nText-Message: 3/0\r\n"
        );
        let only_mail = Counts { email: NewOld { new: 4, old: 0 }, ..Default::default() };
        assert!(only_mail.body("x").starts_with("Messages-Waiting: no\r\n"), "e-mail alone leaves the lamp off");
    }

    #[test]
    fn only_changes_are_announced_to_that_mailboxs_subscribers() {
        let mut r = Registry::default();
        r.subscribe(1, "1000");
        r.subscribe(2, "1000");
        r.subscribe(3, "2000");
        let one = Counts { voice: NewOld { new: 1, old: 0 }, ..Default::default() };
        assert_eq!(r.update("1000", one), Some(vec![1, 2]));
        assert_eq!(r.update("1000", one), None, "unchanged: nothing sent");
        assert_eq!(r.unsubscribe(2).as_deref(), Some("1000"));
        assert_eq!(r.update("1000", Counts::default()), Some(vec![1]));
        assert_eq!(r.watched(), vec!["1000".to_string(), "2000".to_string()]);
        assert!(r.is_watched("2000") && !r.is_watched("3000"));
    }
}
