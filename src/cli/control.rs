//! Commands that ask the running server through its control socket
//! (`<store>/control.sock`): `status`, `calls`, `hangup`, `reload`, `shutdown`.

use crate::config::Config;
use crate::control::{Answer, CallInfo, Request};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::ExitError;

/// No server answers on the socket (sysexits' EX_UNAVAILABLE, as doveadm uses).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// Sends one request and returns the server's result.
pub fn ask(cfg: &Config, request: &Request) -> Result<serde_json::Value> {
    let path = cfg.store.path.join(crate::control::SOCKET);
    let mut stream = UnixStream::connect(&path).map_err(|e| ExitError {
        code: EXIT_UNAVAILABLE,
        message: format!(
            "the server is not running (no answer on {}: {e}); start it with `voxbridge serve`{}",
            path.display(),
            if e.kind() == std::io::ErrorKind::PermissionDenied { ", or run this as the server's user" } else { "" }
        ),
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    stream.write_all(request.line().as_bytes()).context("cannot send the request")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).context("no answer from the server")?;
    let answer: Answer = serde_json::from_str(line.trim()).with_context(|| format!("not an answer: {line:?}"))?;
    match answer {
        Answer { ok: true, result, .. } => Ok(result.unwrap_or_default()),
        Answer { error, .. } => anyhow::bail!("{}", error.unwrap_or_else(|| "the server refused".into())),
    }
}

pub fn status(cfg: &Config, json: bool) -> Result<()> {
    let v = ask(cfg, &Request::Status)?;
    if json {
        println!("{v}");
        return Ok(());
    }
    let secs = v["uptime_secs"].as_u64().unwrap_or(0);
    println!(
        "voxbridge {} (pid {}), up {}d {:02}:{:02}:{:02}{}",
        v["version"].as_str().unwrap_or("?"),
        v["pid"],
        secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        if v["draining"] == true { " — shutting down, waiting for calls to end" } else { "" }
    );
    let calls = &v["calls"];
    let by_app = calls["by_app"]
        .as_object()
        .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    println!(
        "calls: {} in progress{}; {} since start",
        calls["in_progress"],
        if by_app.is_empty() { String::new() } else { format!(" ({by_app})") },
        calls["since_start"]
    );
    let e = &v["encryption"];
    if e.is_object() {
        println!(
            "encryption: SIP {}; media {}; mail {}, certificates {}",
            e["sip"].as_str().unwrap_or("?"),
            e["media"].as_str().unwrap_or("?"),
            e["mail"].as_str().unwrap_or("?"),
            e["mail_certificates"].as_str().unwrap_or("?")
        );
    }
    println!("RTP ports: {} of {} pairs in use", v["rtp_ports"]["in_use"], v["rtp_ports"]["total"]);
    let outbox = &v["outbox"];
    match outbox["oldest_secs"].as_i64() {
        Some(age) => println!("outbox: {} pending, the oldest for {age} s", outbox["pending"]),
        None => println!("outbox: nothing pending"),
    }
    let failing = v["sync_failing"].as_array().cloned().unwrap_or_default();
    if failing.is_empty() {
        println!("mail accounts: none failing");
    }
    for a in &failing {
        println!(
            "mail account of mailbox {} FAILING ({} passes): {}",
            a["mailbox"].as_str().unwrap_or("?"),
            a["failures"],
            a["error"].as_str().unwrap_or("?")
        );
    }
    println!("MWI subscriptions: {}", v["mwi_subscriptions"]);
    println!("dialplan: {}", v["dialplan"].as_str().unwrap_or("?"));
    let smdi = &v["smdi"];
    if !smdi.is_null() {
        let lamps = smdi["lamps"].as_array().map_or(0, Vec::len);
        println!(
            "SMDI: {} {} ({lamps} lamps, {} call details waiting)",
            smdi["link"]["spec"].as_str().unwrap_or("?"),
            if smdi["link"]["up"] == true { "up" } else { "DOWN" },
            smdi["call_details"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}

pub fn calls(cfg: &Config, json: bool) -> Result<()> {
    let v = ask(cfg, &Request::Calls)?;
    if json {
        println!("{v}");
        return Ok(());
    }
    let calls: Vec<CallInfo> = serde_json::from_value(v).context("not a list of calls")?;
    if calls.is_empty() {
        println!("no calls in progress");
        return Ok(());
    }
    println!("{:>6}  {:<16} {:<12} {:<8} {:>6}  {:<5}  call-id", "id", "from", "to", "app", "secs", "codec");
    for c in &calls {
        println!("{:>6}  {:<16} {:<12} {:<8} {:>6}  {:<5}  {}", c.id, c.from, c.to, c.app, c.secs, c.codec, c.call_id);
    }
    Ok(())
}

pub fn hangup(cfg: &Config, call: &str, json: bool) -> Result<()> {
    let v = ask(cfg, &Request::Hangup { call: call.to_string() })?;
    if json {
        println!("{v}");
    } else {
        println!("call {} hung up (BYE sent)", v["call"]);
    }
    Ok(())
}

pub fn reload(cfg: &Config, json: bool) -> Result<()> {
    let v = ask(cfg, &Request::Reload)?;
    if json {
        println!("{v}");
    } else {
        println!("reloaded: {}", v["reloaded"].as_str().unwrap_or("?"));
    }
    Ok(())
}

pub fn shutdown(cfg: &Config, graceful: bool, wait_secs: Option<u64>, json: bool) -> Result<()> {
    let v = ask(cfg, &Request::Shutdown { graceful, wait_secs })?;
    if json {
        println!("{v}");
    } else if graceful {
        println!(
            "the server stops once the {} call(s) in progress have ended (new calls get 503)",
            v["calls_in_progress"]
        );
    } else {
        println!("the server is stopping ({} call(s) ended; recordings are saved)", v["calls_in_progress"]);
    }
    Ok(())
}
