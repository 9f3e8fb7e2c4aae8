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

impl Dialplan {
    pub fn parse(text: &str) -> Result<Dialplan> {
        let d: Dialplan = toml::from_str(text)?;
        for r in &d.routes {
            if r.pattern.is_empty() {
                bail!("a route has an empty pattern");
            }
            if let Some(k) = &r.keys {
                if r.app != App::Menu {
                    bail!("route {:?}: keys are for app = \"menu\"", r.pattern);
                }
                k.validate().map_err(|e| anyhow::anyhow!("route {:?}: {e}", r.pattern))?;
            }
        }
        Ok(d)
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
}
