//! `voxbridge sync NUMBER | --all`: synchronization passes now; `voxbridge sync-log`: each
//! account's sync state and the event log of recent passes.

use crate::store::Store;
use crate::sync::brake::Brake;
use crate::sync::lock::AccountLock;
use crate::sync::SyncReport;
use anyhow::{bail, Result};

/// How the passes run and report.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `[sync]`'s safety brake.
    pub brake: Brake,
    /// `--confirm-removals`: apply what the brake would hold.
    pub confirm_removals: bool,
    /// `--json`.
    pub json: bool,
}

pub fn run(store: &Store, number: &str, opts: &Options, each_line: bool) -> Result<()> {
    let json = opts.json;
    if store.mailbox(number)?.is_none() {
        bail!("no mailbox {number}; see: voxbridge mailbox list");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if !each_line {
        print(number, &rt.block_on(locked_pass(store, number, opts))?, json, true)?;
        // No maintenance thread in a one-shot command: reclaim the bodies of the rows
        // this pass removed before leaving (after the report: the pass is done).
        store.reclaim_bodies()?;
        return Ok(());
    }
    store.start_checkpointer()?;
    for line in std::io::stdin().lines() {
        line?;
        let report = rt.block_on(locked_pass(store, number, opts))?;
        print(number, &report, json, false)?;
        rt.block_on(crate::sync::after_pass(store, &report))?;
    }
    Ok(())
}

/// `voxbridge sync --all`: one pass per mailbox with a mail account, in number order.
pub fn run_all(store: &Store, opts: &Options) -> Result<()> {
    let json = opts.json;
    let accounts: Vec<String> = store
        .mailboxes()?
        .into_iter()
        .filter(|m| m.imap_url.is_some() || m.pop3_url.is_some())
        .map(|m| m.number)
        .collect();
    if accounts.is_empty() {
        bail!("no mailbox has a mail account (see: voxbridge mailbox add --imap/--pop3)");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut failed, mut out) = (Vec::new(), Vec::new());
    for number in &accounts {
        match rt.block_on(locked_pass(store, number, opts)) {
            Ok(report) if json => out.push(serde_json::json!({ "mailbox": number, "report": report })),
            Ok(report) => print(number, &report, false, false)?,
            Err(e) if json => {
                out.push(serde_json::json!({ "mailbox": number, "error": format!("{e:#}") }));
                failed.push(number.clone());
            }
            Err(e) => {
                println!("mailbox {number}: FAILED: {e:#}");
                failed.push(number.clone());
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    store.reclaim_bodies()?;
    if !failed.is_empty() {
        bail!(
            "{} of {} accounts failed: {} (see: voxbridge sync-log)",
            failed.len(),
            accounts.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

async fn locked_pass(store: &Store, number: &str, opts: &Options) -> Result<SyncReport> {
    let (root, n) = (store.root().to_path_buf(), number.to_string());
    let _lock = tokio::task::spawn_blocking(move || AccountLock::acquire(&root, &n)).await??;
    crate::sync::pass(store, number, opts.brake, opts.confirm_removals).await
}

fn print(number: &str, report: &SyncReport, json: bool, pretty: bool) -> Result<()> {
    if json {
        let text = if pretty { serde_json::to_string_pretty(report)? } else { serde_json::to_string(report)? };
        println!("{text}");
    } else {
        println!("mailbox {number}: {}", report.summary());
        for (id, st) in &report.to_store {
            println!("  message {id}: now {st} (changed on the server)");
        }
        for (uid, st) in &report.to_server {
            println!("  server UID {uid}: now {st} (changed here)");
        }
        for (id, uid) in &report.deleted {
            println!("  message {id} (UID {uid}): deleted on the server and here");
        }
        for id in &report.gone {
            println!("  message {id}: removed (deleted on the server)");
        }
        for id in &report.retrieved {
            println!("  message {id}: retrieved");
        }
        if let Some(h) = &report.held {
            println!(
                "  NOTHING REMOVED: the mail server no longer lists {} of the {} messages here. If it really lost them \
                 or they were deleted on purpose, run: voxbridge sync {number} --confirm-removals",
                h.rows, h.of
            );
        }
    }
    Ok(())
}

/// `voxbridge sync-log`: the accounts' state, then the newest `limit` log entries.
/// `secs` in words for the log ("10 min", "45 s", "2 h").
fn span(secs: i64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 120 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `voxbridge sync-log`; `brake` says when a held removal is applied by itself.
pub fn log(store: &Store, number: Option<&str>, limit: usize, json: bool, brake: &Brake) -> Result<()> {
    if let Some(n) = number {
        if store.mailbox(n)?.is_none() {
            bail!("no mailbox {n}; see: voxbridge mailbox list");
        }
    }
    let mut accounts = store.sync_status(number)?;
    for a in &mut accounts {
        a.account = super::mailbox::redact(&a.account);
    }
    let entries = store.sync_log(number, limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "accounts": accounts, "log": entries }))?);
        return Ok(());
    }
    if accounts.is_empty() {
        println!("no mailbox has a mail account (see: voxbridge mailbox add --imap/--pop3)");
    }
    let when = |t: Option<i64>| t.map_or("never".to_string(), crate::civil::utc_timestamp);
    for a in &accounts {
        let state = match (a.failures, &a.last_error) {
            (0, _) if a.held.is_some() => "NEEDS CONFIRMATION (a removal is held, see below)".to_string(),
            (0, _) => "ok".to_string(),
            (n, e) => format!(
                "FAILING ({n} failed pass{}; next try {}): {}",
                if n == 1 { "" } else { "es" },
                // A retry time already past is from a server no longer waiting on it.
                a.next_attempt_at
                    .filter(|t| *t > crate::store::now_secs())
                    .map_or("at the next poll or trigger".to_string(), crate::civil::utc_timestamp),
                e.as_deref().unwrap_or("?")
            ),
        };
        println!("mailbox {}  {}  last good pass {}  {}", a.mailbox, a.account, when(a.last_sync_at), state);
        if let Some((since, rows, of)) = a.held {
            println!(
                "  held since {}: the mail server no longer lists {rows} of {of} messages; nothing removed. If \
                 they really are gone there: voxbridge sync {} --confirm-removals (otherwise they go when a pass \
                 still finds them gone {} later)",
                crate::civil::utc_timestamp(since),
                a.mailbox,
                span(brake.confirm_after_secs)
            );
        }
    }
    if !entries.is_empty() {
        println!();
    }
    for e in &entries {
        let mark = if e.ok { "ok    " } else { "FAILED" };
        println!("{}  {}  {}  {}", crate::civil::utc_timestamp(e.at), e.mailbox, mark, e.summary);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_read_as_an_admin_would_say_them() {
        assert_eq!(super::span(45), "45 s");
        assert_eq!(super::span(600), "10 min");
        assert_eq!(super::span(3600), "1 h");
        assert_eq!(super::span(5400), "90 min");
    }
}
