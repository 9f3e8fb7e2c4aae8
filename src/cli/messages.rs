//! `voxbridge messages list`.

use crate::mail::compose::{format_duration, rfc5322_date};
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
        action: crate::store::MarkAction,
    },
}

pub fn run(store: &Store, cmd: MessagesCmd) -> Result<()> {
    match cmd {
        MessagesCmd::Mark { number, id, action } => match store.mark(&number, id, action)? {
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
                let len = match (m.duration_ms, m.pages) {
                    (Some(d), _) => format_duration(d),
                    (None, Some(p)) => format!("{p} p."),
                    _ => "-".into(),
                };
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
