//! The SIP user-agent core: transaction matching, dialogs, and the application API,
//! all sans-IO.
//!
//! Run loop (the driver in `driver/sip_io.rs` does exactly this):
//! 1. feed every received message with [`Endpoint::handle_input`], every application
//!    decision with [`Endpoint::answer`] / [`Endpoint::reject`] / [`Endpoint::hangup`] /
//!    [`Endpoint::answer_reoffer`], every call to place with [`Endpoint::place_call`];
//! 2. drain [`Endpoint::poll_transmit`] to the sockets and [`Endpoint::poll_event`] to the
//!    applications;
//! 3. sleep until [`Endpoint::poll_timeout`] and call [`Endpoint::handle_timeout`].
//!
//! The endpoint never reads the clock and never touches a socket.

use super::access::AccessPolicy;
use super::digest::{DigestAuth, Ha1, Verdict};
use super::invite_client::InviteClientTx;
use super::msg::{self, build_request, build_response, random_token, Message, Request};
use super::subscriptions::{unsolicited_notify, Subscribe, Subscriptions};
use super::timers::TimerQueue;
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
    /// The subscriber a PBX diverted this call from, and why (`Diversion`, RFC 5806, or
    /// `History-Info`, RFC 7044), as the source's trunk policy believes them.
    pub diverted: Option<super::redirection::Diverted>,
    /// The `[[sip.trunk]]` the call came from.
    pub trunk: Option<String>,
    /// The user part of the To header (a PBX may dial the pilot in the Request-URI and
    /// keep the subscriber in To).
    pub to_user: Option<String>,
    /// The INVITE's headers named in `EndpointConfig::keep_headers`, as (name, value).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum Event {
    IncomingCall(Box<IncomingCall>),
    /// The ACK for our 2xx arrived: media may flow both ways. `answer` is its body:
    /// the SDP answer when the INVITE had no offer and our 2xx carried it (RFC 3261
    /// §13.2.1, "delayed offer"); empty otherwise.
    Confirmed {
        call: CallHandle,
        answer: Vec<u8>,
    },
    /// A re-INVITE with a new offer (hold, a codec change, T.38 for a fax): answer it
    /// with [`Endpoint::answer_reoffer`] — accept with an SDP answer, or refuse (488),
    /// and the call goes on as it was. A re-INVITE without an offer (a session refresh)
    /// is answered by the endpoint with the last description and never comes here.
    Reoffer {
        call: CallHandle,
        offer: Vec<u8>,
    },
    /// The far end accepted our re-INVITE ([`Endpoint::reinvite`]): `answer` is its SDP.
    ReinviteAnswered {
        call: CallHandle,
        answer: Vec<u8>,
    },
    /// The far end refused our re-INVITE (488, 491…; 487 after our CANCEL, 408 when
    /// nothing answered): the session stays as it was and the call goes on.
    ReinviteFailed {
        call: CallHandle,
        status: u16,
    },
    /// A call we placed ([`Endpoint::place_call`]) got a provisional answer (180, 183).
    Progress {
        call: CallHandle,
        status: u16,
    },
    /// A call we placed was answered (2xx, ACKed): `answer` is the SDP answer.
    Answered {
        call: CallHandle,
        answer: Vec<u8>,
    },
    /// A call we placed failed: a 3xx–6xx (487 after our CANCEL), or 408 when nothing
    /// answered (Timer B). Redirections (3xx) are not followed.
    Failed {
        call: CallHandle,
        status: u16,
        reason: String,
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

/// Identity of this endpoint on the wire, and who may do what.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Address used in Via and Contact.
    pub local: SocketAddr,
    pub user_agent: String,
    pub access: AccessPolicy,
    /// Headers of an INVITE handed to the application as they are (`IncomingCall::
    /// headers`): what a PBX integration reads, such as the header naming an SMDI terminal.
    pub keep_headers: Vec<String>,
    /// The SIP-over-TLS listener's address (Contact of dialogs over TLS).
    pub tls_local: Option<SocketAddr>,
}

