//! What the phone or an admin may do to a message's state.

/// A state change requested by phone or CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkAction {
    /// U → R.
    Read,
    /// → U.
    Unread,
    /// → M, marked for delete (undeletable).
    Delete,
    /// M → R.
    Undelete,
    /// → D: deleted from the mail server, then from the store, at the next pass.
    Purge,
}

impl MarkAction {
    /// The action that puts a message in `state` (the menu asks for states).
    pub fn to(state: super::state::State) -> MarkAction {
        use super::state::State;
        match state {
            State::U => MarkAction::Unread,
            State::R => MarkAction::Read,
            State::M => MarkAction::Delete,
            State::D => MarkAction::Purge,
        }
    }

    /// The new state of a message in `state` (D: deleted from the mail server, then
    /// from the store, at the next pass).
    pub fn apply(self, state: super::state::State) -> super::state::State {
        use super::state::State;
        match self {
            MarkAction::Read => State::R,
            MarkAction::Unread => State::U,
            MarkAction::Delete => State::M,
            MarkAction::Undelete if state == State::M => State::R,
            MarkAction::Undelete => state,
            MarkAction::Purge => State::D,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::State::*;
    use super::MarkAction::*;

    #[test]
    fn each_action_from_each_state() {
        for s in [U, R, M, D] {
            assert_eq!((Read.apply(s), Unread.apply(s), Delete.apply(s), Purge.apply(s)), (R, U, M, D));
        }
        assert_eq!((Undelete.apply(M), Undelete.apply(U), Undelete.apply(R), Undelete.apply(D)), (R, U, R, D));
        for s in [U, R, M, D] {
            assert_eq!(super::MarkAction::to(s).apply(R), s, "to({s:?}) puts a message in {s:?}");
        }
    }
}
