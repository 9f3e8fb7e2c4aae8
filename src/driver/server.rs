//! `voxbridge serve`: opens the store, loads prompts and dialplan, binds the SIP
//! sockets, and runs the SIP task and the outbox until SIGINT/SIGTERM.

use super::call::{CallCtx, CallTotals};
use super::channels::SipCommand;
use super::channels::{MwiPoke, SyncTrigger};
use super::ports::PortPool;
use crate::config::Config;
use crate::ivr::dialplan::Dialplan;
use crate::mail::outbox::Outbox;
use crate::media::prompts::{Clip, Prompts};
use crate::notify::{Hub, Origin};
use crate::sip::digest::Ha1;
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::store::Store;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// `config_file`: where `cfg` came from, read again on `SIGHUP`/`voxbridge reload`.
pub async fn serve(cfg: Config, config_file: Option<std::path::PathBuf>) -> Result<()> {
    let store = Store::open(&cfg.store.path)?;
    let _one_server = crate::store::server_lock::ServerLock::acquire(&cfg.store.path)?;
    store.start_checkpointer()?;
    crate::services::lists::import_configured(&store, &cfg.menu.list)?;
    let lang_dir = cfg.prompts.dir.join(&cfg.prompts.language);
    let cache = cfg.prompt_cache();
    let (ld, c, v) = (lang_dir.clone(), cache.clone(), cfg.prompts.voice.clone());
    let prompts = tokio::task::spawn_blocking(move || Prompts::load(&ld, &c, &v))
        .await?
        .with_context(|| format!("cannot load prompts from {}", lang_dir.display()))?;
    let dialplan = Dialplan::load(&cfg.dialplan.file)?;
    let languages = load_languages(&cfg, &prompts).await;

    let listen: SocketAddr = cfg.sip.listen;
    let udp = tokio::net::UdpSocket::bind(listen).await.with_context(|| {
        format!("cannot bind SIP UDP {listen} (is another voxbridge or SIP server running? set [sip] listen)")
    })?;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind SIP TCP {listen} (set [sip] listen)"))?;
    let local = SocketAddr::new(cfg.media_ip(), udp.local_addr()?.port());
    let (sip_tls, tls_listener) = match cfg.sip.tls_listen {
        Some(addr) => {
            let (cert, key) = (cfg.sip.tls_cert.as_deref(), cfg.sip.tls_key.as_deref());
            let clients = super::sip_tls::client_auth(&cfg)?;
            let server = super::sip_tls::TlsServer::load(cert.expect("validated"), key.expect("validated"), clients)?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind SIP TLS {addr} (set [sip] tls_listen)"))?;
            tracing::info!(%addr, "SIP over TLS");
            (Some(Arc::new(server)), Some(l))
        }
        None => (None, None),
    };
    let tls_local = match &tls_listener {
        Some(l) => Some(SocketAddr::new(cfg.media_ip(), l.local_addr()?.port())),
        None => None,
    };

    let wake = Arc::new(Notify::new());
    let (sync_trigger, sync_rx) = SyncTrigger::channel();
    let (mwi, mwi_rx) = MwiPoke::channel();
    // The change hub's sinks: the lamps hear of every change but a delivery (which
    // changes no count); the sync engine of what must reach the mail account.
    let changes = Hub::new();
    let lamps = mwi.clone();
    changes.add_sink(move |c| {
        if c.origin != Origin::Delivery {
            lamps.changed(&c.mailbox)
        }
    });
    // The PBX's lamps over SMDI hear what the phones' lamps hear.
    let smdi_link = cfg.smdi.link().map_err(|e| anyhow::anyhow!(e))?;
    let smdi = smdi_link.as_ref().map(|_| super::smdi_io::SmdiHandle::channel(cfg.smdi.clone()));
    if let Some((handle, _)) = &smdi {
        let lamps = handle.clone();
        changes.add_sink(move |c| {
            if c.origin != Origin::Delivery {
                lamps.changed(&c.mailbox)
            }
        });
    }
    let passes = sync_trigger.clone();
    changes.add_sink(move |c| {
        if matches!(c.origin, Origin::Phone | Origin::Delivery) {
            passes.trigger(&c.mailbox)
        }
    });
    let ctx = Arc::new(CallCtx {
        config_file,
        live: std::sync::RwLock::new(Arc::new(cfg.clone())),
        ports: PortPool::new(cfg.rtp.port_range.0.clone()),
        beep: Arc::new(Clip::from_pcm(crate::media::tone(1000.0, 250, 0.4), "beep")),
        cfg: cfg.clone(),
        store: store.clone(),
        prompts: Arc::new({
            let mut p = prompts;
            // The beep before a recording, as a prompt for the menu.
            p.insert("beep", Clip::from_pcm(crate::media::tone(1000.0, 250, 0.4), "beep"));
            p
        }),
        languages: languages.iter().map(|(l, p)| (l.clone(), Arc::new(p.clone()))).collect(),
        dialplan: std::sync::RwLock::new(Arc::new(dialplan)),
        totals: CallTotals::default(),
        messages: crate::services::messages::Messages {
            store: store.clone().into(),
            changes: changes.clone(),
            delivery: cfg.delivery.clone(),
            tts_voice: cfg.prompts.voice.clone(),
            reader: Arc::new(crate::services::reading::reader(&cfg, &cfg.prompts.language)?),
            lang: cfg.prompts.language.clone(),
            other_readers: Arc::new(crate::services::reading::other_readers(&cfg)?),
            outbox_wake: wake.clone(),
            speech_rates: Arc::new(cfg.prompts.rates.clone()),
            speech_cache_bytes: cfg.menu.speech_cache_mb * 1024 * 1024,
        },
        mwi: Some(mwi.clone()),
        smdi: smdi.as_ref().map(|(h, _)| h.clone()),
        sip_tls,
        active: Default::default(),
        draining: Default::default(),
        mwi_subscriptions: Default::default(),
    });

    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let sync_task = tokio::spawn(super::sync_io::run(
        store.clone(),
        cfg.sync.clone(),
        cfg.store.trash_days,
        sync_trigger.clone(),
        sync_rx,
        changes.clone(),
        stop.clone(),
    ));
    let outbox = Outbox { store: store.clone(), cfg: cfg.delivery.clone(), wake, changes };
    let outbox_task = tokio::spawn(outbox.run(stop.clone()));
    tokio::spawn(super::fax_jobs::run(Arc::new(cfg.clone()), store.clone().into(), stop.clone()));

    if let (Some(link), Some((_, rx))) = (smdi_link, smdi) {
        tokio::spawn(super::smdi_io::run(cfg.smdi.clone(), link, store.clone(), rx, stop.clone()));
    }
    let access = cfg.sip_access().map_err(|e| anyhow::anyhow!(e))?;
    let mut endpoint = Endpoint::new(EndpointConfig {
        local,
        user_agent: cfg.sip.user_agent.clone(),
        access,
        keep_headers: cfg.smdi.terminal_header.iter().cloned().collect(),
        tls_local,
    });
    endpoint.set_credentials(load_sip_secrets(&store).await);
    let (sip_tx, sip_rx) = tokio::sync::mpsc::channel(1024);
    let mwi_task = tokio::spawn(super::mwi_io::run(
        store.clone(),
        cfg.mwi.clone(),
        local.to_string(),
        sip_tx.clone(),
        mwi_rx,
        stop.clone(),
    ));
    tokio::spawn(watch_sip_secrets(store.clone(), sip_tx.clone(), stop.clone()));
    if let Some(addr) = cfg.metrics.listen {
        let listener = super::metrics_http::bind(addr).await?;
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
        tokio::spawn(super::metrics_http::run(listener, store.clone(), stop.clone()));
    }
    tokio::spawn(watch_prompts(
        ctx.prompts.clone(),
        cfg.prompts.dir.join(&cfg.prompts.language),
        cfg.prompt_cache(),
        cfg.prompts.voice.clone(),
        stop.clone(),
    ));
    for (lang, p) in &ctx.languages {
        let (dir, cache, voice) = (cfg.prompts.dir.join(lang), cfg.prompt_cache_for(lang), cfg.prompt_voice(lang));
        tokio::spawn(watch_prompts(p.clone(), dir, cache, voice, stop.clone()));
    }
    let (server_tx, mut server_rx) = tokio::sync::mpsc::unbounded_channel();
    let (control_listener, control_path) = super::control_io::bind(&cfg.store.path)?;
    let control = super::control_io::Control {
        ctx: ctx.clone(),
        store: store.clone(),
        sip: sip_tx.clone(),
        server: server_tx,
        started: std::time::Instant::now(),
    };
    tokio::spawn(super::control_io::run(control, control_listener, control_path, stop.clone()));
    let mut sip_task = tokio::spawn(super::sip_io::run(
        endpoint,
        super::sip_io::Listeners { udp, tcp, tls: tls_listener },
        ctx.clone(),
        tracker.clone(),
        stop.clone(),
        (sip_tx, sip_rx),
    ));

    let mailboxes = store.mailboxes()?;
    let transports = if cfg.sip.tls_listen.is_some() { "udp,tcp,tls" } else { "udp,tcp" };
    tracing::info!(sip = %listen, transports, store = %cfg.store.path.display(), mailboxes = mailboxes.len(), "voxbridge is running");
    super::systemd::notify(&format!("READY=1\nSTATUS=SIP on {listen}, {} mailboxes", mailboxes.len()));
    if let Some(every) = super::systemd::watchdog_interval() {
        tokio::spawn(super::systemd::watchdog(every, stop.clone()));
    }

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            _ = &mut signal => break,
            r = &mut sip_task => {
                r.context("SIP task failed")?;
                break;
            }
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = ctx.reload();
            }
            req = server_rx.recv() => match req {
                Some(super::control_io::ServerRequest::Reload(reply)) => {
                    let _ = reply.send(ctx.reload());
                }
                Some(super::control_io::ServerRequest::Shutdown { graceful, wait }) => {
                    if graceful {
                        drain(&ctx, wait, &mut signal).await;
                    }
                    break;
                }
                None => {}
            },
        }
    }
    super::systemd::notify("STOPPING=1\nSTATUS=stopping: finishing calls in progress");
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait()).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), outbox_task).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), sync_task).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), mwi_task).await;
    let t = &ctx.totals;
    tracing::info!(
        calls = t.calls.load(Ordering::Relaxed),
        messages_saved = t.messages_saved.load(Ordering::Relaxed),
        rtp_received = t.rtp_received.load(Ordering::Relaxed),
        rtp_lost = t.rtp_lost.load(Ordering::Relaxed),
        rtp_late = t.rtp_late.load(Ordering::Relaxed),
        rtp_overflow = t.rtp_overflow.load(Ordering::Relaxed),
        rtp_send_dropped = t.rtp_send_dropped.load(Ordering::Relaxed),
        "voxbridge stopped"
    );
    Ok(())
}

