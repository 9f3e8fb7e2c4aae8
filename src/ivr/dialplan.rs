//! The dialplan: an ordered list of routes from dialled number to application, in TOML.
//!
//! Patterns use the Asterisk syntax admins know: a literal number, or `_` followed by
//! `X` (0-9), `Z` (1-9), `N` (2-9), `[1-5a]` sets, `.` (one or more of anything) and
//! `!` (zero or more).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

/// The dialplan shipped in the binary, used when the configured file does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../dialplans/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dialplan {
    #[serde(rename = "route", default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub pattern: String,
    pub app: App,
    /// Mailbox for `deposit` and `fax`; `${EXTEN}` is the dialled number (the default).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Keys of the `menu` application (`[route.keys]`); unset keys keep their defaults.
    #[serde(default)]
    pub keys: Option<super::keys::MenuKeys>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Deposit,
    /// The mailbox menu: a subscriber listens to and manages their messages.
    Menu,
    /// Fax reception into the mailbox (`mailbox`, default the dialled number).
    Fax,
}

impl App {
    /// The name the dialplan gives it (`app = "…"`).
    pub fn name(self) -> &'static str {
        match self {
            App::Deposit => "deposit",
            App::Menu => "menu",
            App::Fax => "fax",
        }
    }
}

/// What the dialplan decided for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Deposit { mailbox: String },
    Fax { mailbox: String },
    Menu { keys: super::keys::MenuKeys },
    NoRoute,
}

fn pattern_matches(pattern: &str, number: &str) -> bool {
    let Some(p) = pattern.strip_prefix('_') else {
        return pattern == number;
    };
    fn go(p: &[u8], n: &[u8]) -> bool {
        let Some((&c, rest)) = p.split_first() else {
            return n.is_empty();
        };
        match c {
            b'.' => !n.is_empty() && (1..=n.len()).any(|k| go(rest, &n[k..])),
            b'!' => (0..=n.len()).any(|k| go(rest, &n[k..])),
            b'[' => {
                let Some(end) = rest.iter().position(|&b| b == b']') else {
                    return false;
                };
                let (set, after) = (&rest[..end], &rest[end + 1..]);
                let Some((&d, nrest)) = n.split_first() else {
                    return false;
                };
                let mut i = 0;
                let mut hit = false;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= (set[i]..=set[i + 2]).contains(&d);
                        i += 3;
                    } else {
                        hit |= set[i] == d;
                        i += 1;
                    }
                }
                hit && go(after, nrest)
            }
            _ => {
                let Some((&d, nrest)) = n.split_first() else {
                    return false;
                };
                let ok = match c.to_ascii_uppercase() {
                    b'X' => d.is_ascii_digit(),
                    b'Z' => (b'1'..=b'9').contains(&d),
                    b'N' => (b'2'..=b'9').contains(&d),
                    _ => c == d,
                };
                ok && go(rest, nrest)
            }
        }
    }
    go(p.as_bytes(), number.as_bytes())
}

/// What `voxbridge dialplan check` found at one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    /// An error refuses the dialplan; a warning (an unreachable route) does not.
    pub error: bool,
    pub message: String,
}

/// Why a pattern is malformed: `_` patterns take X Z N, `[…]` sets of digits and
/// ranges, `.` and `!`, digits, `*`, `#` and `+`; literals take digits, `*`, `#`, `+`.
fn pattern_problem(p: &str) -> Option<String> {
    if p.is_empty() {
        return Some("an empty pattern".into());
    }
    let Some(body) = p.strip_prefix('_') else {
        return (!p.bytes().all(|b| b.is_ascii_digit() || b"*#+".contains(&b)))
            .then(|| format!("pattern {p:?}: a literal number is digits, *, # and + (patterns start with _)"));
    };
    if body.is_empty() {
        return Some("pattern \"_\" matches nothing".into());
    }
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c.to_ascii_uppercase() {
            '0'..='9' | '*' | '#' | '+' | 'X' | 'Z' | 'N' | '.' | '!' => {}
            '[' => {
                let set: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if set.is_empty() || !set.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    return Some(format!("pattern {p:?}: a [set] holds digits and ranges like [1-5], closed by ]"));
                }
            }
            other => return Some(format!("pattern {p:?}: {other:?} is not a pattern character (X Z N [1-5] . !)")),
        }
    }
    if p.matches('[').count() != p.matches(']').count() {
        return Some(format!("pattern {p:?}: a [ without its ]"));
    }
    None
}

