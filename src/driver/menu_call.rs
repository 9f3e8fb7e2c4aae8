//! The mailbox menu's call loop: runs [`Menu`] on the 20 ms tick and performs its
//! requests — PIN check, message list, audio, state changes — on the store. State
//! changes go through one ordered writer per call and trigger the sync engine, so a
//! message heard or deleted by phone reaches the mail server at once.

use super::call::{caller_leaving, record_totals, CallCtx, Media};
use super::channels::{CallEvent, SipCommand};
use crate::ivr::menu::{Action, LoginResult, Menu, MenuMessage, MenuParams};
use crate::ivr::speech::Say;
use crate::media::prompts::Clip;
use crate::model::MarkAction;
use crate::model::State;
use crate::rtp::session::{Output, RtpSession};
use crate::rtp::FRAME;
use crate::sip::endpoint::IncomingCall;
use crate::store::menu::LoginPolicy;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Answers from the store to the menu.
enum Reply {
    Login(LoginResult),
    /// The mailbox's messages and its own time zone, if it has one.
    Messages(Vec<MenuMessage>, Option<String>),
    Audio(i64, Option<Arc<Clip>>),
    Target(bool),
    Done(bool),
}

pub async fn run(
    ctx: &Arc<CallCtx>,
    inc: &IncomingCall,
    cmd: &mpsc::Sender<SipCommand>,
    mut events: mpsc::Receiver<CallEvent>,
    media: Media,
    keys: crate::ivr::keys::MenuKeys,
) -> anyhow::Result<()> {
    let Media { rtp, mut session } = media;
    // A caller ID that is a mailbox number skips the number prompt (never the PIN).
    let own = match inc.caller.clone() {
        Some(c) => ctx.store.run(move |s| Ok(s.mailbox(&c)?.map(|m| m.number))).await.unwrap_or(None),
        None => None,
    };
    tracing::info!(caller_mailbox = own.as_deref().unwrap_or("-"), "mailbox menu");
    let m = &ctx.cfg.menu;
    let params = MenuParams {
        max_login_attempts: m.max_login_attempts,
        digit_timeout_frames: (m.digit_timeout_secs * 50.0).round() as usize,
        skip_samples: (m.skip_secs * 8000.0).round() as usize,
        time_zone: ctx.cfg.mailbox.time_zone(),
        now_unix: crate::store::now_secs(),
        min_pin_len: m.min_pin_length.max(1),
        max_record_frames: (m.max_recording_secs * 50.0).round().max(1.0) as usize,
        silence_frames: (m.silence_secs * 50.0).round().max(1.0) as usize,
        silence_level: ctx.cfg.deposit.silence_level as u32,
        keys,
        purge_on_hangup: m.purge_on_hangup,
    };
    let policy = LoginPolicy {
        max_attempts: m.max_login_attempts,
        window_secs: m.lockout_window_secs as i64,
        lock_secs: m.lockout_secs as i64,
    };
    let mut app = Menu::new(params, Say(ctx.prompts.clone()), own);
    let (reply_tx, mut replies) = mpsc::channel::<Reply>(8);
    let mut writer: Option<mpsc::UnboundedSender<(i64, MarkAction)>> = None;
    let mut logged_in: Option<String> = None;
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pcm = Vec::with_capacity(crate::rtp::FRAME_SAMPLES);
    let mut rbuf = [0u8; 2048];
    let mut gone = false;
    let mut send_dropped = 0u64;

    loop {
        while let Some(action) = app.poll_action() {
            match action {
                Action::Play(cs) => cs.iter().for_each(|c| session.play(c.encoded(session.codec()))),
                Action::PlayFrom(c, offset) => session.play(&c.encoded(session.codec())[offset..]),
                Action::StopPlayback => session.stop_playback(),
                Action::CheckPin { mailbox, pin } => {
                    let (st, tx) = (ctx.store.clone(), reply_tx.clone());
                    tokio::spawn(async move {
                        let now = crate::store::now_secs();
                        let mb = mailbox.clone();
                        let r = st.run(move |s| s.check_login(&mb, &pin, now, policy)).await.unwrap_or_else(|e| {
                            tracing::error!(error = %format!("{e:#}"), "login check failed: the caller is asked to try again later");
                            LoginResult::Unavailable
                        });
                        tracing::info!(mailbox, result = ?r, "login");
                        let _ = tx.send(Reply::Login(r)).await;
                    });
                }
                Action::LoadMessages { mailbox } => {
                    logged_in = Some(mailbox.clone());
                    writer = Some(spawn_writer(ctx.clone(), mailbox.clone()));
                    let (st, tx) = (ctx.store.clone(), reply_tx.clone());
                    tokio::spawn(async move {
                        let mb = mailbox.clone();
                        let zone = st.run(move |s| Ok(s.mailbox(&mb)?.and_then(|m| m.timezone))).await.unwrap_or(None);
                        let list = st.run(move |s| s.messages(&mailbox)).await.unwrap_or_else(|e| {
                            tracing::error!(error = %format!("{e:#}"), "cannot list messages");
                            Vec::new()
                        });
                        let list = list
                            .into_iter()
                            .map(|m| MenuMessage {
                                id: m.id,
                                kind: m.kind,
                                state: m.state,
                                caller: m.caller,
                                received_at: m.received_at,
                                duration_ms: m.duration_ms,
                            })
                            .collect();
                        let _ = tx.send(Reply::Messages(list, zone)).await;
                    });
                }
                Action::LoadAudio { id } => {
                    let (svc, tx) = (ctx.messages.clone(), reply_tx.clone());
                    tokio::spawn(async move {
                        let clip = svc
                            .message_pcm(id)
                            .await
                            .map(|pcm| Arc::new(Clip::from_pcm(pcm, format!("message {id}"))))
                            .map_err(
                                |e| tracing::warn!(message = id, error = %format!("{e:#}"), "message audio unreadable"),
                            )
                            .ok();
                        let _ = tx.send(Reply::Audio(id, clip)).await;
                    });
                }
                Action::SetState { id, state } => {
                    let act = match state {
                        State::U => MarkAction::Unread,
                        State::R => MarkAction::Read,
                        State::M => MarkAction::Delete,
                        State::D => MarkAction::Purge,
                    };
                    if let Some(w) = &writer {
                        let _ = w.send((id, act));
                    }
                }
                Action::Purge { ids } => {
                    if let Some(w) = &writer {
                        for id in ids {
                            let _ = w.send((id, MarkAction::Purge));
                        }
                    }
                }
                Action::Hangup => {
                    cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                }
                Action::SaveGreeting { .. }
                | Action::DeleteGreeting { .. }
                | Action::ChangePin { .. }
                | Action::LookupTarget { .. }
                | Action::Forward { .. }
                | Action::Reply { .. } => {
                    let (ctx2, tx, mb) = (ctx.clone(), reply_tx.clone(), logged_in.clone().unwrap_or_default());
                    tokio::spawn(async move {
                        let reply = perform(&ctx2, &mb, action).await;
                        let _ = tx.send(reply).await;
                    });
                }
            }
        }
        if app.is_done() {
            break;
        }
        tokio::select! {
            r = rtp.socket.recv_from(&mut rbuf) => {
                if let Ok((n, from)) = r {
                    session.handle_input(from, &rbuf[..n]);
                    // A key press reaches the menu at once, not at the next tick: the
                    // answer's first frame then goes out on the next tick (≤ 20 ms).
                    drain(&mut session, &mut app, &rtp.socket, &mut send_dropped);
                }
            }
            _ = tick.tick() => {
                session.handle_tick(&mut pcm);
                app.handle_frame(&pcm);
                drain(&mut session, &mut app, &rtp.socket, &mut send_dropped);
            }
            ev = events.recv(), if !gone => {
                if let Some(send_bye) = caller_leaving(ev) {
                    gone = true;
                    app.handle_hangup();
                    if send_bye {
                        cmd.send(SipCommand::Hangup(inc.call)).await.ok();
                    }
                }
            }
            Some(reply) = replies.recv() => match reply {
                Reply::Login(r) => app.handle_login(r),
                Reply::Messages(list, zone) => {
                    app.set_time_zone(crate::services::time::mailbox_zone(zone.as_deref(), &ctx.cfg.mailbox.time_zone()));
                    app.handle_messages(list)
                }
                Reply::Audio(id, clip) => app.handle_audio(id, clip),
                Reply::Target(exists) => app.handle_target(exists),
                Reply::Done(ok) => app.handle_done(ok),
            },
        }
    }
    record_totals(ctx, &session, send_dropped);
    Ok(())
}

