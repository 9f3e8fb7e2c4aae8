//! The SIP user-agent core: transaction matching, dialogs, and the application API,
//! all sans-IO.
//!
//! Run loop (the driver in `driver/sip_io.rs` does exactly this):
//! 1. feed every received message with [`Endpoint::handle_input`], every application
//!    decision with [`Endpoint::answer`] / [`Endpoint::reject`] / [`Endpoint::hangup`];
//! 2. drain [`Endpoint::poll_transmit`] to the sockets and [`Endpoint::poll_event`] to the
//!    applications;
//! 3. sleep until [`Endpoint::poll_timeout`] and call [`Endpoint::handle_timeout`].
//!
//! The endpoint never reads the clock and never touches a socket.

use super::msg::{self, build_request, build_response, header_param, random_token, Message, Request};
use super::subscriptions::{unsolicited_notify, Subscribe, Subscriptions};
use super::txn::{ClientOutput, ClientTx, Peer, ServerTx, Transport, TxKey, T1, T2};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE, NOTIFY";

/// Opaque handle of one call (one INVITE dialog) for the applications.
pub type CallHandle = u64;

/// A message to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Vec<u8>,
}

/// A new INVITE the application must answer, reject, or leave to be cancelled.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub call: CallHandle,
    /// User part of the Request-URI: the number dialled.
    pub dialled: String,
    /// Caller ID: user part of From, and its display name.
    pub caller: Option<String>,
    pub caller_name: Option<String>,
    pub call_id: String,
    pub peer: Peer,
    /// The SDP offer (empty when the INVITE carried none).
    pub offer: Vec<u8>,
    /// The call was diverted because the subscriber's line was busy (`Diversion:
    /// …;reason=user-busy`, RFC 5806, or a `History-Info` entry with `cause=486`,
    /// RFC 4458): the busy greeting applies.
    pub busy: bool,
}

#[derive(Debug, Clone)]
pub enum Event {
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived: media may flow both ways. `answer` is its body:
    /// the SDP answer when the INVITE had no offer and our 2xx carried it (RFC 3261
    /// §13.2.1, "delayed offer"); empty otherwise.
    Confirmed {
        call: CallHandle,
        answer: Vec<u8>,
    },
    /// The caller cancelled before we answered (487 was sent).
    Cancelled(CallHandle),
    /// The caller hung up (BYE, answered 200).
    RemoteHangup(CallHandle),
    /// The call is gone for another reason (no ACK, BYE timed out...).
    Ended {
        call: CallHandle,
        reason: String,
    },
    /// A phone subscribed to `message-summary` for `account` (the Request-URI user):
    /// send it the current state with [`Endpoint::notify`].
    Subscribed {
        sub: CallHandle,
        account: String,
    },
    /// A subscription was refreshed (nothing to send).
    Refreshed(CallHandle),
    /// The phone unsubscribed: send the final state with [`Endpoint::notify`].
    Ending(CallHandle),
    /// A subscription is gone (expired, or the phone refused a NOTIFY).
    Unsubscribed(CallHandle),
}

/// Identity of this endpoint on the wire.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Address used in Via and Contact.
    pub local: SocketAddr,
    pub user_agent: String,
}

#[derive(Debug, PartialEq, Eq)]
enum CallState {
    /// INVITE received, no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// BYE sent, waiting for its final response.
    Terminating,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    invite: msg::Request,
    invite_key: TxKey,
    peer: Peer,
    local_tag: String,
    local_cseq: u32,
    /// The 2xx and its retransmission schedule (RFC 3261 13.3.1.4): next send,
    /// interval, give-up time.
    ok_retransmit: Option<(Vec<u8>, Instant, std::time::Duration, Instant)>,
    ok_response: Option<Vec<u8>>,
}

