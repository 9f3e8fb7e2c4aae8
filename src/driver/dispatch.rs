//! One task per call: routes it through the dialplan, negotiates media and answers, then
//! runs its application on the call loop (`call_loop`) — and the next one, when an
//! application hands the call on.

use super::call::CallCtx;
use super::call_loop::{self, CallIo, Ended};
use super::channels::{CallEvent, SipCommand};
use super::ports::RtpPort;
use crate::rtp::session::SessionParams;
use crate::sdp;
use crate::services::calls::{Arrival, CallRoute};
use crate::session::app::AppKind;
use crate::session::media::{FirstOffer, MediaSession, Refusal, Serves};
use crate::sip::endpoint::IncomingCall;
use crate::srtp::Keying;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

pub async fn run(
    ctx: Arc<CallCtx>,
    inc: IncomingCall,
    cmd: mpsc::Sender<SipCommand>,
    events: mpsc::Receiver<CallEvent>,
) {
    let span =
        tracing::info_span!("call", id = inc.call, from = inc.caller.as_deref().unwrap_or("?"), to = %inc.dialled);
    async move {
        ctx.totals.calls.fetch_add(1, Ordering::Relaxed);
        if ctx.draining.load(Ordering::Relaxed) {
            let _ = reject(&cmd, &inc, 503, "Service Unavailable (shutting down)").await;
            return;
        }
        let listed = ctx.active.enter(&inc);
        let result = match run_call(&ctx, &inc, &cmd, events, &listed).await {
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "call failed");
                let _ = cmd.send(SipCommand::Hangup(inc.call)).await;
                "failed"
            }
            // No application ever ran: refused, or the caller left before the answer.
            Ok(()) if listed.current_app() == "routing" => "refused",
            Ok(()) => "completed",
        };
        let labels = crate::metrics::labels2("app", listed.current_app(), "result", result);
        crate::metrics::METRICS.calls.get_or_create(&labels).inc();
    }
    .instrument(span)
    .await
}

async fn reject(cmd: &mpsc::Sender<SipCommand>, inc: &IncomingCall, code: u16, reason: &str) -> anyhow::Result<()> {
    tracing::info!(code, reason, "call refused");
    cmd.send(SipCommand::Reject(inc.call, code, reason.into())).await.ok();
    Ok(())
}

/// Refuses a call not answered yet, with the status that says why.
async fn refuse<T>(cmd: &mpsc::Sender<SipCommand>, inc: &IncomingCall, why: Refusal) -> anyhow::Result<Option<T>> {
    let (code, reason) = why.status();
    reject(cmd, inc, code, &reason).await?;
    Ok(None)
}

