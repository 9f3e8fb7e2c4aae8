//! The tokio task side of [`CallLoop`]: the RTP socket, the 20 ms clock, the call's SIP
//! events and the application's requests — moved, never decided. One loop for every
//! application; what an application's requests mean is its [`Performer`]'s.

use super::channels::{CallEvent, SipCommand};
use super::ports::RtpPort;
use crate::rtp::FRAME;
use crate::session::app::{AppKind, Application};
use crate::session::call::{CallLoop, LoopOutput, SipAction};
use crate::session::media::MediaSession;
use crate::sip::endpoint::{CallHandle, ReofferAnswer};
use tokio::sync::mpsc;

/// Carries out an application's requests off the media clock (store, disk, mail).
pub trait Performer<A: Application> {
    /// Starts the work `request` asks for; a task that answers holds a clone of
    /// `replies` until it has. The loop ends only when every such clone is gone: a
    /// recording being saved at hang-up is saved before the call task ends (and a
    /// shutdown waits for it), and a task that fails without answering does not hold
    /// the call open.
    fn perform(&mut self, request: A::Request, replies: &mpsc::Sender<A::Reply>);
}

/// A call's fixed parts for its loops: its handle, the SIP task, the media port.
pub struct CallIo<'a> {
    pub call: CallHandle,
    pub cmd: &'a mpsc::Sender<SipCommand>,
    pub rtp: &'a RtpPort,
    /// Packets the socket would not take (its buffer full), over the whole call.
    pub send_dropped: u64,
}

/// How an application's loop ended.
pub enum Ended {
    /// The application is done (hung up, caller gone, transferred).
    Done(MediaSession),
    /// It gave the call to another application; `reoffer` is the re-INVITE offer that
    /// one answers first.
    HandOver { to: AppKind, reoffer: Option<Vec<u8>>, media: MediaSession },
}

/// Runs `app` on `media` until it is done or hands the call on.
pub async fn run<A, P>(
    io: &mut CallIo<'_>,
    events: &mut mpsc::Receiver<CallEvent>,
    media: MediaSession,
    app: A,
    reoffer: Option<Vec<u8>>,
    mut performer: P,
) -> Ended
where
    A: Application,
    P: Performer<A>,
{
    let mut call = CallLoop::new(media, app);
    if let Some(offer) = reoffer {
        call.handle_reoffer(&offer);
    }
    let (tx, mut replies) = mpsc::channel::<A::Reply>(8);
    // Dropped once the application is done: the replies channel then closes when the
    // last request in flight has answered (or its task has died).
    let mut reply_tx = Some(tx);
    let mut gone = false;
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rbuf = [0u8; 2048];
    let mut cbuf = [0u8; 1500];
    loop {
        while let Some(out) = call.poll_output() {
            match out {
                LoopOutput::Transmit { to, bytes } => {
                    if io.rtp.socket.try_send_to(&bytes, to).is_err() {
                        io.send_dropped += 1;
                    }
                }
                LoopOutput::Rtcp { to, bytes, muxed } => {
                    let socket = if muxed { &io.rtp.socket } else { &io.rtp.rtcp };
                    let _ = socket.try_send_to(&bytes, to);
                }
                LoopOutput::Sip(action) => {
                    let c = io.call;
                    let cmd = match action {
                        SipAction::Hangup => SipCommand::Hangup(c),
                        SipAction::Transfer(to) => {
                            tracing::info!(target = %to, "transferring the caller");
                            SipCommand::Transfer(c, to)
                        }
                        SipAction::AcceptReoffer(sdp) => SipCommand::AnswerReoffer(c, ReofferAnswer::Accept(sdp)),
                        SipAction::RefuseReoffer(code, why) => {
                            SipCommand::AnswerReoffer(c, ReofferAnswer::Refuse(code, why))
                        }
                        SipAction::Reinvite(offer) => SipCommand::Reinvite(c, offer),
                        SipAction::CancelReinvite => SipCommand::CancelReinvite(c),
                    };
                    io.cmd.send(cmd).await.ok();
                }
                LoopOutput::Request(r) => match &reply_tx {
                    Some(tx) => performer.perform(r, tx),
                    None => tracing::warn!("a finished application asked for more work; ignored"),
                },
                LoopOutput::HandOver { to, reoffer } => {
                    return Ended::HandOver { to, reoffer, media: call.into_media() }
                }
            }
        }
        if call.is_done() {
            reply_tx = None;
        }
        tokio::select! {
            r = io.rtp.socket.recv_from(&mut rbuf) => {
                if let Ok((n, from)) = r {
                    call.handle_datagram(from, &rbuf[..n], std::time::Instant::now());
                }
            }
            r = io.rtp.rtcp.recv_from(&mut cbuf) => {
                if let Ok((n, from)) = r {
                    call.handle_rtcp(from, &cbuf[..n]);
                }
            }
            _ = tick.tick() => call.handle_tick(),
            ev = events.recv(), if !gone => match ev {
                Some(CallEvent::Reoffer(offer)) => call.handle_reoffer(&offer),
                Some(CallEvent::Confirmed(_)) => call.handle_confirmed(),
                Some(CallEvent::ReinviteAnswer(answer)) => call.handle_reinvite_answer(answer),
                other => {
                    if let Some(send_bye) = super::call::caller_leaving(other) {
                        gone = true;
                        call.handle_hangup();
                        if send_bye {
                            io.cmd.send(SipCommand::Hangup(io.call)).await.ok();
                        }
                    }
                }
            },
            reply = replies.recv() => match reply {
                Some(reply) => call.handle_reply(reply),
                // Only once `reply_tx` is dropped (done) and no request is in flight.
                None => return Ended::Done(call.into_media()),
            },
        }
    }
}