/// The SIP user-agent core.
pub struct Endpoint {
    cfg: EndpointConfig,
    server_txs: HashMap<TxKey, ServerTx>,
    /// Our requests in progress, by branch: the call and the method.
    client_txs: HashMap<String, (CallHandle, &'static str, ClientTx)>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, remote tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    subscriptions: Subscriptions,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_handle: CallHandle,
    /// Counts of what was refused, for logs and tests.
    pub rejected: u64,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig) -> Endpoint {
        Endpoint {
            cfg,
            server_txs: HashMap::new(),
            client_txs: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            subscriptions: Subscriptions::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 1,
            rejected: 0,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, bytes });
    }

    /// Handles one received message (a UDP datagram or a framed TCP message).
    pub fn handle_input(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        match msg::parse(bytes) {
            Err(rej) => {
                self.rejected += 1;
                tracing::info!(from = %peer.addr, status = rej.status, reason = %rej.reason, "refused SIP message");
                if let Some(raw) = rej.request {
                    let extra = if rej.status == 501 || rej.status == 405 {
                        vec![("Allow", ALLOW.to_string())]
                    } else {
                        vec![]
                    };
                    let resp = build_response(&raw, rej.status, &rej.reason, Some(&random_token()), &extra, None);
                    self.send(peer, resp);
                }
            }
            Ok(Message::Response(r)) => self.handle_response(now, r),
            Ok(Message::Request(r)) => self.handle_request(now, peer, *r),
        }
    }

    fn handle_response(&mut self, now: Instant, r: msg::Response) {
        let Some((call, method, tx)) = self.client_txs.get_mut(&r.branch) else {
            tracing::debug!(branch = %r.branch, "stray response dropped");
            return;
        };
        let (call, method) = (*call, *method);
        let Some(status) = tx.handle_response(now, r.status) else { return };
        match method {
            "BYE" => {
                if self.calls.remove(&call).is_some() {
                    self.forget_dialog(call);
                    self.events.push_back(Event::Ended { call, reason: format!("BYE answered {status}") });
                }
            }
            "NOTIFY" => {
                if status >= 300 {
                    self.notify_failed(call, &format!("NOTIFY answered {status}"));
                }
            }
            _ => {
                // REFER: accepted or not, our part of the call is over (blind transfer).
                if (200..300).contains(&status) {
                    tracing::info!(call, status, "transfer accepted");
                } else {
                    tracing::warn!(call, status, "transfer refused; hanging up");
                }
                self.hangup(now, call);
            }
        }
    }

    fn forget_dialog(&mut self, call: CallHandle) {
        self.dialogs.retain(|_, c| *c != call);
    }

    /// Sends a response through the server transaction `key`.
    // The arguments are the parts of one response; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        now: Instant,
        key: &TxKey,
        req: &msg::RawMessage,
        status: u16,
        reason: &str,
        to_tag: &str,
        extra: &[(&str, String)],
        body: Option<(&str, &[u8])>,
    ) {
        let mut headers: Vec<(&str, String)> = vec![("Server", self.cfg.user_agent.clone())];
        headers.extend_from_slice(extra);
        let bytes = build_response(req, status, reason, Some(to_tag), &headers, body);
        if let Some(tx) = self.server_txs.get_mut(key) {
            if tx.send_response(now, status, bytes.clone()) {
                let peer = tx.peer;
                self.send(peer, bytes);
            }
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, r: Request) {
        let key = TxKey::new(&r.branch, &r.sent_by, &r.method);

        if r.method == "ACK" {
            if let Some(tx) = self.server_txs.get_mut(&key) {
                if tx.handle_ack(now) {
                    return;
                }
            }
            // ACK for a 2xx: a new transaction of its own, matched to the dialog.
            let dialog = (r.call_id.clone(), r.from_tag.clone().unwrap_or_default());
            if let Some(&call) = self.dialogs.get(&dialog) {
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.state == CallState::Answered {
                        c.state = CallState::Confirmed;
                        c.ok_retransmit = None;
                        self.events.push_back(Event::Confirmed { call, answer: r.raw.body.clone() });
                    }
                }
            }
            return;
        }

        // A retransmitted request: answer with the last response, never the TU twice.
        if let Some(tx) = self.server_txs.get(&key) {
            if let Some(bytes) = tx.handle_retransmit() {
                let bytes = bytes.to_vec();
                self.send(tx.peer, bytes);
            }
            return;
        }

        self.server_txs.insert(key.clone(), ServerTx::new(r.method == "INVITE", peer));
        let tag = random_token();

        if r.method == "CANCEL" {
            let invite_key = TxKey::new(&r.branch, &r.sent_by, "INVITE");
            let call = self
                .calls
                .iter()
                .find(|(_, c)| c.invite_key == invite_key)
                .map(|(h, c)| (*h, c.state == CallState::Early));
            match call {
                None => self.respond(now, &key, &r.raw, 481, "Call/Transaction Does Not Exist", &tag, &[], None),
                Some((call, early)) => {
                    let local_tag = self.calls[&call].local_tag.clone();
                    self.respond(now, &key, &r.raw, 200, "OK", &local_tag, &[], None);
                    if early {
                        let invite = self.calls[&call].invite.raw.clone();
                        self.respond(now, &invite_key, &invite, 487, "Request Terminated", &local_tag, &[], None);
                        self.calls.remove(&call);
                        self.forget_dialog(call);
                        self.events.push_back(Event::Cancelled(call));
                    }
                }
            }
            return;
        }

        if r.method == "SUBSCRIBE" {
            self.handle_subscribe(now, peer, key, r, tag);
            return;
        }

        if let Some(to_tag) = r.to_tag.clone() {
            let dialog = (r.call_id.clone(), r.from_tag.clone().unwrap_or_default());
            let call =
                self.dialogs.get(&dialog).copied().filter(|c| self.calls.get(c).is_some_and(|c| c.local_tag == to_tag));
            let Some(call) = call else {
                self.respond(now, &key, &r.raw, 481, "Call/Transaction Does Not Exist", &tag, &[], None);
                return;
            };
            match r.method.as_str() {
                "BYE" => {
                    self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[], None);
                    self.calls.remove(&call);
                    self.forget_dialog(call);
                    self.events.push_back(Event::RemoteHangup(call));
                }
                "INVITE" => {
                    // A re-INVITE (session refresh, hold): we keep the session as it is
                    // and answer with the same description.
                    let body = self.calls[&call]
                        .ok_response
                        .as_ref()
                        .and_then(|ok| msg::RawMessage::parse(ok).ok())
                        .map(|m| m.body);
                    let contact = self.contact(peer.transport);
                    match body {
                        Some(b) if !b.is_empty() => self.respond(
                            now,
                            &key,
                            &r.raw,
                            200,
                            "OK",
                            &to_tag,
                            &[("Contact", contact)],
                            Some(("application/sdp", &b)),
                        ),
                        _ => self.respond(now, &key, &r.raw, 491, "Request Pending", &to_tag, &[], None),
                    }
                }
                "OPTIONS" => self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[("Allow", ALLOW.into())], None),
                // Progress reports of a transfer we asked for (RFC 3515 implicit subscription).
                "NOTIFY" => self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[], None),
                _ => self.respond(
                    now,
                    &key,
                    &r.raw,
                    405,
                    "Method Not Allowed",
                    &to_tag,
                    &[("Allow", ALLOW.into())],
                    None,
                ),
            }
            return;
        }

        match r.method.as_str() {
            "INVITE" => self.new_call(now, peer, key, r, tag),
            "OPTIONS" => self.respond(
                now,
                &key,
                &r.raw,
                200,
                "OK",
                &tag,
                &[("Allow", ALLOW.into()), ("Accept", "application/sdp".into())],
                None,
            ),
            "BYE" => self.respond(now, &key, &r.raw, 481, "Call/Transaction Does Not Exist", &tag, &[], None),
            _ => self.respond(now, &key, &r.raw, 405, "Method Not Allowed", &tag, &[("Allow", ALLOW.into())], None),
        }
    }

    fn new_call(&mut self, now: Instant, peer: Peer, key: TxKey, r: Request, tag: String) {
        // We support no SIP extensions; anything required of us is refused (8.2.2.3).
        if let Some(req) = r.raw.header("Require") {
            let unsupported: Vec<&str> = req.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
            if !unsupported.is_empty() {
                let list = unsupported.join(", ");
                self.respond(now, &key, &r.raw, 420, "Bad Extension", &tag, &[("Unsupported", list)], None);
                return;
            }
        }
        let Some(dialled) = r.parsed.uri.user().map(str::to_string) else {
            self.respond(now, &key, &r.raw, 404, "Not Found", &tag, &[], None);
            return;
        };
        let Some(from_tag) = r.from_tag.clone() else {
            self.respond(now, &key, &r.raw, 400, "Missing From Tag", &tag, &[], None);
            return;
        };
        self.respond(now, &key, &r.raw, 100, "Trying", &tag, &[], None);
        let handle = self.next_handle;
        self.next_handle += 1;
        let from = r.raw.header("From").unwrap_or_default();
        let incoming = IncomingCall {
            call: handle,
            dialled,
            caller: msg::uri_user(from).map(str::to_string),
            caller_name: msg::display_name(from),
            call_id: r.call_id.clone(),
            peer,
            offer: r.raw.body.clone(),
            busy: r.raw.headers_named("Diversion").any(|d| d.to_ascii_lowercase().contains("reason=user-busy"))
                || r.raw.headers_named("History-Info").any(|h| h.contains("cause=486")),
        };
        self.dialogs.insert((r.call_id.clone(), from_tag), handle);
        self.calls.insert(
            handle,
            Call {
                state: CallState::Early,
                invite: r,
                invite_key: key,
                peer,
                local_tag: tag,
                local_cseq: rand::random::<u16>() as u32 + 1,
                ok_retransmit: None,
                ok_response: None,
            },
        );
        self.events.push_back(Event::IncomingCall(incoming));
    }

    fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:voxbridge@{}>", self.cfg.local),
            Transport::Tcp(_) => format!("<sip:voxbridge@{};transport=tcp>", self.cfg.local),
        }
    }

    /// The INVITE transaction, request, local tag and peer of a call not answered yet.
    fn unanswered(&self, call: CallHandle) -> Option<(TxKey, msg::RawMessage, String, Peer)> {
        let c = self.calls.get(&call).filter(|c| c.state == CallState::Early)?;
        Some((c.invite_key.clone(), c.invite.raw.clone(), c.local_tag.clone(), c.peer))
    }

    /// Sends a provisional response (180 Ringing, 183 Session Progress).
    pub fn provisional(&mut self, now: Instant, call: CallHandle, status: u16, reason: &str) {
        let Some((key, raw, tag, peer)) = self.unanswered(call) else { return };
        let contact = self.contact(peer.transport);
        self.respond(now, &key, &raw, status, reason, &tag, &[("Contact", contact)], None);
    }

    /// Answers the call with an SDP answer (200 OK), retransmitted until the ACK.
    pub fn answer(&mut self, now: Instant, call: CallHandle, sdp: &[u8]) {
        let Some((key, raw, tag, peer)) = self.unanswered(call) else { return };
        let extra = [
            ("Contact", self.contact(peer.transport)),
            ("Allow", ALLOW.to_string()),
            ("Server", self.cfg.user_agent.clone()),
        ];
        let bytes = build_response(&raw, 200, "OK", Some(&tag), &extra, Some(("application/sdp", sdp)));
        if let Some(tx) = self.server_txs.get_mut(&key) {
            if tx.send_response(now, 200, bytes.clone()) {
                self.send(peer, bytes.clone());
            }
        }
        let c = self.calls.get_mut(&call).expect("checked above");
        c.state = CallState::Answered;
        c.ok_response = Some(bytes.clone());
        // Over TCP the transport is reliable; only the give-up timer remains.
        let first = if peer.transport.reliable() { now + 64 * T1 } else { now + T1 };
        c.ok_retransmit = Some((bytes, first, T1, now + 64 * T1));
    }

    /// Refuses the call with a final non-2xx response.
    pub fn reject(&mut self, now: Instant, call: CallHandle, status: u16, reason: &str) {
        let Some((key, raw, tag, _)) = self.unanswered(call) else { return };
        self.respond(now, &key, &raw, status, reason, &tag, &[], None);
        self.calls.remove(&call);
        self.forget_dialog(call);
    }

    /// Ends the call from our side: BYE for an answered call, 480 for one not yet answered.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.state {
            CallState::Early => {
                self.reject(now, call, 480, "Temporarily Unavailable");
                self.events.push_back(Event::Ended { call, reason: "hung up before answer".into() });
            }
            CallState::Terminating => {}
            CallState::Answered | CallState::Confirmed => {
                c.state = CallState::Terminating;
                c.ok_retransmit = None;
                self.send_in_dialog(now, call, "BYE", vec![]);
            }
        }
    }

    /// Blind transfer (RFC 3515): asks the caller to call `target`, then hangs up once
    /// the REFER is answered, whatever the answer.
    pub fn refer(&mut self, now: Instant, call: CallHandle, target: &str) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !matches!(c.state, CallState::Answered | CallState::Confirmed) {
            return;
        }
        c.state = CallState::Confirmed;
        c.ok_retransmit = None;
        let referred_by = format!("<sip:voxbridge@{}>", self.cfg.local);
        self.send_in_dialog(
            now,
            call,
            "REFER",
            vec![("Refer-To", format!("<{target}>")), ("Referred-By", referred_by)],
        );
    }

    /// Sends an in-dialog request from us (UAS side of the dialog) in a new client
    /// transaction, to the address the INVITE came from.
    fn send_in_dialog(&mut self, now: Instant, call: CallHandle, method: &'static str, extra: Vec<(&str, String)>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let inv = &c.invite.raw;
        let target = inv
            .header("Contact")
            .map(|v| match (v.find('<'), v.find('>')) {
                (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
                _ => v.split(';').next().unwrap_or(v).trim().to_string(),
            })
            .unwrap_or_else(|| c.invite.parsed.uri.to_string());
        let to = inv.header("To").unwrap_or_default();
        let local =
            if header_param(to, "tag").is_some() { to.to_string() } else { format!("{to};tag={}", c.local_tag) };
        let mut headers: Vec<(&str, String)> = vec![
            ("Via", format!("SIP/2.0/{} {};branch={branch};rport", c.peer.transport.via_name(), self.cfg.local)),
            ("Max-Forwards", "70".into()),
            ("From", local),
            ("To", inv.header("From").unwrap_or_default().to_string()),
            ("Call-ID", c.invite.call_id.clone()),
            ("CSeq", format!("{} {method}", c.local_cseq)),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        for rr in inv.headers_named("Record-Route") {
            headers.push(("Route", rr.to_string()));
        }
        headers.extend(extra);
        let bytes = build_request(method, &target, &headers, None);
        let peer = c.peer;
        self.client_txs.insert(branch, (call, method, ClientTx::new(now, peer, bytes.clone())));
        self.send(peer, bytes);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut resend = Vec::new();
        for tx in self.server_txs.values_mut() {
            if let Some(b) = tx.handle_timeout(now) {
                resend.push((tx.peer, b));
            }
        }
        self.server_txs.retain(|_, tx| !tx.is_terminated());

        let mut no_ack = Vec::new();
        for (h, c) in self.calls.iter_mut() {
            if let Some((bytes, at, interval, give_up)) = &mut c.ok_retransmit {
                if now >= *give_up {
                    no_ack.push(*h);
                } else if now >= *at {
                    resend.push((c.peer, bytes.clone()));
                    *interval = (*interval * 2).min(T2);
                    *at = now + *interval;
                }
            }
        }
        for call in no_ack {
            // 13.3.1.4: no ACK within 64*T1 — confirm the session and end it with BYE.
            if let Some(c) = self.calls.get_mut(&call) {
                c.state = CallState::Confirmed;
            }
            self.hangup(now, call);
            self.events.push_back(Event::Ended { call, reason: "no ACK for 200 OK".into() });
        }

        let mut failed = Vec::new();
        for (call, method, tx) in self.client_txs.values_mut() {
            match tx.handle_timeout(now) {
                Some(ClientOutput::Retransmit(b)) => resend.push((tx.peer, b)),
                Some(ClientOutput::TimedOut) => failed.push((*call, *method)),
                None => {}
            }
        }
        self.client_txs.retain(|_, (_, _, tx)| !tx.is_terminated());
        for (call, method) in failed {
            if method == "NOTIFY" {
                self.notify_failed(call, "NOTIFY timed out");
            } else if method == "BYE" {
                if self.calls.remove(&call).is_some() {
                    self.forget_dialog(call);
                    self.events.push_back(Event::Ended { call, reason: "BYE timed out".into() });
                }
            } else {
                tracing::warn!(call, "transfer request timed out; hanging up");
                self.hangup(now, call);
            }
        }
        for (peer, bytes) in resend {
            self.send(peer, bytes);
        }
        self.expire_subscriptions(now);
    }

    /// The earliest instant at which [`Endpoint::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.server_txs.values().filter_map(ServerTx::poll_timeout);
        let c = self.client_txs.values().filter_map(|(_, _, t)| t.poll_timeout());
        let a = self.calls.values().filter_map(|c| c.ok_retransmit.as_ref().map(|r| r.1.min(r.3)));
        s.chain(c).chain(a).chain(self.next_subscription_timeout()).min()
    }
}

