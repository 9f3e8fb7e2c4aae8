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
use crate::notify::Origin;
use crate::rtp::session::{Output, RtpSession};
use crate::rtp::FRAME;
use crate::sip::endpoint::IncomingCall;
use crate::store::menu::{LoginPolicy, MessageAudio};
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
                    let (st, tx, voice) = (ctx.store.clone(), reply_tx.clone(), ctx.cfg.prompts.voice.clone());
                    tokio::spawn(async move {
                        let clip = st
                            .run(move |s| {
                                let pcm = match s.message_audio(id)? {
                                    MessageAudio::Pcm(pcm) => pcm,
                                    MessageAudio::Text(text) => crate::media::tts::synthesize(&text, &voice, 150)?,
                                };
                                Ok(Arc::new(Clip::from_pcm(pcm, format!("message {id}"))))
                            })
                            .await;
                        let clip = clip
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
        Action::LookupTarget { number } => {
            let listed = ctx.cfg.menu.list.iter().any(|l| l.number == number);
            let found = listed || store.run(move |s| s.mailbox(&number)).await.ok().flatten().is_some();
            return Reply::Target(found);
        }
        Action::Forward { id, to, comment } => forward(ctx, mailbox, id, &to, comment).await,
        Action::Reply { id, pcm } => reply(ctx, mailbox, id, pcm).await,
        _ => Ok(false),
    };
    Reply::Done(result.unwrap_or_else(|e| {
        tracing::error!(mailbox, error = %format!("{e:#}"), "menu request failed");
        false
    }))
}

/// The audio of a message as PCM (e-mails and faxes read out).
async fn message_pcm(ctx: &Arc<CallCtx>, id: i64) -> anyhow::Result<Vec<i16>> {
    let voice = ctx.cfg.prompts.voice.clone();
    ctx.store
        .run(move |s| match s.message_audio(id)? {
            MessageAudio::Pcm(pcm) => Ok(pcm),
            MessageAudio::Text(text) => crate::media::tts::synthesize(&text, &voice, 150),
        })
        .await
}

/// Saves `pcm` as a new voice message from `from` in every target mailbox, all in one
/// transaction (through the deposit path: durable, then the outbox delivers them), and
/// lights their lamps.
async fn deliver_voice(ctx: &Arc<CallCtx>, from: &str, targets: &[String], pcm: Vec<i16>) -> anyhow::Result<()> {
    let (domain, f, t) = (ctx.cfg.delivery.from_domain.clone(), from.to_string(), targets.to_vec());
    let ids = ctx
        .store
        .run(move |s| {
            let ms = t
                .iter()
                .map(|to| crate::services::deposit::new_voice_message(s, &domain, to, Some(f.clone()), None, &pcm))
                .collect::<anyhow::Result<Vec<_>>>()?;
            s.insert_voice_messages(&ms)
        })
        .await?;
    for (to, id) in targets.iter().zip(ids) {
        tracing::info!(from, to = %to, message = id, "voice message sent by phone");
        ctx.changes.changed(to, Origin::Deposit);
    }
    ctx.outbox_wake.notify_one();
    Ok(())
}

/// Forward: the comment, a short pause, then the original message.
async fn forward(ctx: &Arc<CallCtx>, from: &str, id: i64, to: &str, comment: Vec<i16>) -> anyhow::Result<bool> {
    let targets: Vec<String> = match ctx.cfg.menu.list.iter().find(|l| l.number == to) {
        Some(list) => list.members.iter().filter(|m| m.as_str() != from).cloned().collect(),
        None => vec![to.to_string()],
    };
    let mut pcm = comment;
    if !pcm.is_empty() {
        pcm.extend(std::iter::repeat_n(0, 3200));
    }
    pcm.extend(message_pcm(ctx, id).await?);
    deliver_voice(ctx, from, &targets, pcm).await?;
    Ok(true)
}

/// Reply: to the sender's mailbox when the message came from one.
async fn reply(ctx: &Arc<CallCtx>, from: &str, id: i64, pcm: Vec<i16>) -> anyhow::Result<bool> {
    let caller = ctx.store.run(move |s| Ok(s.message(id)?.and_then(|m| m.caller))).await?;
    let Some(caller) = caller else { return Ok(false) };
    let c2 = caller.clone();
    if ctx.store.run(move |s| s.mailbox(&c2)).await?.is_some() {
        deliver_voice(ctx, from, &[caller], pcm).await?;
        return Ok(true);
    }
    // The address came from a mail's From header: only a well-formed one is written
    // into the reply's headers and the SMTP envelope.
    if caller.parse::<lettre::Address>().is_err() {
        tracing::info!(mailbox = from, to = %caller, "reply: the caller has no mailbox here and no usable e-mail address");
        return Ok(false);
    }
    // An e-mail sender: a voice reply by SMTP, through the reply queue.
    let (f2, cfg) = (from.to_string(), ctx.cfg.delivery.clone());
    let Some(mb) = ctx.store.run(move |s| s.mailbox(&f2)).await? else { return Ok(false) };
    if crate::mail::outbox::reply_server(&mb, &cfg).is_none() {
        tracing::warn!(
            mailbox = from,
            "reply by e-mail needs an SMTP server: set [delivery] smtp_url or the mailbox's --smtp"
        );
        return Ok(false);
    }
    let (f2, domain) = (from.to_string(), cfg.from_domain.clone());
    let queued = ctx
        .store
        .run(move |s| {
            let original = s.message(id)?.ok_or_else(|| anyhow::anyhow!("message {id} is gone"))?;
            let (rel, _) = s.write_recording(&f2, "reply-", &pcm)?;
            let subject = original.subject.clone().unwrap_or_default();
            let subject =
                if subject.to_ascii_lowercase().starts_with("re:") { subject } else { format!("Re: {subject}") };
            s.insert_reply(&crate::store::outgoing::NewReply {
                mailbox: f2.clone(),
                rcpt: caller.clone(),
                message_id: crate::mail::compose::new_message_id(&domain),
                subject,
                in_reply_to: Some(original.message_id.clone()),
                media_path: rel,
                duration_ms: (pcm.len() / 8) as i64,
            })
        })
        .await?;
    tracing::info!(mailbox = from, reply = queued, "voice reply queued for SMTP");
    ctx.outbox_wake.notify_one();
    Ok(true)
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
        while let Some((id, act)) = rx.recv().await {
            let mb = mailbox.clone();
            match ctx.store.run(move |s| s.mark(&mb, id, act)).await {
                Ok(state) => tracing::info!(mailbox, message = id, ?act, ?state, "message changed by phone"),
                Err(e) => tracing::warn!(mailbox, message = id, error = %format!("{e:#}"), "cannot change message"),
            }
            if rx.is_empty() {
                ctx.changes.changed(&mailbox, Origin::Phone);
            }
        }
    });
    tx
}
