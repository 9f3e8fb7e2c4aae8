//! Our own re-INVITE inside a call (RFC 3261 §14.1): a new offer to the far end (T.38
//! after a fax tone), its INVITE client transaction, the ACK of its 2xx (the dialog's,
//! a new branch) or of its error (the transaction's), and CANCEL when the application
//! stops waiting. The call goes on whatever the answer; only the application hears it
//! ([`Event::ReinviteAnswered`], [`Event::ReinviteFailed`]).

use super::{dialog_headers, CallHandle, CallState, Cancel, Endpoint, Event, TimerKey};
use crate::sip::invite_client::{InviteClientTx, InviteOutput};
use crate::sip::msg::{self, build_request, random_token};
use std::time::Instant;

/// Our re-INVITE of a call: in progress until its final answer.
#[derive(Debug)]
pub(super) struct OwnReinvite {
    branch: String,
    cseq: u32,
    cancel: Cancel,
    /// The ACK of its 2xx, sent again for each retransmission of it.
    ack: Option<Vec<u8>>,
    done: bool,
}

impl OwnReinvite {
    pub(super) fn pending(&self) -> bool {
        !self.done
    }
}

impl Endpoint {
    /// Sends a re-INVITE with `offer` in an established call; while our 2xx still waits
    /// for its ACK (an application that offers at once), it goes when the ACK comes.
    /// False (nothing sent) when the call is not answered or an offer is already in
    /// progress either way (§14.1: one at a time; the far end would answer 491).
    pub fn reinvite(&mut self, now: Instant, call: CallHandle, offer: &[u8]) -> bool {
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let awaiting_ack =
            c.state == CallState::Answered || (c.state == CallState::Confirmed && c.ok_retransmit.is_some());
        if awaiting_ack && c.reoffer.is_none() && c.queued_reinvite.is_none() {
            c.queued_reinvite = Some(offer.to_vec());
            return true;
        }
        self.send_reinvite(now, call, offer)
    }

    /// The held offer, now that the ACK came; the application hears 491 if it cannot go.
    pub(super) fn send_queued_reinvite(&mut self, now: Instant, call: CallHandle, offer: &[u8]) {
        if !self.send_reinvite(now, call, offer) {
            self.events.push_back(Event::ReinviteFailed { call, status: 491 });
        }
    }

    fn send_reinvite(&mut self, now: Instant, call: CallHandle, offer: &[u8]) -> bool {
        let Some(transport) = self.calls.get(&call).map(|c| c.peer.transport) else { return false };
        let contact = self.contact(transport);
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let busy =
            c.reoffer.is_some() || c.ok_retransmit.is_some() || c.own_reinvite.as_ref().is_some_and(|o| o.pending());
        if c.state != CallState::Confirmed || busy {
            return false;
        }
        c.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let mut headers = dialog_headers(self.cfg.local, c, &branch, c.local_cseq, "INVITE");
        headers.extend([
            ("Contact", contact),
            ("Allow", super::ALLOW.into()),
            ("User-Agent", self.cfg.user_agent.clone()),
        ]);
        let invite = build_request("INVITE", &c.dialog.remote_target, &headers, Some(("application/sdp", offer)));
        let peer = c.peer;
        c.own_reinvite = Some(OwnReinvite {
            branch: branch.clone(),
            cseq: c.local_cseq,
            cancel: Cancel::No,
            ack: None,
            done: false,
        });
        self.invite_txs.insert(branch.clone(), (call, InviteClientTx::new(now, peer, invite.clone())));
        self.dirty.push(TimerKey::Invite(branch));
        self.send(peer, invite);
        true
    }

    /// The application stopped waiting for the answer to our re-INVITE: CANCEL it now
    /// if the far end said it is working on it, else as soon as it does. A 2xx that
    /// crosses the CANCEL still comes as [`Event::ReinviteAnswered`] (the far end has
    /// changed its media then).
    pub fn cancel_reinvite(&mut self, now: Instant, call: CallHandle) {
        let Some(o) = self.calls.get_mut(&call).and_then(|c| c.own_reinvite.as_mut()) else { return };
        if !o.pending() || o.cancel != Cancel::No {
            return;
        }
        // A CANCEL may go only once a provisional answer came (§9.1).
        if self.invite_txs.get(&o.branch).is_some_and(|(_, tx)| tx.can_cancel()) {
            self.send_reinvite_cancel(now, call);
        } else {
            o.cancel = Cancel::Wanted;
        }
    }

