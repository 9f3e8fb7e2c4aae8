//! What a pass did (IMAP or POP3): for `voxbridge sync`, the event log and the
//! account's recorded state.

use super::model::State;
use super::retrieve::{Kind, Retrieved};
use crate::store::RetrievedRow;
use serde::Serialize;

/// A removal the safety brake held (see [`super::brake`]).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct HeldRemoval {
    /// Rows the pass found gone from the server and kept.
    pub rows: usize,
    /// Rows of the mailbox on the server before the pass.
    pub of: usize,
    /// When a pass first held it (unix seconds).
    pub since: i64,
}

/// What one pass did, for `voxbridge sync`, the log and the event table.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct SyncReport {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uidvalidity_reset: bool,
    /// "qresync", "condstore" or "full" (IMAP), "pop3".
    pub mode: &'static str,
    /// How many messages' flags the server sent: the cost of the pass.
    pub flags_fetched: usize,
    /// The mailbox's HIGHESTMODSEQ at the start of this pass (CONDSTORE servers).
    pub highestmodseq: Option<u64>,
    /// Wall time of the pass itself (login to the last answer and store write; the
    /// LOGOUT is not waited for).
    pub elapsed_ms: f64,
    pub server_messages: usize,
    /// New messages stored (row ids).
    pub retrieved: Vec<i64>,
    /// Server messages recognized as our own deposits by Message-ID (row ids).
    pub linked: Vec<i64>,
    /// State changes carried to the store: (row, new state).
    pub to_store: Vec<(i64, State)>,
    /// State changes carried to the server: (UID, new state).
    pub to_server: Vec<(u32, State)>,
    /// Deleted on the server, then in the store: (row, UID).
    pub deleted: Vec<(i64, u32)>,
    /// Rows removed because the server no longer has them.
    pub gone: Vec<i64>,
    /// Rows found gone but kept by the safety brake, awaiting confirmation.
    pub held: Option<HeldRemoval>,
    /// A held removal applied by this pass (confirmed by the admin, or found again
    /// `confirm_removals_after_secs` after it was first held).
    pub removals_confirmed: bool,
    /// UIDs whose body was asked for but did not come (expunged meanwhile, or a server
    /// fault): the pass does not record its HIGHESTMODSEQ, so the next pass asks again.
    pub missing: Vec<u32>,
}

impl SyncReport {
    /// Whether everything the server reported was carried out: only then may the pass's
    /// server-derived state (UIDVALIDITY, HIGHESTMODSEQ) be recorded as the next pass's
    /// starting point; otherwise the next pass sees the same changes again.
    pub fn complete(&self) -> bool {
        self.held.is_none() && self.missing.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} on server ({}, {} flags fetched); retrieved {}, linked {}, to store {}, to server {}, deleted {}, gone {}",
            self.server_messages,
            self.mode,
            self.flags_fetched,
            self.retrieved.len(),
            self.linked.len(),
            self.to_store.len(),
            self.to_server.len(),
            self.deleted.len(),
            self.gone.len(),
        );
        if self.uidvalidity_reset {
            s.push_str(", UIDVALIDITY changed: full resync");
        }
        if self.removals_confirmed {
            s.push_str(", a held removal confirmed and applied");
        }
        if let Some(h) = &self.held {
            s.push_str(&format!(
                ", NEEDS CONFIRMATION: {} of {} messages gone from the server kept (held since {})",
                h.rows,
                h.of,
                crate::civil::utc_timestamp(h.since)
            ));
        }
        if !self.missing.is_empty() {
            s.push_str(&format!(", {} bodies did not arrive (asked for again next pass)", self.missing.len()));
        }
        s
    }
}

/// What the store keeps of a retrieved message.
pub fn retrieved_row(
    info: Retrieved,
    state: State,
    uid: Option<(u32, u32)>,
    server_key: Option<String>,
    raw: Vec<u8>,
) -> RetrievedRow {
    RetrievedRow {
        kind: info.kind,
        state,
        duration_ms: if info.kind == Kind::Voice { info.duration_ms } else { None },
        message_id: info.message_id,
        caller: info.from,
        caller_name: info.from_name,
        subject: info.subject,
        received_at: info.date.unwrap_or_else(crate::store::now_secs),
        uid,
        server_key,
        raw,
    }
}