/// Numbers a pattern matches, a few of each kind (for "is this route reachable?").
fn samples(p: &str) -> Vec<String> {
    let Some(body) = p.strip_prefix('_') else { return vec![p.to_string()] };
    let mut out = vec![String::new()];
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        let choices: Vec<String> = match c.to_ascii_uppercase() {
            'X' => vec!["0".into(), "5".into(), "9".into()],
            'Z' => vec!["1".into(), "9".into()],
            'N' => vec!["2".into(), "9".into()],
            '.' => vec!["0".into(), "7".into(), "123".into(), "*9".into()],
            '!' => vec!["".into(), "4".into(), "#12".into()],
            '[' => {
                let set: Vec<char> = chars.by_ref().take_while(|&c| c != ']').collect();
                let mut v = Vec::new();
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        v.push(set[i].to_string());
                        v.push(set[i + 2].to_string());
                        i += 3;
                    } else {
                        v.push(set[i].to_string());
                        i += 1;
                    }
                }
                v
            }
            _ => vec![c.to_string()],
        };
        out = out.iter().flat_map(|s| choices.iter().map(move |c| format!("{s}{c}"))).take(512).collect();
    }
    out
}

/// The line of each `[[route]]`, in order.
pub fn route_lines(text: &str) -> Vec<usize> {
    text.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with("[[route]]")).map(|(i, _)| i + 1).collect()
}

/// Every problem of a dialplan's text, each with its line: syntax, unknown apps and
/// keys (from the TOML reader), malformed patterns, menu keys with two meanings or on
/// another app, and routes no number can reach because an earlier one takes them all.
pub fn check(text: &str) -> Vec<Problem> {
    let d: Dialplan = match toml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)).unwrap_or(1);
            return vec![Problem { line, error: true, message: e.message().to_string() }];
        }
    };
    let starts = route_lines(text);
    let line_of = |i: usize| starts.get(i).copied().unwrap_or(1);
    let mut problems = Vec::new();
    for (i, r) in d.routes.iter().enumerate() {
        let line = line_of(i);
        if let Some(why) = pattern_problem(&r.pattern) {
            problems.push(Problem { line, error: true, message: why });
            continue;
        }
        if let Some(k) = &r.keys {
            if r.app != App::Menu {
                problems.push(Problem {
                    line,
                    error: true,
                    message: format!("route {:?}: keys are for app = \"menu\"", r.pattern),
                });
            } else if let Err(e) = k.validate() {
                problems.push(Problem { line, error: true, message: format!("route {:?}: {e}", r.pattern) });
            }
        }
        let earlier = d.routes[..i].iter().enumerate().find(|(_, e)| {
            pattern_problem(&e.pattern).is_none() && samples(&r.pattern).iter().all(|n| pattern_matches(&e.pattern, n))
        });
        if let Some((j, e)) = earlier {
            problems.push(Problem {
                line,
                error: false,
                message: format!(
                    "route {:?} is unreachable: route {:?} at line {} takes every number it matches first",
                    r.pattern,
                    e.pattern,
                    line_of(j)
                ),
            });
        }
    }
    problems
}

impl Dialplan {
    /// Parses a dialplan; any error [`check`] finds refuses it, with its line.
    pub fn parse(text: &str) -> Result<Dialplan> {
        if let Some(p) = check(text).into_iter().find(|p| p.error) {
            bail!("line {}: {}", p.line, p.message);
        }
        Ok(toml::from_str(text)?)
    }