/// How often the prompt directory is looked at for changed recordings.
const PROMPTS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Reloads the prompts when a recording or the prompt list changes (`voxbridge prompts
/// import`, a file copied in): the next playback of a changed prompt plays it new.
async fn watch_prompts(
    prompts: Arc<Prompts>,
    dir: std::path::PathBuf,
    cache: std::path::PathBuf,
    voice: String,
    stop: CancellationToken,
) {
    let mut seen = crate::media::prompts::fingerprint(&dir);
    let mut tick = tokio::time::interval(PROMPTS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::media::prompts::fingerprint(&dir);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        let (d, c, v) = (dir.clone(), cache.clone(), voice.clone());
        match tokio::task::spawn_blocking(move || Prompts::load(&d, &c, &v)).await {
            Ok(Ok(fresh)) => {
                prompts.replace(fresh);
                tracing::info!(dir = %dir.display(), "prompts reloaded");
            }
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "prompts not reloaded; the old ones play"),
            Err(_) => {}
        }
    }
}

/// The prompts of every language but the default that has a prompt directory, each
/// falling back to `default` for what it lacks. A language that cannot be loaded is
/// logged and left out (its mailboxes hear the default language): one broken
/// translation must not keep the server from answering calls.
async fn load_languages(cfg: &Config, default: &Prompts) -> Vec<(String, Prompts)> {
    let mut out = Vec::new();
    for lang in cfg.prompt_languages().into_iter().skip(1) {
        let (dir, cache, voice) = (cfg.prompts.dir.join(&lang), cfg.prompt_cache_for(&lang), cfg.prompt_voice(&lang));
        match tokio::task::spawn_blocking(move || Prompts::load(&dir, &cache, &voice)).await {
            Ok(Ok(p)) => {
                tracing::info!(language = %lang, "prompts loaded");
                out.push((lang, p.with_fallback(default.clone())));
            }
            Ok(Err(e)) => tracing::error!(
                language = %lang,
                error = %format!("{e:#}"),
                "prompts of this language not loaded; its mailboxes hear the default language"
            ),
            Err(_) => {}
        }
    }
    out
}

