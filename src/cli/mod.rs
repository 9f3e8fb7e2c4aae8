//! The admin command line. One file per command group; every command accepts the
//! global `--config FILE` before or after the subcommand, and works while the server
//! runs (same database, WAL mode).

pub mod fax;
pub mod filters;
pub mod mailbox;
pub mod messages;
pub mod smdi;
pub mod substitutions;
pub mod sync;
pub mod tts;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    Serve,
    /// Create, change, list and remove mailboxes.
    #[command(subcommand)]
    Mailbox(mailbox::MailboxCmd),
    /// Show messages and change their state.
    #[command(subcommand)]
    Messages(messages::MessagesCmd),
    /// What a text is read aloud as (`preview`), and how it sounds (`say`).
    #[command(subcommand)]
    Tts(tts::TtsCmd),
    /// Send faxes (a TIFF to a fax number).
    #[command(subcommand)]
    Fax(fax::FaxCmd),
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
