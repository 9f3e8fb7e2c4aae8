//! The SIP transport task: UDP socket, TCP listener and connections, the endpoint's
//! timers, and the channels to the call tasks.

use super::call::CallCtx;
use super::channels::{CallEvent, MwiEvent, MwiPoke, SipCommand};
use crate::sip::endpoint::{CallHandle, Endpoint, Event, ReofferAnswer};
use crate::sip::frame::TcpFramer;
use crate::sip::txn::{Peer, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

enum TcpIn {
    Message(u64, SocketAddr, Vec<u8>),
    Closed(u64),
}

/// How long a shutdown waits for calls to finish and BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub async fn run(
    mut endpoint: Endpoint,
    udp: UdpSocket,
    tcp: TcpListener,
    ctx: Arc<CallCtx>,
    tracker: TaskTracker,
    stop: CancellationToken,
    (cmd_tx, mut cmd_rx): (mpsc::Sender<SipCommand>, mpsc::Receiver<SipCommand>),
) {
    let mwi = ctx.mwi.clone().unwrap_or_else(|| MwiPoke::channel().0);
    let udp = Arc::new(udp);
    let (tcp_tx, mut tcp_rx) = mpsc::channel::<TcpIn>(1024);
    let mut conns: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut calls: HashMap<CallHandle, mpsc::Sender<CallEvent>> = HashMap::new();
    let mut next_conn: u64 = 1;
    let mut buf = vec![0u8; 65536];
    let mut shutdown_deadline: Option<tokio::time::Instant> = None;

    loop {
        let timeout = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => endpoint.handle_input(Instant::now(), Peer { addr: from, transport: Transport::Udp }, &buf[..n]),
                // ICMP port unreachable from an earlier send shows up here on Linux; harmless.
                Err(e) => tracing::debug!(error = %e, "UDP receive error"),
            },
            r = tcp.accept(), if shutdown_deadline.is_none() => match r {
                Ok((stream, addr)) => {
                    let id = next_conn;
                    next_conn += 1;
                    stream.set_nodelay(true).ok();
                    let (mut rd, mut wr) = stream.into_split();
                    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(64);
                    conns.insert(id, wtx);
                    tokio::spawn(async move {
                        while let Some(b) = wrx.recv().await {
                            if wr.write_all(&b).await.is_err() {
                                break;
                            }
                        }
                    });
                    let tx = tcp_tx.clone();
                    tokio::spawn(async move {
                        let mut framer = TcpFramer::default();
                        let mut rbuf = vec![0u8; 16384];
                        'conn: loop {
                            match rd.read(&mut rbuf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    framer.push(&rbuf[..n]);
                                    loop {
                                        match framer.next_message() {
                                            Ok(Some(m)) => {
                                                if tx.send(TcpIn::Message(id, addr, m)).await.is_err() {
                                                    break 'conn;
                                                }
                                            }
                                            Ok(None) => break,
                                            Err(e) => {
                                                tracing::info!(peer = %addr, error = %e, "closing SIP TCP connection: unframeable stream");
                                                break 'conn;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        let _ = tx.send(TcpIn::Closed(id)).await;
                    });
                }
                Err(e) => tracing::warn!(error = %e, "TCP accept failed"),
            },
            Some(m) = tcp_rx.recv() => match m {
                TcpIn::Message(id, addr, bytes) => endpoint.handle_input(Instant::now(), Peer { addr, transport: Transport::Tcp(id) }, &bytes),
                TcpIn::Closed(id) => { conns.remove(&id); }
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
                    SipCommand::Notify(sub, body) => endpoint.notify(now, sub, &body),
                    SipCommand::NotifyPhone { uri, addr, body } => {
                        endpoint.notify_unsolicited(now, &uri, Peer { addr, transport: Transport::Udp }, &body)
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
                Transport::Tcp(id) => match conns.get(&id) {
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
                    tracker.spawn(super::dispatch::run(ctx.clone(), inc, cmd_tx.clone(), erx));
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
        // Call tasks that finished on their own drop their receiver.
        calls.retain(|_, tx| !tx.is_closed());
        if shutdown_deadline.is_some() && endpoint.active_calls() == 0 && calls.is_empty() {
            return;
        }
    }
}
