//! The mailbox menu on the call loop: its start (the caller's own mailbox, the menu's
//! parameters) and its requests — PIN check, message list, audio, state changes,
//! greetings, PIN, forward, reply — performed on the store and the services. State
//! changes go through one ordered writer per call and are announced on the change hub,
//! so a message heard or deleted by phone reaches the mail server at once.

use super::call::CallCtx;
use super::call_loop::Performer;
use crate::ivr::menu::{Action, Menu, MenuParams, Reply};
use crate::ivr::speech::Say;
use crate::media::prompts::Clip;
use crate::model::MarkAction;
use crate::services::settings::Settings;
use crate::sip::endpoint::IncomingCall;
use crate::store::menu::LoginPolicy;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The menu for this call, ready for the call loop, and what performs its requests.
/// `station`: the PBX station an SMDI direct call came from, which stands for the
/// caller ID.
pub async fn start(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    keys: crate::ivr::keys::MenuKeys,
    station: Option<String>,
) -> (Menu, MenuRequests) {
    // A caller ID that is a mailbox number (or the station of one, for an SMDI direct
    // call) skips the number prompt (never the PIN).
    let own = match (station, inc.caller.clone()) {
        (Some(st), _) => ctx.messages.store.run(move |s| s.mailbox_by_station(&st)).await.unwrap_or(None),
        (None, Some(c)) => ctx.messages.store.run(move |s| s.mailbox(&c)).await.unwrap_or(None),
        (None, None) => None,
    };
    // The caller's own mailbox's language from the first prompt; anyone else hears the
    // default language until they log in.
    let say = Say(ctx.prompts_for(own.as_ref().and_then(|m| m.language.as_deref())));
    let own = own.map(|m| m.number);
    tracing::info!(caller_mailbox = own.as_deref().unwrap_or("-"), "mailbox menu");
    let live = ctx.live();
    let m = &live.menu;
    let params = MenuParams {
        max_login_attempts: m.max_login_attempts,
        digit_timeout_frames: (m.digit_timeout_secs * 50.0).round() as usize,
        skip_samples: (m.skip_secs * 8000.0).round() as usize,
        time_zone: live.mailbox.time_zone(),
        now_unix: crate::store::now_secs(),
        min_pin_len: m.min_pin_length.max(1),
        max_record_frames: (m.max_recording_secs * 50.0).round().max(1.0) as usize,
        silence_frames: (m.silence_secs * 50.0).round().max(1.0) as usize,
        silence_level: live.deposit.silence_level as u32,
        keys,
        purge_on_hangup: m.purge_on_hangup,
        fax_sending: ctx.cfg.fax.send_via.is_some(),
    };
    let policy = LoginPolicy {
        max_attempts: m.max_login_attempts,
        window_secs: m.lockout_window_secs as i64,
        lock_secs: m.lockout_secs as i64,
    };
    let app = Menu::new(params, say, own);
    let settings = Settings::new(ctx.messages.store.clone());
    (
        app,
        MenuRequests { ctx: ctx.clone(), settings, policy, writer: None, logged_in: None, wanted: Default::default() },
    )
}

/// Performs the menu's requests; answers go back as [`Reply`].
pub struct MenuRequests {
    ctx: Arc<CallCtx>,
    settings: Settings,
    policy: LoginPolicy,
    /// The ordered writer of state changes, once logged in.
    writer: Option<mpsc::UnboundedSender<(i64, MarkAction)>>,
    logged_in: Option<String>,
    /// The message whose audio is wanted now: a rendering for another one stops.
    wanted: Arc<std::sync::atomic::AtomicI64>,
}

