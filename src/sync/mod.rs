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
    let (m, known) = store.run(move |s| Ok((s.mailbox(&mb)?, s.sync_state(&mb)?))).await?;
    let Some(m) = m else { bail!("no mailbox {mailbox}") };
    let removals = gone::Removals { brake, confirmed: confirm_removals, held_since: known.held_since };
    let started = std::time::Instant::now();
    let mut result = match (&m.imap_url, &m.pop3_url) {
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
    // Recorded whatever the outcome; the next pass starts from what a complete one left.
    let (error, summary) = match &result {
        Ok(r) => (None, r.summary()),
        Err(e) => (Some(format!("{e:#}")), format!("failed: {e:#}")),
    };
    let (complete, uidvalidity, highestmodseq, held) = match &result {
        Ok(r) => (
            r.complete(),
            Some(r.uidvalidity).filter(|v| *v != 0),
            r.highestmodseq,
            r.held.map(|h| (h.since, h.rows, h.of)),
        ),
        Err(_) => (false, None, None, None),
    };
    let mb = mailbox.to_string();
    store
        .run(move |st| {
            let error = error.as_deref();
            st.record_sync(&mb, &PassRecord { error, complete, uidvalidity, highestmodseq, held, summary: &summary })
        })
        .await?;
    if let Ok(r) = &mut result {
        r.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    }
    let m = &crate::metrics::METRICS;
    let (mode, outcome) = match &result {
        Ok(r) => (r.mode, "ok"),
        Err(_) => ("unknown", "failed"),
    };
    m.sync_passes.get_or_create(&crate::metrics::labels2("mode", mode, "result", outcome)).inc();
    m.sync_pass_seconds.get_or_create(&crate::metrics::label("mode", mode)).observe(started.elapsed().as_secs_f64());
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
