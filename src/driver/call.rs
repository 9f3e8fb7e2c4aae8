//! What every call task shares: the context (configuration, store, prompts, ports, the
//! services), and the pieces every call uses (what a SIP event means, the RTP totals,
//! prompt lookup).

use super::channels::CallEvent;
use super::ports::PortPool;
use crate::config::Config;
use crate::ivr::dialplan::Dialplan;
use crate::media::prompts::{Clip, Prompts};
use crate::rtp::session::{SessionParams, SessionStats};
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Totals over all calls since start-up, logged at shutdown and by the load benchmark.
#[derive(Debug, Default)]
pub struct CallTotals {
    pub calls: AtomicU64,
    pub messages_saved: AtomicU64,
    pub rtp_received: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub rtp_late: AtomicU64,
    pub rtp_overflow: AtomicU64,
    pub rtp_send_dropped: AtomicU64,
}

/// What every call task shares.
pub struct CallCtx {
    /// The configuration the server started with (sockets, store, tasks).
    pub cfg: Config,
    /// The configuration file, read again on reload.
    pub config_file: Option<std::path::PathBuf>,
    /// The configuration calls start with: `cfg` with the per-call sections a reload
    /// took ([`Config::reloaded`]).
    pub live: RwLock<Arc<Config>>,
    pub store: Store,
    /// The prompts of `[prompts] language`.
    pub prompts: Arc<Prompts>,
    /// The prompts of every other language with a prompt directory, each falling back
    /// to the default language's for an id it lacks.
    pub languages: std::collections::BTreeMap<String, Arc<Prompts>>,
    /// The dialplan new calls are routed by; `reload` replaces it (calls in progress
    /// keep the route they got).
    pub dialplan: RwLock<Arc<Dialplan>>,
    pub ports: PortPool,
    pub beep: Arc<Clip>,
    pub totals: CallTotals,
    /// What a caller or subscriber does with messages (deposit, forward, reply, mark):
    /// each announces its change on the change hub and wakes the outbox.
    pub messages: crate::services::messages::Messages,
    /// The message-waiting task, for the SIP task's subscription events.
    pub mwi: Option<super::channels::MwiPoke>,
    /// The SMDI link task, when `[smdi] link` is set: calls ask it for their call detail.
    pub smdi: Option<super::smdi_io::SmdiHandle>,
    /// SIP over TLS's certificate, when `[sip] tls_listen` is set (reloaded by `reload`).
    pub sip_tls: Option<Arc<super::sip_tls::TlsServer>>,
    /// The calls in progress (`voxbridge calls`).
    pub active: super::active_calls::ActiveCalls,
    /// A graceful shutdown is waiting for the calls in progress: new ones get 503.
    pub draining: AtomicBool,
    /// Phones subscribed to message-waiting state now.
    pub mwi_subscriptions: AtomicUsize,
}

impl CallCtx {
    /// The prompts a mailbox's language plays (the default language's when it has none,
    /// or one without prompts here — logged).
    pub fn prompts_for(&self, lang: Option<&str>) -> Arc<Prompts> {
        match lang {
            Some(l) if l != self.cfg.prompts.language => self.languages.get(l).cloned().unwrap_or_else(|| {
                tracing::warn!(language = l, "no prompts loaded for the mailbox's language; playing the default");
                self.prompts.clone()
            }),
            _ => self.prompts.clone(),
        }
    }

