//! Who a diverted call was for, and why it was diverted: `Diversion` (RFC 5806) and
//! `History-Info` (RFC 7044, with RFC 4458's `cause=` and `target=` voice-mail URI
//! parameters) read into one [`Diverted`]. A PBX that sends a busy or unanswered call to
//! the voice-mail pilot number names the subscriber there; which header is believed, and
//! whether the latest or the original diversion counts, is the trunk's [`Policy`].
//!
//! Orders differ: each proxy adds its `Diversion` on top (the first is the latest), while
//! `History-Info` entries are in the order they happened (the last is the latest).

use super::grammar::split_list;
use super::msg::{header_param, uri_user};

/// Why a call was diverted, as far as the greeting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The subscriber's line was busy (`user-busy`, cause 486 or 600): the busy greeting.
    Busy,
    /// Not answered in time (`no-answer`, cause 408, 480 or 487).
    NoAnswer,
    /// Every call forwarded (`unconditional`, cause 302).
    Unconditional,
    /// Any other or no reason (`unknown`, `time-of-day`, `do-not-disturb`, 404…).
    Unknown,
}

impl Reason {
    /// A `Diversion` `reason=` token (RFC 5806 §4).
    fn from_token(t: &str) -> Reason {
        match t.trim_matches('"').to_ascii_lowercase().as_str() {
            "user-busy" => Reason::Busy,
            "no-answer" => Reason::NoAnswer,
            "unconditional" => Reason::Unconditional,
            _ => Reason::Unknown,
        }
    }

    /// A redirection cause: the SIP status that caused it (RFC 4458 §3, RFC 7044 §9.1).
    fn from_cause(code: &str) -> Reason {
        match code.trim().parse::<u16>() {
            Ok(486 | 600) => Reason::Busy,
            Ok(408 | 480 | 487) => Reason::NoAnswer,
            Ok(302) => Reason::Unconditional,
            _ => Reason::Unknown,
        }
    }

    pub fn busy(self) -> bool {
        self == Reason::Busy
    }
}

/// A diversion: the party the call was for (the user part of its URI) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diverted {
    pub party: String,
    pub reason: Reason,
}

/// Which headers name the diverted party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Diversion,
    HistoryInfo,
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Source, String> {
        match s.to_ascii_lowercase().as_str() {
            "diversion" => Ok(Source::Diversion),
            "history-info" => Ok(Source::HistoryInfo),
            _ => Err(format!("{s:?} is not a redirection header (\"diversion\" or \"history-info\")")),
        }
    }
}

/// When several diversions happened (busy at A, forwarded to B, no answer at B): the
/// latest (B, the last who did not take the call) or the original (A, who was dialled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Latest,
    Original,
}

impl std::str::FromStr for Pick {
    type Err = String;
    fn from_str(s: &str) -> Result<Pick, String> {
        match s.to_ascii_lowercase().as_str() {
            "latest" => Ok(Pick::Latest),
            "original" => Ok(Pick::Original),
            _ => Err(format!("{s:?} is neither \"latest\" nor \"original\"")),
        }
    }
}

/// What a trunk's redirection headers are worth: the headers believed, in order of
/// preference (empty: none — every call goes to the number dialled), and which diversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub trust: Vec<Source>,
    pub pick: Pick,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { trust: vec![Source::Diversion, Source::HistoryInfo], pick: Pick::Latest }
    }
}

impl Policy {
    /// The diversion a request's headers name, under this policy: the first trusted
    /// header that names one decides.
    pub fn diverted(&self, diversion: &[&str], history_info: &[&str]) -> Option<Diverted> {
        self.trust.iter().find_map(|source| {
            // Both lists come out latest first.
            let list = match source {
                Source::Diversion => diversions(diversion.iter().copied()),
                Source::HistoryInfo => history_redirections(history_info.iter().copied()),
            };
            match self.pick {
                Pick::Latest => list.into_iter().next(),
                Pick::Original => list.into_iter().last(),
            }
        })
    }
}

/// Every `Diversion` entry of the request's `Diversion` header values, latest first (as
/// they stand). An entry without a user part names nobody and is skipped.
pub fn diversions<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Diverted> {
    values
        .flat_map(split_list)
        .filter_map(|entry| {
            let party = uri_user(entry)?.to_string();
            let reason = header_param(entry, "reason").map(Reason::from_token).unwrap_or(Reason::Unknown);
            Some(Diverted { party, reason })
        })
        .collect()
}

