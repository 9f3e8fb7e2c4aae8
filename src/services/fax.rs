//! A received fax made a message: the file spandsp wrote becomes a message of kind fax
//! in state U with its pages counted — durable before it is announced, delivered by
//! the outbox like a voice message. A fax that failed part way keeps the pages that
//! arrived; a call that brought no page leaves nothing behind.

use super::messages::Messages;
use crate::fax::spandsp::Outcome;
use crate::notify::Origin;
use crate::store::NewFaxMessage;
use anyhow::Result;

/// What reception left: where the file is and how T.30 ended (`None`: cut before).
pub struct Received {
    pub mailbox: String,
    pub caller: Option<String>,
    /// The file, below the store.
    pub rel: String,
    pub outcome: Option<Outcome>,
    pub call_ms: i64,
}

impl Messages {
    /// Stores a received fax; `None` when no page arrived (the file is removed). A
    /// file that cannot be read is an error and is left where it is.
    pub async fn store_fax(&self, r: Received) -> Result<Option<i64>> {
        let rel = r.rel.clone();
        let file = self.store.run(move |s| s.received_fax_file(&rel)).await?;
        let result = r.outcome.as_ref().map_or("call ended before T.30 did".to_string(), |o| {
            if o.ok() {
                "OK".to_string()
            } else {
                format!("{} (T.30 code {})", o.text, o.code)
            }
        });
        let Some((pages, media_bytes)) = file else {
            tracing::warn!(mailbox = %r.mailbox, result = %result, "fax call ended without a page; nothing stored");
            return Ok(None);
        };
        let ident = r.outcome.as_ref().map(|o| o.remote_ident.clone()).filter(|i| !i.is_empty());
        let domain = self.delivery.from_domain.clone();
        let m = NewFaxMessage {
            mailbox: r.mailbox.clone(),
            caller: r.caller.clone(),
            remote_ident: ident.clone(),
            received_at: crate::store::now_secs(),
            pages,
            duration_ms: r.call_ms,
            media_path: r.rel.clone(),
            media_bytes,
            message_id: crate::mail::compose::new_message_id(&domain),
            subject: crate::mail::compose::fax_subject(r.caller.as_deref(), ident.as_deref(), pages),
            result: result.clone(),
        };
        let id = self.store.run(move |s| s.insert_fax_message(&m)).await?;
        tracing::info!(mailbox = %r.mailbox, message = id, pages, result = %result, "fax received");
        self.changes.changed(&r.mailbox, Origin::Deposit);
        self.outbox_wake.notify_one();
        Ok(Some(id))
    }
}

/// Whether a fax call not answered with `status` is worth another attempt later: the
/// line was busy or nobody answered, or the far side was briefly unable — not a number
/// that does not exist, a call refused for good, or one our offer cannot serve.
pub fn worth_retrying(status: u16) -> bool {
    matches!(status, 408 | 480 | 486 | 500 | 503 | 504 | 600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_and_silence_are_retried_a_wrong_number_is_not() {
        for s in [486, 600, 408, 480, 503] {
            assert!(super::worth_retrying(s), "{s}");
        }
        for s in [404, 403, 484, 488, 603, 401] {
            assert!(!super::worth_retrying(s), "{s}");
        }
    }
}
