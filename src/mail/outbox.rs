//! The outbox: deliveries waiting for a mail server, retried with exponential backoff.
//!
//! A row leaves the pending set only when the server has the message. Failures are
//! recorded with their reason and the next attempt time, so `voxbridge messages list`
//! shows why a message is still pending. The worker wakes when a new message is
//! committed, when the next retry is due, and every `scan_secs` (for rows the CLI or
//! another process added).

use super::account::{Account, Scheme};
use super::compose::{voice_message, VoiceMail};
use super::deliver;
use crate::config::DeliveryConfig;
use crate::store::{now_millis, OutboxItem, Store};
use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Deliveries performed at the same time.
const PARALLEL: usize = 8;

/// Backoff before attempt `attempts + 1`: initial × 2^attempts, capped.
pub fn backoff(cfg: &DeliveryConfig, attempts: i64) -> Duration {
    let secs = cfg.retry_initial_secs * 2f64.powi(attempts.clamp(0, 30) as i32);
    Duration::from_secs_f64(secs.min(cfg.retry_max_secs))
}

/// Composes the message for an outbox item from the store row and its file (the
/// recording, or a fax's TIFF).
pub fn compose(store: &Store, item: &OutboxItem, domain: &str) -> Result<Vec<u8>> {
    let m = &item.message;
    let path = store.root().join(m.media_path.as_deref().ok_or_else(|| anyhow!("message {} has no media file", m.id))?);
    let media = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if m.kind == crate::model::MessageKind::Fax {
        // The PDF is made from the TIFF each time (deterministic: a retry sends the
        // same bytes); a TIFF it cannot read goes without one.
        let pdf = crate::fax::pdf::from_tiff(&media)
            .map_err(|e| tracing::warn!(message = m.id, error = %format!("{e:#}"), "fax sent without a PDF"))
            .ok();
        return Ok(super::compose::fax_message(&super::compose::FaxMail {
            message_id: &m.message_id,
            mailbox: &item.mailbox.number,
            mailbox_name: item.mailbox.name.as_deref(),
            to_addr: item.mailbox.email.as_deref(),
            caller: m.caller.as_deref(),
            remote_ident: m.caller_name.as_deref(),
            received_at: m.received_at,
            pages: m.pages.unwrap_or(0),
            domain,
            tiff: &media,
            pdf: pdf.as_deref(),
            incomplete: m.fax_result.as_deref().filter(|r| *r != "OK"),
        }));
    }
    let wav = media;
    Ok(voice_message(&VoiceMail {
        message_id: &m.message_id,
        mailbox: &item.mailbox.number,
        mailbox_name: item.mailbox.name.as_deref(),
        to_addr: item.mailbox.email.as_deref(),
        caller: m.caller.as_deref(),
        caller_name: m.caller_name.as_deref(),
        received_at: m.received_at,
        duration_ms: m.duration_ms.unwrap_or(0),
        domain,
        wav: &wav,
    }))
}

/// Performs one delivery; returns the (UIDVALIDITY, UID) for IMAP.
pub async fn deliver(store: &Store, item: &OutboxItem, domain: &str) -> Result<Option<(u32, u32)>> {
    let bytes = {
        let (s, i, d) = (store.clone(), item.clone(), domain.to_string());
        tokio::task::spawn_blocking(move || compose(&s, &i, &d)).await??
    };
    match item.target.as_str() {
        "imap" => {
            let url = item.mailbox.imap_url.as_deref().ok_or_else(|| anyhow!("mailbox has no IMAP URL any more"))?;
            let acct = Account::parse(url, &[Scheme::Imap, Scheme::Imaps])?;
            Ok(Some(deliver::imap_append(&acct, &item.message.message_id, &bytes, item.attempts > 0).await?))
        }
        "smtp" => {
            let url = item.mailbox.smtp_url.as_deref().ok_or_else(|| anyhow!("mailbox has no SMTP URL any more"))?;
            let acct = Account::parse(url, &[Scheme::Smtp, Scheme::Smtps])?;
            let to = item.mailbox.email.as_deref().ok_or_else(|| anyhow!("mailbox has no e-mail address"))?;
            deliver::smtp_send(&acct, &format!("voicemail@{domain}"), &[to], &bytes).await?;
            Ok(None)
        }
        other => Err(anyhow!("unknown delivery target {other:?}")),
    }
}

pub struct Outbox {
    pub store: Store,
    pub cfg: DeliveryConfig,
    pub wake: Arc<Notify>,
    /// Where each delivery is announced (the sync engine then merges the new copy).
    pub changes: crate::notify::Hub,
}

