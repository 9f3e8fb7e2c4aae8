//! Message states and their precedence (seed section B): D > M > R > U.

use serde::Serialize;
use std::fmt;

/// A message's state. The derived order *is* the seed's precedence: U < R < M < D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum State {
    /// Unread.
    U,
    /// Read.
    R,
    /// Marked for delete (IMAP `\Deleted`, not yet expunged); can be undone.
    M,
    /// Delete: remove from the mail server, then from the store.
    D,
}

impl State {
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "U" => State::U,
            "R" => State::R,
            "M" => State::M,
            "D" => State::D,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::U => "U",
            State::R => "R",
            State::M => "M",
            State::D => "D",
        }
    }

    /// The state an IMAP message's flags express (`\Deleted` wins over `\Seen`).
    pub fn from_flags(seen: bool, deleted: bool) -> State {
        match (seen, deleted) {
            (_, true) => State::M,
            (true, false) => State::R,
            (false, false) => State::U,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
