//! Which e-mails the phone menu offers (the seed's E-mail Filtering server). A mailbox's
//! rules, each one line of text:
//!
//! ```text
//! allow from boss@corp.example      only these senders (an address, or a domain: corp.example, @corp.example)
//! deny from @newsletters.example    never these senders
//! deny subject "weekly digest"      subject contains (any case)
//! allow subject urgent
//! deny header List-Id               a header present; "header X-Spam-Flag: YES" contains a value
//! only newer-than 7                 days
//! only unread
//! only high-priority                X-Priority 1–2, Importance: high, Priority: urgent
//! only smaller-than 200000          bytes
//! ```
//!
//! An e-mail is offered when no `deny` rule matches, at least one `allow` rule matches
//! (if there are any), and every `only` holds. Voice and fax messages are always
//! offered; filtered e-mail keeps syncing, it is only not read out.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    From(String),
    Subject(String),
    /// A header by name, and a text its value contains (empty: present at all).
    Header(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Only {
    NewerThanDays(u32),
    Unread,
    HighPriority,
    SmallerThan(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Allow(Cond),
    Deny(Cond),
    Only(Only),
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s).to_string()
}

impl Filter {
    /// Parses one rule; the error says what a rule looks like.
    pub fn parse(text: &str) -> Result<Filter> {
        let text = text.trim();
        let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let (what, arg) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
        let arg = unquote(arg);
        let cond = |what: &str| -> Result<Cond> {
            if arg.is_empty() {
                bail!("{text:?}: {what} needs a value");
            }
            Ok(match what {
                "from" => Cond::From(arg.trim_start_matches('@').to_ascii_lowercase()),
                "subject" => Cond::Subject(arg.to_lowercase()),
                "header" => {
                    let (name, value) = arg.split_once(':').unwrap_or((&arg, ""));
                    Cond::Header(name.trim().to_ascii_lowercase(), unquote(value).to_lowercase())
                }
                _ => bail!("{text:?}: allow and deny take from, subject or header"),
            })
        };
        Ok(match verb {
            "allow" => Filter::Allow(cond(what)?),
            "deny" => Filter::Deny(cond(what)?),
            "only" => Filter::Only(match what {
                "newer-than" => Filter::number(text, &arg).map(Only::NewerThanDays)?,
                "unread" => Only::Unread,
                "high-priority" => Only::HighPriority,
                "smaller-than" => Only::SmallerThan(Filter::number(text, &arg)?),
                _ => bail!("{text:?}: only takes newer-than DAYS, unread, high-priority or smaller-than BYTES"),
            }),
            _ => bail!("{text:?}: a rule starts with allow, deny or only (e.g. \"deny from @spam.example\")"),
        })
    }

    fn number<T: std::str::FromStr>(text: &str, arg: &str) -> Result<T> {
        arg.parse().map_err(|_| anyhow::anyhow!("{text:?}: {arg:?} is not a number"))
    }
}

/// What a rule looks at of one e-mail.
#[derive(Debug, Clone, Default)]
pub struct MailFacts {
    /// The sender's address, lower case.
    pub from: Option<String>,
    pub subject: String,
    /// Header names lower case, values as they are.
    pub headers: Vec<(String, String)>,
    pub age_days: f64,
    pub unread: bool,
    pub size: u64,
}

impl MailFacts {
    /// From a raw message (headers only are parsed) and what the store knows.
    pub fn read(raw: &[u8], age_days: f64, unread: bool) -> MailFacts {
        let Some(head) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return MailFacts { age_days, unread, size: raw.len() as u64, ..MailFacts::default() };
        };
        let from = head.from().and_then(|a| a.first()).and_then(|a| a.address.as_deref()).map(str::to_ascii_lowercase);
        let headers = head
            .headers()
            .iter()
            .map(|h| {
                let v = head.header_raw(h.name.as_str()).unwrap_or("").trim().to_string();
                (h.name.as_str().to_ascii_lowercase(), v)
            })
            .collect();
        MailFacts {
            from,
            subject: head.subject().unwrap_or("").to_string(),
            headers,
            age_days,
            unread,
            size: raw.len() as u64,
        }
    }

    fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn high_priority(&self) -> bool {
        self.header("x-priority").any(|v| v.trim_start().starts_with(['1', '2']))
            || self.header("importance").any(|v| v.trim().eq_ignore_ascii_case("high"))
            || self.header("priority").any(|v| v.trim().eq_ignore_ascii_case("urgent"))
    }
}

