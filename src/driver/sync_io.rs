//! The sync scheduler's task: drives [`crate::sync::scheduler::Registry`] with triggers,
//! finished sessions and timers, and runs each session on its own task under the
//! account lock.

use super::channels::SyncTrigger;
use crate::config::SyncConfig;
use crate::mail::account::{Account, Scheme};
use crate::notify::{Hub, Origin};
use crate::store::Store;
use crate::sync::brake::Brake;
use crate::sync::lock::AccountLock;
use crate::sync::scheduler::{Registry, Timing};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often the list of mailboxes is re-read (the CLI may add some while we run).
const REFRESH: Duration = Duration::from_secs(10);
/// How often the event log and the trash are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Mailboxes with a mail account (IMAP or POP3) to synchronize.
fn accounts(store: &Store) -> Vec<String> {
    store
        .mailboxes()
        .map(|v| v.into_iter().filter(|m| m.imap_url.is_some() || m.pop3_url.is_some()).map(|m| m.number).collect())
        .unwrap_or_default()
}

/// Mailboxes synchronized with IMAP (they get an IDLE watcher).
fn imap_accounts(store: &Store) -> Vec<String> {
    store
        .mailboxes()
        .map(|v| v.into_iter().filter(|m| m.imap_url.is_some()).map(|m| m.number).collect())
        .unwrap_or_default()
}

/// How long one IDLE command may last before it is renewed (RFC 2177 asks for < 29 min).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// One IDLE connection: EXAMINE the folder, IDLE, and trigger a pass whenever the
/// server reports something (new mail, flags changed, expunges). Returns on error.
async fn idle_once(
    store: &Store,
    mailbox: &str,
    trigger: &SyncTrigger,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mb = mailbox.to_string();
    let Some(url) = store.run(move |s| Ok(s.mailbox(&mb)?.and_then(|m| m.imap_url))).await? else { return Ok(()) };
    let acct = Account::parse(&url, &[Scheme::Imap, Scheme::Imaps])?;
    let mut s = crate::mail::imap::login(&acct).await?;
    s.examine(&acct.folder).await?;
    loop {
        let mut idle = s.idle();
        idle.init().await?;
        let (wait, _interrupt) = idle.wait_with_timeout(IDLE_RENEW);
        let outcome = tokio::select! {
            r = wait => r?,
            _ = stop.cancelled() => return Ok(()),
        };
        if let async_imap::extensions::idle::IdleResponse::NewData(_) = outcome {
            tracing::debug!(mailbox, "IDLE: the mail server reported a change");
            trigger.trigger(mailbox);
        }
        s = idle.done().await?;
    }
}

/// Keeps an IDLE connection for `mailbox` until `stop`, reconnecting with backoff.
async fn idle_watch(store: Store, mailbox: String, trigger: SyncTrigger, stop: CancellationToken) {
    let mut wait = Duration::from_secs(2);
    while !stop.is_cancelled() {
        match idle_once(&store, &mailbox, &trigger, &stop).await {
            Ok(()) => wait = Duration::from_secs(2),
            Err(e) => {
                tracing::debug!(mailbox = %mailbox, error = %format!("{e:#}"), retry_in_secs = wait.as_secs(), "IDLE connection lost");
                // Reconnected: something may have changed while we were away.
                trigger.trigger(&mailbox);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(120));
    }
}

/// Drops event-log entries older than `keep_days` (`[sync] log_keep_days`) and trash
/// entries older than `trash_days` (`[store] trash_days`).
async fn prune(store: &Store, keep_days: f64, trash_days: f64) {
    let now = crate::store::now_secs();
    let (s2, before) = (store.clone(), now - (keep_days * 86_400.0) as i64);
    match tokio::task::spawn_blocking(move || s2.prune_sync_log(before)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(entries = n, keep_days, "sync event log pruned"),
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "pruning the sync event log failed"),
        Err(e) => tracing::warn!(error = %e, "pruning the sync event log failed"),
    }
    let (s2, before) = (store.clone(), now - (trash_days * 86_400.0) as i64);
    match tokio::task::spawn_blocking(move || s2.purge_trash(before)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(messages = n, trash_days, "removed messages purged from the trash"),
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "purging the trash failed"),
        Err(e) => tracing::warn!(error = %e, "purging the trash failed"),
    }
}