async fn run_call(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    mut events: mpsc::Receiver<CallEvent>,
    listed: &super::active_calls::InProgress<'_>,
) -> anyhow::Result<()> {
    // A call the PBX describes over SMDI waits (briefly) for its call detail — unless
    // its SIP diversion decides anyway.
    let prefer_smdi = ctx.cfg.smdi.prefer == "smdi";
    let detail = match &ctx.smdi {
        Some(smdi) if prefer_smdi || inc.diverted.is_none() => smdi.detail(inc).await,
        _ => None,
    };
    let arrival =
        Arrival { dialled: &inc.dialled, diverted: inc.diverted.as_ref(), detail: detail.as_ref(), prefer_smdi };
    if let Some(d) = &inc.diverted {
        tracing::info!(party = %d.party, reason = ?d.reason, "diverted call");
    }
    let route = crate::services::calls::route(&ctx.messages.store, &ctx.dialplan(), arrival).await;
    if let CallRoute::Refuse(code, reason) = route {
        return reject(cmd, inc, code, reason).await;
    }
    let serves = match &route {
        CallRoute::Menu { .. } => Serves::Audio,
        // A voice mailbox takes a T.38-only call as a fax unless fax detection is off.
        CallRoute::Deposit { .. } if ctx.live().deposit.fax_detect => Serves::AudioElseFax,
        CallRoute::Deposit { .. } => Serves::Audio,
        CallRoute::Fax(_) => Serves::FaxElseAudio,
        CallRoute::Refuse(..) => return Ok(()), // answered above
    };
    let Some((mut media, rtp)) = answer_call(ctx, inc, cmd, &mut events, serves).await? else { return Ok(()) };
    let mut io = CallIo { call: inc.call, cmd, rtp: &rtp, send_dropped: 0 };
    let mut next = match &route {
        // A T.38 call to a voice mailbox is a fax for it.
        _ if media.t38_session().is_some() => AppKind::FaxReceive,
        CallRoute::Deposit { .. } => AppKind::Deposit,
        CallRoute::Menu { .. } => AppKind::Menu,
        CallRoute::Fax(_) => AppKind::FaxReceive,
        CallRoute::Refuse(..) => return Ok(()), // answered above
    };
    let mut reoffer = None;
    listed.codec(media.carrying());
    loop {
        listed.app(next.name());
        let ended = match (next, &route) {
            (AppKind::Deposit, CallRoute::Deposit { mailbox, busy }) => {
                let (app, saver) = super::deposit_call::start(ctx, inc, mailbox, *busy).await;
                call_loop::run(&mut io, &mut events, media, app, reoffer.take(), saver).await
            }
            (AppKind::Menu, CallRoute::Menu { keys, caller }) => {
                let (app, requests) = super::menu_call::start(ctx, inc, keys.clone(), caller.clone()).await;
                call_loop::run(&mut io, &mut events, media, app, reoffer.take(), requests).await
            }
            // A fax number, or a deposit whose caller turned out to be a fax machine.
            (AppKind::FaxReceive, CallRoute::Fax(mailbox) | CallRoute::Deposit { mailbox, .. }) => {
                match super::fax_call::start(ctx, inc, mailbox).await {
                    Ok((app, store)) => call_loop::run(&mut io, &mut events, media, app, reoffer.take(), store).await,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "cannot receive a fax; hanging up");
                        if reoffer.is_some() {
                            let refuse =
                                crate::sip::endpoint::ReofferAnswer::Refuse(500, "Server Internal Error".into());
                            cmd.send(SipCommand::AnswerReoffer(inc.call, refuse)).await.ok();
                        }
                        cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                        break;
                    }
                }
            }
            (to, _) => {
                // Only reachable once an application hands over to one this route
                // cannot start (fax reception before it exists): end the call cleanly.
                tracing::error!(?to, "no such application for this call; hanging up");
                if reoffer.is_some() {
                    let refuse = crate::sip::endpoint::ReofferAnswer::Refuse(488, "Not Acceptable Here".into());
                    cmd.send(SipCommand::AnswerReoffer(inc.call, refuse)).await.ok();
                }
                cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                break;
            }
        };
        match ended {
            Ended::Done(m) => {
                media = m;
                break;
            }
            Ended::HandOver { to, reoffer: offer, media: m } => {
                tracing::info!(from = ?next, ?to, "call handed over");
                (next, reoffer, media) = (to, offer, m);
                listed.codec(media.carrying());
            }
        }
    }
    super::call::record_totals(ctx, media.rtp_stats(), io.send_dropped);
    Ok(())
}

/// Negotiates media, rings for `[sip] ring_ms`, answers. `None` when the call was
/// refused or the caller left first. The media port stays with the caller of this:
/// it outlives every application the call is handed to.
async fn answer_call(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    events: &mut mpsc::Receiver<CallEvent>,
    serves: Serves,
) -> anyhow::Result<Option<(MediaSession, RtpPort)>> {
    let early = match FirstOffer::read(&inc.offer, ctx.cfg.media_ip(), serves, keying(ctx, inc)) {
        Ok(f) => f,
        Err(why) => return refuse(cmd, inc, why).await,
    };
    let Some(rtp) = ctx.ports.bind(ctx.cfg.media_ip()) else {
        tracing::error!("no free RTP port in the configured range");
        return refuse(cmd, inc, Refusal::NoMediaPorts).await;
    };
    cmd.send(SipCommand::Ringing(inc.call)).await.ok();

    let ring = Duration::from_millis(ctx.cfg.sip.ring_ms);
    if !ring.is_zero() {
        let until = tokio::time::sleep(ring);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                ev = events.recv() => match ev {
                    Some(CallEvent::Confirmed(_) | CallEvent::Reoffer(_) | CallEvent::ReinviteAnswer(_)) => {}
                    Some(CallEvent::Shutdown) => return refuse(cmd, inc, Refusal::ShuttingDown).await,
                    Some(CallEvent::Gone(why)) => {
                        tracing::info!(reason = %why, "caller left before answer");
                        return Ok(None);
                    }
                    None => return Ok(None),
                },
            }
        }
    }
    let session_id = rand::random::<u32>() as u64;
    let local = std::net::SocketAddr::new(ctx.cfg.media_ip(), rtp.port);
    let (neg, lines) = match early {
        FirstOffer::Audio(neg, lines) => (neg, lines),
        FirstOffer::Fax(offer) => {
            let (media, answer) = MediaSession::new_t38(&offer, local, session_id, &session_params(ctx, inc, false));
            cmd.send(SipCommand::Answer(inc.call, answer)).await.ok();
            tracing::info!(rtp_port = rtp.port, remote = %offer.remote, "answered with T.38");
            return Ok(Some((media, rtp)));
        }
        FirstOffer::Delayed => return delayed_offer(ctx, inc, cmd, events, rtp, local, session_id).await,
    };
    let answer = sdp::answer(&neg, &lines, ctx.cfg.media_ip(), rtp.port, session_id, session_id);
    cmd.send(SipCommand::Answer(inc.call, answer)).await.ok();
    tracing::info!(codec = neg.codec.name(), srtp = srtp_name(&neg), rtp_port = rtp.port, remote = %neg.remote, "answered");
    Ok(Some((MediaSession::new(neg, local, session_id, &session_params(ctx, inc, false)), rtp)))
}

