//! Re-INVITEs inside an established call (RFC 3261 §14): an offer goes to the
//! application, which accepts it with an answer or refuses it (488, the call goes on as
//! it was); a re-INVITE without an offer (a session refresh) is answered here with the
//! last description we gave.

use super::{CallHandle, CallState, Endpoint, Event, OkRetransmit, PendingReoffer, ReofferAnswer, ALLOW};
use crate::sip::msg::{self, build_response};
use crate::sip::txn::TxKey;
use std::time::Instant;

impl Endpoint {
    pub(super) fn handle_reinvite(
        &mut self,
        now: Instant,
        key: TxKey,
        r: msg::Request,
        call: CallHandle,
        to_tag: String,
    ) {
        let Some(c) = self.calls.get(&call) else { return };
        if c.reoffer.is_some() {
            // §14.2: a second INVITE while the first is unanswered: 500 with Retry-After.
            let retry = [("Retry-After", "1".to_string())];
            self.respond(now, &key, &r.raw, 500, "Server Internal Error", &to_tag, &retry, None);
            return;
        }
        if c.state != CallState::Confirmed
            || c.ok_retransmit.is_some()
            || c.own_reinvite.as_ref().is_some_and(|o| o.pending())
        {
            // Our own 2xx is still waiting for its ACK (or we are hanging up), or our
            // own re-INVITE is unanswered (glare): the offer/answer exchange in progress
            // is not over (RFC 3261 §14.2, RFC 6337 §3.3).
            self.respond(now, &key, &r.raw, 491, "Request Pending", &to_tag, &[], None);
            return;
        }
        if r.raw.body.iter().all(u8::is_ascii_whitespace) {
            // No offer: ours goes in the 2xx (our last description), the answer in the
            // ACK. Nothing for the application — the session does not change.
            let sdp = c.local_sdp.clone();
            if sdp.is_empty() {
                self.respond(now, &key, &r.raw, 491, "Request Pending", &to_tag, &[], None);
            } else {
                self.accept_reinvite(now, call, key, &r.raw, r.cseq, &sdp);
            }
            return;
        }
        self.respond(now, &key, &r.raw, 100, "Trying", &to_tag, &[], None);
        let offer = r.raw.body.clone();
        let c = self.calls.get_mut(&call).expect("looked up above");
        c.reoffer = Some(PendingReoffer { key, request: r.raw, cseq: r.cseq });
        self.events.push_back(Event::Reoffer { call, offer });
    }

    /// The application's answer to [`Event::Reoffer`]. Ignored when the call is gone or
    /// has no re-INVITE waiting.
    pub fn answer_reoffer(&mut self, now: Instant, call: CallHandle, answer: ReofferAnswer) {
        let Some(pending) = self.calls.get_mut(&call).and_then(|c| c.reoffer.take()) else { return };
        let PendingReoffer { key, request, cseq } = pending;
        match answer {
            ReofferAnswer::Accept(sdp) => self.accept_reinvite(now, call, key, &request, cseq, &sdp),
            ReofferAnswer::Refuse(code, reason) => {
                let tag = self.calls[&call].dialog.local_tag.clone();
                self.respond(now, &key, &request, code, &reason, &tag, &[], None);
            }
        }
    }

    /// 200 OK to a re-INVITE with `sdp`, retransmitted until its ACK like any 2xx.
    fn accept_reinvite(
        &mut self,
        now: Instant,
        call: CallHandle,
        key: TxKey,
        request: &msg::RawMessage,
        cseq: u32,
        sdp: &[u8],
    ) {
        let Some(c) = self.calls.get(&call) else { return };
        let peer = c.peer;
        let extra = [
            ("Contact", self.contact(peer.transport)),
            ("Allow", ALLOW.to_string()),
            ("Server", self.cfg.user_agent.clone()),
        ];
        let tag = c.dialog.local_tag.clone();
        let bytes = build_response(request, 200, "OK", Some(&tag), &extra, Some(("application/sdp", sdp)));
        if let Some(tx) = self.server_txs.get_mut(&key) {
            if tx.send_response(now, 200, bytes.clone()) {
                self.send(peer, bytes.clone());
            }
        }
        let c = self.calls.get_mut(&call).expect("looked up above");
        c.local_sdp = sdp.to_vec();
        c.ok_retransmit = Some(OkRetransmit::new(now, peer, bytes, cseq));
        self.dirty.extend([super::TimerKey::Server(key), super::TimerKey::Ok(call)]);
    }
}