/// A graceful shutdown: new calls get 503 while the calls in progress end by themselves,
/// for at most `wait` (or until SIGTERM/SIGINT says stop now).
async fn drain(ctx: &CallCtx, wait: std::time::Duration, signal: &mut (impl std::future::Future<Output = ()> + Unpin)) {
    ctx.draining.store(true, Ordering::Relaxed);
    let calls = ctx.active.count();
    tracing::info!(
        calls,
        wait_secs = wait.as_secs(),
        "graceful shutdown: new calls get 503; waiting for calls in progress to end"
    );
    let until = tokio::time::Instant::now() + wait;
    while ctx.active.count() > 0 {
        tokio::select! {
            _ = &mut *signal => {
                tracing::info!("signal: stopping now");
                return;
            }
            _ = tokio::time::sleep_until(until) => {
                tracing::warn!(calls = ctx.active.count(), "graceful shutdown: calls still in progress after the wait; ending them");
                return;
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
    tracing::info!("graceful shutdown: no call in progress");
}

/// The mailboxes' SIP digest secrets, by number (none when the store cannot be read:
/// every SUBSCRIBE is then refused, never let through).
async fn load_sip_secrets(store: &Store) -> HashMap<String, Ha1> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || s.sip_secrets()).await {
        Ok(Ok(v)) => v.into_iter().collect(),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "cannot read SIP credentials");
            HashMap::new()
        }
        Err(_) => HashMap::new(),
    }
}

/// How often the store is read for changed SIP credentials: the CLI that sets them is
/// another process, and a new password should work within seconds.
const SIP_SECRETS_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

async fn watch_sip_secrets(store: Store, sip: tokio::sync::mpsc::Sender<SipCommand>, stop: CancellationToken) {
    let mut last = load_sip_secrets(&store).await;
    let mut tick = tokio::time::interval(SIP_SECRETS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = load_sip_secrets(&store).await;
        if now != last {
            if sip.send(SipCommand::Credentials(now.clone())).await.is_err() {
                return;
            }
            last = now;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
