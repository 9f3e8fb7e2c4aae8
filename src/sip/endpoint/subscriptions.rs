//! Event subscriptions (RFC 6665) for one package, `message-summary` (RFC 3842): phones
//! SUBSCRIBE to a mailbox and get a NOTIFY with its counts at once and at every change.
//! Also the unsolicited NOTIFY that PBX-provisioned phones expect without subscribing.
//!
//! Each subscription is a dialog of its own (UAS side), refreshed by an in-dialog
//! SUBSCRIBE and ended by `Expires: 0`, by its expiry, or by the phone answering a
//! NOTIFY with 481 or another failure (RFC 6665 4.1.3).

use super::*;

/// The one event package served.
pub const MWI_EVENT: &str = "message-summary";
pub const MWI_CONTENT_TYPE: &str = "application/simple-message-summary";
/// Subscription duration granted when the phone asks for none, and the most granted.
const DEFAULT_EXPIRES: u32 = 3600;
/// Shortest subscription accepted (RFC 6665 4.2.1.1: 423 Interval Too Brief below it).
const MIN_EXPIRES: u32 = 60;
/// How long an expired or ended subscription is kept for its final NOTIFY.
const EXPIRY_GRACE: std::time::Duration = std::time::Duration::from_secs(32);

#[derive(Debug)]
pub(super) struct Subscription {
    call_id: String,
    remote_tag: String,
    local_tag: String,
    /// The subscriber's From (our To), and our To with tag (our From).
    remote: String,
    local: String,
    /// Where NOTIFYs go: the subscriber's Contact, through its Record-Route.
    target: String,
    route: Vec<String>,
    peer: Peer,
    cseq: u32,
    pub(super) expires_at: Instant,
}

impl Endpoint {
    pub(super) fn handle_subscribe(&mut self, now: Instant, peer: Peer, key: TxKey, r: Request, tag: String) {
        let event = r.raw.header("Event").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if event != MWI_EVENT {
            let extra = [("Allow-Events", MWI_EVENT.to_string())];
            self.respond(now, &key, &r.raw, 489, "Bad Event", &tag, &extra, None);
            return;
        }
        let asked: Option<u32> = r.raw.header("Expires").and_then(|v| v.trim().parse().ok());
        if asked.is_some_and(|e| e > 0 && e < MIN_EXPIRES) {
            let extra = [("Min-Expires", MIN_EXPIRES.to_string())];
            self.respond(now, &key, &r.raw, 423, "Interval Too Brief", &tag, &extra, None);
            return;
        }
        let expires = asked.unwrap_or(DEFAULT_EXPIRES).min(DEFAULT_EXPIRES);
        let remote_tag = r.from_tag.clone().unwrap_or_default();

        // A refresh (or an unsubscribe) within an existing subscription.
        if let Some(to_tag) = r.to_tag.clone() {
            let found = self
                .subscriptions
                .iter()
                .find(|(_, s)| s.call_id == r.call_id && s.remote_tag == remote_tag && s.local_tag == to_tag)
                .map(|(h, _)| *h);
            let Some(sub) = found else {
                self.respond(now, &key, &r.raw, 481, "Subscription Does Not Exist", &tag, &[], None);
                return;
            };
            self.respond(now, &key, &r.raw, 200, "OK", &to_tag, &[("Expires", expires.to_string())], None);
            if let Some(s) = self.subscriptions.get_mut(&sub) {
                s.expires_at = now + std::time::Duration::from_secs(expires.into());
            }
            if expires == 0 {
                self.end_subscription(now, sub, "unsubscribed");
            } else {
                self.events.push_back(Event::Refreshed(sub));
            }
            return;
        }

        let account = r.parsed.uri.auth.as_ref().map(|a| a.user.clone()).unwrap_or_default();
        let contact = r.raw.header("Contact").map(angle_uri).unwrap_or_else(|| r.parsed.uri.to_string());
        let to = r.raw.header("To").unwrap_or_default();
        let sub = self.next_handle;
        self.next_handle += 1;
        let s = Subscription {
            call_id: r.call_id.clone(),
            remote_tag,
            local_tag: tag.clone(),
            remote: r.raw.header("From").unwrap_or_default().to_string(),
            local: format!("{to};tag={tag}"),
            target: contact,
            route: r.raw.headers_named("Record-Route").map(str::to_string).collect(),
            peer,
            cseq: 0,
            expires_at: now + std::time::Duration::from_secs(expires.into()),
        };
        let extra = [("Expires", expires.to_string()), ("Contact", self.contact(peer.transport))];
        self.respond(now, &key, &r.raw, 200, "OK", &tag, &extra, None);
        self.subscriptions.insert(sub, s);
        // With Expires: 0 this is a one-time fetch: the NOTIFY the application sends
        // now says "terminated" and ends it.
        self.events.push_back(Event::Subscribed { sub, account });
    }

