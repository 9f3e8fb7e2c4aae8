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
}

pub fn run(store: &Store, cmd: MessagesCmd) -> Result<()> {
    match cmd {
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
