//! The deposit application on the call loop: its greeting (recorded, or spoken), and
//! its one request — save the recording durably, through `services::messages`.

use super::call::{clip, CallCtx};
use super::call_loop::Performer;
use crate::ivr::deposit::{Deposit, DepositClips, DepositParams, SaveRecording};
use crate::media::prompts::{self, Clip};
use crate::sip::endpoint::IncomingCall;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The deposit for `mailbox`, ready for the call loop, and what performs its save.
pub async fn start(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    mailbox: &crate::store::Mailbox,
) -> (Deposit, SaveRecordings) {
    tracing::info!(mailbox = %mailbox.number, "deposit");
    let greeting = greeting_clips(ctx, mailbox, inc.busy).await;
    let clips = DepositClips {
        greeting,
        beep: ctx.beep.clone(),
        saved: clip(&ctx.prompts, "vm-saved"),
        too_short: clip(&ctx.prompts, "vm-too-short"),
        transfer: clip(&ctx.prompts, "vm-transfer"),
    };
    let app = Deposit::new(DepositParams::from_config(&ctx.cfg.deposit), clips);
    let saver = SaveRecordings {
        ctx: ctx.clone(),
        mailbox: mailbox.number.clone(),
        caller: inc.caller.clone(),
        caller_name: inc.caller_name.clone(),
    };
    (app, saver)
}

/// Saves a caller's recording as a new message of the mailbox (file fsynced, rows
/// committed, the change announced) and answers whether it worked.
pub struct SaveRecordings {
    ctx: Arc<CallCtx>,
    mailbox: String,
    caller: Option<String>,
    caller_name: Option<String>,
}

impl Performer<Deposit> for SaveRecordings {
    fn perform(&mut self, SaveRecording { pcm, reason }: SaveRecording, replies: &mpsc::Sender<bool>) {
        tracing::info!(?reason, secs = pcm.len() as f64 / 8000.0, "recording stopped");
        let (ctx, tx, caller, name, mb) =
            (self.ctx.clone(), replies.clone(), self.caller.clone(), self.caller_name.clone(), self.mailbox.clone());
        tokio::spawn(async move {
            let ok = match ctx.messages.deposit(&mb, caller, name, pcm).await {
                Ok(id) => {
                    tracing::info!(message = id, "message saved");
                    ctx.totals.messages_saved.fetch_add(1, Ordering::Relaxed);
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
