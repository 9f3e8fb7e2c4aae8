//! The message synchronization engine (seed sections B and C).
//!
//! The store is the single anchor of reference. Pure agents decide ([`compare`],
//! [`retrieve::classify`]); the I/O side ([`imap`]) executes their plans against SQLite
//! and the mail server. See docs/sync.md.

pub mod compare;
pub mod imap;
pub mod lock;
pub mod model;
pub mod pop3;
pub mod retrieve;
pub mod scheduler;

use crate::mail::account::{Account, Scheme};
use crate::store::Store;
use anyhow::{bail, Result};

/// One pass for `mailbox` against its account (IMAP if it has one, else POP3), recorded
/// in the account state and event log whatever the outcome. The caller holds the
/// account lock.
pub async fn pass(store: &Store, mailbox: &str) -> Result<imap::SyncReport> {
    let mb = mailbox.to_string();
    let Some(m) = store.run(move |s| s.mailbox(&mb)).await? else { bail!("no mailbox {mailbox}") };
    let started = std::time::Instant::now();
    let result = match (&m.imap_url, &m.pop3_url) {
        (Some(url), _) => match Account::parse(url, &[Scheme::Imap, Scheme::Imaps]) {
            Ok(acct) => imap::sync_imap(store, mailbox, &acct).await,
            Err(e) => Err(e),
        },
        (None, Some(url)) => match Account::parse(url, &[Scheme::Pop3, Scheme::Pop3s]) {
            Ok(acct) => pop3::sync_pop3(store, mailbox, &acct).await,
            Err(e) => Err(e),
        },
        (None, None) => {
            bail!("mailbox {mailbox} has no mail account to synchronize with (add one with --imap or --pop3)")
        }
    };
    let mut result = result;
    let mb = mailbox.to_string();
    let rec = match &result {
        Ok(r) => (Some(r.uidvalidity).filter(|v| *v != 0), r.highestmodseq, None, r.summary()),
        Err(e) => (None, None, Some(format!("{e:#}")), format!("failed: {e:#}")),
    };
    store.run(move |st| st.record_sync(&mb, rec.0, rec.1, rec.2.as_deref(), &rec.3)).await?;
    // The pass is complete once its HIGHESTMODSEQ (the next pass's starting point) is
    // recorded.
    if let Ok(r) = &mut result {
        r.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    }
    match &result {
        Ok(r) => tracing::info!(mailbox, summary = %r.summary(), "sync pass"),
        Err(e) => tracing::warn!(mailbox, error = %format!("{e:#}"), "sync pass failed"),
    }
    result
}

/// A pass that stored at least this many messages re-warms the page cache afterwards.
const WARM_AFTER: usize = 1000;

/// For long-running processes (the server, `voxbridge sync --each-line`), after a pass:
/// a bulk import wrote so many body pages that the mailbox's rows left the store's page
/// cache; they are read back in once now instead of page by page by the next passes.
pub async fn after_pass(store: &Store, report: &imap::SyncReport) -> Result<()> {
    if report.retrieved.len() + report.linked.len() >= WARM_AFTER {
        let mb = report.mailbox.clone();
        store.run(move |s| s.warm_rows(&mb)).await?;
    }
    Ok(())
}