/// An INVITE without an offer: ours goes in the 200 OK, the answer comes in the ACK.
async fn delayed_offer(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    events: &mut mpsc::Receiver<CallEvent>,
    rtp: RtpPort,
    local: std::net::SocketAddr,
    session_id: u64,
) -> anyhow::Result<Option<(MediaSession, RtpPort)>> {
    let keys = crate::session::keying::offer(keying(ctx, inc));
    cmd.send(SipCommand::Answer(inc.call, sdp::offer(ctx.cfg.media_ip(), rtp.port, session_id, &keys))).await.ok();
    let read = |answer: &[u8]| {
        let mut n = sdp::read_answer(answer)?;
        sdp::check_family(&n, ctx.cfg.media_ip())?;
        crate::session::keying::accept_answer(&mut n, &keys, keying(ctx, inc))?;
        Ok::<_, sdp::SdpError>(n)
    };
    let neg = match events.recv().await {
        Some(CallEvent::Confirmed(answer)) => {
            match read(&answer) {
                Ok(n) => n,
                Err(e) => {
                    // The session cannot start: end the dialog the ACK confirmed.
                    tracing::warn!(error = %e, "delayed offer: no usable SDP answer in the ACK; hanging up");
                    cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                    return Ok(None);
                }
            }
        }
        Some(CallEvent::Shutdown | CallEvent::Reoffer(_) | CallEvent::ReinviteAnswer(_)) => {
            cmd.send(SipCommand::Hangup(inc.call)).await.ok();
            return Ok(None);
        }
        Some(CallEvent::Gone(why)) => {
            tracing::info!(reason = %why, "caller left before the ACK");
            return Ok(None);
        }
        None => return Ok(None),
    };
    tracing::info!(codec = neg.codec.name(), srtp = srtp_name(&neg), rtp_port = rtp.port, remote = %neg.remote, offer = "ours, answered in the ACK", "answered");
    // The ACK carried the answer: the call is confirmed from the start.
    let params = session_params(ctx, inc, true);
    Ok(Some((MediaSession::new(neg, local, session_id, &params), rtp)))
}

fn session_params(ctx: &CallCtx, inc: &IncomingCall, confirmed: bool) -> SessionParams {
    super::call::session_params(&ctx.cfg, inc.peer.addr.ip(), confirmed, keying(ctx, inc))
}

/// The SRTP suite agreed, for the logs ("off": plain RTP).
fn srtp_name(n: &sdp::Negotiated) -> &'static str {
    n.srtp.as_ref().map_or("off", |a| a.suite.sdes_name())
}

/// The call's SRTP policy (its trunk's, else `[rtp] srtp`) and whether it came over TLS.
fn keying(ctx: &CallCtx, inc: &IncomingCall) -> Keying {
    Keying {
        policy: ctx.cfg.srtp_policy(inc.trunk.as_deref()),
        over_tls: matches!(inc.peer.transport, crate::sip::txn::Transport::Tls(_)),
    }
}
