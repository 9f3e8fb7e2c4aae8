//! The messages the driver's tasks send each other, in one place: what a call task asks
//! of the SIP task and hears from it, what the message-waiting task is told, and the
//! handle that asks the sync task for a pass.

use crate::sip::endpoint::{CallHandle, ReofferAnswer};
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// What a call task asks of the SIP layer.
#[derive(Debug)]
pub enum SipCommand {
    Ringing(CallHandle),
    Answer(CallHandle, Vec<u8>),
    Reject(CallHandle, u16, String),
    Hangup(CallHandle),
    /// Blind transfer to a SIP URI (REFER), then hang up.
    Transfer(CallHandle, String),
    /// The application's answer to a re-INVITE ([`CallEvent::Reoffer`]).
    AnswerReoffer(CallHandle, ReofferAnswer),
    /// Our re-INVITE with this offer; the answer comes as [`CallEvent::ReinviteAnswer`].
    Reinvite(CallHandle, Vec<u8>),
    /// CANCEL our re-INVITE.
    CancelReinvite(CallHandle),
    /// Message-waiting state to a subscriber (RFC 3842 body).
    Notify(CallHandle, String),
    /// Unsolicited message-waiting state to a configured phone.
    NotifyPhone {
        uri: String,
        addr: SocketAddr,
        /// Reached over TLS only: over its own connection that allows reuse, or not at all.
        tls: bool,
        body: String,
    },
    /// The mailboxes' SIP digest secrets changed (`voxbridge mailbox set --sip-password-file`).
    Credentials(std::collections::HashMap<String, crate::sip::digest::Ha1>),
}

/// What the SIP layer tells a call task.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// The ACK arrived, with its body (the SDP answer of a delayed-offer call).
    Confirmed(Vec<u8>),
    /// A re-INVITE with this offer: answer with [`SipCommand::AnswerReoffer`].
    Reoffer(Vec<u8>),
    /// The answer to our re-INVITE: its SDP, or the status it was refused with (491
    /// when it could not be sent: an offer in progress).
    ReinviteAnswer(Result<Vec<u8>, u16>),
    /// The caller is gone (BYE, CANCEL, or a SIP timeout), with the reason.
    Gone(String),
    /// The server is shutting down: finish (save what was recorded) and hang up.
    Shutdown,
}

/// What the SMDI link task is told.
#[derive(Debug)]
pub enum SmdiCommand {
    /// A call waits up to `wait` for its call detail (`None`: none came).
    Arrive {
        call: CallHandle,
        terminal: Option<String>,
        calling: Option<String>,
        wait: std::time::Duration,
        reply: tokio::sync::oneshot::Sender<Option<crate::smdi::codec::CallDetail>>,
    },
    /// The mailbox's messages may have changed: its lamp is checked.
    Changed(String),
    /// The link's state for `voxbridge status`, as `smdi status --json` shows it.
    Status(tokio::sync::oneshot::Sender<serde_json::Value>),
}

/// What the MWI task is told.
#[derive(Debug)]
pub enum MwiEvent {
    Subscribed {
        sub: CallHandle,
        mailbox: String,
    },
    /// The phone unsubscribed: one last NOTIFY.
    Ending(CallHandle),
    Unsubscribed(CallHandle),
    /// The mailbox's messages may have changed.
    Changed(String),
}

/// A cheap handle for "this mailbox may have changed".
#[derive(Clone, Debug)]
pub struct MwiPoke(mpsc::UnboundedSender<MwiEvent>);

impl MwiPoke {
    pub fn channel() -> (MwiPoke, mpsc::UnboundedReceiver<MwiEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (MwiPoke(tx), rx)
    }

    pub fn changed(&self, mailbox: &str) {
        let _ = self.0.send(MwiEvent::Changed(mailbox.to_string()));
    }

    pub fn send(&self, ev: MwiEvent) {
        let _ = self.0.send(ev);
    }
}

/// A cheap handle to ask for a sync of one mailbox (after a deposit, a change by phone).
#[derive(Clone, Debug)]
pub struct SyncTrigger(mpsc::UnboundedSender<String>);

impl SyncTrigger {
    pub fn channel() -> (SyncTrigger, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SyncTrigger(tx), rx)
    }

    pub fn trigger(&self, mailbox: &str) {
        let _ = self.0.send(mailbox.to_string());
    }
}
