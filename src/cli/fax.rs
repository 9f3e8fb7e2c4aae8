//! `voxbridge fax send`: a TIFF to a fax machine, now, with the report of how it went;
//! `fax forward`: a stored fax queued for the running server to send; `fax jobs`: the
//! queue and how each job went.

use crate::config::Config;
use crate::driver::fax_send::{self, SendJob, SendReport};
use crate::store::Store;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum FaxCmd {
    /// Send a TIFF, a PDF of fax pages, a text or an e-mail to a fax number and wait
    /// for the result.
    ///
    /// The call goes out from a SIP port of its own (beside a running server), over G.711
    /// until the far end moves it to T.38. A busy line, no answer, or a fax that got no
    /// page through is tried again ([fax] send_retries, send_retry_secs). Exits 0 when
    /// every page was confirmed by the far machine, 1 otherwise (the report says why).
    ///
    /// Example: voxbridge fax send contract.tif --to sip:5551234@trunk.example --json
    Send {
        /// The pages: a TIFF (fax pages are sent as they are; any other — a scan, any
        /// width, grey or colour, any compression — is scaled onto 1728-pixel pages),
        /// a PDF of fax pages (CCITT images, sent without re-encoding), a plain-text
        /// file or an e-mail (.eml), set onto A4 or Letter pages.
        file: PathBuf,
        /// Where: sip:NUMBER@HOST[:PORT] (the trunk or the fax machine's SIP address).
        #[arg(long)]
        to: String,
        /// Our ident shown on the far machine (up to 20 characters; default [fax] ident).
        #[arg(long)]
        from: Option<String>,
        /// The number we call from (default [fax] send_from).
        #[arg(long)]
        caller: Option<String>,
        /// Attempts after the first (default [fax] send_retries).
        #[arg(long)]
        retries: Option<u32>,
        /// The paper text and e-mails are set onto: a4 or letter (default [fax] paper).
        #[arg(long)]
        paper: Option<crate::fax::pages::Paper>,
        /// Seconds between attempts (default [fax] send_retry_secs).
        #[arg(long)]
        retry_secs: Option<f64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a stored fax to be sent to a fax number by the running server.
    ///
    /// The job keeps its own copy of the pages and survives a restart; it is retried
    /// like `fax send` ([fax] send_retries, send_retry_secs) and never sent twice once
    /// the far machine confirmed its pages. Prints the job's id; `fax jobs` shows how
    /// it went.
    ///
    /// Example: voxbridge fax forward 4901 12 --to sip:5551234@trunk.example
    Forward {
        /// Mailbox number.
        number: String,
        /// The fax's message id (`voxbridge messages list NUMBER`).
        id: i64,
        /// Where: sip:NUMBER@HOST[:PORT].
        #[arg(long)]
        to: String,
        /// Our ident shown on the far machine (default [fax] ident).
        #[arg(long)]
        from: Option<String>,
        /// The paper an e-mail is set onto: a4 or letter (default [fax] paper).
        #[arg(long)]
        paper: Option<crate::fax::pages::Paper>,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The fax jobs queued, in progress, sent and failed.
    Jobs {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command; `Ok(false)` when the fax was not sent (the report is printed).
pub fn run(cfg: &Config, cmd: FaxCmd) -> Result<bool> {
    match cmd {
        FaxCmd::Send { file, to, from, caller, retries, paper, retry_secs, json } => {
            let paper = paper.unwrap_or(cfg.fax.paper);
            send(cfg, file, to, from, caller, retries, retry_secs, paper, json)
        }
        FaxCmd::Forward { number, id, to, from, paper, json } => {
            let store = Store::open(&cfg.store.path)?;
            let ident = checked_ident(from.unwrap_or_else(|| cfg.fax.ident.clone()))?;
            let paper = paper.unwrap_or(cfg.fax.paper);
            let job = crate::services::fax::forward_fax(&store, &number, id, &to, &ident, paper)?;
            let j = store.fax_job(job)?.context("the job just queued is gone")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                let pages = if j.pages == 1 { "1 page".to_string() } else { format!("{} pages", j.pages) };
                println!("fax job {job}: {pages} of message {id} queued to {to}");
            }
            Ok(true)
        }
        FaxCmd::Jobs { json } => {
            let jobs = Store::open(&cfg.store.path)?.fax_jobs()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("no fax jobs");
            } else {
                println!("{:>5}  {:<8} {:>6} {:>8}  {:<32} result", "job", "state", "pages", "attempts", "to");
                for j in &jobs {
                    println!(
                        "{:>5}  {:<8} {:>6} {:>8}  {:<32} {}",
                        j.id,
                        j.state,
                        format!("{}/{}", j.pages_sent, j.pages),
                        j.attempts,
                        j.target,
                        j.result.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(true)
        }
    }
}

fn checked_ident(ident: String) -> Result<String> {
    if ident.chars().count() > 20 || !ident.chars().all(|c| (' '..='~').contains(&c)) {
        bail!("--from {ident:?}: a fax ident is up to 20 printable ASCII characters");
    }
    Ok(ident)
}

#[allow(clippy::too_many_arguments)]
fn send(
    cfg: &Config,
    file: PathBuf,
    to: String,
    from: Option<String>,
    caller: Option<String>,
    retries: Option<u32>,
    retry_secs: Option<f64>,
    paper: crate::fax::pages::Paper,
    json: bool,
) -> Result<bool> {
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = crate::fax::document::prepare(&file, &bytes, paper)?;
    let pages = doc.pages;
    // A document made into fax pages is sent from a file of its own, removed after.
    let made = doc.tiff.map(|t| -> Result<TempFile> {
        let path = std::env::temp_dir().join(format!(
            "voxbridge-fax-{}-{:08x}.tif",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, t).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(TempFile(path))
    });
    let made = made.transpose()?;
    let send_path = match &made {
        Some(t) => t.0.clone(),
        None => std::path::absolute(&file)?,
    };
    let ident = checked_ident(from.unwrap_or_else(|| cfg.fax.ident.clone()))?;
    let retry_secs = retry_secs.unwrap_or(cfg.fax.send_retry_secs);
    if !(0.0..=86_400.0).contains(&retry_secs) {
        bail!("--retry-secs {retry_secs}: between 0 and 86400");
    }
    let job = SendJob {
        file: send_path,
        to,
        ident,
        caller: caller.unwrap_or_else(|| cfg.fax.send_from.clone()),
        retries: retries.unwrap_or(cfg.fax.send_retries),
        retry_wait: Duration::from_secs_f64(retry_secs),
    };
    tracing::info!(file = %file.display(), kind = doc.kind, pages, to = %job.to, "sending a fax");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = rt.block_on(fax_send::send(cfg, &job))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", summary(&report, pages));
    }
    Ok(report.ok)
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn summary(r: &SendReport, pages: usize) -> String {
    let tries = if r.attempts == 1 { "1 attempt".to_string() } else { format!("{} attempts", r.attempts) };
    let how = match (r.transport, r.bit_rate) {
        (Some(t), Some(b)) => format!(" over {t} at {b} bit/s{}", if r.ecm == Some(true) { " (ECM)" } else { "" }),
        (Some(t), None) => format!(" over {t}"),
        _ => String::new(),
    };
    // Said only when the call was encrypted: "(SIP over TLS, SRTP AES_CM_128_HMAC_SHA1_80)".
    let how = match (r.signalling, r.srtp) {
        (Some("TLS"), Some(suite)) => format!("{how} (SIP over TLS, SRTP {suite})"),
        (Some("TLS"), None) => format!("{how} (SIP over TLS)"),
        _ => how,
    };
    let verdict = if r.ok { "sent" } else { "NOT sent" };
    format!(
        "{verdict}: {} of {pages} pages to {}{how} in {tries}, {:.0} s: {}",
        r.pages_sent, r.to, r.call_secs, r.result
    )
}