    /// Sends the current state to a subscriber (RFC 3842 body; empty: state unknown, no
    /// body). After a fetch or an unsubscribe the NOTIFY says `terminated` and the
    /// subscription is gone.
    pub fn notify(&mut self, now: Instant, sub: CallHandle, body: &str) {
        let Some(s) = self.subscriptions.get_mut(&sub) else { return };
        let left = s.expires_at.saturating_duration_since(now).as_secs();
        let state = if left == 0 { "terminated;reason=timeout".to_string() } else { format!("active;expires={left}") };
        s.cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let mut headers: Vec<(&str, String)> = vec![
            ("Via", format!("SIP/2.0/{} {};branch={branch};rport", s.peer.transport.via_name(), self.cfg.local)),
            ("Max-Forwards", "70".into()),
            ("From", s.local.clone()),
            ("To", s.remote.clone()),
            ("Call-ID", s.call_id.clone()),
            ("CSeq", format!("{} NOTIFY", s.cseq)),
            ("Contact", format!("<sip:voxbridge@{}>", self.cfg.local)),
            ("Event", MWI_EVENT.into()),
            ("Subscription-State", state),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        for rr in &s.route {
            headers.push(("Route", rr.clone()));
        }
        let body = (!body.is_empty()).then_some((MWI_CONTENT_TYPE, body.as_bytes()));
        let bytes = build_request("NOTIFY", &s.target, &headers, body);
        let peer = s.peer;
        self.client_txs.insert(branch, (sub, "NOTIFY", ClientTx::new(now, peer, bytes.clone())));
        self.send(peer, bytes);
        if left == 0 {
            self.subscriptions.remove(&sub);
        }
    }

    /// An unsolicited NOTIFY (outside any dialog) to a phone configured for a mailbox.
    pub fn notify_unsolicited(&mut self, now: Instant, target: &str, peer: Peer, body: &str) {
        let branch = format!("z9hG4bK{}", random_token());
        let headers: Vec<(&str, String)> = vec![
            ("Via", format!("SIP/2.0/{} {};branch={branch};rport", peer.transport.via_name(), self.cfg.local)),
            ("Max-Forwards", "70".into()),
            ("From", format!("<sip:voxbridge@{}>;tag={}", self.cfg.local, random_token())),
            ("To", format!("<{target}>")),
            ("Call-ID", format!("{}@voxbridge", random_token())),
            ("CSeq", "1 NOTIFY".into()),
            ("Contact", format!("<sip:voxbridge@{}>", self.cfg.local)),
            ("Event", MWI_EVENT.into()),
            ("Subscription-State", "active".into()),
            ("User-Agent", self.cfg.user_agent.clone()),
        ];
        let bytes = build_request("NOTIFY", target, &headers, Some((MWI_CONTENT_TYPE, body.as_bytes())));
        // Handle 0: no dialog; the answer is only logged.
        self.client_txs.insert(branch, (0, "NOTIFY", ClientTx::new(now, peer, bytes.clone())));
        self.send(peer, bytes);
    }

    /// A NOTIFY failed (error response or timeout): the subscription is over.
    pub(super) fn notify_failed(&mut self, sub: CallHandle, why: &str) {
        if sub == 0 {
            tracing::warn!(reason = why, "unsolicited NOTIFY failed");
            return;
        }
        if self.subscriptions.remove(&sub).is_some() {
            tracing::info!(sub, reason = why, "subscription ended by the subscriber");
            self.events.push_back(Event::Unsubscribed(sub));
        }
    }

    fn end_subscription(&mut self, now: Instant, sub: CallHandle, why: &str) {
        if let Some(s) = self.subscriptions.get_mut(&sub) {
            s.expires_at = now;
        }
        tracing::debug!(sub, reason = why, "subscription ending");
        // The application sends the final NOTIFY (terminated) with the current state.
        self.events.push_back(Event::Ending(sub));
    }

    /// Drops subscriptions not refreshed in time; [`EXPIRY_GRACE`] after their expiry
    /// leaves room for the final NOTIFY of an unsubscribe.
    pub(super) fn expire_subscriptions(&mut self, now: Instant) {
        let due: Vec<CallHandle> =
            self.subscriptions.iter().filter(|(_, s)| s.expires_at + EXPIRY_GRACE <= now).map(|(h, _)| *h).collect();
        for sub in due {
            self.subscriptions.remove(&sub);
            tracing::info!(sub, "subscription expired");
            self.events.push_back(Event::Unsubscribed(sub));
        }
    }

    pub(super) fn next_subscription_timeout(&self) -> Option<Instant> {
        self.subscriptions.values().map(|s| s.expires_at + EXPIRY_GRACE).min()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }
}

/// The URI inside `<...>` of a name-addr, or the value up to its parameters.
fn angle_uri(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}
