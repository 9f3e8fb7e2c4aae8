//! Event subscriptions (RFC 6665) for one package, `message-summary` (RFC 3842): phones
//! SUBSCRIBE to a mailbox and get a NOTIFY with its counts at once and at every change.
//! Also the unsolicited NOTIFY that PBX-provisioned phones expect without subscribing.
//!
//! Each subscription is a dialog of its own (UAS side), refreshed by an in-dialog
//! SUBSCRIBE and ended by `Expires: 0`, by its expiry, or by the phone answering a
//! NOTIFY with 481 or another failure (RFC 6665 4.1.3).

use super::msg::{build_request, random_token, Request};
use super::txn::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The one event package served.
pub const MWI_EVENT: &str = "message-summary";
pub const MWI_CONTENT_TYPE: &str = "application/simple-message-summary";
/// Subscription duration granted when the phone asks for none, and the most granted.
const DEFAULT_EXPIRES: u32 = 3600;
/// Shortest subscription accepted (RFC 6665 4.2.1.1: 423 Interval Too Brief below it).
const MIN_EXPIRES: u32 = 60;
/// How long an expired or ended subscription is kept for its final NOTIFY.
const EXPIRY_GRACE: std::time::Duration = std::time::Duration::from_secs(32);

/// A subscription's handle: the endpoint's handle space, shared with calls.
pub type Handle = u64;

#[derive(Debug)]
struct Subscription {
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
    expires_at: Instant,
}

/// What the endpoint answers a SUBSCRIBE with, and announces.
#[derive(Debug, PartialEq, Eq)]
pub enum Subscribe {
    /// Refused: status, reason phrase, extra headers.
    Refuse(u16, &'static str, Vec<(&'static str, String)>),
    /// A refresh of `sub` (an unsubscribe when `expires` is 0): 200 with `to_tag`.
    Refreshed { sub: Handle, to_tag: String, expires: u32 },
    /// A new subscription to `account`'s mailbox: 200 (with our Contact).
    New { sub: Handle, account: String, expires: u32 },
}

/// A NOTIFY to send in a new client transaction.
#[derive(Debug)]
pub struct Notify {
    pub branch: String,
    pub peer: Peer,
    pub bytes: Vec<u8>,
}

/// The subscriptions of one endpoint.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_handle: HashMap<Handle, Subscription>,
    /// (Call-ID, the subscriber's tag, our tag) → handle: a refresh is found at once,
    /// however many subscriptions there are.
    by_dialog: HashMap<(String, String, String), Handle>,
}

impl Subscriptions {
    /// A SUBSCRIBE (outside or inside a subscription's dialog) with our `tag`; `handle`
    /// hands out the handle of a new subscription.
    pub fn subscribe(
        &mut self,
        now: Instant,
        peer: Peer,
        r: &Request,
        tag: &str,
        handle: impl FnOnce() -> Handle,
    ) -> Subscribe {
        if let Some(refusal) = refusal(r) {
            return refusal;
        }
        let asked: Option<u32> = r.raw.header("Expires").and_then(|v| v.trim().parse().ok());
        let expires = asked.unwrap_or(DEFAULT_EXPIRES).min(DEFAULT_EXPIRES);
        let remote_tag = r.from_tag.clone().unwrap_or_default();

        // A refresh (or an unsubscribe) within an existing subscription.
        if let Some(to_tag) = r.to_tag.clone() {
            let key = (r.call_id.clone(), remote_tag, to_tag.clone());
            let found = self.by_dialog.get(&key).and_then(|h| self.by_handle.get_mut(h).map(|s| (*h, s)));
            let Some((sub, s)) = found else { return Subscribe::Refuse(481, "Subscription Does Not Exist", vec![]) };
            s.expires_at = now + std::time::Duration::from_secs(expires.into());
            return Subscribe::Refreshed { sub, to_tag, expires };
        }

        let account = r.user().unwrap_or_default().to_string();
        let contact = r.raw.header("Contact").map(angle_uri).unwrap_or_else(|| r.parsed.uri.to_string());
        let to = r.raw.header("To").unwrap_or_default();
        let sub = handle();
        let s = Subscription {
            call_id: r.call_id.clone(),
            remote_tag,
            local_tag: tag.to_string(),
            remote: r.raw.header("From").unwrap_or_default().to_string(),
            local: format!("{to};tag={tag}"),
            target: contact,
            route: r.raw.headers_named("Record-Route").map(str::to_string).collect(),
            peer,
            cseq: 0,
            expires_at: now + std::time::Duration::from_secs(expires.into()),
        };
        self.by_dialog.insert((s.call_id.clone(), s.remote_tag.clone(), s.local_tag.clone()), sub);
        self.by_handle.insert(sub, s);
        // With Expires: 0 this is a one-time fetch: the NOTIFY the application sends
        // now says "terminated" and ends it.
        Subscribe::New { sub, account, expires }
    }

