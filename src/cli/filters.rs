//! `voxbridge filters list|add|remove|test NUMBER`: which e-mails the phone menu offers.

use crate::model::{MessageKind, State};
use crate::services::filters::{self, Filter, MailFacts};
use crate::store::Store;
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum FiltersCmd {
    /// A mailbox's filter rules, with their ids.
    List { number: String },
    /// Add a rule. An e-mail is offered by phone when no `deny` matches, an `allow`
    /// matches (if there are any) and every `only` holds; filtered mail still syncs.
    ///
    /// Rules: allow|deny from ADDRESS-OR-DOMAIN; allow|deny subject TEXT;
    /// allow|deny header NAME[: TEXT]; only newer-than DAYS; only unread;
    /// only high-priority; only smaller-than BYTES.
    ///
    /// Example: voxbridge filters add 1001 "deny from @newsletters.example"
    Add { number: String, rule: String },
    /// Remove rule ID of the mailbox.
    Remove { number: String, id: i64 },
    /// Every e-mail of the mailbox: offered, or which rule keeps it back.
    Test {
        number: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(store: &Store, cmd: FiltersCmd) -> Result<()> {
    match cmd {
        FiltersCmd::List { number } => {
            if store.mailbox(&number)?.is_none() {
                bail!("no mailbox {number}");
            }
            for (id, rule) in store.filters(&number)? {
                println!("{id:>5}  {rule}");
            }
            Ok(())
        }
        FiltersCmd::Add { number, rule } => {
            Filter::parse(&rule)?;
            let id = store.add_filter(&number, rule.trim())?;
            println!("filter {id} added");
            Ok(())
        }
        FiltersCmd::Remove { number, id } => {
            if !store.remove_filter(&number, id)? {
                bail!("mailbox {number} has no filter {id}");
            }
            println!("filter {id} removed");
            Ok(())
        }
        FiltersCmd::Test { number, json } => {
            if store.mailbox(&number)?.is_none() {
                bail!("no mailbox {number}");
            }
            let rules = filters::parse_stored(&store.filters(&number)?);
            let now = crate::store::now_secs();
            let mut out = Vec::new();
            for m in store.messages(&number)?.into_iter().filter(|m| m.kind == MessageKind::Email) {
                let raw = store.message_raw(m.id)?.unwrap_or_default();
                let facts = MailFacts::read(&raw, (now - m.received_at) as f64 / 86_400.0, m.state == State::U);
                let verdict = filters::offered(&rules, &facts).map_err(|(id, _)| *id);
                out.push((m.id, m.subject.unwrap_or_default(), verdict));
            }
            if json {
                let v: Vec<_> = out
                    .iter()
                    .map(|(id, subject, v)| {
                        serde_json::json!({"id": id, "subject": subject, "offered": v.is_ok(), "kept_back_by": v.err()})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (id, subject, v) in out {
                    match v {
                        Ok(()) => println!("{id:>6}  offered              {subject}"),
                        Err(rule) => println!("{id:>6}  kept back (filter {rule})  {subject}"),
                    }
                }
            }
            Ok(())
        }
    }
}
