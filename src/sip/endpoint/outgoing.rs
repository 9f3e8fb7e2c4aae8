//! Calls voxbridge places (sending a fax, notification calls): the INVITE, its client
//! transaction ([`InviteClientTx`]), CANCEL of our own INVITE, the ACK of a 2xx (the
//! dialog's, a new branch) and of an error (the transaction's, the INVITE's branch),
//! and the dialog the 2xx makes (RFC 3261 §12.1.2, §13.2, §17.1.1, §9.1).

use super::{contact_uri, CallHandle, CallState, Cancel, Dialog, Endpoint, Event, OutgoingCall, Placed};
use crate::sip::invite_client::{InviteClientTx, InviteOutput};
use crate::sip::msg::{self, build_request, header_param, random_token};
use crate::sip::txn::{ClientTx, Peer};
use std::time::Instant;

impl Endpoint {
    /// Sends an INVITE for `out` and returns the call's handle. What follows comes as
    /// events: [`Event::Progress`], then [`Event::Answered`] or [`Event::Failed`];
    /// [`Endpoint::hangup`] cancels a call not answered yet and ends an answered one.
    pub fn place_call(&mut self, now: Instant, out: OutgoingCall) -> CallHandle {
        let handle = self.next_handle;
        self.next_handle += 1;
        let tag = random_token();
        let branch = format!("z9hG4bK{}", random_token());
        let call_id = format!("{}@{}", random_token(), self.cfg.local.ip());
        let cseq = rand::random::<u16>() as u32 + 1;
        let from = format!("<sip:{}@{}>", out.from_user, self.cfg.local);
        let to = format!("<{}>", out.target);
        // A sips: Request-URI wants a sips: Contact (RFC 3261 §8.1.1.8): TLS back to us too.
        let contact = match out.target.starts_with("sips:") {
            true => format!("<sips:voxbridge@{}>", self.cfg.local),
            false => self.contact(out.peer.transport),
        };
        let headers: Vec<(&str, String)> = vec![
            ("Via", out.peer.transport.via(self.cfg.local, &branch)),
            ("Max-Forwards", "70".into()),
            ("From", format!("{from};tag={tag}")),
            ("To", to.clone()),
            ("Call-ID", call_id.clone()),
            ("CSeq", format!("{cseq} INVITE")),
            ("Contact", contact),
            ("Allow", super::ALLOW.into()),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let invite = build_request("INVITE", &out.target, &headers, Some(("application/sdp", &out.offer)));
        let dialog = Dialog {
            call_id,
            local: format!("{from};tag={tag}"),
            remote: to.clone(),
            remote_target: out.target.clone(),
            route: Vec::new(),
            local_tag: tag,
        };
        let placed =
            Placed { request_uri: out.target, branch: branch.clone(), cseq, to, cancel: Cancel::No, ack: None };
        self.calls.insert(
            handle,
            super::Call {
                state: CallState::Early,
                peer: out.peer,
                dialog,
                local_cseq: cseq,
                incoming: None,
                placed: Some(placed),
                dialog_key: None,
                ok_retransmit: None,
                local_sdp: out.offer,
                reoffer: None,
                own_reinvite: None,
                queued_reinvite: None,
            },
        );
        self.invite_txs.insert(branch.clone(), (handle, InviteClientTx::new(now, out.peer, invite.clone())));
        self.dirty.push(super::TimerKey::Invite(branch));
        self.send(out.peer, invite);
        handle
    }

    /// Cancels a call we placed that is not answered yet: CANCEL now if a provisional
    /// answer came, else as soon as one comes; a 2xx that crosses it is ACKed and ended
    /// with BYE.
    pub(super) fn cancel(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(p) = c.placed.as_mut().filter(|p| p.cancel == Cancel::No) else { return };
        let ringing = self.invite_txs.get(&p.branch).is_some_and(|(_, tx)| tx.can_cancel());
        if ringing {
            self.send_cancel(now, call);
        } else {
            p.cancel = Cancel::Wanted;
        }
    }

    /// CANCEL (§9.1): the INVITE's Request-URI, Call-ID, From, To, CSeq number and
    /// branch, in a non-INVITE transaction of its own.
    fn send_cancel(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(p) = c.placed.as_mut() else { return };
        p.cancel = Cancel::Sent;
        let headers: Vec<(&str, String)> = vec![
            ("Via", c.peer.transport.via(self.cfg.local, &p.branch)),
            ("Max-Forwards", "70".into()),
            ("From", c.dialog.local.clone()),
            ("To", p.to.clone()),
            ("Call-ID", c.dialog.call_id.clone()),
            ("CSeq", format!("{} CANCEL", p.cseq)),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let bytes = build_request("CANCEL", &p.request_uri, &headers, None);
        let (peer, branch) = (c.peer, p.branch.clone());
        self.start_cancel(now, call, peer, &branch, bytes);
    }

    /// Sends a CANCEL of the INVITE with `branch` in a transaction of its own, keyed
    /// apart from the INVITE's (same branch: responses are told apart by method).
    pub(super) fn start_cancel(&mut self, now: Instant, call: CallHandle, peer: Peer, branch: &str, bytes: Vec<u8>) {
        let key = format!("{branch}/CANCEL");
        self.client_txs.insert(key.clone(), (call, "CANCEL", ClientTx::new(now, peer, bytes.clone())));
        self.dirty.push(super::TimerKey::Client(key));
        self.send(peer, bytes);
    }

    /// A response whose CSeq method is INVITE: to a call we placed, or stray.
    pub(super) fn invite_response(&mut self, now: Instant, r: msg::Response) {
        let Some(&(call, _)) = self.invite_txs.get(&r.branch) else {
            tracing::debug!(branch = %r.branch, status = r.status, "stray INVITE response dropped");
            return;
        };
        if self.is_own_reinvite(call, &r.branch) {
            self.reinvite_response(now, call, r);
            return;
        }
        // The ACK of an error (§17.1.1.3), built from the INVITE and this response's To.
        let error_ack = (r.status >= 300).then(|| self.error_ack(call, &r)).flatten();
        let (_, tx) = self.invite_txs.get_mut(&r.branch).expect("looked up above");
        let peer = tx.peer;
        let outputs = tx.handle_response(now, r.status, || error_ack.unwrap_or_default());
        self.dirty.push(super::TimerKey::Invite(r.branch.clone()));
        for out in outputs {
            match out {
                // Empty only when the call was gone before its error came: no ACK to send.
                InviteOutput::Transmit(bytes) if bytes.is_empty() => {}
                InviteOutput::Transmit(bytes) => self.send(peer, bytes),
                InviteOutput::Provisional(status) => {
                    let wanted = self.calls.get(&call).and_then(|c| c.placed.as_ref()).map(|p| p.cancel);
                    if wanted == Some(Cancel::Wanted) {
                        self.send_cancel(now, call);
                    }
                    self.events.push_back(Event::Progress { call, status });
                }
                InviteOutput::Answered(_) => self.answered(now, call, &r),
                InviteOutput::Failed(status) => {
                    if self.end_call(now, call) {
                        let reason = r.raw.start_line.splitn(3, ' ').nth(2).unwrap_or("").to_string();
                        self.events.push_back(Event::Failed { call, status, reason });
                    }
                }
                InviteOutput::TimedOut => {}
            }
        }
    }

    fn error_ack(&self, call: CallHandle, r: &msg::Response) -> Option<Vec<u8>> {
        let c = self.calls.get(&call)?;
        let p = c.placed.as_ref()?;
        let headers: Vec<(&str, String)> = vec![
            ("Via", c.peer.transport.via(self.cfg.local, &p.branch)),
            ("Max-Forwards", "70".into()),
            ("From", c.dialog.local.clone()),
            ("To", r.raw.header("To").unwrap_or(&p.to).to_string()),
            ("Call-ID", c.dialog.call_id.clone()),
            ("CSeq", format!("{} ACK", p.cseq)),
        ];
        Some(build_request("ACK", &p.request_uri, &headers, None))
    }

    /// A 2xx: the first makes the dialog and is ACKed (or, after our CANCEL, ACKed and
    /// ended with BYE); each retransmission gets the same ACK again (§13.2.2.4).
    fn answered(&mut self, now: Instant, call: CallHandle, r: &msg::Response) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(p) = c.placed.as_mut() else { return };
        if let Some(ack) = &p.ack {
            let (peer, ack) = (c.peer, ack.clone());
            self.send(peer, ack);
            return;
        }
        let to = r.raw.header("To").unwrap_or(&p.to).to_string();
        let remote_tag = header_param(&to, "tag").unwrap_or_default().to_string();
        c.dialog.remote = to;
        if let Some(contact) = r.raw.header("Contact") {
            c.dialog.remote_target = contact_uri(contact);
        }
        // The UAC's route is the 2xx's Record-Route in reverse (§12.1.2).
        let mut route: Vec<String> = r.raw.headers_named("Record-Route").map(str::to_string).collect();
        route.reverse();
        c.dialog.route = route;
        c.state = CallState::Confirmed;
        let branch = format!("z9hG4bK{}", random_token());
        let mut headers: Vec<(&str, String)> = vec![
            ("Via", c.peer.transport.via(self.cfg.local, &branch)),
            ("Max-Forwards", "70".into()),
            ("From", c.dialog.local.clone()),
            ("To", c.dialog.remote.clone()),
            ("Call-ID", c.dialog.call_id.clone()),
            ("CSeq", format!("{} ACK", p.cseq)),
        ];
        headers.extend(c.dialog.route.iter().map(|r| ("Route", r.clone())));
        let ack = build_request("ACK", &c.dialog.remote_target, &headers, None);
        p.ack = Some(ack.clone());
        let cancelled = p.cancel != Cancel::No;
        let peer = c.peer;
        let key = (c.dialog.call_id.clone(), remote_tag);
        c.dialog_key = Some(key.clone());
        self.dialogs.insert(key, call);
        self.send(peer, ack);
        if cancelled {
            // The 2xx crossed our CANCEL: the call exists now, so it is ended (§9.1).
            tracing::info!(call, "answered after CANCEL; hanging up");
            self.hangup(now, call);
        } else {
            self.events.push_back(Event::Answered { call, answer: r.raw.body.clone() });
        }
    }

    /// A timer of one of our INVITEs: a retransmission, or Timer B (no answer at all).
    pub(super) fn invite_timeout(&mut self, now: Instant, branch: &str) {
        let Some((call, tx)) = self.invite_txs.get_mut(branch) else { return };
        let call = *call;
        match tx.handle_timeout(now) {
            Some(InviteOutput::Transmit(bytes)) => {
                let peer = tx.peer;
                self.send(peer, bytes);
            }
            Some(InviteOutput::TimedOut) if self.is_own_reinvite(call, branch) => self.reinvite_timed_out(call),
            Some(InviteOutput::TimedOut) if self.end_call(now, call) => {
                self.events.push_back(Event::Failed { call, status: 408, reason: "no answer (Timer B)".into() });
            }
            _ => {}
        }
    }
}
