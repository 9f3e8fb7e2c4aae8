//! Sending a fax: one outgoing call from a SIP endpoint of its own (an ephemeral UDP
//! port, an RTP port from the configured range, so it runs beside a running server),
//! the fax application (`ivr::fax::FaxCall::send`) on the same call loop as every
//! other call, G.711 until the far end moves the call to T.38. A busy, unanswered or
//! failed attempt is tried again as `[fax]` says; the report says how it ended.

use super::call_loop::{self, CallIo, Performer};
use super::channels::{CallEvent, SipCommand};
use super::ports::PortPool;
use crate::config::Config;
use crate::ivr::fax::{FaxCall, FaxRequest, Finished};
use crate::sdp;
pub use crate::services::fax::{Attempt, SendReport};
use crate::session::media::MediaSession;
use crate::sip::endpoint::{CallHandle, Endpoint, EndpointConfig, Event, OutgoingCall, ReofferAnswer};
use crate::sip::txn::{Peer, Transport};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What to send where.
#[derive(Debug, Clone)]
pub struct SendJob {
    pub file: PathBuf,
    /// `sip:NUMBER@HOST[:PORT]`.
    pub to: String,
    /// Our ident (TSI) on the far machine's display.
    pub ident: String,
    /// The number we call from (the From user).
    pub caller: String,
    /// Attempts after the first, and the wait before each.
    pub retries: u32,
    pub retry_wait: Duration,
}

/// Told of each page the far machine confirmed (sending): the outbox job records it.
pub type OnPages = Arc<dyn Fn(u32) + Send + Sync>;

/// Sends `job`, retrying as it says; `Err` only for what no retry mends (a bad target).
pub async fn send(cfg: &Config, job: &SendJob) -> Result<SendReport> {
    let mut report = SendReport::new(&job.to);
    loop {
        report.attempts += 1;
        let started = Instant::now();
        let a = attempt(cfg, job, Arc::new(|_| {})).await?;
        report.call_secs = started.elapsed().as_secs_f64();
        let retry = report.apply(a);
        if report.ok || !retry || report.attempts > job.retries {
            return Ok(report);
        }
        tracing::info!(wait_secs = job.retry_wait.as_secs_f64(), "fax not sent; trying again");
        tokio::time::sleep(job.retry_wait).await;
    }
}

/// One call: place it, fax on it, hang up. `on_pages` hears each page confirmed.
/// `Err` for what no retry mends (a bad target, a file the engine cannot open).
pub async fn attempt(cfg: &Config, job: &SendJob, on_pages: OnPages) -> Result<Attempt> {
    let (user, target) = crate::services::fax::parse_target(&job.to)?;
    let peer_addr = tokio::net::lookup_host(&target)
        .await
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))?;
    let ip = if peer_addr.ip().is_loopback() { peer_addr.ip() } else { cfg.media_ip() };
    let sip = UdpSocket::bind(SocketAddr::new(ip, 0)).await.context("cannot bind a UDP port for SIP")?;
    let local = sip.local_addr()?;
    let ports = PortPool::new(cfg.rtp.port_range.0.clone());
    let rtp = ports.bind(ip).context("no free RTP port in [rtp] port_range")?;
    let session_id = rand::random::<u32>() as u64;
    let mut endpoint = Endpoint::new(EndpointConfig::new(local, &format!("voxbridge/{}", env!("CARGO_PKG_VERSION"))));
    let peer = Peer { addr: peer_addr, transport: Transport::Udp };
    let out = OutgoingCall {
        target: format!("sip:{user}@{peer_addr}"),
        peer,
        from_user: job.caller.clone(),
        // Over UDP: no keys (SDES keys travel only over TLS).
        offer: sdp::offer(ip, rtp.port, session_id, &sdp::crypto::OurOffer::default()),
    };
    let call = endpoint.place_call(Instant::now(), out);
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let (ev_tx, mut events) = mpsc::channel(16);
    let (placed_tx, mut placed) = mpsc::channel(1);
    let sip_task = tokio::spawn(sip_loop(endpoint, sip, call, cmd_rx, ev_tx, placed_tx));

    let answered = placed.recv().await.unwrap_or(Err((408, "the SIP side stopped".into())));
    let answer = match answered {
        Ok(answer) => answer,
        Err((status, reason)) => {
            drop(cmd_tx);
            let _ = sip_task.await;
            return Ok(Attempt::NotAnswered(status, reason));
        }
    };
    let neg = match sdp::read_answer(&answer).and_then(|n| sdp::check_family(&n, ip).map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            cmd_tx.send(SipCommand::Hangup(call)).await.ok();
            drop(cmd_tx);
            let _ = sip_task.await;
            return Ok(Attempt::NotAnswered(488, format!("no usable SDP answer ({e})")));
        }
    };
    tracing::info!(codec = neg.codec.name(), remote = %neg.remote, "fax call answered");
    let params = super::call::session_params(cfg, peer_addr.ip(), true, crate::srtp::Keying::default());
    let media = MediaSession::new(neg, SocketAddr::new(ip, rtp.port), session_id, &params);
    let app = FaxCall::send(job.file.clone(), &job.ident, cfg.fax.max_call_secs)?;
    let finished = Arc::new(Mutex::new(None));
    let keep = Keep { finished: finished.clone(), on_pages };
    let mut io = CallIo { call, cmd: &cmd_tx, rtp: &rtp, send_dropped: 0 };
    let ended = call_loop::run(&mut io, &mut events, media, app, None, keep).await;
    let t38 = match &ended {
        call_loop::Ended::Done(m) | call_loop::Ended::HandOver { media: m, .. } => m.t38_session().is_some(),
    };
    // The application hung up (BYE) when T.30 ended; the SIP side finishes that.
    cmd_tx.send(SipCommand::Hangup(call)).await.ok();
    drop(cmd_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), sip_task).await;
    let f = finished.lock().unwrap_or_else(|p| p.into_inner()).take();
    let f = f.unwrap_or(Finished { path: job.file.clone(), outcome: None, frames: 0 });
    Ok(Attempt::Faxed(Box::new(f), t38))
}

