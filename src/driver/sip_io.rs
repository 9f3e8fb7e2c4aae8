//! The SIP transport task: UDP socket, TCP listener (connections in `sip_tcp`), the
//! per-source rate limit, the endpoint's timers, and the channels to the call tasks.

use super::call::CallCtx;
use super::channels::{CallEvent, MwiEvent, MwiPoke, SipCommand};
use super::sip_tcp::{self, TcpIn, TcpLimits};
use crate::config::RateLimitAction;
use crate::sip::endpoint::{CallHandle, Endpoint, Event, ReofferAnswer};
use crate::sip::limits::{RateLimiter, Verdict};
use crate::sip::txn::{Peer, Transport};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The first and the longest pause of accepting after running out of descriptors.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long a shutdown waits for calls to finish and BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The SIP sockets: UDP and TCP on `[sip] listen`, TLS on `[sip] tls_listen`.
pub struct Listeners {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub tls: Option<TcpListener>,
}

pub async fn run(
    mut endpoint: Endpoint,
    Listeners { udp, tcp, tls }: Listeners,
    ctx: Arc<CallCtx>,
    tracker: TaskTracker,
    stop: CancellationToken,
    (cmd_tx, mut cmd_rx): (mpsc::Sender<SipCommand>, mpsc::Receiver<SipCommand>),
) {
    let mwi = ctx.mwi.clone().unwrap_or_else(|| MwiPoke::channel().0);
    let udp = Arc::new(udp);
    let (tcp_tx, mut tcp_rx) = mpsc::channel::<TcpIn>(1024);
    let mut conns: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
    // The connections of `conns` that are TLS.
    let mut tls_conns: std::collections::HashSet<u64> = Default::default();
    let mut calls: HashMap<CallHandle, mpsc::Sender<CallEvent>> = HashMap::new();
    let mut next_conn: u64 = 1;
    let mut buf = vec![0u8; 65536];
    let mut shutdown_deadline: Option<tokio::time::Instant> = None;
    let sip_cfg = &ctx.cfg.sip;
    let mut limiter = RateLimiter::new(sip_cfg.rate_limit, sip_cfg.rate_burst);
    let refuse_over_limit = sip_cfg.rate_limit_action == RateLimitAction::Refuse;
    let tcp_limits = TcpLimits::new(sip_cfg.tcp.clone());
    // Accepting paused after running out of file descriptors: until when, how long the
    // next pause is, and how many accepts failed in this episode.
    let mut accept_paused: Option<tokio::time::Instant> = None;
    let mut accept_backoff = ACCEPT_BACKOFF_MIN;
    let mut accept_failures = 0u64;
    let mut tcp_refusals_logged: Option<Instant> = None;

    loop {
        let timeout = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        // One received message, through the source's rate limit.
        let mut input = |endpoint: &mut Endpoint, peer: Peer, bytes: &[u8]| {
            let now = Instant::now();
            // Trunks carry many callers' requests from one address: the per-source limit
            // is for everyone else.
            if endpoint.is_trunk(peer.addr.ip()) {
                return endpoint.handle_input(now, peer, bytes);
            }
            match limiter.check(now, peer.addr.ip()) {
                Verdict::Pass => endpoint.handle_input(now, peer, bytes),
                Verdict::Limited { log, since_last_log } => {
                    if log {
                        tracing::warn!(source = %peer.addr.ip(), limited = since_last_log, "SIP rate limit: source over its limit");
                    }
                    if refuse_over_limit {
                        let retry = [("Retry-After", limiter.retry_after(peer.addr.ip()).to_string())];
                        endpoint.reply_stateless(peer, bytes, 503, "Service Unavailable", &retry);
                    }
                }
            }
        };
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => input(&mut endpoint, Peer { addr: from, transport: Transport::Udp }, &buf[..n]),
                // ICMP port unreachable from an earlier send shows up here on Linux; harmless.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            },
            (r, over_tls) = accept_any(&tcp, &tls), if shutdown_deadline.is_none() && accept_paused.is_none() => {
                let kind = if over_tls { "TLS" } else { "TCP" };
                match r {
                    Ok((stream, addr)) => {
                        if accept_failures > 0 {
                            tracing::info!(failed = accept_failures, "accepting SIP TCP connections again");
                            (accept_failures, accept_backoff) = (0, ACCEPT_BACKOFF_MIN);
                        }
                        // TLS connections are TCP connections: the same limits.
                        match tcp_limits.admit(addr.ip()) {
                            Ok(admission) => {
                                let id = next_conn;
                                next_conn += 1;
                                let acceptor = ctx.sip_tls.as_ref().filter(|_| over_tls).map(|t| t.acceptor_for(addr.ip()));
                                if over_tls {
                                    tls_conns.insert(id);
                                }
                                conns.insert(id, sip_tcp::spawn(id, stream, acceptor, addr, admission, tcp_tx.clone()));
                            }
                            Err(why) => {
                                // Closed at once (the stream drops); logged at most every 10 s.
                                if tcp_refusals_logged.is_none_or(|t| t.elapsed() >= crate::sip::limits::LOG_EVERY) {
                                    tcp_refusals_logged = Some(Instant::now());
                                    tracing::warn!(
                                        peer = %addr, limit = ?why, open = tcp_limits.open(),
                                        "SIP {kind} connection refused: over the connection limit"
                                    );
                                }
                            }
                        }
                    }
                    Err(e) if sip_tcp::is_resource_exhaustion(&e) => {
                        // Retrying at once would spin (and log) at full speed: pause accepting.
                        if accept_failures == 0 {
                            tracing::error!(error = %e, "cannot accept SIP {kind} connections (out of file descriptors?); pausing accept — raise `ulimit -n` or lower sip.tcp.max_connections");
                        }
                        accept_failures += 1;
                        accept_paused = Some(tokio::time::Instant::now() + accept_backoff);
                        accept_backoff = (accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                    Err(e) => tracing::warn!(error = %e, "{kind} accept failed"),
                }
            }
            _ = tokio::time::sleep_until(accept_paused.unwrap_or(far)), if accept_paused.is_some() => accept_paused = None,
            Some(m) = tcp_rx.recv() => match m {
                TcpIn::Message(id, addr, bytes) => {
                    let transport = if tls_conns.contains(&id) { Transport::Tls(id) } else { Transport::Tcp(id) };
                    input(&mut endpoint, Peer { addr, transport }, &bytes)
                }
                TcpIn::Closed(id) => { conns.remove(&id); tls_conns.remove(&id); endpoint.connection_closed(id); }
            },
            Some(cmd) = cmd_rx.recv() => {
                let now = Instant::now();
                match cmd {
                    SipCommand::Ringing(c) => endpoint.provisional(now, c, 180, "Ringing"),
                    SipCommand::Answer(c, sdp) => endpoint.answer(now, c, &sdp),
                    SipCommand::Reject(c, code, reason) => { endpoint.reject(now, c, code, &reason); calls.remove(&c); }
                    SipCommand::Hangup(c) => endpoint.hangup(now, c),
                    SipCommand::Transfer(c, target) => endpoint.refer(now, c, &target),
                    SipCommand::AnswerReoffer(c, answer) => endpoint.answer_reoffer(now, c, answer),
                    SipCommand::Reinvite(c, offer) => {
                        if !endpoint.reinvite(now, c, &offer) {
                            if let Some(tx) = calls.get(&c) {
                                let _ = tx.try_send(CallEvent::ReinviteAnswer(Err(491)));
                            }
                        }
                    }
                    SipCommand::CancelReinvite(c) => endpoint.cancel_reinvite(now, c),
                    SipCommand::Notify(sub, body) => endpoint.notify(now, sub, &body),
                    SipCommand::NotifyPhone { uri, addr, tls, body } => endpoint.notify_unsolicited(now, &uri, addr, tls, &body),
                    SipCommand::Credentials(users) => {
                        tracing::info!(mailboxes = users.len(), "SIP credentials reloaded");
                        endpoint.set_credentials(users);
                    }
                }
            },
            _ = tokio::time::sleep_until(timeout.unwrap_or(far)) => endpoint.handle_timeout(Instant::now()),
            _ = stop.cancelled(), if shutdown_deadline.is_none() => {
                tracing::info!(calls = calls.len(), "shutting down: finishing calls in progress");
                shutdown_deadline = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                for tx in calls.values() {
                    let _ = tx.try_send(CallEvent::Shutdown);
                }
            },
            _ = tokio::time::sleep_until(shutdown_deadline.unwrap_or(far)), if shutdown_deadline.is_some() => {
                tracing::warn!(calls = endpoint.active_calls(), "shutdown grace period over");
                return;
            },
        }

        while let Some(t) = endpoint.poll_transmit() {
            match t.peer.transport {
                Transport::Udp => {
                    if let Err(e) = udp.send_to(&t.bytes, t.peer.addr).await {
                        tracing::debug!(to = %t.peer.addr, error = %e, "UDP send failed");
                    }
                }
                Transport::Tcp(id) | Transport::Tls(id) => match conns.get(&id) {
                    Some(w) => {
                        let _ = w.try_send(t.bytes);
                    }
                    None => {
                        tracing::debug!(to = %t.peer.addr, "TCP connection gone; message dropped")
                    }
                },
            }
        }
        while let Some(ev) = endpoint.poll_event() {
            match ev {
                Event::IncomingCall(inc) => {
                    if shutdown_deadline.is_some() {
                        endpoint.reject(Instant::now(), inc.call, 503, "Service Unavailable");
                        continue;
                    }
                    let (etx, erx) = mpsc::channel(16);
                    calls.insert(inc.call, etx);
                    tracker.spawn(super::dispatch::run(ctx.clone(), *inc, cmd_tx.clone(), erx));
                }
                Event::Confirmed { call, answer } => {
                    if let Some(tx) = calls.get(&call) {
                        let _ = tx.try_send(CallEvent::Confirmed(answer));
                    }
                }
                Event::Reoffer { call, offer } => {
                    // A call task that is gone or cannot take it now: the re-INVITE
                    // still gets its final answer (the session stays as it was).
                    let delivered = calls.get(&call).is_some_and(|tx| tx.try_send(CallEvent::Reoffer(offer)).is_ok());
                    if !delivered {
                        endpoint.answer_reoffer(
                            Instant::now(),
                            call,
                            ReofferAnswer::Refuse(500, "Server Internal Error".into()),
                        );
                    }
                }
                Event::ReinviteAnswered { call, answer } => {
                    if let Some(tx) = calls.get(&call) {
                        let _ = tx.try_send(CallEvent::ReinviteAnswer(Ok(answer)));
                    }
                }
                Event::ReinviteFailed { call, status } => {
                    if let Some(tx) = calls.get(&call) {
                        let _ = tx.try_send(CallEvent::ReinviteAnswer(Err(status)));
                    }
                }
                // Calls we place: nothing places one yet (fax sending will). One answered
                // with no task to take it is ended, never left open.
                Event::Progress { call, status } => tracing::debug!(call, status, "outgoing call progress"),
                Event::Answered { call, .. } => {
                    tracing::warn!(call, "outgoing call answered with nobody to take it; hanging up");
                    endpoint.hangup(Instant::now(), call);
                }
                Event::Failed { call, status, reason } => tracing::info!(call, status, %reason, "outgoing call failed"),
                Event::Cancelled(c) => {
                    if let Some(tx) = calls.remove(&c) {
                        let _ = tx.try_send(CallEvent::Gone("cancelled".into()));
                    }
                }
                Event::RemoteHangup(c) => {
                    if let Some(tx) = calls.remove(&c) {
                        let _ = tx.try_send(CallEvent::Gone("caller hung up".into()));
                    }
                }
                Event::Ended { call, reason } => {
                    if let Some(tx) = calls.remove(&call) {
                        let _ = tx.try_send(CallEvent::Gone(reason));
                    }
                }
                Event::Subscribed { sub, account } => mwi.send(MwiEvent::Subscribed { sub, mailbox: account }),
                Event::Refreshed(_) => {}
                Event::Ending(sub) => mwi.send(MwiEvent::Ending(sub)),
                Event::Unsubscribed(sub) => mwi.send(MwiEvent::Unsubscribed(sub)),
            }
        }
        // For `voxbridge status`.
        ctx.mwi_subscriptions.store(endpoint.subscription_count(), std::sync::atomic::Ordering::Relaxed);
        // Call tasks that finished on their own drop their receiver.
        calls.retain(|_, tx| !tx.is_closed());
        if shutdown_deadline.is_some() && endpoint.active_calls() == 0 && calls.is_empty() {
            return;
        }
    }
}

/// The next connection on the TCP or the TLS listener, and whether it came to the TLS
/// one. (`accept` is cancel-safe: the one not taken loses nothing.)
async fn accept_any(
    tcp: &TcpListener,
    tls: &Option<TcpListener>,
) -> (std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>, bool) {
    match tls {
        Some(l) => tokio::select! {
            r = tcp.accept() => (r, false),
            r = l.accept() => (r, true),
        },
        None => (tcp.accept().await, false),
    }
}