pub use super::subscriptions::{MWI_CONTENT_TYPE, MWI_EVENT};

/// Event subscriptions (RFC 6665, `message-summary`): the endpoint's side — answers and
/// events — of [`Subscriptions`].
impl Endpoint {
    fn handle_subscribe(&mut self, now: Instant, peer: Peer, key: TxKey, r: Request, tag: String) {
        let next = &mut self.next_handle;
        let outcome = self.subscriptions.subscribe(now, peer, &r, &tag, || {
            let h = *next;
            *next += 1;
            h
        });
        match outcome {
            Subscribe::Refuse(code, reason, extra) => {
                self.respond(now, &key, &r.raw, code, reason, &tag, &extra, None);
            }
            Subscribe::Refreshed { sub, to_tag, expires } => {
                self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[("Expires", expires.to_string())], None);
                if expires == 0 {
                    self.subscriptions.end(now, sub);
                    tracing::debug!(sub, "subscription ending: unsubscribed");
                    // The application sends the final NOTIFY (terminated) with the
                    // current state.
                    self.events.push_back(Event::Ending(sub));
                } else {
                    self.events.push_back(Event::Refreshed(sub));
                }
            }
            Subscribe::New { sub, account, expires } => {
                let extra = [("Expires", expires.to_string()), ("Contact", self.contact(peer.transport))];
                self.respond(now, &key, &r.raw, 200, "OK", &tag, &extra, None);
                self.events.push_back(Event::Subscribed { sub, account });
            }
        }
    }

    /// Sends the current state to a subscriber (RFC 3842 body; empty: state unknown, no
    /// body). After a fetch or an unsubscribe the NOTIFY says `terminated` and the
    /// subscription is gone.
    pub fn notify(&mut self, now: Instant, sub: CallHandle, body: &str) {
        if let Some(n) = self.subscriptions.notify(now, sub, body, self.cfg.local, &self.cfg.user_agent) {
            self.client_txs.insert(n.branch, (sub, "NOTIFY", ClientTx::new(now, n.peer, n.bytes.clone())));
            self.send(n.peer, n.bytes);
        }
    }

    /// An unsolicited NOTIFY (outside any dialog) to a phone configured for a mailbox.
    pub fn notify_unsolicited(&mut self, now: Instant, target: &str, peer: Peer, body: &str) {
        let n = unsolicited_notify(target, peer, body, self.cfg.local, &self.cfg.user_agent);
        // Handle 0: no dialog; the answer is only logged.
        self.client_txs.insert(n.branch, (0, "NOTIFY", ClientTx::new(now, n.peer, n.bytes.clone())));
        self.send(n.peer, n.bytes);
    }

    /// A NOTIFY failed (error response or timeout): the subscription is over.
    fn notify_failed(&mut self, sub: CallHandle, why: &str) {
        if sub == 0 {
            tracing::warn!(reason = why, "unsolicited NOTIFY failed");
            return;
        }
        if self.subscriptions.remove(sub) {
            tracing::info!(sub, reason = why, "subscription ended by the subscriber");
            self.events.push_back(Event::Unsubscribed(sub));
        }
    }

    fn expire_subscriptions(&mut self, now: Instant) {
        for sub in self.subscriptions.expire(now) {
            tracing::info!(sub, "subscription expired");
            self.events.push_back(Event::Unsubscribed(sub));
        }
    }

    fn next_subscription_timeout(&self) -> Option<Instant> {
        self.subscriptions.next_timeout()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }
}

#[cfg(test)]
mod tests;
