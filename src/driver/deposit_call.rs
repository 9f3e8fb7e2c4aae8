//! The deposit application's call loop: greeting, recording, durable save.

use super::call::{caller_leaving, clip, record_totals, CallCtx, Media};
use super::channels::{CallEvent, SipCommand};
use crate::ivr::deposit::{Action, Deposit, DepositClips, DepositParams};
use crate::media::prompts::{self, Clip};
use crate::rtp::session::Output;
use crate::rtp::FRAME;
use crate::sip::endpoint::IncomingCall;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The deposit application's loop: greeting, recording, durable save.
pub async fn run(
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
                    tokio::spawn(async move {
                        let ok = match ctx2.messages.deposit(&mb, caller, name, pcm).await {
                            Ok(id) => {
                                tracing::info!(message = id, "message saved");
                                ctx2.totals.messages_saved.fetch_add(1, Ordering::Relaxed);
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

/// The greeting for a deposit as clips: the first readable recording of the plan
/// ([`crate::services::calls::greeting_plan`]), else "The person at extension
/// <recorded name, or digits> is not available…".
async fn greeting_clips(ctx: &Arc<CallCtx>, mb: &crate::store::Mailbox, busy: bool) -> Vec<Arc<Clip>> {
    let plan = crate::services::calls::greeting_plan(mb, busy);
    for rel in &plan.recorded {
        if let Some(clip) = read_clip(ctx, rel).await {
            return vec![clip];
        }
    }
    let mut clips = ctx.prompts.sequence(&["vm-intro-person".to_string()]);
    let name = match plan.name.as_ref() {
        Some(rel) => read_clip(ctx, rel).await,
        None => None,
    };
    match name {
        Some(name) => clips.push(name),
        None => clips.extend(ctx.prompts.sequence(&prompts::digits(&plan.number))),
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
