//! `voxbridge substitutions list|add|remove|test`: the pre-processing rules e-mails are
//! read with — the admin's (every mailbox), each mailbox's own, the language's file.

use crate::config::Config;
use crate::services::reading;
use crate::store::{Store, Substitution};
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SubstitutionsCmd {
    /// The rules in the order they run: the mailbox's own (with --mailbox), the admin's,
    /// then the language file's (prompts/<lang>/substitutions.toml).
    List {
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long)]
        lang: Option<String>,
        /// Print JSON (stored rules only).
        #[arg(long)]
        json: bool,
    },
    /// Add a rule: for every mailbox, or with --mailbox for one. It runs before the
    /// language file's rules, so it can override them.
    ///
    /// Example: voxbridge substitutions add --find ATT --say "eh T and T"
    ///          voxbridge substitutions add --mailbox 1001 --regex 'Ticket #(\d+)' --say 'ticket $1'
    Add {
        /// Literal text to find (whole words unless --anywhere).
        #[arg(long, required_unless_present = "regex", conflicts_with = "regex")]
        find: Option<String>,
        /// A regular expression (Rust regex syntax); $1, ${1} in --say are its groups.
        #[arg(long)]
        regex: Option<String>,
        /// What is said instead.
        #[arg(long)]
        say: String,
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long)]
        lang: Option<String>,
        /// Match whatever the letters' case.
        #[arg(long)]
        any_case: bool,
        /// A literal matches inside words too.
        #[arg(long)]
        anywhere: bool,
    },
    /// Remove a stored rule by its id (see `list`).
    Remove { id: i64 },
    /// Print what a text is read as with these rules (one sentence a line).
    Test {
        text: String,
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long)]
        lang: Option<String>,
    },
}

pub fn run(store: &Store, cfg: &Config, cmd: SubstitutionsCmd) -> Result<()> {
    let lang_of = |l: Option<String>| l.unwrap_or_else(|| cfg.prompts.language.clone());
    match cmd {
        SubstitutionsCmd::List { mailbox, lang, json } => {
            let lang = lang_of(lang);
            let stored = store.substitutions(mailbox.as_deref(), &lang)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stored)?);
                return Ok(());
            }
            for s in &stored {
                let whose = s.mailbox.as_deref().map(|m| format!("mailbox {m}")).unwrap_or_else(|| "admin".into());
                let what = if s.is_regex { "regex" } else { "find" };
                let flags = match (s.any_case, !s.is_regex && !s.whole_word) {
                    (true, true) => " (any case, anywhere)",
                    (true, false) => " (any case)",
                    (false, true) => " (anywhere)",
                    _ => "",
                };
                println!("{:>5}  {whose:<14} {what} {:?} → {:?}{flags}", s.id, s.pattern, s.say);
            }
            let file = reading::reader(cfg, &lang)?;
            println!("{} rules from {}", file.rules.rules.len(), reading::rules_file(cfg, &lang).display());
            Ok(())
        }
        SubstitutionsCmd::Add { find, regex, say, mailbox, lang, any_case, anywhere } => {
            let (is_regex, pattern) = match (find, regex) {
                (Some(f), None) => (false, f),
                (None, Some(r)) => (true, r),
                _ => bail!("give --find or --regex"),
            };
            let s = Substitution {
                id: 0,
                mailbox,
                lang: lang_of(lang),
                is_regex,
                pattern,
                say,
                whole_word: !anywhere,
                any_case,
            };
            reading::rule(&s)?; // refuse what would not compile
            let id = store.add_substitution(&s)?;
            println!("rule {id} added");
            Ok(())
        }
        SubstitutionsCmd::Remove { id } => {
            if !store.remove_substitution(id)? {
                bail!("no rule {id}");
            }
            println!("rule {id} removed");
            Ok(())
        }
        SubstitutionsCmd::Test { text, mailbox, lang } => {
            let lang = lang_of(lang);
            let base = reading::reader(cfg, &lang)?;
            let reader = reading::with_stored(&base, &store.substitutions(mailbox.as_deref(), &lang)?);
            let blocks: Vec<String> = reading::preview(&reader, &text).iter().map(|p| p.join("\n")).collect();
            println!("{}", blocks.join("\n\n"));
            Ok(())
        }
    }
}
