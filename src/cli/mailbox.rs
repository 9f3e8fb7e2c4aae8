//! `voxbridge mailbox add|list|greeting|pin|unlock`.

use crate::mail::account::{Account, Scheme};
use crate::model::GreetingKind;
use crate::store::{NewMailbox, Store};
use anyhow::{bail, Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MailboxCmd {
    /// Create a mailbox.
    ///
    /// Secrets need not be on the command line, where `ps` and shell history keep
    /// them: `--pin -` reads the PIN from standard input, and without --pin on a
    /// terminal it is asked (not echoed); `--password-file F` supplies the password of
    /// accounts given without one (`--imap imap://ann@host/INBOX --password-file F`).
    ///
    /// Example: voxbridge mailbox add 1001 --pin - --name "Ann Lee"
    ///   --email ann@example.com --imap imap://ann@127.0.0.1:143/INBOX --password-file ann.pw
    Add {
        /// The mailbox number callers dial (digits).
        number: String,
        /// PIN for the phone menu (digits; stored hashed). "-": read from standard
        /// input; left out on a terminal: asked. A PIN given here is visible to `ps`.
        #[arg(long)]
        pin: Option<String>,
        /// Password for the --imap, --pop3 and --smtp accounts given without one: the
        /// first line of FILE ("-": standard input).
        #[arg(long, value_name = "FILE")]
        password_file: Option<std::path::PathBuf>,
        /// Subscriber's name.
        #[arg(long)]
        name: Option<String>,
        /// Subscriber's e-mail address (needed for SMTP delivery).
        #[arg(long)]
        email: Option<String>,
        /// IMAP account: imap[s]://user:password@host:port/FOLDER. Messages are placed here by APPEND.
        #[arg(long, value_name = "URL")]
        imap: Option<String>,
        /// POP3 account: pop3[s]://user:password@host:port.
        #[arg(long, value_name = "URL")]
        pop3: Option<String>,
        /// SMTP server for mailboxes without IMAP: smtp[s]://[user:password@]host:port.
        #[arg(long, value_name = "URL")]
        smtp: Option<String>,
        /// Time zone of the dates and times the menu speaks, an IANA name such as
        /// Europe/Berlin (default: [mailbox] timezone, else the server's).
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
        /// The mailbox's own fax number: calls to it are received as faxes into this
        /// mailbox, whatever the dialplan says.
        #[arg(long, value_name = "NUMBER")]
        fax_number: Option<String>,
        /// Its station on the PBX, when not the mailbox number: SMDI call details name
        /// it, lamps are lit for it, SIP diversions to it reach this mailbox.
        #[arg(long, value_name = "STATION")]
        station: Option<String>,
        /// The language of what its callers and its subscriber hear, a directory of
        /// [prompts] dir (de for prompts/de; default: [prompts] language). Prompts that
        /// language lacks play in the default one.
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
    },
    /// Change a mailbox's name, e-mail address or mail accounts.
    ///
    /// Only what is given changes; an empty value removes the setting (`--imap ""`).
    /// Fixes a password the mail server refuses (see `voxbridge sync-log`). A different
    /// account (other user, host, port or folder) starts the sync afresh: the next pass
    /// links our own messages there by Message-ID and imports the rest.
    ///
    /// Example: voxbridge mailbox set 1001 --imap imaps://ann:new-secret@mail.example.com/INBOX
    Set {
        /// Mailbox number.
        number: String,
        /// Subscriber's name.
        #[arg(long)]
        name: Option<String>,
        /// Subscriber's e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// IMAP account: imap[s]://user:password@host:port/FOLDER.
        #[arg(long)]
        imap: Option<String>,
        /// POP3 account: pop3[s]://user:password@host:port.
        #[arg(long)]
        pop3: Option<String>,
        /// SMTP server: smtp[s]://[user:password@]host:port.
        #[arg(long)]
        smtp: Option<String>,
        /// Time zone of the spoken dates, an IANA name such as Europe/Berlin ("": the
        /// server's).
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
        /// The mailbox's own fax number ("": none): calls to it are received as faxes.
        #[arg(long, value_name = "NUMBER")]
        fax_number: Option<String>,
        /// Its station on the PBX ("": the mailbox number): SMDI call details and lamps,
        /// SIP diversions.
        #[arg(long, value_name = "STATION")]
        station: Option<String>,
        /// The language of its prompts, a directory of [prompts] dir ("": [prompts]
        /// language). The running server takes it for the next call.
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
        /// Password for the --imap, --pop3 and --smtp given here without one: the first
        /// line of FILE ("-": standard input), kept out of the command line.
        #[arg(long, value_name = "FILE")]
        password_file: Option<std::path::PathBuf>,
        /// SIP password of the mailbox, read from the first line of FILE ("-": standard
        /// input): phones that SUBSCRIBE to its message-waiting state authenticate with
        /// the mailbox number and this password (SIP digest, realm `[sip] realm`). Only
        /// its digest hashes are stored. Without one, subscriptions are refused.
        #[arg(long, value_name = "FILE")]
        sip_password_file: Option<std::path::PathBuf>,
        /// Remove the SIP password: subscriptions to this mailbox are refused.
        #[arg(long, conflicts_with = "sip_password_file")]
        no_sip_password: bool,
    },
    /// Set the greeting callers hear before the beep, from a WAV file (any rate, mono
    /// or stereo PCM; converted to 8 kHz). Without a greeting, callers hear "The person
    /// at extension NUMBER is not available...".
    Greeting {
        /// Mailbox number.
        number: String,
        /// WAV file to use.
        #[arg(required_unless_present = "clear")]
        file: Option<std::path::PathBuf>,
        /// Remove the recorded greeting and go back to the default one.
        #[arg(long, conflicts_with = "file")]
        clear: bool,
        /// The busy greeting instead: what callers diverted on busy hear (a SIP
        /// diversion `user-busy`, an SMDI call detail of type B); without one they hear
        /// the unavailable greeting.
        #[arg(long)]
        busy: bool,
    },
    /// Set a new PIN (the subscriber forgot it). Also lifts a lockout.
    Pin {
        /// Mailbox number.
        number: String,
        /// The new PIN (digits; stored hashed). "-": read from standard input; left
        /// out on a terminal: asked twice, not echoed.
        #[arg(long)]
        pin: Option<String>,
    },
    /// Lift a lockout after too many wrong PINs (see `[menu] lockout_secs`) and forget
    /// the wrong PINs counted so far.
    Unlock {
        /// Mailbox number.
        number: String,
    },
    /// Remove a mailbox with its messages, recordings and greetings (needs --yes).
    ///
    /// Its mail account is left alone (the messages there are the subscriber's mail).
    /// Messages not yet delivered to it are lost, so --yes is required; without it the
    /// command says what would go and changes nothing.
    Remove {
        /// Mailbox number.
        number: String,
        /// Really remove it (without: say what would go, and change nothing).
        #[arg(long)]
        yes: bool,
    },
    /// List mailboxes with message counts. Passwords in URLs are hidden.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one mailbox: its settings (passwords hidden), greetings, PBX
    /// station, SIP password (set or not), messages by state, lockout and its mail
    /// account's sync state.
    Show {
        /// Mailbox number.
        number: String,
        #[arg(long)]
        json: bool,
    },
}

/// The accounts and address a mailbox would have, checked before they are stored.
fn check_accounts(
    imap: &Option<String>,
    pop3: &Option<String>,
    smtp: &Option<String>,
    email: &Option<String>,
) -> Result<()> {
    if let Some(u) = imap {
        Account::parse(u, &[Scheme::Imap, Scheme::Imaps])?;
    }
    if let Some(u) = pop3 {
        Account::parse(u, &[Scheme::Pop3, Scheme::Pop3s])?;
    }
    if let Some(u) = smtp {
        Account::parse(u, &[Scheme::Smtp, Scheme::Smtps])?;
    }
    if let Some(e) = email {
        if e.parse::<lettre::Address>().is_err() {
            bail!("--email {e:?} is not a valid e-mail address");
        }
    }
    if pop3.is_some() && imap.is_none() && (smtp.is_none() || email.is_none()) {
        bail!("a POP3 mailbox receives voice messages by SMTP: give --smtp URL and --email ADDR too");
    }
    Ok(())
}

/// Hides the password of a URL for display.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A password from the first line of `file` ("-": standard input).
fn read_password(file: &std::path::Path) -> Result<String> {
    let password = read_secret_line(file, "SIP password")?;
    if password.len() < 8 {
        bail!("a SIP password needs at least 8 characters (phones store it; it guards the mailbox's counts)");
    }
    Ok(password)
}

/// The first line of `file` ("-": standard input), which must not be empty.
fn read_secret_line(file: &std::path::Path, what: &str) -> Result<String> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).with_context(|| format!("reading the {what} from standard input"))?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read the {what} file {}", file.display()))?
    };
    let secret = text.lines().next().unwrap_or("").to_string();
    if secret.is_empty() {
        bail!(
            "no {what} in {}",
            if file.as_os_str() == "-" { "standard input".into() } else { file.display().to_string() }
        );
    }
    Ok(secret)
}

