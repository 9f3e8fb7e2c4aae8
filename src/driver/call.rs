//! One task per call: routes it through the dialplan, negotiates media, then runs the
//! RTP session and the application on a 20 ms tick until the call is over.

use super::ports::PortPool;
use super::sip_io::{CallEvent, SipCommand};
use crate::config::Config;
use crate::ivr::deposit::{Action, Deposit, DepositClips, DepositParams};
use crate::ivr::dialplan::{Decision, Dialplan};
use crate::media::prompts::{self, Clip, Prompts};
use crate::rtp::session::{Output, RtpSession};
use crate::rtp::FRAME;
use crate::sdp::{self, SdpError};
use crate::sip::endpoint::IncomingCall;
use crate::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

/// Totals over all calls since start-up, logged at shutdown and by the load benchmark.
#[derive(Debug, Default)]
pub struct CallTotals {
    pub calls: AtomicU64,
    pub messages_saved: AtomicU64,
    pub rtp_received: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub rtp_late: AtomicU64,
    pub rtp_overflow: AtomicU64,
    pub rtp_send_dropped: AtomicU64,
}

/// What every call task shares.
pub struct CallCtx {
    pub cfg: Config,
    pub store: Store,
    pub prompts: Arc<Prompts>,
    pub dialplan: Dialplan,
    pub ports: PortPool,
    pub outbox_wake: Arc<Notify>,
    pub beep: Arc<Clip>,
    pub totals: CallTotals,
    /// Starts a sync pass for a mailbox (changes made by phone go out at once).
    pub sync: Option<super::sync_io::SyncTrigger>,
    /// Tells the message-waiting task that a mailbox's messages changed.
    pub mwi: Option<super::mwi_io::MwiPoke>,
}

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
        if let Err(e) = run_call(&ctx, &inc, &cmd, events).await {
            tracing::error!(error = %format!("{e:#}"), "call failed");
            let _ = cmd.send(SipCommand::Hangup(inc.call)).await;
        }
    }
    .instrument(span)
    .await
}

async fn reject(cmd: &mpsc::Sender<SipCommand>, inc: &IncomingCall, code: u16, reason: &str) -> anyhow::Result<()> {
    tracing::info!(code, reason, "call refused");
    cmd.send(SipCommand::Reject(inc.call, code, reason.into())).await.ok();
    Ok(())
}

async fn run_call(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    mut events: mpsc::Receiver<CallEvent>,
) -> anyhow::Result<()> {
    let app = match ctx.dialplan.route(&inc.dialled) {
        Decision::NoRoute => return reject(cmd, inc, 404, "Not Found").await,
        Decision::Menu { keys } => App::Menu(keys),
        Decision::Deposit { mailbox } => {
            let number = mailbox.clone();
            match ctx.store.run(move |s| s.mailbox(&number)).await {
                Ok(Some(m)) => App::Deposit(m),
                Ok(None) => return reject(cmd, inc, 404, "Not Found").await,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "store unavailable");
                    return reject(cmd, inc, 500, "Server Internal Error").await;
                }
            }
        }
    };
    let Some(media) = answer_call(ctx, inc, cmd, &mut events).await? else { return Ok(()) };
    match app {
        App::Deposit(mailbox) => deposit(ctx, inc, cmd, events, media, mailbox).await,
        App::Menu(keys) => super::menu_call::run(ctx, inc, cmd, events, media, keys).await,
    }
}

/// The application a call was routed to.
enum App {
    Deposit(crate::store::Mailbox),
    Menu(crate::ivr::keys::MenuKeys),
}

/// An answered call's media: the RTP socket and session.
pub struct Media {
    pub rtp: super::ports::RtpPort,
    pub session: RtpSession,
}