/// The menu's requests that write: greetings, PIN, forward, reply. Each answers once
/// the result is durable (or failed), so the caller never hears "saved" too early.
async fn perform(ctx: &Arc<CallCtx>, mailbox: &str, action: Action) -> Reply {
    let store = ctx.store.clone();
    let mb = mailbox.to_string();
    let result: anyhow::Result<bool> = match action {
        Action::SaveGreeting { kind, pcm } => {
            store
                .run(move |s| {
                    s.save_greeting(&mb, kind, &pcm)?;
                    tracing::info!(mailbox = %mb, kind = kind.as_str(), secs = pcm.len() as f64 / 8000.0, "greeting recorded by phone");
                    Ok(true)
                })
                .await
        }
        Action::DeleteGreeting { kind } => store.run(move |s| s.set_greeting_of(&mb, kind, None).map(|_| true)).await,
        Action::ChangePin { pin } => store
            .run(move |s| {
                s.set_pin(&mb, &pin)?;
                tracing::info!(mailbox = %mb, "PIN changed by phone");
                Ok(true)
            })
            .await,
        Action::LookupTarget { number } => return Reply::Target(ctx.messages.is_target(&number).await),
        Action::Forward { id, to, comment } => ctx.messages.forward(mailbox, id, &to, comment).await,
        Action::Reply { id, pcm } => ctx.messages.reply(mailbox, id, pcm).await,
        _ => Ok(false),
    };
    Reply::Done(result.unwrap_or_else(|e| {
        tracing::error!(mailbox, error = %format!("{e:#}"), "menu request failed");
        false
    }))
}

/// Hands the session's outputs to the socket and the menu.
fn drain(session: &mut RtpSession, app: &mut Menu, socket: &tokio::net::UdpSocket, send_dropped: &mut u64) {
    while let Some(out) = session.poll_output() {
        match out {
            Output::Transmit { to, bytes } => {
                if socket.try_send_to(&bytes, to).is_err() {
                    *send_dropped += 1;
                }
            }
            Output::Dtmf(d) => {
                tracing::debug!(digit = %d, "DTMF");
                app.handle_dtmf(d);
            }
            Output::PlaybackDone => app.handle_playback_done(),
        }
    }
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