impl EndpointConfig {
    /// Calls from anyone, SUBSCRIBE with digest credentials only, no trunks.
    pub fn new(local: SocketAddr, user_agent: &str) -> EndpointConfig {
        EndpointConfig {
            local,
            user_agent: user_agent.to_string(),
            access: AccessPolicy::default(),
            keep_headers: vec![],
            tls_local: None,
        }
    }
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

/// What the application says to a re-INVITE's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReofferAnswer {
    /// 200 OK with this SDP answer; the media changes as it describes.
    Accept(Vec<u8>),
    /// A final error (488 Not Acceptable Here for an offer it cannot serve); the
    /// session stays as it was (§14.2).
    Refuse(u16, String),
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// The Request-URI and To, e.g. `sip:5551234@trunk.example`.
    pub target: String,
    /// Where the INVITE goes (the trunk).
    pub peer: Peer,
    /// The user part of our From (the number we call from).
    pub from_user: String,
    /// Our SDP offer.
    pub offer: Vec<u8>,
}

/// What a placed call's CANCEL and ACKs are built from.
#[derive(Debug)]
struct Placed {
    request_uri: String,
    branch: String,
    cseq: u32,
    /// The INVITE's To (without a tag), as sent.
    to: String,
    cancel: Cancel,
    /// The ACK of the 2xx, sent again for each retransmission of it.
    ack: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    No,
    /// Asked before any provisional answer: sent when one comes (§9.1).
    Wanted,
    Sent,
}

/// One dialog's identity and route, whichever side began it (RFC 3261 §12).
#[derive(Debug)]
struct Dialog {
    call_id: String,
    local_tag: String,
    /// Our side, as it goes in the From of our requests (with our tag).
    local: String,
    /// The far side, as it goes in the To of our requests (with its tag once known).
    remote: String,
    /// Where our in-dialog requests go: the far end's Contact.
    remote_target: String,
    /// The Route headers of our in-dialog requests (§12.1.1 and §12.1.2).
    route: Vec<String>,
}

/// A 2xx to an INVITE, retransmitted until its ACK (RFC 3261 §13.3.1.4).
#[derive(Debug)]
struct OkRetransmit {
    bytes: Vec<u8>,
    at: Instant,
    interval: std::time::Duration,
    give_up: Instant,
    /// The INVITE's CSeq: only its ACK stops the retransmissions.
    cseq: u32,
}

impl OkRetransmit {
    fn new(now: Instant, peer: Peer, bytes: Vec<u8>, cseq: u32) -> OkRetransmit {
        // Over TCP the transport is reliable; only the give-up timer remains.
        let at = if peer.transport.reliable() { now + 64 * T1 } else { now + T1 };
        OkRetransmit { bytes, at, interval: T1, give_up: now + 64 * T1, cseq }
    }
}

/// What every request of ours in a dialog carries (§12.2.1.1): Via with `branch`,
/// Max-Forwards, From, To, Call-ID, CSeq `cseq method`, and the dialog's route.
fn dialog_headers(local: SocketAddr, c: &Call, branch: &str, cseq: u32, method: &str) -> Vec<(&'static str, String)> {
    let d = &c.dialog;
    let mut h = vec![
        ("Via", c.peer.transport.via(local, branch)),
        ("Max-Forwards", "70".into()),
        ("From", d.local.clone()),
        ("To", d.remote.clone()),
        ("Call-ID", d.call_id.clone()),
        ("CSeq", format!("{cseq} {method}")),
    ];
    h.extend(d.route.iter().map(|r| ("Route", r.clone())));
    h
}

/// The URI of a Contact (or Record-Route) value: inside `<>`, else up to the first `;`.
fn contact_uri(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}

/// A re-INVITE handed to the application and not answered yet.
#[derive(Debug)]
struct PendingReoffer {
    key: TxKey,
    request: msg::RawMessage,
    cseq: u32,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    peer: Peer,
    dialog: Dialog,
    local_cseq: u32,
    /// A call to us: the INVITE and its server transaction. `None` for a call we placed.
    incoming: Option<(msg::Request, TxKey)>,
    /// A call we placed: what its CANCEL and ACKs are built from.
    placed: Option<Placed>,
    /// Its key in `Endpoint::dialogs` (Call-ID, remote tag), once it has a dialog.
    dialog_key: Option<(String, String)>,
    ok_retransmit: Option<OkRetransmit>,
    /// The session description we gave last (answer or offer), for a re-INVITE
    /// without an offer (a session refresh).
    local_sdp: Vec<u8>,
    reoffer: Option<PendingReoffer>,
    /// Our re-INVITE, in progress or the last one.
    own_reinvite: Option<reinvite::OwnReinvite>,
    /// Our re-INVITE's offer, held until the ACK of our 2xx ends the exchange before it.
    queued_reinvite: Option<Vec<u8>>,
}

