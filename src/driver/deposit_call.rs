//! The deposit application on the call loop: its greeting (recorded, or spoken), and
//! its requests — the recording written to disk while it is made, then saved durably
//! as a message through `services::messages`.

use super::call::{clip, CallCtx};
use super::call_loop::Performer;
use crate::ivr::deposit::{Deposit, DepositClips, DepositParams, DepositRequest, SaveRecording};
use crate::media::prompts::{self, Clip};
use crate::media::wav::WavStream;
use crate::services::deposit::Recorded;
use crate::sip::endpoint::IncomingCall;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The deposit for `mailbox`, ready for the call loop, and what performs its save;
/// `busy`: the caller was diverted on busy (the busy greeting).
pub async fn start(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    mailbox: &crate::store::Mailbox,
    busy: bool,
) -> (Deposit, SaveRecordings) {
    tracing::info!(mailbox = %mailbox.number, busy, "deposit");
    // The mailbox's language: its callers hear its words.
    let prompts = ctx.prompts_for(mailbox.language.as_deref());
    let greeting = greeting_clips(ctx, &prompts, mailbox, busy).await;
    let clips = DepositClips {
        greeting,
        beep: ctx.beep.clone(),
        saved: clip(&prompts, "vm-saved"),
        too_short: clip(&prompts, "vm-too-short"),
        transfer: clip(&prompts, "vm-transfer"),
    };
    let app = Deposit::new(DepositParams::from_config(&ctx.live().deposit), clips);
    let saver = SaveRecordings {
        ctx: ctx.clone(),
        mailbox: mailbox.number.clone(),
        caller: inc.caller.clone(),
        caller_name: inc.caller_name.clone(),
        writer: None,
    };
    (app, saver)
}

/// Writes a caller's recording to disk while it is made and saves it as a new message
/// of the mailbox (file fsynced, rows committed, the change announced), answering
/// whether that worked. One writer task per call keeps the writes in order.
pub struct SaveRecordings {
    ctx: Arc<CallCtx>,
    mailbox: String,
    caller: Option<String>,
    caller_name: Option<String>,
    writer: Option<mpsc::UnboundedSender<Write>>,
}

enum Write {
    Append(Vec<i16>),
    Save(SaveRecording, mpsc::Sender<bool>),
    Discard,
}

impl Performer<Deposit> for SaveRecordings {
    fn perform(&mut self, request: DepositRequest, replies: &mpsc::Sender<bool>) {
        let msg = match request {
            DepositRequest::Append(pcm) => Write::Append(pcm),
            DepositRequest::Save(s) => {
                tracing::info!(reason = ?s.reason, secs = s.samples as f64 / 8000.0, "recording stopped");
                Write::Save(s, replies.clone())
            }
            DepositRequest::Discard => {
                tracing::info!("recording discarded: shorter than [deposit] min_secs");
                Write::Discard
            }
        };
        let writer = self.writer.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let job = Job {
                ctx: self.ctx.clone(),
                mailbox: self.mailbox.clone(),
                caller: self.caller.clone(),
                caller_name: self.caller_name.clone(),
            };
            tokio::spawn(job.run(rx));
            tx
        });
        if let Err(e) = writer.send(msg) {
            // The writer is gone (it failed, or the recording was already saved).
            if let Write::Save(_, reply) = e.0 {
                tracing::error!("the recording's writer is gone; the message is not saved");
                tokio::spawn(async move { reply.send(false).await });
            }
        }
    }
}

/// One call's recording: created at its first audio, appended to in order, then
/// finished and committed — or thrown away (its temporary file removed).
struct Job {
    ctx: Arc<CallCtx>,
    mailbox: String,
    caller: Option<String>,
    caller_name: Option<String>,
}

impl Job {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Write>) {
        let mut file: Option<(String, WavStream)> = None;
        let mut failed = false;
        while let Some(msg) = rx.recv().await {
            match msg {
                Write::Append(pcm) => {
                    if !failed && !self.append(&mut file, pcm).await {
                        failed = true;
                    }
                }
                Write::Save(s, reply) => {
                    let ok = !failed && self.save(file.take(), s).await;
                    let _ = reply.send(ok).await;
                    return;
                }
                Write::Discard => return,
            }
        }
        // The call ended without a save (its task failed): the partial file goes with
        // `file` (dropping it removes the temporary file).
    }

    /// Appends `pcm`, creating the file first; false (logged) when the disk refused.
    async fn append(&self, file: &mut Option<(String, WavStream)>, pcm: Vec<i16>) -> bool {
        if file.is_none() {
            match self.ctx.messages.start_recording(&self.mailbox).await {
                Ok(f) => *file = Some(f),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot start the recording file");
                    return false;
                }
            }
        }
        let (rel, mut w) = file.take().expect("created above");
        let (w, r) = match tokio::task::spawn_blocking(move || {
            let r = w.append(&pcm);
            (w, r)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "recording writer task failed");
                return false;
            }
        };
        if let Err(e) = r {
            tracing::error!(error = %format!("{e:#}"), "writing the recording failed; it will not be saved");
            return false; // `w` dropped: its temporary file is removed
        }
        *file = Some((rel, w));
        true
    }

    async fn save(&self, mut file: Option<(String, WavStream)>, s: SaveRecording) -> bool {
        if !s.tail.is_empty() && !self.append(&mut file, s.tail).await {
            return false;
        }
        let Some((rel, w)) = file else {
            tracing::error!("no recording to save");
            return false;
        };
        let samples = s.samples as u64;
        let bytes = match tokio::task::spawn_blocking(move || w.finish(samples)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "saving the recording failed");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "recording writer task failed");
                return false;
            }
        };
        let recorded = Recorded { media_path: rel, bytes, duration_ms: (samples / 8) as i64 };
        let m = &self.ctx.messages;
        match m.deposit_recorded(&self.mailbox, self.caller.clone(), self.caller_name.clone(), recorded).await {
            Ok(id) => {
                tracing::info!(message = id, "message saved");
                self.ctx.totals.messages_saved.fetch_add(1, Ordering::Relaxed);
                crate::metrics::METRICS.deposits_saved.inc();
                true
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "saving the message failed");
                false
            }
        }
    }
}

/// The greeting for a deposit as clips: the first readable recording of the plan
/// ([`crate::services::calls::greeting_plan`]), else "The person at extension
/// <recorded name, or digits> is not available…".
async fn greeting_clips(
    ctx: &Arc<CallCtx>,
    prompts: &prompts::Prompts,
    mb: &crate::store::Mailbox,
    busy: bool,
) -> Vec<Arc<Clip>> {
    let plan = crate::services::calls::greeting_plan(mb, busy);
    for rel in &plan.recorded {
        if let Some(clip) = read_clip(ctx, rel).await {
            return vec![clip];
        }
    }
    let mut clips = prompts.sequence(&["vm-intro-person".to_string()]);
    let name = match plan.name.as_ref() {
        Some(rel) => read_clip(ctx, rel).await,
        None => None,
    };
    match name {
        Some(name) => clips.push(name),
        None => clips.extend(prompts.sequence(&crate::media::prompts::digits(&plan.number))),
    }
    clips.extend(prompts.sequence(&["vm-unavailable".to_string()]));
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