    fn send_reinvite_cancel(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(o) = c.own_reinvite.as_mut() else { return };
        o.cancel = Cancel::Sent;
        let (branch, cseq) = (o.branch.clone(), o.cseq);
        // The INVITE's branch, CSeq number and route (§9.1).
        let mut headers = dialog_headers(self.cfg.local, c, &branch, cseq, "CANCEL");
        headers.push(("User-Agent", self.cfg.user_agent.clone()));
        let bytes = build_request("CANCEL", &c.dialog.remote_target, &headers, None);
        let peer = c.peer;
        self.start_cancel(now, call, peer, &branch, bytes);
    }

    /// Whether `branch` is the re-INVITE of `call`.
    pub(super) fn is_own_reinvite(&self, call: CallHandle, branch: &str) -> bool {
        self.calls.get(&call).and_then(|c| c.own_reinvite.as_ref()).is_some_and(|o| o.branch == branch)
    }

    /// A response to our re-INVITE.
    pub(super) fn reinvite_response(&mut self, now: Instant, call: CallHandle, r: msg::Response) {
        let error_ack = (r.status >= 300).then(|| self.reinvite_error_ack(call, &r)).flatten();
        let Some((_, tx)) = self.invite_txs.get_mut(&r.branch) else { return };
        let peer = tx.peer;
        let outputs = tx.handle_response(now, r.status, || error_ack.unwrap_or_default());
        self.dirty.push(TimerKey::Invite(r.branch.clone()));
        for out in outputs {
            match out {
                InviteOutput::Transmit(bytes) if bytes.is_empty() => {}
                InviteOutput::Transmit(bytes) => self.send(peer, bytes),
                InviteOutput::Provisional(_) => {
                    let wanted = self.calls.get(&call).and_then(|c| c.own_reinvite.as_ref()).map(|o| o.cancel);
                    if wanted == Some(Cancel::Wanted) {
                        self.send_reinvite_cancel(now, call);
                    }
                }
                InviteOutput::Answered(_) => self.reinvite_answered(call, &r),
                InviteOutput::Failed(status) => self.reinvite_failed(call, status),
                InviteOutput::TimedOut => {}
            }
        }
    }

    /// Timer B on our re-INVITE: no answer at all. The call goes on.
    pub(super) fn reinvite_timed_out(&mut self, call: CallHandle) {
        self.reinvite_failed(call, 408);
    }

    fn reinvite_failed(&mut self, call: CallHandle, status: u16) {
        let Some(o) = self.calls.get_mut(&call).and_then(|c| c.own_reinvite.as_mut()) else { return };
        if o.done {
            return;
        }
        o.done = true;
        self.events.push_back(Event::ReinviteFailed { call, status });
    }

    fn reinvite_answered(&mut self, call: CallHandle, r: &msg::Response) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(o) = c.own_reinvite.as_mut() else { return };
        if let Some(ack) = &o.ack {
            let (peer, ack) = (c.peer, ack.clone());
            self.send(peer, ack);
            return;
        }
        let branch = format!("z9hG4bK{}", random_token());
        let cseq = o.cseq;
        let headers = dialog_headers(self.cfg.local, c, &branch, cseq, "ACK");
        let ack = build_request("ACK", &c.dialog.remote_target, &headers, None);
        let Some(o) = c.own_reinvite.as_mut() else { return };
        o.ack = Some(ack.clone());
        o.done = true;
        let peer = c.peer;
        self.send(peer, ack);
        self.events.push_back(Event::ReinviteAnswered { call, answer: r.raw.body.clone() });
    }

    /// The ACK of an error to our re-INVITE (§17.1.1.3): its Request-URI, Call-ID, From,
    /// CSeq number and branch, the response's To.
    fn reinvite_error_ack(&self, call: CallHandle, r: &msg::Response) -> Option<Vec<u8>> {
        let c = self.calls.get(&call)?;
        let o = c.own_reinvite.as_ref()?;
        let mut headers = dialog_headers(self.cfg.local, c, &o.branch, o.cseq, "ACK");
        if let (Some(to), Some(h)) = (r.raw.header("To"), headers.iter_mut().find(|h| h.0 == "To")) {
            h.1 = to.to_string();
        }
        Some(build_request("ACK", &c.dialog.remote_target, &headers, None))
    }
}