/// What a deadline belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TimerKey {
    Server(TxKey),
    /// A client transaction by its key in `client_txs`.
    Client(String),
    /// A call's 2xx retransmission and give-up.
    Ok(CallHandle),
    /// One of our INVITEs, by branch.
    Invite(String),
    Subscription(CallHandle),
}

/// The SIP user-agent core.
pub struct Endpoint {
    cfg: EndpointConfig,
    server_txs: HashMap<TxKey, ServerTx>,
    /// Our requests in progress, by branch: the call and the method.
    client_txs: HashMap<String, (CallHandle, &'static str, ClientTx)>,
    /// The INVITEs of calls we placed, by branch. Apart from the calls: a transaction
    /// outlives a failed call (Timer D absorbs the error's retransmissions).
    invite_txs: HashMap<String, (CallHandle, InviteClientTx)>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, remote tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    subscriptions: Subscriptions,
    /// TLS connections whose peers let us send them requests (RFC 5923).
    aliases: super::reuse::Aliases,
    /// Digest challenges and checks; made at the first request (it needs a time).
    auth: Option<DigestAuth>,
    /// Mailboxes' SIP secrets by number ([`Endpoint::set_credentials`]).
    users: HashMap<String, Ha1>,
    /// Every deadline of the above, by what it belongs to.
    timers: TimerQueue<TimerKey>,
    /// What changed since the deadlines were last read from it.
    dirty: Vec<TimerKey>,
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
            invite_txs: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            subscriptions: Subscriptions::default(),
            aliases: Default::default(),
            auth: None,
            users: HashMap::new(),
            timers: TimerQueue::default(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_handle: 1,
            rejected: 0,
        }
    }

    /// Whether `ip` belongs to a configured trunk.
    pub fn is_trunk(&self, ip: std::net::IpAddr) -> bool {
        self.cfg.access.trunk(ip).is_some()
    }

