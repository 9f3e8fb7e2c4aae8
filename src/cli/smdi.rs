//! `voxbridge smdi status`: the running server's SMDI link, the call details waiting for
//! their calls, and each lamp's last state — asked through the control socket.

use crate::config::Config;
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SmdiCmd {
    /// Show the link (up or down, since when, why it last dropped), the call details
    /// waiting for their calls, and each station's lamp: the state wanted, the one last
    /// sent and when, and the PBX's last refusal.
    ///
    /// Asks the running server (exit 69 when none runs).
    Status {
        /// One JSON object, as the server wrote it.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cfg: &Config, cmd: SmdiCmd) -> Result<()> {
    let SmdiCmd::Status { json } = cmd;
    if cfg.smdi.link.is_none() {
        bail!("SMDI is off: set [smdi] link (\"serial:/dev/ttyS0\" or \"tcp:HOST:PORT\") in the configuration");
    }
    let v = crate::cli::control::ask(cfg, &crate::control::Request::Status)?["smdi"].clone();
    if v.is_null() {
        bail!("the running server has no SMDI link (it was started without [smdi] link)");
    }
    let now = crate::store::now_secs().max(0) as u64;
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