/// The --imap, --pop3 and --smtp URLs with the `--password-file` password put into
/// those written without one.
type Accounts = (Option<String>, Option<String>, Option<String>);
fn accounts_with_password(
    file: Option<&std::path::Path>,
    imap: Option<String>,
    pop3: Option<String>,
    smtp: Option<String>,
) -> Result<Accounts> {
    let Some(f) = file else { return Ok((imap, pop3, smtp)) };
    let pw = read_secret_line(f, "account password")?;
    Ok((with_password(imap, &pw)?, with_password(pop3, &pw)?, with_password(smtp, &pw)?))
}

/// The PIN from `--pin`: as given, from standard input (`-`), or asked on a terminal.
fn read_pin(given: Option<String>) -> Result<String> {
    match given.as_deref() {
        Some("-") => read_secret_line(std::path::Path::new("-"), "PIN"),
        Some(p) => Ok(p.to_string()),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            let first = rpassword::prompt_password("PIN: ").context("reading the PIN")?;
            let again = rpassword::prompt_password("PIN again: ").context("reading the PIN")?;
            if first != again {
                bail!("the two PINs differ; nothing changed");
            }
            Ok(first)
        }
        None => bail!("give the PIN: --pin - reads it from standard input (--pin PIN works, but ps shows it)"),
    }
}