async fn session(store: Store, mailbox: String, changes: Hub, brake: Brake) -> (String, bool) {
    let ok = async {
        let (root, mb) = (store.root().to_path_buf(), mailbox.clone());
        let _lock = tokio::task::spawn_blocking(move || AccountLock::acquire(&root, &mb)).await??;
        let report = crate::sync::pass(&store, &mailbox, brake, false).await?;
        if let Err(e) = crate::sync::after_pass(&store, &report).await {
            tracing::warn!(mailbox = %mailbox, error = %format!("{e:#}"), "warming the page cache failed");
        }
        anyhow::Ok(report)
    }
    .await;
    // A pass that changed the store (a message read in a mail client, new mail,
    // deletions) is announced: the message-waiting lamp may change.
    if let Ok(r) = &ok {
        if !(r.to_store.is_empty() && r.gone.is_empty() && r.retrieved.is_empty() && r.deleted.is_empty()) {
            changes.changed(&mailbox, Origin::MailServer);
        }
    }
    (mailbox, ok.is_ok())
}

pub async fn run(
    store: Store,
    cfg: SyncConfig,
    trash_days: f64,
    trigger: SyncTrigger,
    mut triggers: mpsc::UnboundedReceiver<String>,
    changes: Hub,
    stop: CancellationToken,
) {
    let mut watchers: std::collections::HashMap<String, CancellationToken> = std::collections::HashMap::new();
    let mut update_watchers = |names: Vec<String>| {
        if !cfg.idle {
            return;
        }
        watchers.retain(|name, token| {
            let keep = names.contains(name);
            if !keep {
                token.cancel();
            }
            keep
        });
        for name in names {
            watchers.entry(name.clone()).or_insert_with(|| {
                let token = stop.child_token();
                tokio::spawn(idle_watch(store.clone(), name, trigger.clone(), token.clone()));
                token
            });
        }
    };
    let s2 = store.clone();
    update_watchers(tokio::task::spawn_blocking(move || imap_accounts(&s2)).await.unwrap_or_default());
    let mut reg = Registry::new(Timing {
        poll: Duration::from_secs_f64(cfg.poll_secs),
        backoff_initial: Duration::from_secs_f64(cfg.backoff_initial_secs),
        backoff_max: Duration::from_secs_f64(cfg.backoff_max_secs),
    });
    let mut sessions: JoinSet<(String, bool)> = JoinSet::new();
    let s2 = store.clone();
    reg.set_accounts(Instant::now(), &tokio::task::spawn_blocking(move || accounts(&s2)).await.unwrap_or_default());
    let mut refresh_at = Instant::now() + REFRESH;
    let mut prune_at = Instant::now();
    loop {
        if Instant::now() >= prune_at {
            prune(&store, cfg.log_keep_days, trash_days).await;
            prune_at = Instant::now() + PRUNE_EVERY;
        }
        let now = Instant::now();
        for name in reg.handle_timeout(now) {
            sessions.spawn(session(store.clone(), name, changes.clone(), cfg.brake()));
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
                    sessions.spawn(session(store.clone(), name, changes.clone(), cfg.brake()));
                } else {
                    tracing::debug!(mailbox = %name, "sync trigger coalesced into the next pass");
                }
            }
            Some(done) = sessions.join_next() => {
                let Ok((name, ok)) = done else { continue };
                let now = Instant::now();
                if reg.handle_finished(now, &name, ok) {
                    sessions.spawn(session(store.clone(), name, changes.clone(), cfg.brake()));
                } else if !ok {
                    let wait = reg.retry_in(now, &name).unwrap_or_default();
                    tracing::warn!(mailbox = %name, retry_in_secs = wait.as_secs_f64(), "mail account in backoff");
                    // For `voxbridge sync-log`: when the account is tried again.
                    let (s2, at) = (store.clone(), crate::store::now_secs() + wait.as_secs_f64().ceil() as i64);
                    let _ = tokio::task::spawn_blocking(move || s2.set_sync_retry(&name, at)).await;
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        if Instant::now() >= refresh_at {
            let s2 = store.clone();
            let names = tokio::task::spawn_blocking(move || accounts(&s2)).await.unwrap_or_default();
            reg.set_accounts(Instant::now(), &names);
            let s2 = store.clone();
            update_watchers(tokio::task::spawn_blocking(move || imap_accounts(&s2)).await.unwrap_or_default());
            refresh_at = Instant::now() + REFRESH;
        }
    }
    // A pass in progress is cut off; the next start converges (see sync/imap.rs).
    sessions.abort_all();
}