/// Keeps the fax's end for the report; tells each page confirmed.
struct Keep {
    finished: Arc<Mutex<Option<Finished>>>,
    on_pages: OnPages,
}

impl Performer<FaxCall> for Keep {
    fn perform(&mut self, r: FaxRequest, _replies: &mpsc::Sender<()>) {
        match r {
            FaxRequest::PagesSent(n) => {
                tracing::info!(pages = n, "fax page confirmed by the far machine");
                (self.on_pages)(n)
            }
            FaxRequest::Finished(f) => *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(f),
        }
    }
}

/// The SIP side of the one call: datagrams in and out, the endpoint's timers, the call
/// task's commands; the answer (or failure) to `placed`, what follows to `events`.
/// Ends when the call is over and the call task has let go of its commands.
async fn sip_loop(
    mut endpoint: Endpoint,
    socket: UdpSocket,
    call: CallHandle,
    mut commands: mpsc::Receiver<SipCommand>,
    events: mpsc::Sender<CallEvent>,
    placed: mpsc::Sender<Result<Vec<u8>, (u16, String)>>,
) {
    let mut buf = vec![0u8; 65536];
    let (mut over, mut commands_open) = (false, true);
    loop {
        while let Some(t) = endpoint.poll_transmit() {
            let _ = socket.send_to(&t.bytes, t.peer.addr).await;
        }
        while let Some(ev) = endpoint.poll_event() {
            match ev {
                Event::Answered { answer, .. } => {
                    let _ = placed.try_send(Ok(answer));
                }
                Event::Failed { status, reason, .. } => {
                    over = true;
                    let _ = placed.try_send(Err((status, reason)));
                }
                Event::Reoffer { offer, .. } => {
                    let delivered = events.try_send(CallEvent::Reoffer(offer)).is_ok();
                    if !delivered {
                        let refuse = ReofferAnswer::Refuse(500, "Server Internal Error".into());
                        endpoint.answer_reoffer(Instant::now(), call, refuse);
                    }
                }
                Event::ReinviteAnswered { answer, .. } => {
                    let _ = events.try_send(CallEvent::ReinviteAnswer(Ok(answer)));
                }
                Event::ReinviteFailed { status, .. } => {
                    let _ = events.try_send(CallEvent::ReinviteAnswer(Err(status)));
                }
                Event::RemoteHangup(_) => {
                    over = true;
                    let _ = events.try_send(CallEvent::Gone("the far end hung up".into()));
                }
                Event::Ended { reason, .. } => {
                    over = true;
                    let _ = events.try_send(CallEvent::Gone(reason));
                }
                Event::IncomingCall(inc) => endpoint.reject(Instant::now(), inc.call, 403, "Forbidden"),
                _ => {}
            }
        }
        if over && !commands_open {
            return;
        }
        let deadline = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    endpoint.handle_input(Instant::now(), Peer { addr: from, transport: Transport::Udp }, &buf[..n]);
                }
            }
            cmd = commands.recv(), if commands_open => {
                let now = Instant::now();
                match cmd {
                    Some(SipCommand::Hangup(c)) => endpoint.hangup(now, c),
                    Some(SipCommand::AnswerReoffer(c, a)) => endpoint.answer_reoffer(now, c, a),
                    Some(SipCommand::Reinvite(c, offer)) => {
                        if !endpoint.reinvite(now, c, &offer) {
                            let _ = events.try_send(CallEvent::ReinviteAnswer(Err(491)));
                        }
                    }
                    Some(SipCommand::CancelReinvite(c)) => endpoint.cancel_reinvite(now, c),
                    Some(_) => {}
                    None => {
                        commands_open = false;
                        // Nobody left to hear the call: end it if it still runs.
                        if !over {
                            endpoint.hangup(now, call);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => endpoint.handle_timeout(Instant::now()),
        }
        if !commands_open && endpoint.active_calls() == 0 {
            over = true;
        }
    }
}