/// Negotiates media, rings for `[sip] ring_ms`, answers. `None` when the call was
/// refused or the caller left first.
async fn answer_call(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    events: &mut mpsc::Receiver<CallEvent>,
) -> anyhow::Result<Option<Media>> {
    // An INVITE without SDP is a delayed offer (RFC 3261 §13.2.1): our offer goes in the
    // 200 OK and the caller's answer comes in the ACK.
    let delayed = inc.offer.iter().all(u8::is_ascii_whitespace);
    let early = if delayed {
        None
    } else {
        match sdp::negotiate(&inc.offer) {
            Ok(n) => Some(n),
            // 488 for every offer we cannot serve; the reason phrase says which problem it was.
            Err(e @ (SdpError::NoCommonCodec | SdpError::Empty | SdpError::Malformed(_))) => {
                reject(cmd, inc, 488, &format!("Not Acceptable Here ({e})")).await?;
                return Ok(None);
            }
        }
    };
    let Some(rtp) = ctx.ports.bind(ctx.cfg.media_ip()) else {
        tracing::error!("no free RTP port in the configured range");
        reject(cmd, inc, 503, "No Media Ports Available").await?;
        return Ok(None);
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
                    Some(CallEvent::Confirmed(_)) => {}
                    Some(CallEvent::Shutdown) => {
                        reject(cmd, inc, 503, "Service Unavailable").await?;
                        return Ok(None);
                    }
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
    let Some((neg, lines)) = early else {
        cmd.send(SipCommand::Answer(inc.call, sdp::offer(ctx.cfg.media_ip(), rtp.port, session_id))).await.ok();
        let neg = match events.recv().await {
            Some(CallEvent::Confirmed(answer)) => match sdp::read_answer(&answer) {
                Ok(n) => n,
                Err(e) => {
                    // The session cannot start: end the dialog the ACK confirmed.
                    tracing::warn!(error = %e, "delayed offer: no usable SDP answer in the ACK; hanging up");
                    cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                    return Ok(None);
                }
            },
            Some(CallEvent::Shutdown) => {
                cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                return Ok(None);
            }
            Some(CallEvent::Gone(why)) => {
                tracing::info!(reason = %why, "caller left before the ACK");
                return Ok(None);
            }
            None => return Ok(None),
        };
        tracing::info!(codec = neg.codec.name(), rtp_port = rtp.port, remote = %neg.remote, offer = "ours, answered in the ACK", "answered");
        return Ok(Some(Media { session: RtpSession::new(&neg, ctx.cfg.rtp.jitter_frames), rtp }));
    };
    let answer = sdp::answer(&neg, &lines, ctx.cfg.media_ip(), rtp.port, session_id);
    cmd.send(SipCommand::Answer(inc.call, answer)).await.ok();
    tracing::info!(codec = neg.codec.name(), rtp_port = rtp.port, remote = %neg.remote, "answered");
    Ok(Some(Media { session: RtpSession::new(&neg, ctx.cfg.rtp.jitter_frames), rtp }))
}

/// The deposit application's loop: greeting, recording, durable save.
async fn deposit(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    mut events: mpsc::Receiver<CallEvent>,
    media: Media,
    mailbox: crate::store::Mailbox,
) -> anyhow::Result<()> {
    let Media { rtp, mut session } = media;
    tracing::info!(mailbox = %mailbox.number, "deposit");
    let greeting = greeting_clips(ctx, &mailbox, inc.busy).await;
    let clips = DepositClips {
        greeting,
        beep: ctx.beep.clone(),
        saved: clip(&ctx.prompts, "vm-saved"),
        too_short: clip(&ctx.prompts, "vm-too-short"),
        transfer: clip(&ctx.prompts, "vm-transfer"),
    };
    let mut app = Deposit::new(DepositParams::from_config(&ctx.cfg.deposit), clips);
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pcm = Vec::with_capacity(crate::rtp::FRAME_SAMPLES);
    let mut rbuf = [0u8; 2048];
    let (save_tx, mut save_rx) = mpsc::channel::<bool>(1);
    let mut saving = false;
    let mut gone = false;
    let mut send_dropped = 0u64;

    loop {
        while let Some(action) = app.poll_action() {
            match action {
                Action::Play(cs) => cs.iter().for_each(|c| session.play(c.encoded(session.codec()))),
                Action::StopPlayback => session.stop_playback(),
                Action::Save { pcm, reason } => {
                    saving = true;
                    tracing::info!(?reason, secs = pcm.len() as f64 / 8000.0, "recording stopped");
                    let (ctx2, tx, caller, name, mb) = (
                        ctx.clone(),
                        save_tx.clone(),
                        inc.caller.clone(),
                        inc.caller_name.clone(),
                        mailbox.number.clone(),
                    );
                    let mb2 = mb.clone();
                    tokio::spawn(async move {
                        let ok = match save_recording(&ctx2, mb, caller, name, pcm).await {
                            Ok(id) => {
                                tracing::info!(message = id, "message saved");
                                ctx2.totals.messages_saved.fetch_add(1, Ordering::Relaxed);
                                ctx2.outbox_wake.notify_one();
                                if let Some(m) = &ctx2.mwi {
                                    m.changed(&mb2);
                                }
                                true
                            }
                            Err(e) => {
                                tracing::error!(error = %format!("{e:#}"), "saving the message failed");
                                false
                            }
                        };
                        let _ = tx.send(ok).await;
                    });
                }
                Action::Transfer(target) => {
                    tracing::info!(%target, "transferring the caller to the operator");
                    cmd.send(SipCommand::Transfer(inc.call, target)).await.ok();
                }
                Action::Hangup => {
                    cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                }
            }
        }
        if app.is_done() && !saving {
            break;
        }
        tokio::select! {
            r = rtp.socket.recv_from(&mut rbuf) => {
                if let Ok((n, from)) = r {
                    session.handle_input(from, &rbuf[..n]);
                }
            }
            _ = tick.tick() => {
                session.handle_tick(&mut pcm);
                app.handle_frame(&pcm);
                while let Some(out) = session.poll_output() {
                    match out {
                        Output::Transmit { to, bytes } => {
                            if rtp.socket.try_send_to(&bytes, to).is_err() {
                                send_dropped += 1;
                            }
                        }
                        Output::Dtmf(d) => {
                            tracing::debug!(digit = %d, "DTMF");
                            app.handle_dtmf(d);
                        }
                        Output::PlaybackDone => app.handle_playback_done(),
                    }
                }
            }
            ev = events.recv(), if !gone => {
                if let Some(send_bye) = caller_leaving(ev) {
                    gone = true;
                    app.handle_hangup();
                    if send_bye {
                        cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                    }
                }
            }
            Some(ok) = save_rx.recv() => {
                saving = false;
                app.handle_saved(ok);
            }
        }
    }
    record_totals(ctx, &session, send_dropped);
    Ok(())
}

/// What a SIP event means for the application: `None` nothing (the ACK), `Some(true)`
/// the server is shutting down (end the application, then send BYE), `Some(false)` the
/// caller is gone.
pub fn caller_leaving(ev: Option<CallEvent>) -> Option<bool> {
    match ev {
        Some(CallEvent::Confirmed(_)) => None,
        Some(CallEvent::Shutdown) => Some(true),
        Some(CallEvent::Gone(why)) => {
            tracing::info!(reason = %why, "caller gone");
            Some(false)
        }
        None => Some(false),
    }
}

/// Adds the call's RTP counters to the totals and logs them.
pub fn record_totals(ctx: &CallCtx, session: &RtpSession, send_dropped: u64) {
    let st = session.stats();
    let t = &ctx.totals;
    t.rtp_received.fetch_add(st.jitter.received, Ordering::Relaxed);
    t.rtp_lost.fetch_add(st.jitter.lost, Ordering::Relaxed);
    t.rtp_late.fetch_add(st.jitter.late, Ordering::Relaxed);
    t.rtp_overflow.fetch_add(st.jitter.overflow, Ordering::Relaxed);
    t.rtp_send_dropped.fetch_add(send_dropped, Ordering::Relaxed);
    tracing::info!(
        rtp_received = st.jitter.received,
        rtp_lost = st.jitter.lost,
        rtp_late = st.jitter.late,
        rtp_overflow = st.jitter.overflow,
        rtp_sent = st.sent,
        send_dropped,
        "call ended"
    );
}

pub fn clip(p: &Prompts, id: &str) -> Arc<Clip> {
    p.get(id).unwrap_or_else(|| {
        tracing::warn!(prompt = id, "prompt missing; playing silence");
        Arc::new(Clip::from_pcm(vec![0; 800], "silence"))
    })
}

/// The greeting for a deposit: the temporary greeting while one is set, else the busy
/// greeting for a call diverted on busy, else the unavailable greeting, else "The
/// person at extension <recorded name, or digits> is not available…".
async fn greeting_clips(ctx: &Arc<CallCtx>, mb: &crate::store::Mailbox, busy: bool) -> Vec<Arc<Clip>> {
    let recorded =
        [mb.temp_greeting_path.as_ref(), mb.busy_greeting_path.as_ref().filter(|_| busy), mb.greeting_path.as_ref()];
    for rel in recorded.into_iter().flatten() {
        if let Some(clip) = read_clip(ctx, rel).await {
            return vec![clip];
        }
    }
    let mut clips = ctx.prompts.sequence(&["vm-intro-person".to_string()]);
    let name = match mb.name_path.as_ref() {
        Some(rel) => read_clip(ctx, rel).await,
        None => None,
    };
    match name {
        Some(name) => clips.push(name),
        None => clips.extend(ctx.prompts.sequence(&prompts::digits(&mb.number))),
    }
    clips.extend(ctx.prompts.sequence(&["vm-unavailable".to_string()]));
    clips
}

/// A recording below the store directory as a clip; unreadable ones are logged, None.
async fn read_clip(ctx: &Arc<CallCtx>, rel: &str) -> Option<Arc<Clip>> {
    let path = ctx.store.root().join(rel);
    match tokio::task::spawn_blocking(move || crate::media::wav::read_8k_mono(&path)).await {
        Ok(Ok(pcm)) => Some(Arc::new(Clip::from_pcm(pcm, rel.to_string()))),
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "recorded greeting unreadable; using the next one");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "recorded greeting task failed");
            None
        }
    }
}

/// Writes the recording durably, then commits its row (and outbox row) in state U.
pub async fn save_recording(
    ctx: &Arc<CallCtx>,
    mailbox: String,
    caller: Option<String>,
    caller_name: Option<String>,
    pcm: Vec<i16>,
) -> anyhow::Result<i64> {
    let domain = ctx.cfg.delivery.from_domain.clone();
    ctx.store
        .run(move |s| s.insert_voice_message(&s.new_recording(&domain, &mailbox, caller, caller_name, &pcm)?))
        .await
}
