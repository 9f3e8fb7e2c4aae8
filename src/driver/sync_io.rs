//! The sync scheduler's task: drives [`crate::sync::scheduler::Registry`] with triggers,
//! finished sessions and timers, and runs each session on its own task under the
//! account lock.

use crate::config::SyncConfig;
use crate::store::Store;
use crate::sync::lock::AccountLock;
use crate::sync::scheduler::{Registry, Timing};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A cheap handle to ask for a sync of one mailbox (after a deposit, a change by phone).
#[derive(Clone, Debug)]
pub struct SyncTrigger(mpsc::UnboundedSender<String>);

impl SyncTrigger {
    pub fn channel() -> (SyncTrigger, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SyncTrigger(tx), rx)
    }

    pub fn trigger(&self, mailbox: &str) {
        let _ = self.0.send(mailbox.to_string());
    }
}

/// How often the list of mailboxes is re-read (the CLI may add some while we run).
const REFRESH: Duration = Duration::from_secs(10);

/// Mailboxes with a mail account (IMAP or POP3) to synchronize.
fn accounts(store: &Store) -> Vec<String> {
    store
        .mailboxes()
        .map(|v| v.into_iter().filter(|m| m.imap_url.is_some() || m.pop3_url.is_some()).map(|m| m.number).collect())
        .unwrap_or_default()
}

async fn session(store: Store, mailbox: String) -> (String, bool) {
    let ok = async {
        let (root, mb) = (store.root().to_path_buf(), mailbox.clone());
        let _lock = tokio::task::spawn_blocking(move || AccountLock::acquire(&root, &mb)).await??;
        crate::sync::pass(&store, &mailbox).await.map(|_| ())
    }
    .await;
    (mailbox, ok.is_ok())
}

pub async fn run(
    store: Store,
    cfg: SyncConfig,
    mut triggers: mpsc::UnboundedReceiver<String>,
    stop: CancellationToken,
) {
    let mut reg = Registry::new(Timing {
        poll: Duration::from_secs_f64(cfg.poll_secs),
        backoff_initial: Duration::from_secs_f64(cfg.backoff_initial_secs),
        backoff_max: Duration::from_secs_f64(cfg.backoff_max_secs),
    });
    let mut sessions: JoinSet<(String, bool)> = JoinSet::new();
    let s2 = store.clone();
    reg.set_accounts(Instant::now(), &tokio::task::spawn_blocking(move || accounts(&s2)).await.unwrap_or_default());
    let mut refresh_at = Instant::now() + REFRESH;
    loop {
        let now = Instant::now();
        for name in reg.handle_timeout(now) {
            sessions.spawn(session(store.clone(), name));
        }
        let wake = reg.poll_timeout().map_or(refresh_at, |t| t.min(refresh_at));
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(name) = triggers.recv() => {
                if !reg.knows(&name) {
                    // A mailbox added since the last refresh.
                    let s2 = store.clone();
                    let names = tokio::task::spawn_blocking(move || accounts(&s2)).await.unwrap_or_default();
                    reg.set_accounts(Instant::now(), &names);
                }
                if reg.trigger(Instant::now(), &name) {
                    sessions.spawn(session(store.clone(), name));
                } else {
                    tracing::debug!(mailbox = %name, "sync trigger coalesced into the next pass");
                }
            }
            Some(done) = sessions.join_next() => {
                let Ok((name, ok)) = done else { continue };
                let now = Instant::now();
                if reg.handle_finished(now, &name, ok) {
                    sessions.spawn(session(store.clone(), name));
                } else if !ok {
                    let wait = reg.retry_in(now, &name).unwrap_or_default();
                    tracing::warn!(mailbox = %name, retry_in_secs = wait.as_secs_f64(), "mail account in backoff");
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        if Instant::now() >= refresh_at {
            let s2 = store.clone();
            let names = tokio::task::spawn_blocking(move || accounts(&s2)).await.unwrap_or_default();
            reg.set_accounts(Instant::now(), &names);
            refresh_at = Instant::now() + REFRESH;
        }
    }
    // A pass in progress is cut off; the next start converges (see sync/imap.rs).
    sessions.abort_all();
}