/// One `History-Info` entry: its target, index, and what points back.
struct Entry {
    uri: String,
    index: String,
    /// `mp` (retargeted to a new user) or `rc` (to a contact of the same): the index of
    /// the entry this one was retargeted from.
    from: Option<String>,
}

/// The redirections a `History-Info` chain records, latest first. A redirection is
/// an entry whose URI carries RFC 4458's `cause=` (the voice-mail target; the diverted
/// party is its `target=`, else the entry its `mp`/`rc` names, else the entry before
/// it), or an entry whose URI carries an escaped `Reason` with a cause (RFC 7044 §9.1:
/// the entry that was diverted away from) followed by another entry.
pub fn history_redirections<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Diverted> {
    let entries: Vec<Entry> = values
        .flat_map(split_list)
        .filter_map(|e| {
            let uri = bracketed(e)?.to_string();
            let index = header_param(e, "index").unwrap_or("").to_string();
            let from = header_param(e, "mp").or_else(|| header_param(e, "rc")).map(str::to_string);
            Some(Entry { uri, index, from })
        })
        .collect();
    let mut found: Vec<Diverted> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let diverted = if let Some(cause) = uri_param(&e.uri, "cause") {
            let party = uri_param(&e.uri, "target")
                .map(|t| percent_decode(&t))
                .and_then(|t| uri_user(&t).map(str::to_string))
                .or_else(|| {
                    let from = e.from.as_deref().and_then(|ix| entries.iter().find(|p| p.index == ix));
                    from.or_else(|| i.checked_sub(1).map(|j| &entries[j]))
                        .and_then(|p| uri_user(&p.uri))
                        .map(str::to_string)
                });
            party.map(|party| Diverted { party, reason: Reason::from_cause(&cause) })
        } else if let Some(cause) = escaped_reason_cause(&e.uri).filter(|_| i + 1 < entries.len()) {
            uri_user(&e.uri).map(|p| Diverted { party: p.to_string(), reason: Reason::from_cause(&cause) })
        } else {
            None
        };
        // Both forms for one redirection (the Reason on the diverted entry, the cause on
        // the voice-mail one) are one diversion.
        if let Some(d) = diverted.filter(|d| found.last() != Some(d)) {
            found.push(d);
        }
    }
    found.reverse();
    found
}

/// The URI inside `<…>` of a name-addr.
fn bracketed(entry: &str) -> Option<&str> {
    let a = entry.find('<')?;
    let b = entry[a..].find('>')? + a;
    Some(&entry[a + 1..b])
}

/// A URI parameter (`;name=value` before any `?headers`), its value as written.
fn uri_param(uri: &str, name: &str) -> Option<String> {
    let before_headers = uri.split('?').next().unwrap_or(uri);
    before_headers.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The cause of a `Reason` header escaped into a URI's headers (`?Reason=SIP%3Bcause%3D486`).
fn escaped_reason_cause(uri: &str) -> Option<String> {
    let (_, headers) = uri.split_once('?')?;
    headers.split('&').find_map(|h| {
        let (k, v) = h.split_once('=')?;
        if !k.eq_ignore_ascii_case("reason") {
            return None;
        }
        let v = percent_decode(v);
        v.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("cause").then(|| v.trim().trim_matches('"').to_string())
        })
    })
}

