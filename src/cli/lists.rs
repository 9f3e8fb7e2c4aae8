//! `voxbridge list add|remove|show|members`: distribution lists. Forwarding a message
//! by phone to a list's number delivers it to every member mailbox (but the sender's).

use crate::config::Config;
use crate::services::lists;
use crate::store::Store;
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ListCmd {
    /// Create a list: its number (not a mailbox's) and its member mailboxes.
    ///
    /// Example: voxbridge list add 800 --name sales 1001 1002 1003
    Add {
        number: String,
        /// What the list is, for people reading `list show`.
        #[arg(long)]
        name: Option<String>,
        /// Member mailbox numbers.
        members: Vec<String>,
    },
    /// Remove a list (its members' mailboxes stay).
    Remove { number: String },
    /// Every list with its members, or one list.
    Show {
        number: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A list's members; with --add/--remove, change them first (in one step).
    ///
    /// Example: voxbridge list members 800 --add 1004 --remove 1001
    Members {
        number: String,
        /// Mailboxes to add (repeat, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        add: Vec<String>,
        /// Members to take off the list.
        #[arg(long, value_delimiter = ',')]
        remove: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(store: &Store, cfg: &Config, cmd: ListCmd) -> Result<()> {
    lists::import_configured(store, &cfg.menu.list)?;
    match cmd {
        ListCmd::Add { number, name, members } => {
            lists::check_number(&number)?;
            store.add_list(&number, name.as_deref(), &members)?;
            println!("list {number} added with {} member(s)", members.len());
        }
        ListCmd::Remove { number } => {
            if !store.remove_list(&number)? {
                bail!("no list {number} (see: voxbridge list show)");
            }
            println!("list {number} removed");
        }
        ListCmd::Show { number: Some(number), json } => {
            let Some(l) = store.list(&number)? else { bail!("no list {number} (see: voxbridge list show)") };
            if json {
                println!("{}", serde_json::to_string(&l)?);
            } else {
                print_list(&l);
            }
        }
        ListCmd::Show { number: None, json } => {
            let all = store.lists()?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else if all.is_empty() {
                println!("no distribution lists (add one: voxbridge list add NUMBER MAILBOX…)");
            } else {
                all.iter().for_each(print_list);
            }
        }
        ListCmd::Members { number, add, remove, json } => {
            let l = if add.is_empty() && remove.is_empty() {
                store.list(&number)?.ok_or_else(|| anyhow::anyhow!("no list {number} (see: voxbridge list show)"))?
            } else {
                store.change_members(&number, &add, &remove)?
            };
            if json {
                println!("{}", serde_json::to_string(&l.members)?);
            } else {
                l.members.iter().for_each(|m| println!("{m}"));
            }
        }
    }
    Ok(())
}

fn print_list(l: &crate::store::lists::DistributionList) {
    let name = l.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    println!("{}{name}: {}", l.number, if l.members.is_empty() { "no members".into() } else { l.members.join(" ") });
}