    /// The mailboxes' SIP digest secrets, by number: replaces what was set before.
    pub fn set_credentials(&mut self, users: HashMap<String, Ha1>) {
        self.users = users;
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
        // A datagram of line ends (or NULs) is a NAT keep-alive (RFC 5626 §3.5 uses
        // CRLF on streams; phones send it over UDP too): nothing to answer, nothing wrong.
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | 0)) {
            tracing::trace!(from = %peer.addr, "keep-alive");
            return;
        }
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
            // A sips: URI asks for TLS on every hop (RFC 5630 §3.1.3): one that came
            // over UDP or TCP already travelled in clear, and is not served as if secure.
            Ok(Message::Request(r))
                if r.method != "ACK" && is_sips(&r) && !matches!(peer.transport, Transport::Tls(_)) =>
            {
                self.rejected += 1;
                tracing::info!(from = %peer.addr, transport = peer.transport.via_name(), "refused a sips: request that did not come over TLS");
                let reason = "Unsupported URI Scheme (sips: needs TLS)";
                let resp = build_response(&r.raw, 416, reason, Some(&random_token()), &[], None);
                self.send(peer, resp);
            }
            Ok(Message::Request(r)) => self.handle_request(now, peer, *r),
        }
    }

    /// Answers a request with `status` without parsing it further or keeping any
    /// state (a source over its rate limit): nothing for a response or an ACK.
    pub fn reply_stateless(&mut self, peer: Peer, bytes: &[u8], status: u16, reason: &str, extra: &[(&str, String)]) {
        let Ok(raw) = msg::RawMessage::parse(bytes) else { return };
        if !raw.is_request() || raw.start_line.starts_with("ACK ") || raw.header("Via").is_none() {
            return;
        }
        let mut headers: Vec<(&str, String)> = vec![("Server", self.cfg.user_agent.clone())];
        headers.extend_from_slice(extra);
        let resp = build_response(&raw, status, reason, Some(&random_token()), &headers, None);
        self.send(peer, resp);
    }

    fn handle_response(&mut self, now: Instant, r: msg::Response) {
        if r.cseq_method == "INVITE" {
            self.invite_response(now, r);
            return;
        }
        // A CANCEL shares its INVITE's branch; its transaction is keyed apart.
        let key = if r.cseq_method == "CANCEL" { format!("{}/CANCEL", r.branch) } else { r.branch.clone() };
        let Some((call, method, tx)) = self.client_txs.get_mut(&key) else {
            tracing::debug!(branch = %r.branch, "stray response dropped");
            return;
        };
        let (call, method) = (*call, *method);
        let answered = tx.handle_response(now, r.status);
        self.dirty.push(TimerKey::Client(key));
        let Some(status) = answered else { return };
        match method {
            "BYE" => {
                if self.end_call(now, call) {
                    self.events.push_back(Event::Ended { call, reason: format!("BYE answered {status}") });
                }
            }
            "NOTIFY" => {
                if status >= 300 {
                    self.notify_failed(call, &format!("NOTIFY answered {status}"));
                }
            }
            // The INVITE's final answer (487, or a 2xx we then end) says how it went.
            "CANCEL" => {}
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

    /// Removes a call and its dialog; a re-INVITE still waiting for the application is
    /// answered 487 (the call it would change is gone). Whether the call existed.
    fn end_call(&mut self, now: Instant, call: CallHandle) -> bool {
        let Some(mut c) = self.calls.remove(&call) else { return false };
        if let Some(key) = c.dialog_key.take() {
            self.dialogs.remove(&key);
        }
        if let Some(p) = c.reoffer.take() {
            self.respond(now, &p.key, &p.request, 487, "Request Terminated", &c.dialog.local_tag, &[], None);
        }
        true
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
        self.dirty.push(TimerKey::Server(key.clone()));
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, r: Request) {
        let key = TxKey::new(&r.branch, &r.sent_by, &r.method, peer.addr);
        if let Some(via) = r.raw.header("Via") {
            self.aliases.learn(peer, via.split(',').next().unwrap_or(via));
        }

        if r.method == "ACK" {
            if let Some(tx) = self.server_txs.get_mut(&key) {
                if tx.handle_ack(now) {
                    self.dirty.push(TimerKey::Server(key));
                    return;
                }
            }
            // ACK for a 2xx: a new transaction of its own, matched to the dialog.
            let dialog = (r.call_id.clone(), r.from_tag.clone().unwrap_or_default());
            if let Some(&call) = self.dialogs.get(&dialog) {
                if let Some(c) = self.calls.get_mut(&call) {
                    // Only the ACK of the INVITE being answered stops its 2xx: a late
                    // copy of an earlier ACK must not silence a re-INVITE's answer.
                    if c.ok_retransmit.as_ref().is_some_and(|ok| ok.cseq == r.cseq) {
                        c.ok_retransmit = None;
                        self.dirty.push(TimerKey::Ok(call));
                    }
                    if c.state == CallState::Answered {
                        c.state = CallState::Confirmed;
                        self.events.push_back(Event::Confirmed { call, answer: r.raw.body.clone() });
                    }
                    if c.ok_retransmit.is_none() && c.state == CallState::Confirmed {
                        if let Some(offer) = c.queued_reinvite.take() {
                            self.send_queued_reinvite(now, call, &offer);
                        }
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
        self.dirty.push(TimerKey::Server(key.clone()));
        let tag = random_token();

        // We support no SIP extensions: anything required of us is refused, whatever
        // the method (§8.2.2.3; CANCEL is exempt, ACK never reaches here).
        if r.method != "CANCEL" {
            if let Some(list) = required_extensions(&r.raw) {
                let to_tag = r.to_tag.clone().unwrap_or(tag);
                self.respond(now, &key, &r.raw, 420, "Bad Extension", &to_tag, &[("Unsupported", list)], None);
                return;
            }
        }
        // A body we cannot read (§8.2.3): 415 with what we accept; an answer the caller
        // cannot read: 406.
        if let Some((status, reason, extra)) = unreadable_body(&r) {
            let to_tag = r.to_tag.clone().unwrap_or(tag);
            self.respond(now, &key, &r.raw, status, reason, &to_tag, &[extra], None);
            return;
        }

        if r.method == "CANCEL" {
            let invite_key = TxKey::new(&r.branch, &r.sent_by, "INVITE", peer.addr);
            let call = self
                .calls
                .iter()
                .find(|(_, c)| c.incoming.as_ref().is_some_and(|(_, k)| *k == invite_key))
                .map(|(h, c)| (*h, c.state == CallState::Early));
            match call {
                None => self.respond(now, &key, &r.raw, 481, "Call/Transaction Does Not Exist", &tag, &[], None),
                Some((call, early)) => {
                    let local_tag = self.calls[&call].dialog.local_tag.clone();
                    self.respond(now, &key, &r.raw, 200, "OK", &local_tag, &[], None);
                    if early {
                        let invite = self.calls[&call].incoming.as_ref().expect("matched above").0.raw.clone();
                        self.respond(now, &invite_key, &invite, 487, "Request Terminated", &local_tag, &[], None);
                        self.end_call(now, call);
                        self.events.push_back(Event::Cancelled(call));
                    }
                }
            }
            return;
        }

        if r.method == "SUBSCRIBE" {
            // A new subscription reveals a mailbox's counts: it needs that mailbox's
            // credentials. A refresh is inside the dialog the first one authorized.
            let account = r.user().map(str::to_string);
            let checked = super::subscriptions::refusal(&r).is_some();
            if r.to_tag.is_none() && !checked && !self.authorized(now, peer, &key, &r, &tag, account.as_deref(), None) {
                return;
            }
            self.handle_subscribe(now, peer, key, r, tag);
            return;
        }

        if let Some(to_tag) = r.to_tag.clone() {
            let dialog = (r.call_id.clone(), r.from_tag.clone().unwrap_or_default());
            let call = self
                .dialogs
                .get(&dialog)
                .copied()
                .filter(|c| self.calls.get(c).is_some_and(|c| c.dialog.local_tag == to_tag));
            let Some(call) = call else {
                self.respond(now, &key, &r.raw, 481, "Call/Transaction Does Not Exist", &tag, &[], None);
                return;
            };
            match r.method.as_str() {
                "BYE" => {
                    self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[], None);
                    self.end_call(now, call);
                    self.events.push_back(Event::RemoteHangup(call));
                }
                "INVITE" => self.handle_reinvite(now, key, r, call, to_tag),
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
        let trunk = self.cfg.access.trunk(peer.addr.ip()).cloned();
        match &trunk {
            None if self.cfg.access.calls_from_trunks_only => {
                tracing::info!(from = %peer.addr, "call refused: not from a configured trunk");
                let reason = "Forbidden (calls are taken from configured trunks only)";
                self.respond(now, &key, &r.raw, 403, reason, &tag, &[], None);
                return;
            }
            Some(t) if t.credentials.is_some() => {
                let creds = t.credentials.clone();
                let user = creds.as_ref().map(|(u, _)| u.clone());
                if !self.authorized(now, peer, &key, &r, &tag, user.as_deref(), creds) {
                    return;
                }
            }
            _ => {}
        }
        let Some(dialled) = r.user().map(str::to_string) else {
            self.respond(now, &key, &r.raw, 404, "Not Found", &tag, &[], None);
            return;
        };
        // An RFC 2543 caller sends no From tag (RFC 4475 §3.4.1): its dialog is keyed
        // by the Call-ID alone, as the other lookups do.
        let from_tag = r.from_tag.clone().unwrap_or_default();
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
            diverted: self.cfg.access.redirection(trunk.as_ref()).diverted(
                &r.raw.headers_named("Diversion").collect::<Vec<_>>(),
                &r.raw.headers_named("History-Info").collect::<Vec<_>>(),
            ),
            trunk: trunk.as_ref().map(|t| t.name.clone()),
            to_user: r.raw.header("To").and_then(msg::uri_user).map(str::to_string),
            headers: self
                .cfg
                .keep_headers
                .iter()
                .flat_map(|name| r.raw.headers_named(name).map(move |v| (name.clone(), v.to_string())))
                .collect(),
        };
        let dialog_key = (r.call_id.clone(), from_tag);
        self.dialogs.insert(dialog_key.clone(), handle);
        // We are the UAS: our requests go to the caller's Contact, along its
        // Record-Route in order (RFC 3261 §12.1.1).
        let to = r.raw.header("To").unwrap_or_default();
        let dialog = Dialog {
            call_id: r.call_id.clone(),
            local: format!("{to};tag={tag}"),
            remote: from.to_string(),
            remote_target: r.raw.header("Contact").map(contact_uri).unwrap_or_else(|| r.parsed.uri.to_string()),
            route: r.raw.headers_named("Record-Route").map(str::to_string).collect(),
            local_tag: tag,
        };
        self.calls.insert(
            handle,
            Call {
                state: CallState::Early,
                peer,
                dialog,
                local_cseq: rand::random::<u16>() as u32 + 1,
                incoming: Some((r, key)),
                placed: None,
                dialog_key: Some(dialog_key),
                ok_retransmit: None,
                local_sdp: Vec::new(),
                reoffer: None,
                own_reinvite: None,
                queued_reinvite: None,
            },
        );
        self.events.push_back(Event::IncomingCall(Box::new(incoming)));
    }

    /// Whether `r` carries digest credentials of `user` (a mailbox's, or the trunk's
    /// given in `trunk`); answers 401 (challenge) or 403 itself when not. Requests from a
    /// trusted trunk about mailboxes need none. Unknown users are answered exactly as
    /// wrong passwords are: a mailbox's existence is not revealed.
    // The parts of one request's check; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn authorized(
        &mut self,
        now: Instant,
        peer: Peer,
        key: &TxKey,
        r: &Request,
        tag: &str,
        user: Option<&str>,
        trunk: Option<(String, Ha1)>,
    ) -> bool {
        if trunk.is_none() && self.cfg.access.trunk(peer.addr.ip()).is_some_and(|t| t.trusted) {
            return true;
        }
        let access = &self.cfg.access;
        let auth = self.auth.get_or_insert_with(|| {
            DigestAuth::new(&access.realm, &access.algorithms, std::time::Duration::from_secs(access.nonce_secs), now)
        });
        let users = &self.users;
        let lookup = |u: &str| match &trunk {
            Some((name, ha1)) => (name == u).then(|| ha1.clone()),
            None => users.get(u).cloned(),
        };
        let verdict = auth.verify(now, &r.method, r.raw.header("Authorization"), lookup);
        let challenge = |stale| auth.challenges(now, stale);
        let (status, reason, extra): (u16, &str, Vec<(&str, String)>) = match verdict {
            Verdict::Ok(u) if Some(u.as_str()) == user => return true,
            Verdict::Ok(u) => {
                tracing::info!(from = %peer.addr, user = %u, method = %r.method, "SIP credentials of another user; refused");
                (403, "Forbidden", vec![])
            }
            Verdict::Challenge => {
                (401, "Unauthorized", challenge(false).into_iter().map(|c| ("WWW-Authenticate", c)).collect())
            }
            Verdict::Stale => {
                (401, "Unauthorized", challenge(true).into_iter().map(|c| ("WWW-Authenticate", c)).collect())
            }
            Verdict::Forbidden(why) => {
                tracing::info!(from = %peer.addr, reason = why, method = %r.method, "SIP authentication failed");
                (403, "Forbidden", vec![])
            }
        };
        self.respond(now, key, &r.raw, status, reason, tag, &extra, None);
        false
    }

    fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:voxbridge@{}>", self.cfg.local),
            Transport::Tcp(_) => format!("<sip:voxbridge@{};transport=tcp>", self.cfg.local),
            Transport::Tls(_) => {
                format!("<sip:voxbridge@{};transport=tls>", self.cfg.tls_local.unwrap_or(self.cfg.local))
            }
        }
    }

    /// The INVITE transaction, request, local tag and peer of a call not answered yet.
    fn unanswered(&self, call: CallHandle) -> Option<(TxKey, msg::RawMessage, String, Peer)> {
        let c = self.calls.get(&call).filter(|c| c.state == CallState::Early)?;
        let (invite, key) = c.incoming.as_ref()?;
        Some((key.clone(), invite.raw.clone(), c.dialog.local_tag.clone(), c.peer))
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
        c.local_sdp = sdp.to_vec();
        let cseq = c.incoming.as_ref().map_or(0, |(r, _)| r.cseq);
        c.ok_retransmit = Some(OkRetransmit::new(now, peer, bytes, cseq));
        self.dirty.extend([TimerKey::Server(key), TimerKey::Ok(call)]);
    }

    /// Refuses the call with a final non-2xx response.
    pub fn reject(&mut self, now: Instant, call: CallHandle, status: u16, reason: &str) {
        let Some((key, raw, tag, _)) = self.unanswered(call) else { return };
        self.respond(now, &key, &raw, status, reason, &tag, &[], None);
        self.end_call(now, call);
    }

    /// Ends the call from our side: BYE for an answered call, 480 for one not yet answered.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.state {
            CallState::Early if c.placed.is_some() => self.cancel(now, call),
            CallState::Early => {
                self.reject(now, call, 480, "Temporarily Unavailable");
                self.events.push_back(Event::Ended { call, reason: "hung up before answer".into() });
            }
            CallState::Terminating => {}
            CallState::Answered | CallState::Confirmed => {
                c.state = CallState::Terminating;
                c.ok_retransmit = None;
                self.dirty.push(TimerKey::Ok(call));
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
        self.dirty.push(TimerKey::Ok(call));
        let referred_by = format!("<sip:voxbridge@{}>", self.cfg.local);
        self.send_in_dialog(
            now,
            call,
            "REFER",
            vec![("Refer-To", format!("<{target}>")), ("Referred-By", referred_by)],
        );
    }

    /// Sends an in-dialog request from us in a new client transaction, to the far
    /// end's Contact along the dialog's route.
    fn send_in_dialog(&mut self, now: Instant, call: CallHandle, method: &'static str, extra: Vec<(&str, String)>) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.local_cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let mut headers = dialog_headers(self.cfg.local, c, &branch, c.local_cseq, method);
        headers.push(("User-Agent", self.cfg.user_agent.clone()));
        headers.extend(extra);
        let d = &c.dialog;
        let bytes = build_request(method, &d.remote_target, &headers, None);
        let peer = c.peer;
        self.client_txs.insert(branch.clone(), (call, method, ClientTx::new(now, peer, bytes.clone())));
        self.dirty.push(TimerKey::Client(branch));
        self.send(peer, bytes);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_timers();
        for key in self.timers.pop_due(now) {
            match key.clone() {
                TimerKey::Server(k) => {
                    if let Some(tx) = self.server_txs.get_mut(&k) {
                        if let Some(b) = tx.handle_timeout(now) {
                            let peer = tx.peer;
                            self.send(peer, b);
                        }
                    }
                }
                TimerKey::Ok(call) => self.ok_timeout(now, call),
                TimerKey::Client(b) => self.client_timeout(now, &b),
                TimerKey::Invite(b) => self.invite_timeout(now, &b),
                TimerKey::Subscription(sub) => {
                    if self.subscriptions.expire(now, sub) {
                        tracing::info!(sub, "subscription expired");
                        self.events.push_back(Event::Unsubscribed(sub));
                    }
                }
            }
            self.dirty.push(key);
        }
        self.flush_timers();
    }

    /// A 2xx not ACKed yet: sent again, or — no ACK within 64*T1 — the session is
    /// confirmed and ended with BYE (§13.3.1.4).
    fn ok_timeout(&mut self, now: Instant, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(ok) = &mut c.ok_retransmit else { return };
        if now >= ok.give_up {
            c.state = CallState::Confirmed;
            self.hangup(now, call);
            self.events.push_back(Event::Ended { call, reason: "no ACK for 200 OK".into() });
        } else if now >= ok.at {
            let (peer, bytes) = (c.peer, ok.bytes.clone());
            ok.interval = (ok.interval * 2).min(T2);
            ok.at = now + ok.interval;
            self.send(peer, bytes);
        }
    }

    fn client_timeout(&mut self, now: Instant, key: &str) {
        let Some((call, method, tx)) = self.client_txs.get_mut(key) else { return };
        let (call, method) = (*call, *method);
        match tx.handle_timeout(now) {
            Some(ClientOutput::Retransmit(b)) => {
                let peer = tx.peer;
                self.send(peer, b);
            }
            Some(ClientOutput::TimedOut) => {
                if method == "NOTIFY" {
                    self.notify_failed(call, "NOTIFY timed out");
                } else if method == "CANCEL" {
                    tracing::debug!(call, "CANCEL timed out; Timer B ends the INVITE");
                } else if method == "BYE" {
                    if self.end_call(now, call) {
                        self.events.push_back(Event::Ended { call, reason: "BYE timed out".into() });
                    }
                } else {
                    tracing::warn!(call, "transfer request timed out; hanging up");
                    self.hangup(now, call);
                }
            }
            None => {}
        }
    }

    /// Reads the deadlines of what changed into the timer queue, and forgets the
    /// transactions that are over.
    fn flush_timers(&mut self) {
        for key in std::mem::take(&mut self.dirty) {
            let at = match &key {
                TimerKey::Server(k) => match self.server_txs.get(k) {
                    Some(tx) if tx.is_terminated() => {
                        self.server_txs.remove(k);
                        None
                    }
                    Some(tx) => tx.poll_timeout(),
                    None => None,
                },
                TimerKey::Client(b) => match self.client_txs.get(b) {
                    Some((_, _, tx)) if tx.is_terminated() => {
                        self.client_txs.remove(b);
                        None
                    }
                    Some((_, _, tx)) => tx.poll_timeout(),
                    None => None,
                },
                TimerKey::Invite(b) => match self.invite_txs.get(b) {
                    Some((_, tx)) if tx.is_terminated() => {
                        self.invite_txs.remove(b);
                        None
                    }
                    Some((_, tx)) => tx.poll_timeout(),
                    None => None,
                },
                TimerKey::Ok(call) => {
                    self.calls.get(call).and_then(|c| c.ok_retransmit.as_ref()).map(|r| r.at.min(r.give_up))
                }
                TimerKey::Subscription(sub) => self.subscriptions.deadline(*sub),
            };
            self.timers.set(key, at);
        }
    }

    /// The earliest instant at which [`Endpoint::handle_timeout`] may have work (an
    /// early wake-up finds nothing due and costs nothing).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.flush_timers();
        self.timers.next()
    }

    /// Transactions and deadlines held, for the status report and tests.
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }
}