    /// The dialplan for a new call.
    pub fn dialplan(&self) -> Arc<Dialplan> {
        self.dialplan.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn dialplan_file(&self) -> String {
        self.live().dialplan.file.display().to_string()
    }

    /// The configuration for a new call.
    pub fn live(&self) -> Arc<Config> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `SIGHUP` and `voxbridge reload`: reads the configuration file and the dialplan
    /// again. The per-call sections apply from the next call, a changed section that
    /// needs a restart is named, and an invalid file or dialplan is refused with its
    /// error — the old configuration and dialplan stay entirely. Calls in progress keep
    /// what they started with.
    pub fn reload(&self) -> Result<String, String> {
        let mut said = Vec::new();
        let next = match &self.config_file {
            Some(path) => match Config::load(Some(path)) {
                Ok(new) => {
                    let (live, taken, restart) = self.live().reloaded(&new);
                    if !restart.is_empty() {
                        tracing::warn!(
                            sections = %restart.join(", "),
                            "configuration changed where a reload cannot apply it; restart the server for these"
                        );
                        said.push(format!("needs a restart: [{}]", restart.join("], [")));
                    }
                    Some((live, taken))
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    tracing::error!(error = %e, "configuration not reloaded; the old one stays");
                    return Err(format!("configuration not reloaded, the old one stays: {e}"));
                }
            },
            None => None,
        };
        let file = next.as_ref().map_or_else(|| self.live().dialplan.file.clone(), |(l, _)| l.dialplan.file.clone());
        let d = match Dialplan::load(&file) {
            Ok(d) => d,
            Err(e) => {
                let e = format!("{e:#}");
                tracing::error!(path = %file.display(), error = %e, "dialplan not reloaded; the old one stays");
                return Err(format!("dialplan not reloaded, the old one stays: {e}"));
            }
        };
        if let Some((live, taken)) = next {
            if !taken.is_empty() {
                tracing::info!(sections = %taken.join(", "), "configuration reloaded; new calls use it");
                said.push(format!("configuration: [{}] from the next call", taken.join("], [")));
            }
            if let Err(e) = crate::services::lists::import_configured(&self.store, &live.menu.list) {
                tracing::error!(error = %format!("{e:#}"), "distribution lists of the configuration not imported");
            }
            *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        }
        if let Some(tls) = &self.sip_tls {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("SIP TLS certificate reloaded; new connections get it");
                    said.push("SIP TLS certificate reloaded".into());
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    tracing::error!(error = %e, "SIP TLS certificate not reloaded; the old one stays");
                    said.push(format!("SIP TLS certificate not reloaded, the old one stays: {e}"));
                }
            }
        }
        let routes = d.routes.len();
        *self.dialplan.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(d);
        tracing::info!(path = %file.display(), routes, "dialplan reloaded");
        said.insert(0, format!("dialplan {} ({routes} routes)", file.display()));
        Ok(said.join("; "))
    }
}

/// What a SIP event means for the application: `None` nothing (the ACK), `Some(true)`
/// the server is shutting down (end the application, then send BYE), `Some(false)` the
/// caller is gone.
pub fn caller_leaving(ev: Option<CallEvent>) -> Option<bool> {
    match ev {
        // A late ACK, a re-INVITE or the answer to ours outside an application's loop
        // (the call loop hands those to the application before asking this).
        Some(CallEvent::Confirmed(_) | CallEvent::Reoffer(_) | CallEvent::ReinviteAnswer(_)) => None,
        Some(CallEvent::Shutdown) => Some(true),
        Some(CallEvent::Gone(why)) => {
            tracing::info!(reason = %why, "caller gone");
            Some(false)
        }
        None => Some(false),
    }
}

/// Adds the call's RTP counters to the totals and logs them.
pub fn record_totals(ctx: &CallCtx, st: SessionStats, send_dropped: u64) {
    let t = &ctx.totals;
    let m = &crate::metrics::METRICS;
    m.rtp_received.inc_by(st.jitter.received);
    m.rtp_lost.inc_by(st.jitter.lost);
    m.rtp_late.inc_by(st.jitter.late);
    t.rtp_received.fetch_add(st.jitter.received, Ordering::Relaxed);
    t.rtp_lost.fetch_add(st.jitter.lost, Ordering::Relaxed);
    t.rtp_late.fetch_add(st.jitter.late, Ordering::Relaxed);
    t.rtp_overflow.fetch_add(st.jitter.overflow, Ordering::Relaxed);
    t.rtp_send_dropped.fetch_add(send_dropped, Ordering::Relaxed);
    tracing::info!(
        rtp_received = st.jitter.received,
        rtp_lost = st.jitter.lost,
        rtp_late = st.jitter.late,
        rtp_overflow = st.jitter.overflow,
        rtp_sent = st.sent,
        rtp_withheld = st.withheld,
        rtp_foreign_source = st.foreign_source,
        rtcp_sent = st.rtcp_sent,
        rtcp_received = st.rtcp_received,
        srtp_rejected = st.srtp_rejected,
        send_dropped,
        "call ended"
    );
}

pub fn clip(p: &Prompts, id: &str) -> Arc<Clip> {
    p.get(id).unwrap_or_else(|| {
        tracing::warn!(prompt = id, "prompt missing; playing silence");
        Arc::new(Clip::from_pcm(vec![0; 800], "silence"))
    })
}

/// A call's RTP session parameters from the config; `signalling` is the SIP peer's host
/// (its RTP may come from there too), `confirmed` whether the ACK already came.
/// `keying`: the call's SRTP policy and whether its signalling came over TLS.
pub fn session_params(
    cfg: &Config,
    signalling: std::net::IpAddr,
    confirmed: bool,
    keying: crate::srtp::Keying,
) -> SessionParams {
    let r = &cfg.rtp;
    SessionParams {
        jitter_frames: r.jitter_frames,
        timeout_ticks: (r.timeout_secs * 1000 / crate::rtp::FRAME.as_millis() as u64).min(u32::MAX as u64) as u32,
        policy: r.sdp_addresses,
        cname: format!("voxbridge@{}", cfg.media_ip()),
        wallclock: std::time::SystemTime::now(),
        confirmed,
        signalling: Some(signalling),
        keying,
    }
}