impl Outbox {
    /// Runs until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::error!(error = %format!("{e:#}"), "outbox pass failed");
            }
            let next = self
                .store
                .run(|s| {
                    let a = s.outbox_next_due()?;
                    let b = s.outgoing_next_due()?;
                    Ok(a.into_iter().chain(b).min())
                })
                .await
                .ok()
                .flatten();
            let mut wait = Duration::from_secs_f64(self.cfg.scan_secs);
            if let Some(due) = next {
                wait = wait.min(Duration::from_millis((due - now_millis()).max(0) as u64));
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers everything that is due now.
    pub async fn pass(&self) -> Result<usize> {
        let mut done = 0;
        let replies = self.store.run(|s| s.outgoing_due(now_millis(), 64)).await?;
        for r in replies {
            self.send_reply(r).await;
            done += 1;
        }
        loop {
            let due = self.store.run(|s| s.outbox_due(now_millis(), 64)).await?;
            if due.is_empty() {
                return Ok(done);
            }
            let n = due.len();
            futures::stream::iter(due)
                .for_each_concurrent(PARALLEL, |item| async move { self.attempt(item).await })
                .await;
            done += n;
        }
    }

    async fn attempt(&self, item: OutboxItem) {
        let id = item.id;
        let msg = item.message.id;
        match deliver(&self.store, &item, &self.cfg.from_domain).await {
            Ok(uid) => {
                crate::metrics::METRICS.deliveries.get_or_create(&crate::metrics::label("result", "ok")).inc();
                tracing::info!(message = msg, target = %item.target, uid = ?uid.map(|u| u.1), mailbox = %item.mailbox.number, "delivered");
                if let Err(e) = self.store.run(move |s| s.outbox_delivered(id, uid)).await {
                    tracing::error!(error = %e, "cannot record delivery");
                }
                self.changes.changed(&item.mailbox.number, crate::notify::Origin::Delivery);
            }
            Err(e) => {
                crate::metrics::METRICS.deliveries.get_or_create(&crate::metrics::label("result", "failed")).inc();
                let wait = backoff(&self.cfg, item.attempts);
                let reason = format!("{e:#}");
                tracing::warn!(message = msg, target = %item.target, mailbox = %item.mailbox.number, attempt = item.attempts + 1,
                    retry_in_secs = wait.as_secs_f64(), error = %reason, "delivery failed, will retry");
                let next = now_millis() + wait.as_millis() as i64;
                if let Err(e) = self.store.run(move |s| s.outbox_failed(id, &reason, next)).await {
                    tracing::error!(error = %e, "cannot record delivery failure");
                }
            }
        }
    }
}

impl Outbox {
    async fn send_reply(&self, o: crate::store::outgoing::Outgoing) {
        let id = o.id;
        match send_reply(&self.store, &self.cfg, &o).await {
            Ok(()) => {
                tracing::info!(mailbox = %o.reply.mailbox, rcpt = %o.reply.rcpt, message_id = %o.reply.message_id, "voice reply sent");
                if let Err(e) = self.store.run(move |s| s.outgoing_sent(id)).await {
                    tracing::error!(error = %e, "cannot record a sent reply");
                }
            }
            Err(e) => {
                let wait = backoff(&self.cfg, o.attempts);
                let reason = format!("{e:#}");
                tracing::warn!(mailbox = %o.reply.mailbox, rcpt = %o.reply.rcpt, attempt = o.attempts + 1,
                    retry_in_secs = wait.as_secs_f64(), error = %reason, "voice reply not sent, will retry");
                let next = now_millis() + wait.as_millis() as i64;
                if let Err(e) = self.store.run(move |s| s.outgoing_failed(id, &reason, next)).await {
                    tracing::error!(error = %e, "cannot record a reply failure");
                }
            }
        }
    }
}

/// The SMTP server a mailbox's replies go through: its own, else `[delivery] smtp_url`.
pub fn reply_server(mailbox: &crate::store::Mailbox, cfg: &DeliveryConfig) -> Option<String> {
    mailbox.smtp_url.clone().or_else(|| cfg.smtp_url.clone())
}

async fn send_reply(store: &Store, cfg: &DeliveryConfig, o: &crate::store::outgoing::Outgoing) -> Result<()> {
    let r = &o.reply;
    let mb = {
        let n = r.mailbox.clone();
        store.run(move |s| s.mailbox(&n)).await?.ok_or_else(|| anyhow!("mailbox {} is gone", r.mailbox))?
    };
    let url = reply_server(&mb, cfg).ok_or_else(|| anyhow!("no SMTP server for replies ([delivery] smtp_url)"))?;
    let acct = Account::parse(&url, &[Scheme::Smtp, Scheme::Smtps])?;
    let wav = {
        let path = store.root().join(&r.media_path);
        tokio::fs::read(&path).await.with_context(|| format!("cannot read {}", path.display()))?
    };
    let from_addr = mb.email.clone().unwrap_or_else(|| format!("{}@{}", r.mailbox, cfg.from_domain));
    let bytes = super::compose::voice_reply(&super::compose::VoiceReply {
        message_id: &r.message_id,
        mailbox: &r.mailbox,
        mailbox_name: mb.name.as_deref(),
        from_addr: &from_addr,
        rcpt: &r.rcpt,
        cc: &r.cc,
        subject: &r.subject,
        in_reply_to: r.in_reply_to.as_deref(),
        date: o.created_at,
        duration_ms: r.duration_ms,
        wav: &wav,
    });
    let to: Vec<&str> = std::iter::once(r.rcpt.as_str()).chain(r.cc.iter().map(String::as_str)).collect();
    deliver::smtp_send(&acct, &from_addr, &to, &bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = DeliveryConfig { retry_initial_secs: 1.0, retry_max_secs: 10.0, ..Default::default() };
        let s: Vec<u64> = (0..6).map(|a| backoff(&cfg, a).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 10, 10]);
    }
}
