//! The SMDI link task: opens the serial line or TCP connection, feeds its bytes to the
//! sans-IO [`Desk`] and writes what the desk says, reconnecting by itself (1 s, doubling
//! up to `[smdi] reconnect_max_secs`) and logging why the link dropped. Calls ask it for
//! their call detail ([`SmdiHandle::detail`]); the change hub tells it which mailboxes
//! may have changed, and it reads their lamps' state from the store. Its state goes to
//! `voxbridge status` and `smdi status` through the control socket.

use super::channels::SmdiCommand;
use crate::config::{SmdiConfig, SmdiLink};
use crate::mwi::Counts;
use crate::smdi::codec::{CallDetail, CallType};
use crate::smdi::desk::{Desk, DeskConfig, DeskEvent, Snapshot};
use crate::store::Store;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

trait Link: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Link for T {}

/// What calls and the change hub use to reach the link task.
#[derive(Clone, Debug)]
pub struct SmdiHandle {
    tx: mpsc::UnboundedSender<SmdiCommand>,
    cfg: SmdiConfig,
}

impl SmdiHandle {
    pub fn channel(cfg: SmdiConfig) -> (SmdiHandle, mpsc::UnboundedReceiver<SmdiCommand>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SmdiHandle { tx, cfg }, rx)
    }

    /// The call detail of a call, if it is one that waits for one (its terminal is
    /// known, or it dialled a pilot): at most `[smdi] md_wait_ms` later.
    pub async fn detail(&self, inc: &crate::sip::endpoint::IncomingCall) -> Option<CallDetail> {
        let header = self
            .cfg
            .terminal_header
            .as_ref()
            .and_then(|h| inc.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(h)).map(|(_, v)| v.as_str()));
        let terminal = self.cfg.terminal_of(header, inc.to_user.as_deref(), &inc.dialled, inc.trunk.as_deref());
        if terminal.is_none() && !self.cfg.pilots.iter().any(|p| p == &inc.dialled) {
            return None;
        }
        let wait = Duration::from_millis(self.cfg.md_wait_ms);
        let (reply, answer) = oneshot::channel();
        let ask = SmdiCommand::Arrive {
            call: inc.call,
            terminal: terminal.clone(),
            calling: inc.caller.clone(),
            wait,
            reply,
        };
        self.tx.send(ask).ok()?;
        let detail =
            tokio::time::timeout(wait + Duration::from_secs(1), answer).await.ok().and_then(Result::ok).flatten();
        match &detail {
            Some(d) => tracing::info!(
                terminal = %d.terminal,
                call_type = ?d.call_type,
                forwarding = d.forwarding.as_deref().unwrap_or("-"),
                calling = d.calling.as_deref().unwrap_or("-"),
                "SMDI call detail"
            ),
            None => tracing::info!(
                terminal = terminal.as_deref().unwrap_or("-"),
                wait_ms = self.cfg.md_wait_ms,
                "no SMDI call detail; routed by what SIP says"
            ),
        }
        detail
    }

    /// The link's state (null when the task is gone).
    pub async fn status(&self) -> serde_json::Value {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(SmdiCommand::Status(tx)).is_err() {
            return serde_json::Value::Null;
        }
        tokio::time::timeout(Duration::from_secs(2), rx).await.ok().and_then(Result::ok).unwrap_or_default()
    }

    /// A mailbox's messages may have changed: its lamp is checked.
    pub fn changed(&self, mailbox: &str) {
        let _ = self.tx.send(SmdiCommand::Changed(mailbox.to_string()));
    }
}

fn desk_config(cfg: &SmdiConfig) -> DeskConfig {
    DeskConfig {
        strip: cfg.strip_digits,
        md_expire: Duration::from_secs_f64(cfg.md_expire_secs),
        match_window: Duration::from_secs_f64(cfg.match_window_secs),
        // A character is a start bit, its data bits, parity and stop bits.
        chars_per_sec: cfg.baud as f64
            / (1 + cfg.data_bits as u32 + u32::from(cfg.parity != "none") + cfg.stop_bits as u32) as f64,
        retry_initial: Duration::from_secs_f64(cfg.lamp_retry_secs),
        retry_max: Duration::from_secs_f64(cfg.lamp_retry_max_secs),
        attempts: cfg.lamp_attempts,
    }
}

