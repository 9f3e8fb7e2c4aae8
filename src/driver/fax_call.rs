//! The fax application on the call loop: reception into a new file of the store, and
//! its one request — the fax is over — stored as a message through `services::fax`.

use super::call::CallCtx;
use super::call_loop::Performer;
use crate::ivr::fax::{FaxCall, FaxRequest};
use crate::services::fax::Received;
use crate::sip::endpoint::IncomingCall;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Fax reception for `mailbox`, ready for the call loop, and what stores the result.
pub async fn start(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    mailbox: &crate::store::Mailbox,
) -> anyhow::Result<(FaxCall, StoreFax)> {
    tracing::info!(mailbox = %mailbox.number, "fax reception");
    let number = mailbox.number.clone();
    let (rel, path) = ctx.messages.store.run(move |s| s.new_fax_file(&number)).await?;
    let fax = &ctx.cfg.fax;
    let app = FaxCall::receive(path, &fax.ident, fax.max_call_secs, fax.t38_reinvite.then_some(fax.t38_wait_secs))?;
    let store = StoreFax { ctx: ctx.clone(), mailbox: mailbox.number.clone(), caller: inc.caller.clone(), rel };
    Ok((app, store))
}

pub struct StoreFax {
    ctx: Arc<CallCtx>,
    mailbox: String,
    caller: Option<String>,
    rel: String,
}

impl Performer<FaxCall> for StoreFax {
    fn perform(&mut self, request: FaxRequest, replies: &mpsc::Sender<()>) {
        let FaxRequest::Finished(f) = request else { return };
        let r = Received {
            mailbox: self.mailbox.clone(),
            caller: self.caller.clone(),
            rel: self.rel.clone(),
            outcome: f.outcome,
            call_ms: f.frames as i64 * 20,
        };
        let (svc, hold) = (self.ctx.messages.clone(), replies.clone());
        // Holding a reply sender keeps the call task (and a shutdown) waiting until the
        // fax is stored.
        tokio::spawn(async move {
            if let Err(e) = svc.store_fax(r).await {
                tracing::error!(error = %format!("{e:#}"), "received fax not stored");
            }
            drop(hold);
        });
    }
}
