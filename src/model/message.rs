//! Views of a message shared by the layers: the menu's, and the compare agent's row.

use super::state::State;

/// One message as the menu sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuMessage {
    pub id: i64,
    pub kind: super::kind::MessageKind,
    pub state: State,
    pub caller: Option<String>,
    pub received_at: i64,
    pub duration_ms: Option<i64>,
    /// A fax's pages.
    pub pages: Option<i64>,
}

/// One store row as the compare agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMsg {
    pub id: i64,
    pub uid: u32,
    pub state: State,
    /// The state both sides agreed on at the last sync (None before the first).
    pub synced: Option<State>,
}
