//! The fax outbox worker: queued fax jobs (`voxbridge fax forward`, the menu's forward
//! to a fax number) sent by the running server, a few at once, each attempt through
//! [`super::fax_send::attempt`]. Pages confirmed are recorded as they come; what a
//! crash interrupted is recovered at start (see `store::fax_jobs`).

use super::fax_send::{self, SendJob, SendReport};
use crate::config::Config;
use crate::store::api::SharedStore;
use crate::store::fax_jobs::{FaxJob, JobEnd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How often the queue is looked at: the CLI that queues a job cannot wake the server.
const POLL: Duration = Duration::from_secs(2);
/// Faxes sent at once.
const CHANNELS: usize = 4;

pub async fn run(cfg: Arc<Config>, store: SharedStore, stop: CancellationToken) {
    match store.run(|s| s.recover_fax_jobs()).await {
        Ok((0, 0)) => {}
        Ok((requeued, finished)) => {
            tracing::warn!(
                requeued,
                finished,
                "fax jobs interrupted by a stop: those with no page through are sent again"
            )
        }
        Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot recover fax jobs"),
    }
    let channels = Arc::new(Semaphore::new(CHANNELS));
    loop {
        while let Ok(permit) = channels.clone().try_acquire_owned() {
            let now = crate::store::now_millis();
            let job = match store.run(move |s| s.claim_fax_job(now)).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot read the fax queue");
                    break;
                }
            };
            let (cfg, store) = (cfg.clone(), store.clone());
            tokio::spawn(async move {
                send_job(&cfg, &store, job).await;
                drop(permit);
            });
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One attempt at `job` (already marked sending).
async fn send_job(cfg: &Config, store: &SharedStore, job: FaxJob) {
    tracing::info!(job = job.id, to = %job.target, attempt = job.attempts, pages = job.pages, "sending a queued fax");
    let send = SendJob {
        file: cfg.store.path.join(&job.file),
        to: job.target.clone(),
        ident: job.ident.clone(),
        caller: cfg.fax.send_from.clone(),
        retries: 0,
        retry_wait: Duration::ZERO,
    };
    let id = job.id;
    let pages_store = store.clone();
    // Pages confirmed during this call, as they came (the report may not have them when
    // the call ended oddly): a job with any is never sent again.
    let confirmed = Arc::new(AtomicU32::new(0));
    let seen = confirmed.clone();
    let on_pages: fax_send::OnPages = Arc::new(move |n| {
        seen.fetch_max(n, Ordering::Relaxed);
        let s = pages_store.clone();
        tokio::spawn(async move {
            if let Err(e) = s.run(move |s| s.fax_job_pages(id, n as i64)).await {
                tracing::error!(job = id, error = %format!("{e:#}"), "cannot record a confirmed fax page");
            }
        });
    });
    let mut report = SendReport::new(&job.target);
    report.attempts = job.attempts as u32;
    let retry = match fax_send::attempt(cfg, &send, on_pages).await {
        Ok(a) => report.apply(a),
        Err(e) => {
            report.result = format!("{e:#}");
            false
        }
    };
    report.pages_sent = report.pages_sent.max(confirmed.load(Ordering::Relaxed));
    let retry = retry && report.pages_sent == 0;
    let f = &cfg.fax;
    let end = crate::services::fax::job_end(
        report.ok,
        retry,
        job.attempts,
        f.send_retries,
        f.send_retry_secs,
        crate::store::now_millis(),
    );
    let (pages, result) = (report.pages_sent as i64, report.result.clone());
    let end2 = end.clone();
    let done = store
        .run(move |s| {
            s.fax_job_pages(id, pages)?;
            s.finish_fax_job(id, &end2, &result)
        })
        .await;
    if let Err(e) = done {
        tracing::error!(job = id, error = %format!("{e:#}"), "cannot record how a fax job ended");
    }
    match end {
        JobEnd::Sent => tracing::info!(job = id, pages = report.pages_sent, "queued fax sent"),
        JobEnd::Retry(_) => {
            tracing::info!(job = id, result = %report.result, wait_secs = f.send_retry_secs, "queued fax not sent; trying again later")
        }
        JobEnd::Failed => {
            tracing::warn!(job = id, pages = report.pages_sent, result = %report.result, "queued fax failed")
        }
    }
}
