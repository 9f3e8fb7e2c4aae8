//! The control socket: `<store>/control.sock`, mode 0600 (the server's user only). One
//! request line per connection ([`crate::control::Request`]), answered from the running
//! server's own state: calls in progress, RTP ports, the outbox, failing mail accounts,
//! MWI subscriptions, the SMDI link. `reload` and `shutdown` are handed to the server's
//! main loop, which SIGHUP and SIGTERM reach too.

use super::call::CallCtx;
use super::channels::SipCommand;
use crate::control::{Answer, Request, MAX_REQUEST};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the main loop is asked to do.
#[derive(Debug)]
pub enum ServerRequest {
    /// Read the dialplan again; the answer says what happened.
    Reload(oneshot::Sender<Result<String, String>>),
    Shutdown {
        graceful: bool,
        wait: Duration,
    },
}

/// What the control task answers from.
pub struct Control {
    pub ctx: Arc<CallCtx>,
    pub store: Store,
    pub sip: mpsc::Sender<SipCommand>,
    pub server: mpsc::UnboundedSender<ServerRequest>,
    pub started: Instant,
}

/// Binds the socket (a stale one from a crashed server is replaced: the store lock
/// says no other server runs) with permissions for the owner only.
pub fn bind(store_dir: &Path) -> anyhow::Result<(UnixListener, PathBuf)> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let path = store_dir.join(crate::control::SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok((listener, path))
}

pub async fn run(control: Control, listener: UnixListener, path: PathBuf, stop: CancellationToken) {
    let control = Arc::new(control);
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => break,
            c = listener.accept() => c,
        };
        match conn {
            Ok((stream, _)) => {
                let c = control.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(&c, stream).await {
                        tracing::debug!(error = %e, "control connection failed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn serve(c: &Control, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_until(b'\n', &mut line)).await;
    let answer = match read {
        Err(_) => Answer::error("no request within 5 s"),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) => match Request::parse(line.trim_ascii()) {
            Ok(r) => {
                tracing::info!(request = ?r, "control request");
                answer(c, r).await
            }
            Err(e) => Answer::error(e),
        },
    };
    write.write_all(answer.line().as_bytes()).await?;
    write.shutdown().await
}

async fn answer(c: &Control, r: Request) -> Answer {
    match r {
        Request::Status => Answer::ok(status(c).await),
        Request::Calls => Answer::ok(serde_json::to_value(c.ctx.active.list()).unwrap_or_default()),
        Request::Hangup { call } => match c.ctx.active.find(&call) {
            Some(handle) => {
                tracing::info!(call = handle, "hung up by the admin");
                match c.sip.send(SipCommand::Hangup(handle)).await {
                    Ok(()) => Answer::ok(serde_json::json!({ "call": handle })),
                    Err(_) => Answer::error("the SIP task is gone"),
                }
            }
            None => Answer::error(format!("no call {call} in progress (see: voxbridge calls)")),
        },
        Request::Reload => {
            let (tx, rx) = oneshot::channel();
            if c.server.send(ServerRequest::Reload(tx)).is_err() {
                return Answer::error("the server is stopping");
            }
            match rx.await {
                Ok(Ok(what)) => Answer::ok(serde_json::json!({ "reloaded": what })),
                Ok(Err(e)) => Answer::error(e),
                Err(_) => Answer::error("the server is stopping"),
            }
        }
        Request::Shutdown { graceful, wait_secs } => {
            let wait = Duration::from_secs(wait_secs.unwrap_or(600));
            match c.server.send(ServerRequest::Shutdown { graceful, wait }) {
                Ok(()) => Answer::ok(serde_json::json!({
                    "stopping": true,
                    "graceful": graceful,
                    "calls_in_progress": c.ctx.active.count(),
                })),
                Err(_) => Answer::error("the server is already stopping"),
            }
        }
    }
}

async fn status(c: &Control) -> serde_json::Value {
    let mut by_app: BTreeMap<String, usize> = BTreeMap::new();
    for call in c.ctx.active.list() {
        *by_app.entry(call.app).or_default() += 1;
    }
    let store = c.store.clone();
    let (outbox, failing) = store
        .run(|s| {
            let outbox = s.outbox_pending()?;
            let failing: Vec<serde_json::Value> = s
                .sync_status(None)?
                .into_iter()
                .filter(|a| a.failures > 0)
                .map(|a| {
                    serde_json::json!({
                        "mailbox": a.mailbox,
                        "failures": a.failures,
                        "error": a.last_error,
                        "next_attempt_at": a.next_attempt_at,
                    })
                })
                .collect();
            Ok((outbox, failing))
        })
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "status: cannot read the store");
            ((0, None), vec![])
        });
    let now = crate::store::now_secs();
    let smdi = match &c.ctx.smdi {
        Some(h) => h.status().await,
        None => serde_json::Value::Null,
    };
    let (in_use, total) = c.ctx.ports.usage();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_secs": c.started.elapsed().as_secs(),
        "draining": c.ctx.draining.load(std::sync::atomic::Ordering::Relaxed),
        "calls": { "in_progress": c.ctx.active.count(), "by_app": by_app,
                   "since_start": c.ctx.totals.calls.load(std::sync::atomic::Ordering::Relaxed) },
        "rtp_ports": { "in_use": in_use, "total": total },
        "outbox": { "pending": outbox.0, "oldest_secs": outbox.1.map(|t| (now - t).max(0)) },
        "sync_failing": failing,
        "mwi_subscriptions": c.ctx.mwi_subscriptions.load(std::sync::atomic::Ordering::Relaxed),
        "dialplan": c.ctx.dialplan_file(),
        "smdi": smdi,
        "encryption": encryption(&c.ctx.cfg),
    })
}

/// Which transports are encrypted, for `status` (`config show` says the same).
pub fn encryption(cfg: &crate::config::Config) -> serde_json::Value {
    serde_json::to_value(cfg.encryption()).unwrap_or_default()
}
