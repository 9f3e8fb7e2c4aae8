//! Telling systemd how the server is (`Type=notify`, sd_notify(3) without libsystemd):
//! `READY=1` once SIP and RTP are bound and the store is open, `STOPPING=1` at shutdown,
//! and `WATCHDOG=1` at half the unit's `WatchdogSec` while the runtime is alive. Without
//! `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::time::Duration;

/// Sends `state` (newline-separated `KEY=value` lines) to systemd; false when not
/// running under it or the message could not go.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return false };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else { return false };
    let bytes = path.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        // An abstract socket (systemd's usual choice).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
        }
        None => sock.send_to(state.as_bytes(), std::path::Path::new(&path)),
    };
    if let Err(e) = &sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
    sent.is_ok()
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is meant for us.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Pings the watchdog until `stop`: a runtime that stalls stops pinging, and systemd
/// restarts the service.
pub async fn watchdog(every: Duration, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => { notify("WATCHDOG=1"); }
        }
    }
}