/// `url` with `password` put in its user part, when it names a user without one.
fn with_password(url: Option<String>, password: &str) -> Result<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    let Some(scheme_end) = url.find("://") else { return Ok(Some(url)) };
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) if !authority[..at].contains(':') => {
            let encoded: String = password
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let user_end = scheme_end + 3 + at;
            Ok(Some(format!("{}:{encoded}{}", &url[..user_end], &url[user_end..])))
        }
        Some(_) => bail!(
            "{} already has a password; --password-file is for accounts given without one",
            super::config::mask_url(&url)
        ),
        None => bail!("{} names no user: write it as scheme://USER@host with --password-file", url),
    }
}

/// A language is a prompt directory: `[prompts] dir`/LANG/prompts.toml.
fn check_language(cfg: &crate::config::Config, lang: &str) -> Result<()> {
    cfg.language_dir(lang).map(drop).map_err(anyhow::Error::msg)
}

/// A station is digits, as SMDI sends them (lamp commands carry nothing else).
fn check_station(st: &str) -> Result<()> {
    if st.is_empty() || st.len() > 20 || !st.bytes().all(|b| b.is_ascii_digit()) {
        bail!("a PBX station is 1 to 20 digits, got {st:?}");
    }
    Ok(())
}

/// A fax number is digits (a leading + allowed), like the numbers trunks dial.
fn check_fax_number(f: &str) -> Result<()> {
    let digits = f.strip_prefix('+').unwrap_or(f);
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("a fax number is 1 to 32 digits (a leading + allowed), got {f:?}");
    }
    Ok(())
}

