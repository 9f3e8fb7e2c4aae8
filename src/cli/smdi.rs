//! `voxbridge smdi status`: the running server's SMDI link, the call details waiting for
//! their calls, and each lamp's last state — read from the status file the link task
//! keeps in the store directory (rewritten every second while the server runs).

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SmdiCmd {
    /// Show the link (up or down, since when, why it last dropped), the call details
    /// waiting for their calls, and each station's lamp: the state wanted, the one last
    /// sent and when, and the PBX's last refusal.
    ///
    /// Reads what the running server writes every second; says so when no server runs.
    Status {
        /// One JSON object, as the server wrote it.
        #[arg(long)]
        json: bool,
    },
}

/// How old a status file may be and still be the running server's.
const FRESH_SECS: u64 = 10;

pub fn run(cfg: &Config, cmd: SmdiCmd) -> Result<()> {
    let SmdiCmd::Status { json } = cmd;
    let path = cfg.store.path.join("smdi-status.json");
    if cfg.smdi.link.is_none() && !path.exists() {
        bail!("SMDI is off: set [smdi] link (\"serial:/dev/ttyS0\" or \"tcp:HOST:PORT\") in the configuration");
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no SMDI status in {}: is the server running (voxbridge serve)?", cfg.store.path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a status file", path.display()))?;
    let now = crate::store::now_secs().max(0) as u64;
    let written = v["written"].as_u64().unwrap_or(0);
    let pid = v["pid"].as_u64().unwrap_or(0);
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    if !alive || now.saturating_sub(written) > FRESH_SECS {
        bail!(
            "the SMDI status is stale (written {} s ago by process {pid}, {}): is the server running?",
            now.saturating_sub(written),
            if alive { "still running but silent" } else { "gone" }
        );
    }
    if json {
        println!("{v}");
        return Ok(());
    }
    let ago = |t: &serde_json::Value| t.as_u64().map(|t| format!("{} s ago", now.saturating_sub(t)));
    let link = &v["link"];
    let up = link["up"].as_bool().unwrap_or(false);
    println!(
        "link: {} — {}{}",
        link["spec"].as_str().unwrap_or("?"),
        if up { "up" } else { "DOWN" },
        ago(&link["since"]).map(|a| format!(" since {a}")).unwrap_or_default()
    );
    if let Some(e) = link["last_error"].as_str() {
        println!("  last error: {e}");
    }
    println!("  connected {} time(s) since the server started", link["connects"].as_u64().unwrap_or(0));
    let details = v["call_details"].as_array().cloned().unwrap_or_default();
    println!(
        "call details waiting for their call: {}; calls waiting for their call detail: {}",
        details.len(),
        v["waiting_calls"].as_u64().unwrap_or(0)
    );
    for d in &details {
        println!(
            "  terminal {} {} from {} (caller {}), {}",
            d["terminal"].as_str().unwrap_or("?"),
            d["type"].as_str().unwrap_or("?"),
            d["forwarding"].as_str().unwrap_or("-"),
            d["calling"].as_str().unwrap_or("withheld"),
            ago(&d["received"]).unwrap_or_default()
        );
    }
    let lamps = v["lamps"].as_array().cloned().unwrap_or_default();
    println!("lamps: {} ({} waiting to be sent)", lamps.len(), v["lamps_queued"].as_u64().unwrap_or(0));
    for l in &lamps {
        let want = if l["lit"].as_bool().unwrap_or(false) { "on" } else { "off" };
        let sent = match l["sent"].as_bool() {
            Some(s) => format!("sent {} {}", if s { "on" } else { "off" }, ago(&l["sent_at"]).unwrap_or_default()),
            None => "not sent".into(),
        };
        let error = l["error"].as_str().map(|e| format!(", refused: {e}")).unwrap_or_default();
        println!("  {:<12} {want:<3} ({sent}{error})", l["station"].as_str().unwrap_or("?"));
    }
    Ok(())
}
