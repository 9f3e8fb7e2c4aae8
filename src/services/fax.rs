//! A received fax made a message: the file spandsp wrote becomes a message of kind fax
//! in state U with its pages counted — durable before it is announced, delivered by
//! the outbox like a voice message. A fax that failed part way keeps the pages that
//! arrived; a call that brought no page leaves nothing behind.
//!
//! Sending's rules too: what a fax target is, which messages can be faxed (queued as a
//! job), which failures are worth another attempt, and how a send is reported.

use super::messages::Messages;
use crate::config::PlacedTransport;
use crate::fax::spandsp::Outcome;
use crate::ivr::fax::Finished;
use crate::model::MessageKind;
use crate::notify::Origin;
use crate::store::api::Backend;
use crate::store::fax_jobs::{FaxSource, JobEnd, NewFaxJob};
use crate::store::NewFaxMessage;
use anyhow::{bail, Context, Result};

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

/// Where a fax goes: `sip:NUMBER@HOST[:PORT][;transport=udp|tcp|tls]` or
/// `sips:NUMBER@HOST[:PORT]` (TLS, RFC 5630).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaxTarget {
    pub user: String,
    /// As written, without the port (an IPv6 address in its brackets).
    pub host: String,
    pub port: Option<u16>,
    /// What the URI says of the transport (`sips:` is TLS); `None`: the trunk's, or UDP.
    pub transport: Option<PlacedTransport>,
    pub sips: bool,
}

impl FaxTarget {
    /// `HOST:PORT` to connect to over `transport`: 5061 for TLS, 5060 otherwise, unless
    /// the URI named a port.
    pub fn host_port(&self, transport: PlacedTransport) -> String {
        let port = self.port.unwrap_or(if transport == PlacedTransport::Tls { 5061 } else { 5060 });
        format!("{}:{port}", self.host)
    }

    /// The host as a TLS server name: without an IPv6 address's brackets.
    pub fn server_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Reads a fax target, or says what form was expected.
pub fn parse_target(uri: &str) -> Result<FaxTarget> {
    let form = "expected sip:NUMBER@HOST[:PORT] or sips:NUMBER@HOST[:PORT]";
    let (sips, rest) = match (uri.strip_prefix("sips:"), uri.strip_prefix("sip:")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => bail!("--to {uri:?}: {form}"),
    };
    let mut parts = rest.split(';');
    let addr = parts.next().unwrap_or(rest);
    let mut transport = sips.then_some(PlacedTransport::Tls);
    for param in parts {
        let Some(("transport", value)) = param.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else { continue };
        let t: PlacedTransport = value.parse().map_err(|e: String| anyhow::anyhow!("--to {uri:?}: {e}"))?;
        if sips && t != PlacedTransport::Tls {
            bail!("--to {uri:?}: a sips: URI is reached over TLS only, not transport={value}");
        }
        transport = Some(t);
    }
    let Some((user, host)) = addr.split_once('@') else { bail!("--to {uri:?}: no NUMBER@ before the host") };
    if user.is_empty() || host.is_empty() {
        bail!("--to {uri:?}: {form}");
    }
    let (host, port) = match host.rsplit_once(':') {
        Some((name, port)) if !host.ends_with(']') => {
            let port = port.parse::<u16>().with_context(|| format!("--to {uri:?}: bad port {port:?}"))?;
            (name.to_string(), Some(port))
        }
        _ => (host.to_string(), None),
    };
    if host.is_empty() {
        bail!("--to {uri:?}: {form}");
    }
    Ok(FaxTarget { user: user.to_string(), host, port, transport, sips })
}

/// Queues message `id` of `mailbox` to be sent as a fax to `target` (the job's id). A
/// stored fax goes as it was received; an e-mail is set onto pages (its headers, then
/// what was written); a voice message is refused. Blocking: run it on the store's
/// thread.
pub fn forward_fax(
    store: &dyn Backend,
    mailbox: &str,
    id: i64,
    target: &str,
    ident: &str,
    paper: crate::fax::pages::Paper,
) -> Result<i64> {
    parse_target(target)?;
    let m = store
        .message(id)?
        .filter(|m| m.mailbox == mailbox)
        .with_context(|| format!("mailbox {mailbox} has no message {id}"))?;
    let from = match (m.kind, &m.media_path) {
        (MessageKind::Fax, Some(p)) => FaxSource::File(p.clone()),
        (MessageKind::Fax, None) => bail!("fax {id} has no pages stored"),
        (MessageKind::Voice, _) => {
            bail!("message {id} is a voice message: only faxes and e-mails can be sent to a fax machine")
        }
        (MessageKind::Email, _) => {
            let raw = store
                .message_raw(id)?
                .with_context(|| format!("e-mail {id} has no body stored here (retrieved headers only)"))?;
            let pages = crate::fax::text::render(&crate::fax::text::email_text(&raw)?, paper)?;
            FaxSource::Tiff(crate::fax::pages::tiff(&pages))
        }
    };
    let job = NewFaxJob {
        mailbox: mailbox.to_string(),
        source_message: Some(id),
        target: target.to_string(),
        ident: ident.to_string(),
        from,
    };
    let job_id = store.queue_fax_job(&job)?;
    tracing::info!(mailbox, message = id, job = job_id, %target, "fax queued to send");
    Ok(job_id)
}

/// How a job's attempt ends: sent when every page was confirmed; another attempt
/// (after `retry_secs`) when it is worth one and `attempts` (this one counted) leave
/// room within `retries`; else failed.
pub fn job_end(ok: bool, retry_worthy: bool, attempts: i64, retries: u32, retry_secs: f64, now_ms: i64) -> JobEnd {
    if ok {
        JobEnd::Sent
    } else if retry_worthy && attempts <= retries as i64 {
        JobEnd::Retry(now_ms + (retry_secs * 1000.0) as i64)
    } else {
        JobEnd::Failed
    }
}

/// How a send ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SendReport {
    pub to: String,
    pub ok: bool,
    pub pages_sent: u32,
    /// T.30's result ("OK" or spandsp's reason), or why the call failed.
    pub result: String,
    /// T.30's completion code; absent when no fax session took place.
    pub t30_code: Option<i32>,
    /// The SIP status of a call that was not answered.
    pub sip_status: Option<u16>,
    pub attempts: u32,
    /// "T.38" or "G.711" (the last attempt's).
    pub transport: Option<&'static str>,
    /// The SIP transport of the last answered attempt: "UDP", "TCP" or "TLS".
    pub signalling: Option<&'static str>,
    /// The SRTP suite of a G.711 fax sent with SRTP (over TLS).
    pub srtp: Option<&'static str>,
    pub bit_rate: Option<u32>,
    pub ecm: Option<bool>,
    pub remote_ident: Option<String>,
    pub call_secs: f64,
}