pub use super::subscriptions::{MWI_CONTENT_TYPE, MWI_EVENT};

/// The option tags of every `Require` header, if there are any (we support none).
fn required_extensions(raw: &msg::RawMessage) -> Option<String> {
    let tags: Vec<&str> =
        raw.headers_named("Require").flat_map(|v| v.split(',')).map(str::trim).filter(|o| !o.is_empty()).collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

/// Why a request's body cannot be read (or ours would not be), and the header that
/// says what can: an INVITE's offer is SDP, uncompressed, and so is our answer; other
/// requests' bodies are not read at all.
fn unreadable_body(r: &Request) -> Option<(u16, &'static str, (&'static str, String))> {
    if r.method != "INVITE" {
        return None;
    }
    // Accept lists what the caller can read of our answer (RFC 3261 §8.2.3): SDP or
    // nothing useful (RFC 4475 §3.3.15).
    if let Some(accept) = r.raw.header("Accept") {
        let sdp = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .any(|t| t == "application/sdp" || t == "application/*" || t == "*/*");
        if !sdp && !accept.trim().is_empty() {
            return Some((406, "Not Acceptable", ("Accept", "application/sdp".into())));
        }
    }
    if r.raw.body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let encoding = r.raw.header("Content-Encoding").map(str::trim).unwrap_or("identity");
    if !encoding.eq_ignore_ascii_case("identity") {
        return Some((415, "Unsupported Media Type (Content-Encoding)", ("Accept-Encoding", "identity".into())));
    }
    let ctype = r.raw.header("Content-Type").unwrap_or("").split(';').next().unwrap_or("").trim();
    if !ctype.eq_ignore_ascii_case("application/sdp") {
        return Some((415, "Unsupported Media Type", ("Accept", "application/sdp".into())));
    }
    None
}

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
                self.dirty.push(TimerKey::Subscription(sub));
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
                self.dirty.push(TimerKey::Subscription(sub));
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
            self.client_txs.insert(n.branch.clone(), (sub, "NOTIFY", ClientTx::new(now, n.peer, n.bytes.clone())));
            self.dirty.extend([TimerKey::Client(n.branch), TimerKey::Subscription(sub)]);
            self.send(n.peer, n.bytes);
        }
    }

    /// An unsolicited NOTIFY (outside any dialog) to a phone configured for a mailbox.
    /// An unsolicited NOTIFY to a phone at `addr`: over a TLS connection of its own that
    /// allowed reuse (RFC 5923), else over UDP — unless the phone is reached over TLS
    /// only (`tls`): no connection to reuse, nothing sent in clear.
    pub fn notify_unsolicited(
        &mut self,
        now: Instant,
        target: &str,
        addr: std::net::SocketAddr,
        tls: bool,
        body: &str,
    ) {
        let transport = match self.aliases.route(addr) {
            Some(t) => t,
            None if tls => {
                tracing::warn!(to = %target, "MWI NOTIFY not sent: the phone wants TLS and has no TLS connection to us that allows reuse (Via alias, RFC 5923)");
                return;
            }
            None => Transport::Udp,
        };
        let peer = Peer { addr, transport };
        let n = unsolicited_notify(target, peer, body, self.cfg.local, &self.cfg.user_agent);
        // Handle 0: no dialog; the answer is only logged.
        self.client_txs.insert(n.branch.clone(), (0, "NOTIFY", ClientTx::new(now, n.peer, n.bytes.clone())));
        self.dirty.push(TimerKey::Client(n.branch));
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

    /// A TCP or TLS connection closed: what it could carry is forgotten.
    pub fn connection_closed(&mut self, conn: u64) {
        self.aliases.forget(conn);
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }
}

mod outgoing;
mod reinvite;
mod reoffer;

/// Whether a request's Request-URI has the `sips:` scheme.
fn is_sips(r: &Request) -> bool {
    r.raw
        .start_line
        .split_whitespace()
        .nth(1)
        .is_some_and(|u| u.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("sips:")))
}

#[cfg(test)]
mod call_tests;
#[cfg(test)]
mod tests;