/// `%XX` escapes decoded; a broken escape is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(party: &str, reason: Reason) -> Diverted {
        Diverted { party: party.into(), reason }
    }

    #[test]
    fn diversion_entries_latest_first_with_their_reasons() {
        let list = diversions(
            [
                "<sip:1002@pbx.example>;reason=no-answer;counter=1",
                "\"Alice, A.\" <sip:1001@pbx.example;user=phone>;reason=\"user-busy\", <tel:+15551234>;reason=unconditional",
                "<sip:pbx.example>;reason=deflection",
            ]
            .into_iter(),
        );
        assert_eq!(
            list,
            [d("1002", Reason::NoAnswer), d("1001", Reason::Busy), d("+15551234", Reason::Unconditional)],
            "an entry without a user names nobody"
        );
        assert_eq!(
            diversions(["<sip:7@h>;reason=time-of-day", "<sip:8@h>"].into_iter()),
            [d("7", Reason::Unknown), d("8", Reason::Unknown)]
        );
    }

    #[test]
    fn history_info_with_rfc4458_causes_and_rfc7044_reasons() {
        // RFC 4458 §3: the voice-mail target carries cause and target.
        let chain = [
            "<sip:1001@pbx.example>;index=1",
            "<sip:8000@vm.example;target=sip:1001%40pbx.example;cause=486>;index=1.1;mp=1",
        ];
        assert_eq!(history_redirections(chain.into_iter()), [d("1001", Reason::Busy)]);
        // No target=: the entry mp names; rc too; else the one before.
        let chain =
            ["<sip:1001@pbx>;index=1", "<sip:1002@pbx>;index=1.1;mp=1", "<sip:8000@vm;cause=408>;index=1.1.1;mp=1"];
        assert_eq!(history_redirections(chain.into_iter()), [d("1001", Reason::NoAnswer)]);
        let chain = ["<sip:1001@pbx>;index=1", "<sip:8000@vm;cause=408>;index=1.1"];
        assert_eq!(history_redirections(chain.into_iter()), [d("1001", Reason::NoAnswer)]);
        // RFC 7044 §9.1: the Reason escaped on the entry diverted away from, in one header.
        let one = "<sip:1001@pbx?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%22>;index=1, \
                   <sip:1002@pbx?Reason=SIP%3Bcause%3D408>;index=1.1;mp=1, <sip:8000@vm>;index=1.1.1;mp=1.1";
        assert_eq!(history_redirections([one].into_iter()), [d("1002", Reason::NoAnswer), d("1001", Reason::Busy)]);
        // Both forms of one redirection count once.
        let both = ["<sip:1001@pbx?Reason=SIP%3Bcause%3D486>;index=1", "<sip:8000@vm;cause=486>;index=1.1;mp=1"];
        assert_eq!(history_redirections(both.into_iter()), [d("1001", Reason::Busy)]);
        // A Reason on the last entry (the call's own target failed) diverted nothing.
        assert!(history_redirections(["<sip:8000@vm?Reason=SIP%3Bcause%3D486>;index=1"].into_iter()).is_empty());
        assert!(history_redirections(["<sip:1001@pbx>;index=1", "<sip:8000@vm>;index=1.1;mp=1"].into_iter()).is_empty());
        for hostile in ["<", ">;index=", "<sip:1@h;cause=>;index=1", "<sip:;cause=486>", "<%%;target=%zz;cause=486>"] {
            let _ = history_redirections([hostile].into_iter());
        }
    }

    #[test]
    fn the_policy_picks_the_header_and_the_diversion() {
        let div = ["<sip:1002@pbx>;reason=no-answer", "<sip:1001@pbx>;reason=user-busy"];
        let hi = ["<sip:1003@pbx>;index=1", "<sip:8000@vm;cause=486>;index=1.1;mp=1"];
        let p = Policy::default();
        assert_eq!(p.diverted(&div, &hi), Some(d("1002", Reason::NoAnswer)));
        let original = Policy { pick: Pick::Original, ..Policy::default() };
        assert_eq!(original.diverted(&div, &hi), Some(d("1001", Reason::Busy)));
        let hi_first = Policy { trust: vec![Source::HistoryInfo, Source::Diversion], pick: Pick::Latest };
        assert_eq!(hi_first.diverted(&div, &hi), Some(d("1003", Reason::Busy)));
        assert_eq!(hi_first.diverted(&div, &[]), Some(d("1002", Reason::NoAnswer)), "falls back");
        let only_hi = Policy { trust: vec![Source::HistoryInfo], pick: Pick::Latest };
        assert_eq!(only_hi.diverted(&div, &[]), None, "Diversion not believed");
        let none = Policy { trust: vec![], pick: Pick::Latest };
        assert_eq!(none.diverted(&div, &hi), None);
        assert!("HISTORY-INFO".parse::<Source>().is_ok() && "via".parse::<Source>().is_err());
        assert!("original".parse::<Pick>().is_ok() && "first".parse::<Pick>().is_err());
    }
}
