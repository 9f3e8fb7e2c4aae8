//! The merge of a message's two states (seed section B: precedence D > M > R > U, plus
//! the agreed base). The states themselves are [`crate::model::State`].

pub use crate::model::State;

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