pub fn run(store: &Store, cfg: &crate::config::Config, cmd: MailboxCmd) -> Result<()> {
    match cmd {
        MailboxCmd::Add {
            number,
            pin,
            password_file,
            name,
            email,
            imap,
            pop3,
            smtp,
            timezone,
            fax_number,
            station,
            language,
        } => {
            if let Some(l) = &language {
                check_language(cfg, l)?;
            }
            let (imap, pop3, smtp) = accounts_with_password(password_file.as_deref(), imap, pop3, smtp)?;
            if pin.as_deref() == Some("-") && password_file.as_deref().is_some_and(|f| f.as_os_str() == "-") {
                bail!("--pin - and --password-file - cannot both read standard input: give one as a file");
            }
            let pin = read_pin(pin)?;
            if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit()) {
                bail!("mailbox number must be 1 to 32 digits, got {number:?}");
            }
            if let Some(f) = &fax_number {
                check_fax_number(f)?;
                if let Some(other) = store.mailbox_by_fax_number(f)?.or(store.mailbox(f)?) {
                    bail!("{f} is already mailbox {}'s number or fax number", other.number);
                }
            }
            if let Some(st) = &station {
                check_station(st)?;
                if let Some(other) = store.mailbox_by_station(st)? {
                    bail!("station {st} is already mailbox {}'s", other.number);
                }
            }
            check_accounts(&imap, &pop3, &smtp, &email)?;
            if let Some(tz) = &timezone {
                crate::services::time::check_zone(tz)?;
            }
            store.add_mailbox(&NewMailbox {
                number: number.clone(),
                pin,
                name,
                email,
                imap_url: imap,
                pop3_url: pop3,
                smtp_url: smtp,
                timezone,
            })?;
            if let Some(f) = &fax_number {
                store.set_fax_number(&number, Some(f))?;
            }
            if let Some(st) = &station {
                store.set_station(&number, Some(st))?;
            }
            if let Some(l) = &language {
                store.set_language(&number, Some(l))?;
            }
            let m = store.mailbox(&number)?.expect("just added");
            let how = match m.delivery_target() {
                Some("imap") => "messages are placed in the IMAP mailbox",
                Some(_) => "messages are sent by SMTP",
                None => "messages are kept locally only (no mail account)",
            };
            println!("mailbox {number} created; {how}");
        }
        MailboxCmd::Set {
            number,
            name,
            email,
            imap,
            pop3,
            smtp,
            timezone,
            fax_number,
            station,
            language,
            password_file,
            sip_password_file,
            no_sip_password,
        } => {
            let (imap, pop3, smtp) = accounts_with_password(password_file.as_deref(), imap, pop3, smtp)?;
            let Some(old) = store.mailbox(&number)? else { bail!("no mailbox {number}; see: voxbridge mailbox list") };
            if let Some(f) = &fax_number {
                if !f.is_empty() {
                    check_fax_number(f)?;
                }
                store.set_fax_number(&number, Some(f.as_str()).filter(|f| !f.is_empty()))?;
                match f.as_str() {
                    "" => println!("mailbox {number}: no fax number"),
                    f => println!("mailbox {number}: calls to {f} are received as faxes into it"),
                }
            }
            if let Some(st) = &station {
                if !st.is_empty() {
                    check_station(st)?;
                }
                store.set_station(&number, Some(st.as_str()).filter(|s| !s.is_empty()))?;
                match st.as_str() {
                    "" => println!("mailbox {number}: its PBX station is its number"),
                    st => println!("mailbox {number}: PBX station {st}"),
                }
            }
            if let Some(l) = &language {
                if !l.is_empty() {
                    check_language(cfg, l)?;
                }
                store.set_language(&number, Some(l.as_str()).filter(|l| !l.is_empty()))?;
                match l.as_str() {
                    "" => println!("mailbox {number}: prompts in {} (the default)", cfg.prompts.language),
                    l => println!("mailbox {number}: prompts in {l}"),
                }
            }
            let only_sip = [&name, &email, &imap, &pop3, &smtp, &timezone].iter().all(|o| o.is_none());
            if let Some(file) = &sip_password_file {
                let password = read_password(file)?;
                let realm = &cfg.sip.realm;
                store.set_sip_secret(&number, Some(&crate::sip::digest::Ha1::new(&number, realm, &password)))?;
                println!("mailbox {number}: SIP password set (user {number}, realm {realm:?}); the server takes it within seconds");
            } else if no_sip_password {
                store.set_sip_secret(&number, None)?;
                println!("mailbox {number}: SIP password removed; subscriptions to it are refused");
            }
            let others = [fax_number.is_some(), station.is_some(), language.is_some()];
            if only_sip && (sip_password_file.is_some() || no_sip_password || others.iter().any(|o| *o)) {
                return Ok(());
            }
            // Given and empty: removed; given: replaced; not given: kept.
            let pick = |new: Option<String>, old: &Option<String>| match new {
                Some(v) if v.is_empty() => None,
                Some(v) => Some(v),
                None => old.clone(),
            };
            let m = crate::store::Mailbox {
                name: pick(name, &old.name),
                email: pick(email, &old.email),
                imap_url: pick(imap, &old.imap_url),
                pop3_url: pick(pop3, &old.pop3_url),
                smtp_url: pick(smtp, &old.smtp_url),
                timezone: pick(timezone, &old.timezone),
                ..old.clone()
            };
            if let Some(tz) = &m.timezone {
                crate::services::time::check_zone(tz)?;
            }
            check_accounts(&m.imap_url, &m.pop3_url, &m.smtp_url, &m.email)?;
            // The sync state belongs to an account: another one (not just another
            // password) starts afresh.
            let identity = |url: &Option<String>, schemes: &[Scheme]| {
                url.as_deref()
                    .and_then(|u| Account::parse(u, schemes).ok())
                    .map(|a| (a.scheme, a.host, a.port, a.user, a.folder))
            };
            let imap_schemes = [Scheme::Imap, Scheme::Imaps];
            let pop3_schemes = [Scheme::Pop3, Scheme::Pop3s];
            let other_account = identity(&m.imap_url, &imap_schemes) != identity(&old.imap_url, &imap_schemes)
                || identity(&m.pop3_url, &pop3_schemes) != identity(&old.pop3_url, &pop3_schemes);
            store.update_mailbox(&m, other_account)?;
            if other_account {
                println!("mailbox {number} updated; another mail account: the next sync pass starts afresh");
            } else {
                println!("mailbox {number} updated");
            }
        }
        MailboxCmd::Greeting { number, file, clear, busy } => {
            if store.mailbox(&number)?.is_none() {
                bail!("no mailbox {number}; see: voxbridge mailbox list");
            }
            let (kind, which) =
                if busy { (GreetingKind::Busy, "busy greeting") } else { (GreetingKind::Unavailable, "greeting") };
            match file {
                Some(file) if !clear => {
                    let pcm = crate::media::wav::read_8k_mono(&file)?;
                    if pcm.len() < 800 {
                        bail!("{}: a greeting must be at least 0.1 s long", file.display());
                    }
                    store.save_greeting(&number, kind, &pcm)?;
                    println!("{which} of mailbox {number} set ({:.1} s)", pcm.len() as f64 / 8000.0);
                }
                _ => {
                    store.set_greeting_of(&number, kind, None)?;
                    match busy {
                        true => println!("busy greeting of mailbox {number} cleared; busy callers hear the greeting"),
                        false => println!("greeting of mailbox {number} cleared; callers hear the default greeting"),
                    }
                }
            }
        }
        MailboxCmd::Pin { number, pin } => {
            let pin = read_pin(pin)?;
            store.set_pin(&number, &pin)?;
            store.unlock(&number)?;
            println!("PIN of mailbox {number} changed");
        }
        MailboxCmd::Unlock { number } => {
            let was = store.locked_until(&number, crate::store::now_secs())?;
            store.unlock(&number)?;
            match was {
                Some(_) => println!("mailbox {number} unlocked"),
                None => println!("mailbox {number} was not locked; wrong PINs counted so far are forgotten"),
            }
        }
        MailboxCmd::Remove { number, yes } => {
            let Some(_) = store.mailbox(&number)? else { bail!("no mailbox {number}; see: voxbridge mailbox list") };
            let (messages, undelivered) = store.mailbox_contents(&number)?;
            if !yes {
                bail!(
                    "mailbox {number} has {messages} messages ({undelivered} not yet delivered to its mail account): \
                     they, its recordings and greetings go, its mail account stays; run again with --yes"
                );
            }
            let files = store.remove_mailbox(&number)?;
            println!("mailbox {number} removed ({messages} messages, {files} files)");
        }
        MailboxCmd::Show { number, json } => {
            let Some(m) = store.mailbox(&number)? else { bail!("no mailbox {number}; see: voxbridge mailbox list") };
            let now = crate::store::now_secs();
            let (unread, total) = store.message_counts(&number)?;
            let locked = store.locked_until(&number, now)?;
            let sip = store.sip_secrets()?.iter().any(|(n, _)| n == &number);
            let sync = store.sync_status(Some(&number))?.into_iter().next();
            let v = serde_json::json!({
                "number": m.number, "name": m.name, "email": m.email,
                "imap": m.imap_url.as_deref().map(redact), "pop3": m.pop3_url.as_deref().map(redact),
                "smtp": m.smtp_url.as_deref().map(redact), "delivery": m.delivery_target().unwrap_or("local"),
                "timezone": m.timezone, "fax_number": m.fax_number,
                "station": m.station.clone().unwrap_or_else(|| m.number.clone()),
                "language": m.language.clone().unwrap_or_else(|| cfg.prompts.language.clone()),
                "greetings": {
                    "unavailable": m.greeting_path.is_some(), "busy": m.busy_greeting_path.is_some(),
                    "name": m.name_path.is_some(), "temporary": m.temp_greeting_path.is_some(),
                },
                "sip_password": sip, "unread": unread, "messages": total, "locked_until": locked,
                "sync": sync.as_ref().map(|a| serde_json::json!({
                    "last_sync_at": a.last_sync_at, "failures": a.failures, "last_error": a.last_error,
                    "next_attempt_at": a.next_attempt_at, "held": a.held.is_some(),
                })),
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let opt = |v: &serde_json::Value| v.as_str().map_or("-".to_string(), str::to_string);
            println!("mailbox {}  {}", m.number, m.name.as_deref().unwrap_or(""));
            println!("  e-mail        {}", opt(&v["email"]));
            println!("  mail account  {}", v["imap"].as_str().or(v["pop3"].as_str()).unwrap_or("-"));
            println!("  delivery      {}", opt(&v["delivery"]));
            println!("  time zone     {}", m.timezone.as_deref().unwrap_or("the server's"));
            println!("  language      {}", opt(&v["language"]));
            println!("  fax number    {}   PBX station {}", opt(&v["fax_number"]), opt(&v["station"]));
            let g = &v["greetings"];
            let set = |k: &str| if g[k] == true { "recorded" } else { "default" };
            println!(
                "  greetings     unavailable {}, busy {}, name {}, temporary {}",
                set("unavailable"),
                set("busy"),
                set("name"),
                if g["temporary"] == true { "ON" } else { "off" }
            );
            println!("  SIP password  {}", if sip { "set" } else { "none (MWI subscriptions refused)" });
            println!("  messages      {total} ({unread} unread)");
            if let Some(until) = locked {
                println!("  LOCKED        for {} s more (voxbridge mailbox unlock {number})", until - now);
            }
            if let Some(a) = &sync {
                match (&a.last_error, a.failures) {
                    (Some(e), f) if f > 0 => println!("  sync          FAILING ({f} passes): {e}"),
                    _ => println!(
                        "  sync          last good pass {}",
                        a.last_sync_at.map_or("never".into(), crate::civil::utc_timestamp)
                    ),
                }
            }
        }
        MailboxCmd::List { json } => {
            let list = store.mailboxes()?;
            let now = crate::store::now_secs();
            let mut rows = Vec::new();
            for m in list {
                let (unread, total) = store.message_counts(&m.number)?;
                let locked = store.locked_until(&m.number, now)?;
                rows.push((m, unread, total, locked));
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(m, u, t, l)| {
                        serde_json::json!({
                            "number": m.number, "name": m.name, "email": m.email,
                            "imap": m.imap_url.as_deref().map(redact), "pop3": m.pop3_url.as_deref().map(redact),
                            "smtp": m.smtp_url.as_deref().map(redact), "unread": u, "messages": t,
                            "locked_until": l, "timezone": m.timezone, "fax_number": m.fax_number,
                            "language": m.language,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if rows.is_empty() {
                println!("no mailboxes; create one with: voxbridge mailbox add NUMBER --pin PIN");
            } else {
                println!("NUMBER       NAME                 UNREAD  TOTAL  ACCOUNT");
                for (m, u, t, l) in rows {
                    let acct =
                        m.imap_url.as_deref().or(m.pop3_url.as_deref()).map(redact).unwrap_or_else(|| "-".into());
                    let mut lock = match l {
                        Some(until) => format!("  (locked for {} s more: voxbridge mailbox unlock)", until - now),
                        None => String::new(),
                    };
                    if let Some(f) = &m.fax_number {
                        lock.push_str(&format!("  (fax {f})"));
                    }
                    println!("{:<12} {:<20} {:>6} {:>6}  {}{lock}", m.number, m.name.unwrap_or_default(), u, t, acct);
                }
            }
        }
    }
    Ok(())
}
