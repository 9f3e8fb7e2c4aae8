//! Rows gone from the mail server: the safety brake ([`super::brake`]) applied to a
//! pass's removals, then the removal itself. Shared by the IMAP and POP3 passes.

use super::brake::{Brake, Verdict};
use super::report::{HeldRemoval, SyncReport};
use crate::store::{Commit, Removal, Store};
use anyhow::Result;

/// What a pass needs to judge its removals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removals {
    pub brake: Brake,
    /// The admin confirmed removals for this pass (`voxbridge sync --confirm-removals`).
    pub confirmed: bool,
    /// When an earlier pass, the last one, held a removal (unix seconds).
    pub held_since: Option<i64>,
}

/// Removes the rows `gone` lists (server list without their UIDs: positive evidence
/// from a completed listing, or VANISHED), unless the brake holds them; records either
/// in `report`.
pub async fn remove(
    store: &Store,
    mailbox: &str,
    removals: &Removals,
    gone: Vec<i64>,
    report: &mut SyncReport,
) -> Result<()> {
    if gone.is_empty() {
        return Ok(());
    }
    // The mailbox's rows are counted only when the count matters, and only as far as
    // it matters: with `limit` rows or more the removal is no more than the allowed
    // share, whatever the exact number.
    if gone.len() > removals.brake.max_gone_rows {
        let (mb, limit) = (mailbox.to_string(), removals.brake.rows_that_allow(gone.len()));
        let rows = store.run(move |st| st.rows_on_server(&mb, limit)).await?;
        match removals.brake.decide(gone.len(), rows, removals.held_since, removals.confirmed, crate::store::now_secs())
        {
            Verdict::Remove => {}
            Verdict::Confirmed { held_since } => {
                tracing::warn!(
                    mailbox,
                    gone = gone.len(),
                    rows,
                    held_since,
                    by_admin = removals.confirmed,
                    "removing messages gone from the mail server: a held removal, now confirmed"
                );
                report.removals_confirmed = true;
            }
            Verdict::Hold { since } => {
                tracing::warn!(
                    mailbox,
                    gone = gone.len(),
                    rows,
                    since,
                    "the mail server no longer lists most of this mailbox: nothing removed; confirm with \
                     `voxbridge sync {mailbox} --confirm-removals` if it was emptied on purpose"
                );
                report.held = Some(HeldRemoval { rows: gone.len(), of: rows, since });
                return Ok(());
            }
        }
    }
    let ids = gone.clone();
    store.run(move |st| st.remove_rows(&ids, Commit::Redoable, Removal::GoneFromServer)).await?;
    report.gone.extend(gone);
    Ok(())
}
