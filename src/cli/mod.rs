//! The admin command line. One file per command group; every command accepts the
//! global `--config FILE` before or after the subcommand, and works while the server
//! runs (same database, WAL mode).

pub mod config;
pub mod control;
pub mod dialplan;
pub mod fax;
pub mod filters;
pub mod lists;
pub mod mailbox;
pub mod messages;
pub mod prompts;
pub mod smdi;
pub mod substitutions;
pub mod sync;
pub mod tts;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `voxbridge completions SHELL`.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "voxbridge", &mut std::io::stdout());
}

/// `voxbridge manpages DIR`: the top page and one per command.
pub fn manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut written = 0;
    let mut write = |name: String, c: clap::Command| -> anyhow::Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c).render(&mut out)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
        Ok(())
    };
    for sub in cmd.get_subcommands() {
        let name = format!("voxbridge-{}", sub.get_name());
        write(name.clone(), sub.clone().name(name))?;
    }
    write("voxbridge".into(), cmd)?;
    println!("{written} man pages written to {}", dir.display());
    Ok(())
}

/// An error with the exit status the command ends with (sysexits-style: 65 invalid
/// data, 69 no server to ask); any other error exits 1.
#[derive(Debug)]
pub struct ExitError {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

#[derive(Debug, Parser)]
#[command(
    name = "voxbridge",
    version,
    about = "Telephony-first IVR, voice-mail and unified-messaging server",
    long_about = "voxbridge answers SIP calls, records voice messages, and keeps them in sync with \
each subscriber's IMAP or POP3 mailbox.\n\nWithout --config, the embedded defaults are used: SIP on \
127.0.0.1:5060 (UDP and TCP), RTP ports 20000-20999, store in ./var."
)]
pub struct Cli {
    /// Configuration file (TOML). Every key has a default, so none is needed.
    #[arg(long, short = 'c', global = true, env = "VOXBRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (SIP, RTP, deliveries) until SIGINT or SIGTERM.
    ///
    /// SIGHUP (or `voxbridge reload`) reads the configuration file and the dialplan
    /// again: [deposit], [menu], [mailbox] and [dialplan] apply from the next call,
    /// other changed sections are named as needing a restart; an invalid file or
    /// dialplan is refused and the old one stays. The running server answers `voxbridge status`,
    /// `calls`, `hangup`, `reload` and `shutdown` on `<store>/control.sock`.
    Serve,
    /// What the running server is doing: uptime, calls in progress by application, RTP
    /// ports in use, the outbox, failing mail accounts, MWI subscriptions, the SMDI link.
    ///
    /// Exits 69 when no server runs on this store.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The calls in progress, one a line: id, from, to, application, seconds, codec,
    /// SIP Call-ID.
    Calls {
        #[arg(long)]
        json: bool,
    },
    /// End a call in progress (a BYE; a message being recorded is saved).
    Hangup {
        /// Its id (`voxbridge calls`) or its SIP Call-ID.
        call: String,
        #[arg(long)]
        json: bool,
    },
    /// Make the running server read its configuration file and dialplan again (as
    /// SIGHUP does). [deposit], [menu], [mailbox] and [dialplan] apply from the next
    /// call (calls in progress keep theirs); a changed section a reload cannot apply
    /// (sockets, store, sync, …) is named as needing a restart; an invalid file or
    /// dialplan is refused with its error and the old one stays.
    Reload {
        #[arg(long)]
        json: bool,
    },
    /// Stop the running server. Without --graceful, calls in progress are ended now
    /// (recordings saved, BYE sent); with it, new calls get 503 and the server waits for
    /// the calls in progress to end (at most --wait-secs), then stops.
    Shutdown {
        #[arg(long)]
        graceful: bool,
        /// Longest wait for calls in progress with --graceful.
        #[arg(long, default_value_t = 600, requires = "graceful")]
        wait_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// Create, change, list and remove mailboxes.
    #[command(subcommand)]
    Mailbox(mailbox::MailboxCmd),
    /// Distribution lists: a number that reaches several mailboxes when a message is
    /// forwarded to it (add, remove, show, members).
    #[command(subcommand)]
    List(lists::ListCmd),
    /// Show messages and change their state.
    #[command(subcommand)]
    Messages(messages::MessagesCmd),
    /// What a text is read aloud as (`preview`), and how it sounds (`say`).
    #[command(subcommand)]
    Tts(tts::TtsCmd),
    /// Send faxes (a TIFF to a fax number).
    #[command(subcommand)]
    Fax(fax::FaxCmd),
    /// The configuration in effect, defaults filled in, secrets masked.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// What callers hear: list, import (any audio file), verify, play, export, generate.
    #[command(subcommand)]
    Prompts(prompts::PromptsCmd),
    /// Print a shell completion script: `voxbridge completions bash >
    /// /etc/bash_completion.d/voxbridge` (zsh, fish, elvish and powershell too).
    Completions { shell: clap_complete::Shell },
    /// Write man pages (voxbridge.1 and one per command, voxbridge-mailbox.1 …) into DIR,
    /// from the same definitions as --help.
    Manpages { dir: PathBuf },
    /// Check a dialplan before reloading it.
    #[command(subcommand)]
    Dialplan(dialplan::DialplanCmd),
    /// The SMDI link to the PBX: its state, waiting call details and message lamps.
    #[command(subcommand)]
    Smdi(smdi::SmdiCmd),
    /// Which e-mails the phone menu offers (per mailbox: allow, deny, only).
    #[command(subcommand)]
    Filters(filters::FiltersCmd),
    /// The pre-processing rules e-mails are read with ("ATT" → "eh T and T"): the
    /// admin's, each mailbox's, the language file's.
    #[command(subcommand)]
    Substitutions(substitutions::SubstitutionsCmd),
    /// Synchronize a mailbox (or --all) with its mail account now, and print what changed each way.
    Sync {
        /// Mailbox number.
        #[arg(required_unless_present = "all")]
        number: Option<String>,
        /// Every mailbox with a mail account, one after the other (say after a mail
        /// server came back); exits non-zero if any pass failed, after trying them all.
        #[arg(long, conflicts_with_all = ["number", "each_line"])]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Keep the store open and run one pass per line read from standard input, until
        /// end of input (with --json: one JSON document per line). Measures passes as the
        /// long-running server makes them (warm caches, background WAL checkpoints).
        #[arg(long)]
        each_line: bool,
        /// Apply a removal the safety brake holds (`voxbridge sync-log`: "NEEDS
        /// CONFIRMATION"): when the messages really are gone from the mail server —
        /// deleted there on purpose, or lost for good — remove them here too. Removed voice and
        /// fax messages stay restorable for [store] trash_days (`voxbridge messages
        /// restore`).
        #[arg(long)]
        confirm_removals: bool,
    },
    /// Show each mail account's sync state and the event log of recent passes.
    ///
    /// Per account: the last good pass and, for a failing one, the failures since, the
    /// last error in the server's words and, while in backoff, the next try. Then the
    /// newest entries of the event log, oldest first.
    SyncLog {
        /// Mailbox number (default: every mailbox with a mail account).
        number: Option<String>,
        /// How many log entries to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}