impl Performer<Menu> for MenuRequests {
    fn perform(&mut self, action: Action, replies: &mpsc::Sender<Reply>) {
        let ctx = &self.ctx;
        let tx = replies.clone();
        match action {
            Action::CheckPin { mailbox, pin } => {
                let (settings, policy) = (self.settings.clone(), self.policy);
                tokio::spawn(async move {
                    let r = settings.check_pin(&mailbox, pin, policy).await;
                    let _ = tx.send(Reply::Login(r)).await;
                });
            }
            Action::LoadMessages { mailbox } => {
                self.logged_in = Some(mailbox.clone());
                self.writer = Some(spawn_writer(ctx.clone(), mailbox.clone()));
                let (ctx, settings) = (ctx.clone(), self.settings.clone());
                tokio::spawn(async move {
                    let (zone, lang) = settings.locale(&mailbox).await.unwrap_or_default();
                    let zone = crate::services::time::mailbox_zone(zone.as_deref(), &ctx.live().mailbox.time_zone());
                    let say = Some(Say(ctx.prompts_for(lang.as_deref())));
                    let list = ctx.messages.menu_list(&mailbox).await.unwrap_or_else(|e| {
                        tracing::error!(error = %format!("{e:#}"), "cannot list messages");
                        Vec::new()
                    });
                    let _ = tx.send(Reply::Messages(list, zone, say)).await;
                });
            }
            Action::LoadAudio { id } => {
                let svc = ctx.messages.clone();
                let wanted = self.wanted.clone();
                wanted.store(id, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    // Speech streams: the first sentence plays while the rest renders.
                    let parts = tx.clone();
                    let wanted_now = move || wanted.load(std::sync::atomic::Ordering::Relaxed) == id;
                    let go_on = wanted_now.clone();
                    let spoken = svc
                        .speak(id, go_on, move |pcm, marks, complete| {
                            if !wanted_now() {
                                return false;
                            }
                            let clip = Arc::new(Clip::from_pcm(pcm.to_vec(), format!("message {id}")));
                            parts.blocking_send(Reply::Audio(id, Some(clip), complete, marks.clone())).is_ok()
                        })
                        .await;
                    if let Err(e) = spoken {
                        tracing::warn!(message = id, error = %format!("{e:#}"), "message audio unreadable");
                        let _ = tx.send(Reply::Audio(id, None, true, Default::default())).await;
                    }
                });
            }
            Action::SetState { id, state } => {
                if let Some(w) = &self.writer {
                    let _ = w.send((id, MarkAction::to(state)));
                }
            }
            Action::Purge { ids } => {
                if let Some(w) = &self.writer {
                    for id in ids {
                        let _ = w.send((id, MarkAction::Purge));
                    }
                }
            }
            // The loop plays and hangs up itself; these never come as requests.
            Action::Play(_) | Action::PlayFrom(..) | Action::StopPlayback | Action::Hangup => {}
            Action::SaveGreeting { .. }
            | Action::DeleteGreeting { .. }
            | Action::ChangePin { .. }
            | Action::LookupTarget { .. }
            | Action::Forward { .. }
            | Action::SendFax { .. }
            | Action::Reply { .. } => {
                let (ctx, settings, mb) =
                    (ctx.clone(), self.settings.clone(), self.logged_in.clone().unwrap_or_default());
                tokio::spawn(async move {
                    let reply = perform(&ctx, &settings, &mb, action).await;
                    let _ = tx.send(reply).await;
                });
            }
        }
    }
}

/// The menu's requests that write: greetings, PIN, forward, reply. Each answers once
/// the result is durable (or failed), so the caller never hears "saved" too early.
async fn perform(ctx: &Arc<CallCtx>, settings: &Settings, mailbox: &str, action: Action) -> Reply {
    let result: anyhow::Result<bool> = match action {
        Action::SaveGreeting { kind, pcm } => {
            let secs = pcm.len() as f64 / 8000.0;
            settings.save_greeting(mailbox, kind, pcm).await.map(|_| {
                tracing::info!(mailbox, kind = kind.as_str(), secs, "greeting recorded by phone");
                true
            })
        }
        Action::DeleteGreeting { kind } => settings.remove_greeting(mailbox, kind).await.map(|_| {
            tracing::info!(mailbox, kind = kind.as_str(), "greeting removed by phone");
            true
        }),
        Action::ChangePin { pin } => settings.change_pin(mailbox, pin).await.map(|_| {
            tracing::info!(mailbox, "PIN changed by phone");
            true
        }),
        Action::LookupTarget { number } => return Reply::Target(ctx.messages.is_target(&number).await),
        Action::Forward { id, to, comment } => ctx.messages.forward(mailbox, id, &to, comment).await,
        Action::Reply { id, pcm, all } => ctx.messages.reply(mailbox, id, pcm, all).await,
        Action::SendFax { id, number } => {
            let Some(via) = ctx.cfg.fax.send_via.clone() else { return Reply::Done(false) };
            let (mb, ident, paper) = (mailbox.to_string(), ctx.cfg.fax.ident.clone(), ctx.cfg.fax.paper);
            let target = format!("sip:{number}@{via}");
            ctx.messages
                .store
                .run(move |s| crate::services::fax::forward_fax(s, &mb, id, &target, &ident, paper))
                .await
                .map(|_| true)
        }
        _ => Ok(false),
    };
    Reply::Done(result.unwrap_or_else(|e| {
        tracing::error!(mailbox, error = %format!("{e:#}"), "menu request failed");
        false
    }))
}

/// One ordered writer of state changes per call (delete then undelete must not swap),
/// triggering a sync pass after each change. It outlives the call until its queue is
/// written: a purge at hang-up is never lost to the caller leaving.
fn spawn_writer(ctx: Arc<CallCtx>, mailbox: String) -> mpsc::UnboundedSender<(i64, MarkAction)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(i64, MarkAction)>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            // What queued up meanwhile goes in the same batch: one announcement.
            let mut batch = vec![first];
            while let Ok(next) = rx.try_recv() {
                batch.push(next);
            }
            let results = ctx.messages.mark(&mailbox, batch.clone()).await;
            for ((id, act), r) in batch.into_iter().zip(results) {
                match r {
                    Ok(state) => tracing::info!(mailbox, message = id, ?act, ?state, "message changed by phone"),
                    Err(e) => tracing::warn!(mailbox, message = id, error = %format!("{e:#}"), "cannot change message"),
                }
            }
        }
    });
    tx
}