    /// The NOTIFY carrying the current state to a subscriber (RFC 3842 body; empty:
    /// state unknown, no body). After a fetch or an unsubscribe it says `terminated` and
    /// the subscription is gone.
    pub fn notify(
        &mut self,
        now: Instant,
        sub: Handle,
        body: &str,
        local: SocketAddr,
        user_agent: &str,
    ) -> Option<Notify> {
        let s = self.by_handle.get_mut(&sub)?;
        let left = s.expires_at.saturating_duration_since(now).as_secs();
        let state = if left == 0 { "terminated;reason=timeout".to_string() } else { format!("active;expires={left}") };
        s.cseq += 1;
        let branch = format!("z9hG4bK{}", random_token());
        let mut headers: Vec<(&str, String)> = vec![
            ("Via", s.peer.transport.via(local, &branch)),
            ("Max-Forwards", "70".into()),
            ("From", s.local.clone()),
            ("To", s.remote.clone()),
            ("Call-ID", s.call_id.clone()),
            ("CSeq", format!("{} NOTIFY", s.cseq)),
            ("Contact", format!("<sip:voxbridge@{local}>")),
            ("Event", MWI_EVENT.into()),
            ("Subscription-State", state),
            ("User-Agent", user_agent.to_string()),
        ];
        for rr in &s.route {
            headers.push(("Route", rr.clone()));
        }
        let body = (!body.is_empty()).then_some((MWI_CONTENT_TYPE, body.as_bytes()));
        let bytes = build_request("NOTIFY", &s.target, &headers, body);
        let peer = s.peer;
        if left == 0 {
            self.remove(sub);
        }
        Some(Notify { branch, peer, bytes })
    }

    /// Ends `sub` now (an unsubscribe): its final NOTIFY says `terminated`.
    pub fn end(&mut self, now: Instant, sub: Handle) {
        if let Some(s) = self.by_handle.get_mut(&sub) {
            s.expires_at = now;
        }
    }

    /// Forgets `sub` (its NOTIFY failed); whether it existed.
    pub fn remove(&mut self, sub: Handle) -> bool {
        let Some(s) = self.by_handle.remove(&sub) else { return false };
        self.by_dialog.remove(&(s.call_id, s.remote_tag, s.local_tag));
        true
    }

    /// Drops `sub` if it was not refreshed in time, [`EXPIRY_GRACE`] after its expiry
    /// (room for the final NOTIFY of an unsubscribe); whether it did.
    pub fn expire(&mut self, now: Instant, sub: Handle) -> bool {
        let due = self.by_handle.get(&sub).is_some_and(|s| s.expires_at + EXPIRY_GRACE <= now);
        due && self.remove(sub)
    }

    /// When `sub` is dropped unless refreshed.
    pub fn deadline(&self, sub: Handle) -> Option<Instant> {
        self.by_handle.get(&sub).map(|s| s.expires_at + EXPIRY_GRACE)
    }

    pub fn len(&self) -> usize {
        self.by_handle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }
}

/// Why a SUBSCRIBE is refused whoever sends it (another event package, too short an
/// interval), checked before credentials: the answer reveals nothing of a mailbox.
pub fn refusal(r: &Request) -> Option<Subscribe> {
    let event = r.raw.header("Event").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if event != MWI_EVENT {
        return Some(Subscribe::Refuse(489, "Bad Event", vec![("Allow-Events", MWI_EVENT.to_string())]));
    }
    let asked: Option<u32> = r.raw.header("Expires").and_then(|v| v.trim().parse().ok());
    if asked.is_some_and(|e| e > 0 && e < MIN_EXPIRES) {
        return Some(Subscribe::Refuse(423, "Interval Too Brief", vec![("Min-Expires", MIN_EXPIRES.to_string())]));
    }
    None
}

/// An unsolicited NOTIFY (outside any dialog) to a phone configured for a mailbox.
pub fn unsolicited_notify(target: &str, peer: Peer, body: &str, local: SocketAddr, user_agent: &str) -> Notify {
    let branch = format!("z9hG4bK{}", random_token());
    let headers: Vec<(&str, String)> = vec![
        ("Via", peer.transport.via(local, &branch)),
        ("Max-Forwards", "70".into()),
        ("From", format!("<sip:voxbridge@{local}>;tag={}", random_token())),
        ("To", format!("<{target}>")),
        ("Call-ID", format!("{}@voxbridge", random_token())),
        ("CSeq", "1 NOTIFY".into()),
        ("Contact", format!("<sip:voxbridge@{local}>")),
        ("Event", MWI_EVENT.into()),
        ("Subscription-State", "active".into()),
        ("User-Agent", user_agent.to_string()),
    ];
    let bytes = build_request("NOTIFY", target, &headers, Some((MWI_CONTENT_TYPE, body.as_bytes())));
    Notify { branch, peer, bytes }
}

/// The URI inside `<...>` of a name-addr, or the value up to its parameters.
fn angle_uri(v: &str) -> String {
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}