fn matches(c: &Cond, m: &MailFacts) -> bool {
    match c {
        Cond::From(who) => m.from.as_deref().is_some_and(|f| {
            if who.contains('@') {
                f == who
            } else {
                f.rsplit_once('@').is_some_and(|(_, d)| d == who || d.ends_with(&format!(".{who}")))
            }
        }),
        Cond::Subject(s) => m.subject.to_lowercase().contains(s),
        Cond::Header(name, value) => m.header(name).any(|v| v.to_lowercase().contains(value)),
    }
}

/// Whether the menu offers this e-mail, and if not, the rule that kept it back.
pub fn offered<'a>(filters: &'a [(i64, Filter)], m: &MailFacts) -> Result<(), &'a (i64, Filter)> {
    if let Some(f) = filters.iter().find(|(_, f)| matches!(f, Filter::Deny(c) if matches(c, m))) {
        return Err(f);
    }
    let allows: Vec<&(i64, Filter)> = filters.iter().filter(|(_, f)| matches!(f, Filter::Allow(_))).collect();
    if !allows.is_empty() && !allows.iter().any(|(_, f)| matches!(f, Filter::Allow(c) if matches(c, m))) {
        return Err(allows[0]);
    }
    for f in filters {
        let holds = match &f.1 {
            Filter::Only(Only::NewerThanDays(d)) => m.age_days < *d as f64,
            Filter::Only(Only::Unread) => m.unread,
            Filter::Only(Only::HighPriority) => m.high_priority(),
            Filter::Only(Only::SmallerThan(n)) => m.size < *n,
            _ => true,
        };
        if !holds {
            return Err(f);
        }
    }
    Ok(())
}

/// A mailbox's stored rules parsed; one that no longer parses is skipped (logged).
pub fn parse_stored(rows: &[(i64, String)]) -> Vec<(i64, Filter)> {
    rows.iter()
        .filter_map(|(id, text)| match Filter::parse(text) {
            Ok(f) => Some((*id, f)),
            Err(e) => {
                tracing::warn!(id, error = %e, "e-mail filter skipped");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, subject: &str, extra: &str) -> MailFacts {
        let raw = format!("From: X <{from}>\r\nSubject: {subject}\r\n{extra}\r\nbody\r\n");
        MailFacts::read(raw.as_bytes(), 3.0, true)
    }

    fn rules(texts: &[&str]) -> Vec<(i64, Filter)> {
        texts.iter().enumerate().map(|(i, t)| (i as i64 + 1, Filter::parse(t).unwrap())).collect()
    }

    #[test]
    fn deny_allow_and_only_rules() {
        let f = rules(&["deny from @news.example", "allow from corp.example", "allow subject urgent"]);
        assert_eq!(offered(&f, &mail("a@news.example", "Hi", "")).unwrap_err().0, 1);
        assert!(offered(&f, &mail("boss@corp.example", "Hi", "")).is_ok());
        assert!(offered(&f, &mail("boss@mail.corp.example", "Hi", "")).is_ok(), "subdomains of an allowed domain");
        assert!(offered(&f, &mail("x@other.example", "URGENT: call", "")).is_ok());
        assert_eq!(offered(&f, &mail("x@other.example", "Lunch", "")).unwrap_err().0, 2, "not allowed");
        let f = rules(&["deny header List-Id", "only high-priority", "only newer-than 2"]);
        assert_eq!(offered(&f, &mail("a@b.c", "x", "List-Id: <l.example>\r\n")).unwrap_err().0, 1);
        let high = mail("a@b.c", "x", "X-Priority: 1 (Highest)\r\n");
        assert_eq!(offered(&f, &high).unwrap_err().0, 3, "three days old");
        let f = rules(&["only high-priority", "only unread", "only smaller-than 1000"]);
        assert!(offered(&f, &high).is_ok());
        assert_eq!(offered(&f, &mail("a@b.c", "x", "Importance: low\r\n")).unwrap_err().0, 1);
        assert!(offered(&[], &mail("a@b.c", "x", "")).is_ok(), "no rules: everything");
    }

    #[test]
    fn bad_rules_say_what_a_rule_looks_like() {
        for (t, want) in [
            ("block from x", "starts with allow, deny or only"),
            ("deny from", "needs a value"),
            ("deny body x", "from, subject or header"),
            ("only newer-than soon", "is not a number"),
            ("only sometimes", "only takes"),
        ] {
            let e = Filter::parse(t).unwrap_err().to_string();
            assert!(e.contains(want), "{t}: {e}");
        }
        assert_eq!(
            Filter::parse("deny header X-Spam-Flag: YES").unwrap(),
            Filter::Deny(Cond::Header("x-spam-flag".into(), "yes".into()))
        );
    }
}
