//! `voxbridge messages list | mark | restore`.

use crate::mail::compose::{format_duration, rfc5322_date};
use crate::model::{MarkAction, State};
use crate::store::trash::Restored;
use crate::store::Store;
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MessagesCmd {
    /// List a mailbox's messages: id, kind, state (U unread, R read, M marked for
    /// delete, D delete), caller, date, duration or pages, server UID, delivery status.
    List {
        /// Mailbox number.
        number: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change a message's state as the phone would; the next sync pass carries it to
    /// the mail account. delete = marked for delete (M, undeletable); purge = delete (D):
    /// removed from the mail server, then here.
    Mark {
        /// Mailbox number.
        number: String,
        /// Message id (see `messages list`).
        id: i64,
        #[arg(value_enum)]
        action: Mark,
    },
    /// List the mailbox's removed voice and fax messages still in the trash (kept for
    /// [store] trash_days), or put one (ID) or all of them (--all) back.
    ///
    /// A restored recording is delivered to the IMAP mailbox again: the delivery looks
    /// for its Message-ID first, so a copy the mail server still has is linked, never
    /// doubled. If the message came back meanwhile (retrieved again from the server)
    /// without its recording, the recording is put back on it.
    Restore {
        /// Mailbox number.
        number: String,
        /// Trash entry to restore (see the listing); without it, the trash is listed.
        id: Option<i64>,
        /// Restore every entry of the mailbox's trash.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Print JSON instead of a table (the listing).
        #[arg(long)]
        json: bool,
    },
}

/// `messages mark`: the same service call the phone makes.
fn mark(
    store: &Store,
    cfg: &crate::config::Config,
    number: &str,
    id: i64,
    action: MarkAction,
) -> Result<Option<State>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let svc = crate::services::messages::Messages::standalone(store.clone(), cfg);
    rt.block_on(svc.mark(number, vec![(id, action)])).pop().unwrap_or_else(|| Ok(None))
}

/// A message's length for a listing: its duration, or its pages.
fn length(duration_ms: Option<i64>, pages: Option<i64>) -> String {
    match (duration_ms, pages) {
        (Some(d), _) => format_duration(d),
        (None, Some(p)) => format!("{p} p."),
        _ => "-".into(),
    }
}

fn restore_one(store: &Store, number: &str, id: i64) -> Result<()> {
    match store.restore(number, id)? {
        Restored::Row(row) => println!("trash entry {id}: restored as message {row}"),
        Restored::MediaOnto(row) => println!("trash entry {id}: recording put back on message {row}"),
    }
    Ok(())
}

fn restore(store: &Store, number: &str, id: Option<i64>, all: bool, json: bool) -> Result<()> {
    if store.mailbox(number)?.is_none() {
        bail!("no mailbox {number}; see: voxbridge mailbox list");
    }
    let entries = store.trashed(number)?;
    match (id, all) {
        (Some(id), _) => restore_one(store, number, id),
        (None, true) => {
            if entries.is_empty() {
                println!("mailbox {number}: the trash is empty");
            }
            let mut failed = 0;
            // Oldest first: the messages come back in the order they had.
            for e in entries.iter().rev() {
                if let Err(err) = restore_one(store, number, e.id) {
                    println!("trash entry {}: NOT restored: {err:#}", e.id);
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} trash entries not restored", entries.len());
            }
            Ok(())
        }
        (None, false) if json => {
            println!("{}", serde_json::to_string_pretty(&entries)?);
            Ok(())
        }
        (None, false) => {
            if entries.is_empty() {
                println!("mailbox {number}: the trash is empty");
                return Ok(());
            }
            println!(
                "{:>5} {:<6} {:<5} {:<16} {:<31} {:>8}  REMOVED, WHY",
                "ID", "KIND", "STATE", "FROM", "DATE", "LENGTH"
            );
            for e in &entries {
                let len = length(e.duration_ms, e.pages);
                println!(
                    "{:>5} {:<6} {:<5} {:<16} {:<31} {:>8}  {}, {}{}",
                    e.id,
                    e.kind,
                    e.state,
                    e.caller.as_deref().unwrap_or("unknown"),
                    rfc5322_date(e.received_at),
                    len,
                    crate::civil::utc_timestamp(e.removed_at),
                    e.reason,
                    if e.has_media { "" } else { " (no audio kept)" }
                );
            }
            println!("restore one with: voxbridge messages restore {number} ID (or --all)");
            Ok(())
        }
    }
}

/// `messages mark`'s actions, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mark {
    /// U → R.
    Read,
    /// → U.
    Unread,
    /// → M, marked for delete (undeletable).
    Delete,
    /// M → R.
    Undelete,
    /// → D: deleted from the mail server, then from the store, at the next pass.
    Purge,
}

impl From<Mark> for MarkAction {
    fn from(m: Mark) -> MarkAction {
        match m {
            Mark::Read => MarkAction::Read,
            Mark::Unread => MarkAction::Unread,
            Mark::Delete => MarkAction::Delete,
            Mark::Undelete => MarkAction::Undelete,
            Mark::Purge => MarkAction::Purge,
        }
    }
}

pub fn run(store: &Store, cfg: &crate::config::Config, cmd: MessagesCmd) -> Result<()> {
    match cmd {
        MessagesCmd::Restore { number, id, all, json } => restore(store, &number, id, all, json)?,
        MessagesCmd::Mark { number, id, action } => match mark(store, cfg, &number, id, action.into())? {
            Some(state) => println!("message {id}: state {state}"),
            None => println!("message {id}: removed (it existed only here)"),
        },
        MessagesCmd::List { number, json } => {
            if store.mailbox(&number)?.is_none() {
                bail!("no mailbox {number}; see: voxbridge mailbox list");
            }
            let msgs = store.messages(&number)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&msgs)?);
                return Ok(());
            }
            if msgs.is_empty() {
                println!("mailbox {number} has no messages");
                return Ok(());
            }
            println!(
                "{:>5} {:<6} {:<5} {:<16} {:<31} {:>8} {:>6}  DELIVERY",
                "ID", "KIND", "STATE", "FROM", "DATE", "LENGTH", "UID"
            );
            for m in msgs {
                let len = length(m.duration_ms, m.pages);
                println!(
                    "{:>5} {:<6} {:<5} {:<16} {:<31} {:>8} {:>6}  {}",
                    m.id,
                    m.kind,
                    m.state,
                    m.caller.unwrap_or_else(|| "unknown".into()),
                    rfc5322_date(m.received_at),
                    len,
                    m.server_uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
                    m.delivery
                );
            }
        }
    }
    Ok(())
}