async fn connect(link: &SmdiLink, cfg: &SmdiConfig) -> anyhow::Result<Box<dyn Link>> {
    use anyhow::Context;
    match link {
        SmdiLink::Tcp(addr) => {
            let s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| anyhow::anyhow!("no answer from {addr} in 5 s"))?
                .with_context(|| format!("cannot connect to {addr}"))?;
            s.set_nodelay(true).ok();
            Ok(Box::new(s))
        }
        SmdiLink::Serial(path) => {
            use tokio_serial::{DataBits, FlowControl, Parity, SerialPortBuilderExt, StopBits};
            let data_bits = match cfg.data_bits {
                5 => DataBits::Five,
                6 => DataBits::Six,
                7 => DataBits::Seven,
                _ => DataBits::Eight,
            };
            let parity = match cfg.parity.as_str() {
                "even" => Parity::Even,
                "odd" => Parity::Odd,
                _ => Parity::None,
            };
            let stop_bits = if cfg.stop_bits == 2 { StopBits::Two } else { StopBits::One };
            let port = tokio_serial::new(path.to_string_lossy(), cfg.baud)
                .data_bits(data_bits)
                .parity(parity)
                .stop_bits(stop_bits)
                .flow_control(FlowControl::None)
                .open_native_async()
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Box::new(port))
        }
    }
}

/// Reads from the link, or waits forever when there is none.
async fn read_some(link: &mut Option<Box<dyn Link>>, buf: &mut [u8]) -> std::io::Result<usize> {
    match link {
        Some(l) => l.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The lamp each mailbox's station should show, from the store.
async fn all_lamps(store: &Store) -> Option<Vec<(String, bool)>> {
    match store.run(|s| s.stations_with_mwi_rows()).await {
        Ok(rows) => Some(rows.into_iter().map(|(_, st, rows)| (st, Counts::from_rows(&rows).waiting())).collect()),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "SMDI: cannot read the lamps' state; lamps keep the last one");
            None
        }
    }
}

async fn one_lamp(store: &Store, mailbox: &str) -> Option<(String, bool)> {
    let mb = mailbox.to_string();
    let read = store
        .run(move |s| {
            let Some(m) = s.mailbox(&mb)? else { return Ok(None) };
            let rows = s.mwi_rows(&mb)?;
            Ok(Some((m.station.unwrap_or(m.number), Counts::from_rows(&rows).waiting())))
        })
        .await;
    match read {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(mailbox, error = %format!("{e:#}"), "SMDI: cannot read the lamp's state; it keeps the last one");
            None
        }
    }
}

/// What the link is, for `voxbridge status`.
#[derive(Debug, Default)]
struct LinkState {
    since: Option<SystemTime>,
    last_error: Option<String>,
    connects: u64,
}

