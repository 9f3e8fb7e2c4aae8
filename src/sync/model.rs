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
        f.write_str(self.as_str())
    }
}

/// Merges the store's and the client's state of one message.
///
/// The seed's rule alone (the higher precedence wins) can only move a state upward, so a
/// subscriber who marks a message unread again, or undeletes it, would be overridden.
/// With `base`, the state both sides agreed on at the last sync, a side that did not
/// change yields to the side that did — in either direction — and precedence decides
/// only a true conflict (both changed since the last sync). Without a base (first
/// sync), precedence decides, exactly as the seed says.
pub fn merge(store: State, client: State, base: Option<State>) -> State {
    match base {
        Some(b) if store == b => client,
        Some(b) if client == b => store,
        _ => store.max(client),
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    #[test]
    fn precedence_is_d_m_r_u() {
        assert!(D > M && M > R && R > U);
        assert_eq!(merge(U, R, None), R);
        assert_eq!(merge(D, R, None), D);
        assert_eq!(merge(M, U, None), M);
    }

    #[test]
    fn deliberate_downward_changes_survive() {
        // Read by phone and synced (base R); the subscriber marks it unread in a client.
        assert_eq!(merge(R, U, Some(R)), U);
        // Undeleted in the client after both agreed on M.
        assert_eq!(merge(M, R, Some(M)), R);
        // Undeleted by phone.
        assert_eq!(merge(U, M, Some(M)), U);
        // Both changed since the last sync: a true conflict, precedence decides.
        assert_eq!(merge(M, U, Some(R)), M);
        assert_eq!(merge(U, R, Some(M)), R);
        // Nobody changed anything.
        assert_eq!(merge(R, R, Some(R)), R);
    }

    #[test]
    fn flags_map_to_states() {
        assert_eq!(State::from_flags(false, false), U);
        assert_eq!(State::from_flags(true, false), R);
        assert_eq!(State::from_flags(true, true), M);
        assert_eq!(State::from_flags(false, true), M);
        for s in [U, R, M, D] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