    /// Loads `path`, or the embedded default when the file does not exist.
    pub fn load(path: &Path) -> Result<Dialplan> {
        if !path.exists() {
            tracing::info!(path = %path.display(), "dialplan file not found, using the embedded default");
            return Dialplan::parse(EMBEDDED_DEFAULT);
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read dialplan {}", path.display()))?;
        Dialplan::parse(&text).with_context(|| format!("invalid dialplan {}", path.display()))
    }

    pub fn route(&self, dialled: &str) -> Decision {
        for r in &self.routes {
            if pattern_matches(&r.pattern, dialled) {
                return match r.app {
                    App::Deposit => Decision::Deposit {
                        mailbox: r.mailbox.as_deref().unwrap_or("${EXTEN}").replace("${EXTEN}", dialled),
                    },
                    App::Menu => Decision::Menu { keys: r.keys.clone().unwrap_or_default() },
                    App::Fax => Decision::Fax {
                        mailbox: r.mailbox.as_deref().unwrap_or("${EXTEN}").replace("${EXTEN}", dialled),
                    },
                };
            }
        }
        Decision::NoRoute
    }

    /// The keys of the first menu route (a call the PBX sends straight to the mailbox
    /// menu, whatever it dialled), else the default keys.
    pub fn menu_keys(&self) -> super::keys::MenuKeys {
        self.routes.iter().find(|r| matches!(r.app, App::Menu)).and_then(|r| r.keys.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_patterns() {
        assert!(pattern_matches("_X.", "5551234"));
        assert!(!pattern_matches("_X.", "5"));
        assert!(pattern_matches("_X!", "5"));
        assert!(pattern_matches("_NXX", "555"));
        assert!(!pattern_matches("_NXX", "155"));
        assert!(pattern_matches("_[1-3]0[05]", "200"));
        assert!(!pattern_matches("_[1-3]0[05]", "400"));
        assert!(pattern_matches("8500", "8500"));
        assert!(!pattern_matches("8500", "85000"));
        assert!(!pattern_matches("_[1-3", "1"));
    }

    #[test]
    fn embedded_default_routes_numbers_to_their_mailbox() {
        let d = Dialplan::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(d.route("1001"), Decision::Deposit { mailbox: "1001".into() });
        assert_eq!(d.route("*98"), Decision::Menu { keys: Default::default() });
        assert_eq!(d.route("8500"), Decision::Menu { keys: Default::default() });
        let d = Dialplan::parse("[[route]]\npattern = \"9\"\napp = \"menu\"\n[route.keys]\nsave = \"2\"\n").unwrap();
        let Decision::Menu { keys } = d.route("9") else { panic!() };
        assert_eq!((keys.save, keys.delete), ('2', '7'), "one key remapped, the others default");
        let e =
            Dialplan::parse("[[route]]\npattern = \"9\"\napp = \"menu\"\n[route.keys]\nsave = \"7\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("two meanings"), "{e:#}");
        assert_eq!(d.route("abc"), Decision::NoRoute);
        let d = Dialplan::parse("[[route]]\npattern = \"_7XXX\"\napp = \"fax\"\nmailbox = \"1${EXTEN}\"\n").unwrap();
        assert_eq!(d.route("7001"), Decision::Fax { mailbox: "17001".into() });
        let e = Dialplan::parse("[[route]]\npattern = \"_X.\"\napp = \"dance\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("dance"));
    }

    #[test]
    fn check_names_each_problem_with_its_line() {
        let text = "# a comment\n[[route]]\npattern = \"_X.\"\napp = \"deposit\"\n\n[[route]]\npattern = \"1001\"\n\
                    app = \"menu\"\n\n[[route]]\npattern = \"_1[2-\"\napp = \"menu\"\n\n[[route]]\npattern = \"9\"\n\
                    app = \"deposit\"\n[route.keys]\nsave = \"1\"\n\n[[route]]\npattern = \"abc\"\napp = \"fax\"\n";
        let got = check(text);
        let lines: Vec<(usize, bool)> = got.iter().map(|p| (p.line, p.error)).collect();
        assert_eq!(lines, [(6, false), (10, true), (14, true), (20, true)], "{got:#?}");
        assert!(got[0].message.contains("unreachable") && got[0].message.contains("line 2"), "{}", got[0].message);
        assert!(got[1].message.contains("[ without its ]") || got[1].message.contains("[set]"), "{}", got[1].message);
        assert!(got[2].message.contains("keys are for app = \"menu\""), "{}", got[2].message);
        assert!(got[3].message.contains("literal number"), "{}", got[3].message);
        // Syntax and unknown apps come with the TOML reader's line.
        let got = check("[[route]]\npattern = \"1\"\napp = \"voicemial\"\n");
        assert_eq!((got[0].line, got[0].error), (3, true), "{got:?}");
        assert!(got[0].message.contains("voicemial"), "{got:?}");
        assert_eq!(check("[[route]\n")[0].line, 1);
        // The shipped dialplan is clean; the order of specific before general matters.
        assert!(check(EMBEDDED_DEFAULT).is_empty(), "{:?}", check(EMBEDDED_DEFAULT));
        assert!(check(
            "[[route]]\npattern = \"_1XX\"\napp = \"menu\"\n[[route]]\npattern = \"_XXX\"\napp = \"deposit\"\n"
        )
        .is_empty());
        // Parse refuses errors, with the line; a warning does not stop it.
        assert!(format!("{:#}", Dialplan::parse(text).unwrap_err()).contains("line 10"));
        assert!(Dialplan::parse(
            "[[route]]\npattern = \"_X.\"\napp = \"deposit\"\n[[route]]\npattern = \"5\"\napp = \"menu\"\n"
        )
        .is_ok());
    }
}
