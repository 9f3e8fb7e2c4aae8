//! The compare agent (seed B.5, Fig. 9A and 9B) as a pure function over ordered lists.
//!
//! Input: the store's rows that are on the mail server (server UID known), and the
//! server's list — UIDs with the state the client side expresses (IMAP flags), or no
//! state at all (POP3). Output: a [`Plan`] for the I/O side, which executes it against
//! SQLite and the mail server and may only remove a store row (1) on a formal request,
//! (2) after the server deleted the message (a D), or (3) when its UID is gone from
//! the server list.

pub use crate::model::StoreMsg;

use super::model::{merge, State};

/// One message on the mail server; `state` is None where the protocol has no flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerMsg {
    pub uid: u32,
    pub state: Option<State>,
}

/// What one pass must do, in this order: deletes on the server (then their rows),
/// flag changes on the server, state changes in the store, rows gone from the server,
/// and retrieval of new messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Delete agent: (row, UID) to delete on the server first, then in the store.
    pub delete: Vec<(i64, u32)>,
    /// Server-side state changes (UID, new state).
    pub to_server: Vec<(u32, State)>,
    /// Store-side state changes (row, new state).
    pub to_store: Vec<(i64, State)>,
    /// New agreed states (bases) to remember, only where they differ from the stored one.
    pub synced: Vec<(i64, State)>,
    /// The state each row of `to_store` and `synced` had in the store list: the store
    /// side is applied only to rows still in that state (a change by phone during the
    /// pass is kept, and merged by the next pass).
    pub read: Vec<(i64, State)>,
    /// Rows whose UID is gone from the server: deleted there, remove here (Fig. 9A).
    pub gone: Vec<i64>,
    /// Server UIDs the store does not have: for the retrieve agent.
    pub retrieve: Vec<u32>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
            && self.to_server.is_empty()
            && self.to_store.is_empty()
            && self.gone.is_empty()
            && self.retrieve.is_empty()
    }
}

/// Compares both lists, each sorted by UID (the order the server keeps).
pub fn compare(store: &[StoreMsg], server: &[ServerMsg]) -> Plan {
    debug_assert!(store.windows(2).all(|w| w[0].uid < w[1].uid), "store list must be sorted by UID");
    debug_assert!(server.windows(2).all(|w| w[0].uid < w[1].uid), "server list must be sorted by UID");
    let mut plan = Plan::default();
    let (mut i, mut j) = (0, 0);
    while i < store.len() || j < server.len() {
        match (store.get(i), server.get(j)) {
            (Some(s), Some(c)) if s.uid == c.uid => {
                let merged = match c.state {
                    Some(cs) => merge(s.state, cs, s.synced),
                    None => s.state, // POP3: the state lives in the store alone
                };
                if merged == State::D {
                    plan.delete.push((s.id, s.uid));
                } else {
                    if merged != s.state {
                        plan.to_store.push((s.id, merged));
                    }
                    if c.state.is_some_and(|cs| cs != merged) {
                        plan.to_server.push((s.uid, merged));
                    }
                    if s.synced != Some(merged) {
                        plan.synced.push((s.id, merged));
                    }
                    if merged != s.state || s.synced != Some(merged) {
                        plan.read.push((s.id, s.state));
                    }
                }
                i += 1;
                j += 1;
            }
            (Some(s), c) if c.is_none_or(|c| s.uid < c.uid) => {
                // The server no longer has it: it was deleted there (a store row is never
                // removed before the server copy, so this cannot be a row not yet sent).
                plan.gone.push(s.id);
                i += 1;
            }
            (_, Some(c)) => {
                plan.retrieve.push(c.uid);
                j += 1;
            }
            (None, None) | (Some(_), None) => unreachable!("handled by the arms above"),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    fn row(id: i64, uid: u32, state: State) -> StoreMsg {
        StoreMsg { id, uid, state, synced: None }
    }

    fn srv(uid: u32, state: Option<State>) -> ServerMsg {
        ServerMsg { uid, state }
    }

    /// Seed Fig. 9A: mail server list vs database list. Message 2 was deleted on the
    /// server: its row goes. A 'D' in the database goes to the delete agent.
    #[test]
    fn fig_9a_server_list_against_database_list() {
        let server = [srv(101, None), srv(103, None), srv(104, None), srv(105, None)];
        let store = [row(1, 101, U), row(2, 102, R), row(3, 103, D), row(4, 104, R)];
        let plan = compare(&store, &server);
        assert_eq!(plan.gone, [2]);
        assert_eq!(plan.delete, [(3, 103)]);
        assert_eq!(plan.retrieve, [105], "a new server UID goes to the retrieve agent");
        assert!(plan.to_store.is_empty() && plan.to_server.is_empty());
        assert_eq!(plan.synced, [(1, U), (4, R)], "first pass: every base is new");
        let known: Vec<StoreMsg> = store.iter().map(|r| StoreMsg { synced: Some(r.state), ..r.clone() }).collect();
        assert!(compare(&known, &server).synced.is_empty(), "unchanged bases are not rewritten");
    }

    /// Seed Fig. 9B: client list vs database list; for a matching UID the state with
    /// the higher precedence wins and the merged list goes back to both sides.
    #[test]
    fn fig_9b_client_list_against_database_list_by_precedence() {
        let client = [srv(1, Some(R)), srv(2, Some(U)), srv(3, Some(M)), srv(4, Some(U)), srv(5, Some(M))];
        let store = [row(11, 1, U), row(12, 2, R), row(13, 3, R), row(14, 4, U), row(15, 5, D)];
        let plan = compare(&store, &client);
        assert_eq!(plan.to_store, [(11, R), (13, M)]);
        assert_eq!(plan.to_server, [(2, R)]);
        assert_eq!(plan.delete, [(15, 5)], "D beats M and goes to the delete agent");
        assert_eq!(plan.synced, [(11, R), (12, R), (13, M), (14, U)]);
        assert_eq!(plan.read, [(11, U), (12, R), (13, R), (14, U)], "what the store side expects to find");
        assert!(plan.gone.is_empty() && plan.retrieve.is_empty());
    }

    #[test]
    fn base_lets_a_client_move_a_state_down() {
        let store = [
            StoreMsg { id: 1, uid: 7, state: R, synced: Some(R) },
            StoreMsg { id: 2, uid: 8, state: M, synced: Some(M) },
        ];
        let client = [srv(7, Some(U)), srv(8, Some(R))];
        let plan = compare(&store, &client);
        assert_eq!(plan.to_store, [(1, U), (2, R)]);
        assert!(plan.to_server.is_empty());
    }

    #[test]
    fn empty_lists_and_disjoint_lists() {
        assert!(compare(&[], &[]).is_empty());
        let plan = compare(&[row(1, 5, U)], &[]);
        assert_eq!(plan.gone, [1]);
        let plan = compare(&[], &[srv(1, Some(U)), srv(2, None)]);
        assert_eq!(plan.retrieve, [1, 2]);
        let plan = compare(&[row(1, 1, U), row(2, 9, U)], &[srv(5, Some(R))]);
        assert_eq!((plan.gone, plan.retrieve), (vec![1, 2], vec![5]));
    }
}