pub async fn run(
    cfg: SmdiConfig,
    link: SmdiLink,
    store: Store,
    mut cmds: mpsc::UnboundedReceiver<SmdiCommand>,
    stop: CancellationToken,
) {
    let spec = match &link {
        SmdiLink::Serial(p) => format!(
            "serial {} {} baud {}{}{}",
            p.display(),
            cfg.baud,
            cfg.data_bits,
            &cfg.parity[..1].to_uppercase(),
            cfg.stop_bits
        ),
        SmdiLink::Tcp(a) => format!("tcp {a}"),
    };
    let mut desk = Desk::new(desk_config(&cfg));
    if cfg.lamps {
        for (station, on) in all_lamps(&store).await.unwrap_or_default() {
            desk.want_lamp(Instant::now(), &station, on);
        }
    }
    let mut waiting: HashMap<u64, oneshot::Sender<Option<CallDetail>>> = HashMap::new();
    let mut conn: Option<Box<dyn Link>> = None;
    let mut state = LinkState::default();
    let max_backoff = Duration::from_secs_f64(cfg.reconnect_max_secs);
    let mut backoff = Duration::from_secs(1);
    let mut next_connect = Instant::now();
    let audit_every = (cfg.audit_secs > 0.0).then(|| Duration::from_secs_f64(cfg.audit_secs));
    let mut next_audit = audit_every.map(|a| Instant::now() + a);
    // Changes committed by another process (a `voxbridge messages mark`) announce
    // nothing here: the store's data_version tells, and every lamp is checked (only
    // those that differ go out).
    let external_every = Duration::from_secs(2);
    let mut next_external = Instant::now() + external_every;
    let mut data_version = store.run(|s| s.data_version()).await.ok();
    let mut buf = vec![0u8; 1024];
    tracing::info!(link = %spec, lamps = cfg.lamps, "SMDI link starting");
    loop {
        let now = Instant::now();
        if conn.is_none() && now >= next_connect {
            match connect(&link, &cfg).await {
                Ok(c) => {
                    state.connects += 1;
                    tracing::info!(link = %spec, connects = state.connects, "SMDI link up; every lamp is sent again");
                    conn = Some(c);
                    (state.since, state.last_error) = (Some(SystemTime::now()), None);
                    backoff = Duration::from_secs(1);
                    desk.link_up(Instant::now());
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    if state.last_error.as_deref() != Some(why.as_str()) {
                        tracing::warn!(link = %spec, error = %why, retry_in_secs = backoff.as_secs_f64(), "SMDI link down");
                    }
                    state.last_error = Some(why);
                    next_connect = Instant::now() + backoff;
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
        while let Some(bytes) = desk.poll_transmit() {
            let Some(c) = conn.as_mut() else { break };
            let written = match tokio::time::timeout(Duration::from_secs(5), c.write_all(&bytes)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("a write took over 5 s".into()),
            };
            if let Err(e) = written {
                drop_link(&mut conn, &mut desk, &mut state, &spec, &format!("write failed: {e}"));
                next_connect = Instant::now() + backoff;
            }
        }
        while let Some(ev) = desk.poll_event() {
            report(ev, &mut waiting);
        }
        let external = cfg.lamps.then_some(next_external);
        let deadline = [desk.poll_timeout(), conn.is_none().then_some(next_connect), next_audit, external]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            _ = stop.cancelled() => break,
            r = read_some(&mut conn, &mut buf) => match r {
                Ok(0) => {
                    drop_link(&mut conn, &mut desk, &mut state, &spec, "closed by the far end");
                    next_connect = Instant::now() + backoff;
                }
                Ok(n) => desk.receive(Instant::now(), &buf[..n]),
                Err(e) => {
                    drop_link(&mut conn, &mut desk, &mut state, &spec, &format!("read failed: {e}"));
                    next_connect = Instant::now() + backoff;
                }
            },
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(SmdiCommand::Arrive { call, terminal, calling, wait, reply }) => {
                    match desk.call_arrived(Instant::now(), call, terminal.as_deref(), calling.as_deref(), wait) {
                        Some(d) => { let _ = reply.send(Some(d)); }
                        None => { waiting.insert(call, reply); }
                    }
                }
                Some(SmdiCommand::Changed(mailbox)) if cfg.lamps => {
                    if let Some((station, on)) = one_lamp(&store, &mailbox).await {
                        desk.want_lamp(Instant::now(), &station, on);
                    }
                }
                Some(SmdiCommand::Changed(_)) => {}
                Some(SmdiCommand::Status(reply)) => {
                    let _ = reply.send(status_json(&spec, &state, &desk.snapshot(Instant::now())));
                }
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if cfg.lamps && next_external <= now {
                    next_external = now + external_every;
                    let v = store.run(|s| s.data_version()).await.ok();
                    if v.is_some() && v != data_version {
                        data_version = v;
                        for (station, on) in all_lamps(&store).await.unwrap_or_default() {
                            desk.want_lamp(now, &station, on);
                        }
                    }
                }
                if next_audit.is_some_and(|t| t <= now) {
                    next_audit = audit_every.map(|a| now + a);
                    if cfg.lamps {
                        // From the store: changes made by commands in another process too.
                        for (station, on) in all_lamps(&store).await.unwrap_or_default() {
                            desk.want_lamp(now, &station, on);
                        }
                        desk.resend_all();
                        tracing::info!("SMDI lamp audit: every lamp sent again");
                    }
                }
                desk.handle_timeout(Instant::now());
            }
        }
        // Waiters whose call went away before the answer: forgotten.
        waiting.retain(|call, reply| {
            let open = !reply.is_closed();
            if !open {
                desk.call_gone(*call);
            }
            open
        });
    }
}

fn drop_link(conn: &mut Option<Box<dyn Link>>, desk: &mut Desk, state: &mut LinkState, spec: &str, why: &str) {
    tracing::warn!(link = %spec, reason = why, "SMDI link dropped; reconnecting");
    *conn = None;
    state.since = Some(SystemTime::now());
    state.last_error = Some(why.to_string());
    desk.link_down();
}

fn report(ev: DeskEvent, waiting: &mut HashMap<u64, oneshot::Sender<Option<CallDetail>>>) {
    match ev {
        DeskEvent::Matched { call, detail } => {
            if let Some(reply) = waiting.remove(&call) {
                let _ = reply.send(Some(detail));
            }
        }
        DeskEvent::NoDetail { call } => {
            if let Some(reply) = waiting.remove(&call) {
                let _ = reply.send(None);
            }
        }
        DeskEvent::Expired(d) => tracing::warn!(
            terminal = %d.terminal,
            call_type = ?d.call_type,
            forwarding = d.forwarding.as_deref().unwrap_or("-"),
            calling = d.calling.as_deref().unwrap_or("-"),
            "SMDI call detail matched no call; dropped"
        ),
        DeskEvent::LampSent { station, on } => {
            let state = if on { "on" } else { "off" };
            crate::metrics::METRICS.smdi_lamps.get_or_create(&crate::metrics::label("state", state)).inc();
            tracing::info!(station, on, "SMDI lamp")
        }
        DeskEvent::LampRefused { station, cause, retry_in } => match retry_in {
            Some(d) => tracing::warn!(station, cause, retry_in_secs = d.as_secs_f64(), "SMDI lamp refused by the PBX"),
            None => tracing::warn!(station, cause, "SMDI lamp refused by the PBX; not retried until it changes"),
        },
        DeskEvent::Garbage(line) => tracing::warn!(line, "SMDI: a line that is no SMDI message; ignored"),
        DeskEvent::BadStation(station) => {
            tracing::warn!(station, "SMDI: a station must be digits; its lamp cannot be sent")
        }
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The link's state for `voxbridge status` and `smdi status`.
fn status_json(spec: &str, state: &LinkState, snap: &Snapshot) -> serde_json::Value {
    let now = SystemTime::now();
    let ago = |d: Duration| unix(now.checked_sub(d).unwrap_or(now));
    let call_type = |t: CallType| match t {
        CallType::ForwardAll => "forward-all",
        CallType::Busy => "busy",
        CallType::NoAnswer => "no-answer",
        CallType::Direct => "direct",
        CallType::Unknown => "unknown",
    };
    serde_json::json!({
        "pid": std::process::id(),
        "written": unix(now),
        "link": {
            "spec": spec,
            "up": snap.link_up,
            "since": state.since.map(unix),
            "last_error": state.last_error,
            "connects": state.connects,
        },
        "call_details": snap.queued.iter().map(|(d, age)| serde_json::json!({
            "terminal": d.terminal,
            "type": call_type(d.call_type),
            "forwarding": d.forwarding,
            "calling": d.calling,
            "received": ago(*age),
        })).collect::<Vec<_>>(),
        "waiting_calls": snap.waiting_calls,
        "lamps_queued": snap.lamps_queued,
        "lamps": snap.lamps.iter().map(|(station, l)| {
            let instant_now = Instant::now();
            serde_json::json!({
                "station": station,
                "lit": l.want,
                "sent": l.sent.map(|(on, _)| on),
                "sent_at": l.sent.map(|(_, at)| ago(instant_now.saturating_duration_since(at))),
                "error": l.error,
            })
        }).collect::<Vec<_>>(),
    })
}
