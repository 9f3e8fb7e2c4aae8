//! The message synchronization engine (seed sections B and C).
//!
//! The store is the single anchor of reference. Pure agents decide ([`compare`],
//! [`retrieve::classify`]); the I/O side ([`imap`]) executes their plans against SQLite
//! and the mail server. See docs/sync.md.

pub mod brake;
pub mod compare;
pub mod gone;
pub mod imap;
pub mod lock;
pub mod model;
pub mod pop3;
pub mod report;
pub mod retrieve;
pub mod scheduler;

use crate::mail::account::{Account, Scheme};
use crate::store::{PassRecord, Store};
use anyhow::{bail, Result};
pub use report::SyncReport;

/// One pass for `mailbox` against its account (IMAP if it has one, else POP3), recorded
/// in the account state and event log whatever the outcome. `brake` judges large
/// removals; `confirm_removals` applies one the brake would hold (the admin's
/// `--confirm-removals`). The caller holds the account lock.
pub async fn pass(store: &Store, mailbox: &str, brake: brake::Brake, confirm_removals: bool) -> Result<SyncReport> {
    let mb = mailbox.to_string();
    let Some(m) = store.run(move |s| s.mailbox(&mb)).await? else { bail!("no mailbox {mailbox}") };
    let mb = mailbox.to_string();
    let known = store.run(move |s| s.sync_state(&mb)).await?;
    let removals = gone::Removals { brake, confirmed: confirm_removals, held_since: known.held_since };
    let started = std::time::Instant::now();
    let result = match (&m.imap_url, &m.pop3_url) {
        (Some(url), _) => match Account::parse(url, &[Scheme::Imap, Scheme::Imaps]) {
            Ok(acct) => imap::sync_imap(store, mailbox, &acct, &known, &removals).await,
            Err(e) => Err(e),
        },
        (None, Some(url)) => match Account::parse(url, &[Scheme::Pop3, Scheme::Pop3s]) {
            Ok(acct) => pop3::sync_pop3(store, mailbox, &acct, &removals).await,
            Err(e) => Err(e),
        },
        (None, None) => {
            bail!("mailbox {mailbox} has no mail account to synchronize with (add one with --imap or --pop3)")
        }
    };
    let mut result = result;
    let (mb, summary, error) = match &result {
        Ok(r) => (mailbox.to_string(), r.summary(), None),
        Err(e) => (mailbox.to_string(), format!("failed: {e:#}"), Some(format!("{e:#}"))),
    };
    let rec = result.as_ref().ok().map(|r| {
        (
            r.complete(),
            Some(r.uidvalidity).filter(|v| *v != 0),
            r.highestmodseq,
            r.held.map(|h| (h.since, h.rows, h.of)),
        )
    });
    store
        .run(move |st| {
            let (complete, uidvalidity, highestmodseq, held) = rec.unwrap_or((false, None, None, None));
            st.record_sync(
                &mb,
                &PassRecord { error: error.as_deref(), complete, uidvalidity, highestmodseq, held, summary: &summary },
            )
        })
        .await?;
    // The pass is complete once its HIGHESTMODSEQ (the next pass's starting point) is
    // recorded.
    if let Ok(r) = &mut result {
        r.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    }
    match &result {
        Ok(r) if r.complete() => tracing::info!(mailbox, summary = %r.summary(), "sync pass"),
        Ok(r) => tracing::warn!(mailbox, summary = %r.summary(), "sync pass left work for the next pass"),
        Err(e) => tracing::warn!(mailbox, error = %format!("{e:#}"), "sync pass failed"),
    }
    result
}

/// A pass that stored at least this many messages re-warms the page cache afterwards.
const WARM_AFTER: usize = 1000;

/// For long-running processes (the server, `voxbridge sync --each-line`), after a pass:
/// a bulk import wrote so many body pages that the mailbox's rows left the store's page
/// cache; they are read back in once now instead of page by page by the next passes.
pub async fn after_pass(store: &Store, report: &SyncReport) -> Result<()> {
    if report.retrieved.len() + report.linked.len() >= WARM_AFTER {
        let mb = report.mailbox.clone();
        store.run(move |s| s.warm_rows(&mb)).await?;
    }
    Ok(())
}