/// What one attempt came to.
pub enum Attempt {
    /// The call was not answered (status, reason).
    NotAnswered(u16, String),
    /// The call was answered; the fax ended so, carried so.
    Faxed(Box<Finished>, Carried),
}

/// How an answered fax call was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    /// Moved to T.38 (else G.711 throughout).
    pub t38: bool,
    /// "UDP", "TCP" or "TLS".
    pub signalling: &'static str,
    /// The SRTP suite, when the G.711 media was encrypted.
    pub srtp: Option<&'static str>,
}

impl SendReport {
    pub fn new(to: &str) -> SendReport {
        SendReport {
            to: to.to_string(),
            ok: false,
            pages_sent: 0,
            result: String::new(),
            t30_code: None,
            sip_status: None,
            attempts: 0,
            transport: None,
            signalling: None,
            srtp: None,
            bit_rate: None,
            ecm: None,
            remote_ident: None,
            call_secs: 0.0,
        }
    }

    /// Takes in how an attempt went; whether another attempt is worth making (busy,
    /// no answer, or no page through — pages the far machine confirmed are never sent
    /// again).
    pub fn apply(&mut self, a: Attempt) -> bool {
        match a {
            Attempt::NotAnswered(status, reason) => {
                tracing::info!(status, %reason, attempt = self.attempts, "fax call not answered");
                self.sip_status = Some(status);
                self.transport = None;
                self.result = format!("call not answered: {status} {reason}");
                worth_retrying(status)
            }
            Attempt::Faxed(f, carried) => {
                self.sip_status = None;
                self.transport = Some(if carried.t38 { "T.38" } else { "G.711" });
                self.signalling = Some(carried.signalling);
                self.srtp = carried.srtp.filter(|_| !carried.t38);
                match &f.outcome {
                    Some(o) => {
                        self.ok = o.ok();
                        self.pages_sent = o.pages_sent;
                        self.result = o.text.clone();
                        self.t30_code = Some(o.code);
                        self.bit_rate = Some(o.bit_rate);
                        self.ecm = Some(o.ecm);
                        self.remote_ident = Some(o.remote_ident.clone()).filter(|s| !s.is_empty());
                    }
                    None => self.result = "the call ended before the fax did".into(),
                }
                !self.ok && self.pages_sent == 0
            }
        }
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
    use super::*;

    #[test]
    fn targets_are_read_or_refused_with_the_form_expected() {
        let t = parse_target("sip:7001@127.0.0.1:5062").unwrap();
        assert_eq!(
            (t.user.as_str(), t.host_port(PlacedTransport::Udp), t.transport),
            ("7001", "127.0.0.1:5062".into(), None)
        );
        assert_eq!(
            parse_target("sip:5551234@trunk.example").unwrap().host_port(PlacedTransport::Udp),
            "trunk.example:5060"
        );
        let v6 = parse_target("sip:1@[::1]").unwrap();
        assert_eq!((v6.host_port(PlacedTransport::Udp), v6.server_name()), ("[::1]:5060".into(), "::1"));
        assert_eq!(parse_target("sip:1@host;transport=udp").unwrap().transport, Some(PlacedTransport::Udp));
        assert_eq!(parse_target("sip:1@host;transport=TCP").unwrap().transport, Some(PlacedTransport::Tcp));
        let s = parse_target("sips:1@host").unwrap();
        assert_eq!(
            (s.sips, s.transport, s.host_port(PlacedTransport::Tls)),
            (true, Some(PlacedTransport::Tls), "host:5061".into())
        );
        assert_eq!(parse_target("sip:1@host;transport=tls").unwrap().host_port(PlacedTransport::Tls), "host:5061");
        for bad in [
            "7001@host",
            "sip:host",
            "sip:@host",
            "sip:1@host:x",
            "sip:1@:5060",
            "sips:1@host;transport=udp",
            "sip:1@h;transport=sctp",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_job_is_retried_while_worth_it_and_room_is_left() {
        assert_eq!(job_end(true, false, 1, 2, 60.0, 0), JobEnd::Sent);
        assert_eq!(job_end(false, true, 1, 2, 60.0, 1000), JobEnd::Retry(61_000));
        assert_eq!(job_end(false, true, 3, 2, 60.0, 0), JobEnd::Failed, "retries used up");
        assert_eq!(job_end(false, false, 1, 2, 60.0, 0), JobEnd::Failed, "a wrong number");
    }

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
