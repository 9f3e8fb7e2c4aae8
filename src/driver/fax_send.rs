//! Sending a fax: one outgoing call from a SIP endpoint of its own (an ephemeral UDP
//! port, or a TCP or TLS connection of its own to a trunk marked so or a `sips:` URI;
//! an RTP port from the configured range, so it runs beside a running server),
//! the fax application (`ivr::fax::FaxCall::send`) on the same call loop as every
//! other call, G.711 until the far end moves the call to T.38. A busy, unanswered or
//! failed attempt is tried again as `[fax]` says; the report says how it ended.

use super::call_loop::{self, CallIo, Performer};
use super::channels::{CallEvent, SipCommand};
use super::ports::PortPool;
use crate::config::Config;
use crate::config::{PlacedTransport, TrunkConfig};
use crate::ivr::fax::{FaxCall, FaxRequest, Finished};
use crate::sdp;
pub use crate::services::fax::{Attempt, SendReport};
use crate::services::fax::{Carried, FaxTarget};
use crate::session::media::MediaSession;
use crate::sip::endpoint::{CallHandle, Endpoint, EndpointConfig, Event, OutgoingCall, ReofferAnswer, Transmit};
use crate::sip::frame::TcpFramer;
use crate::sip::txn::{Peer, Transport};
use crate::srtp::Keying;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// What to send where.
#[derive(Debug, Clone)]
pub struct SendJob {
    pub file: PathBuf,
    /// `sip:NUMBER@HOST[:PORT]`.
    pub to: String,
    /// Our ident (TSI) on the far machine's display.
    pub ident: String,
    /// The number we call from (the From user).
    pub caller: String,
    /// Attempts after the first, and the wait before each.
    pub retries: u32,
    pub retry_wait: Duration,
}

/// Told of each page the far machine confirmed (sending): the outbox job records it.
pub type OnPages = Arc<dyn Fn(u32) + Send + Sync>;

/// Sends `job`, retrying as it says; `Err` only for what no retry mends (a bad target).
pub async fn send(cfg: &Config, job: &SendJob) -> Result<SendReport> {
    let mut report = SendReport::new(&job.to);
    loop {
        report.attempts += 1;
        let started = Instant::now();
        let a = attempt(cfg, job, Arc::new(|_| {})).await?;
        report.call_secs = started.elapsed().as_secs_f64();
        let retry = report.apply(a);
        if report.ok || !retry || report.attempts > job.retries {
            return Ok(report);
        }
        tracing::info!(wait_secs = job.retry_wait.as_secs_f64(), "fax not sent; trying again");
        tokio::time::sleep(job.retry_wait).await;
    }
}

/// One call: place it, fax on it, hang up. `on_pages` hears each page confirmed.
/// `Err` for what no retry mends (a bad target, a file the engine cannot open, a
/// certificate that does not verify).
pub async fn attempt(cfg: &Config, job: &SendJob, on_pages: OnPages) -> Result<Attempt> {
    let target = crate::services::fax::parse_target(&job.to)?;
    // The trunk the call goes to, if it is one: its transport, CAs and SRTP policy. Its
    // networks are checked against the address the first resolution gives.
    let first = target.host_port(target.transport.unwrap_or(PlacedTransport::Udp));
    let resolved = lookup(&first).await?;
    let trunk = trunk_at(cfg, resolved.ip());
    let transport = target.transport.or(trunk.and_then(|t| t.transport)).unwrap_or(PlacedTransport::Udp);
    let host_port = target.host_port(transport);
    let peer_addr = if host_port == first { resolved } else { lookup(&host_port).await? };
    let keying =
        Keying { policy: cfg.srtp_policy(trunk.map(|t| t.name.as_str())), over_tls: transport == PlacedTransport::Tls };
    if let Err(e) = crate::session::keying::check_transport(keying) {
        let cure =
            if keying.over_tls { "" } else { ": send over TLS (a sips: URI, or transport = \"tls\" on the trunk)" };
        bail!("{}: {e}{cure}", job.to);
    }
    let ip = if peer_addr.ip().is_loopback() { peer_addr.ip() } else { cfg.media_ip() };
    let link = match SipLink::open(cfg, trunk, &target, transport, peer_addr, ip).await? {
        Ok(link) => link,
        Err(why) => return Ok(Attempt::NotAnswered(503, why)),
    };
    let local = link.local;
    let ports = PortPool::new(cfg.rtp.port_range.0.clone());
    let rtp = ports.bind(ip).context("no free RTP port in [rtp] port_range")?;
    let session_id = rand::random::<u32>() as u64;
    let mut endpoint = Endpoint::new(EndpointConfig::new(local, &format!("voxbridge/{}", env!("CARGO_PKG_VERSION"))));
    let peer = Peer { addr: peer_addr, transport: link.transport };
    // Keys only over TLS, as the trunk's policy says (SDES keys travel in the SDP).
    let keys = crate::session::keying::offer(keying);
    let scheme = if target.sips { "sips" } else { "sip" };
    let param = match transport {
        PlacedTransport::Udp => "",
        PlacedTransport::Tcp => ";transport=tcp",
        PlacedTransport::Tls if target.sips => "",
        PlacedTransport::Tls => ";transport=tls",
    };
    let out = OutgoingCall {
        target: format!("{scheme}:{}@{host_port}{param}", target.user),
        peer,
        from_user: job.caller.clone(),
        offer: sdp::offer(ip, rtp.port, session_id, &keys),
    };
    let call = endpoint.place_call(Instant::now(), out);
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let (ev_tx, mut events) = mpsc::channel(16);
    let (placed_tx, mut placed) = mpsc::channel(1);
    let signalling = link.transport.via_name();
    let sip_task = tokio::spawn(sip_loop(endpoint, link, call, cmd_rx, ev_tx, placed_tx));

    let answered = placed.recv().await.unwrap_or(Err((408, "the SIP side stopped".into())));
    let answer = match answered {
        Ok(answer) => answer,
        Err((status, reason)) => {
            drop(cmd_tx);
            let _ = sip_task.await;
            return Ok(Attempt::NotAnswered(status, reason));
        }
    };
    let read = |answer: &[u8]| {
        let mut n = sdp::read_answer(answer)?;
        sdp::check_family(&n, ip)?;
        crate::session::keying::accept_answer(&mut n, &keys, keying)?;
        Ok::<_, sdp::SdpError>(n)
    };
    let neg = match read(&answer) {
        Ok(n) => n,
        Err(e) => {
            cmd_tx.send(SipCommand::Hangup(call)).await.ok();
            drop(cmd_tx);
            let _ = sip_task.await;
            return Ok(Attempt::NotAnswered(488, format!("no usable SDP answer ({e})")));
        }
    };
    let srtp = neg.srtp.as_ref().map(|a| a.suite.sdes_name());
    tracing::info!(codec = neg.codec.name(), remote = %neg.remote, sip = signalling, srtp = srtp.unwrap_or("off"), "fax call answered");
    let params = super::call::session_params(cfg, peer_addr.ip(), true, keying);
    let media = MediaSession::new(neg, SocketAddr::new(ip, rtp.port), session_id, &params);
    let app = FaxCall::send(job.file.clone(), &job.ident, cfg.fax.max_call_secs)?;
    let finished = Arc::new(Mutex::new(None));
    let keep = Keep { finished: finished.clone(), on_pages };
    let mut io = CallIo { call, cmd: &cmd_tx, rtp: &rtp, send_dropped: 0 };
    let ended = call_loop::run(&mut io, &mut events, media, app, None, keep).await;
    let t38 = match &ended {
        call_loop::Ended::Done(m) | call_loop::Ended::HandOver { media: m, .. } => m.t38_session().is_some(),
    };
    // The application hung up (BYE) when T.30 ended; the SIP side finishes that.
    cmd_tx.send(SipCommand::Hangup(call)).await.ok();
    drop(cmd_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), sip_task).await;
    let f = finished.lock().unwrap_or_else(|p| p.into_inner()).take();
    let f = f.unwrap_or(Finished { path: job.file.clone(), outcome: None, frames: 0 });
    Ok(Attempt::Faxed(Box::new(f), Carried { t38, signalling, srtp }))
}

async fn lookup(host_port: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(host_port)
        .await
        .with_context(|| format!("cannot resolve {host_port}"))?
        .next()
        .with_context(|| format!("{host_port} resolves to no address"))
}

/// The `[[sip.trunk]]` whose networks hold `ip`.
fn trunk_at(cfg: &Config, ip: std::net::IpAddr) -> Option<&TrunkConfig> {
    cfg.sip
        .trunk
        .iter()
        .find(|t| t.networks.iter().any(|n| n.parse::<crate::sip::access::Network>().is_ok_and(|n| n.contains(ip))))
}

/// Keeps the fax's end for the report; tells each page confirmed.
struct Keep {
    finished: Arc<Mutex<Option<Finished>>>,
    on_pages: OnPages,
}

impl Performer<FaxCall> for Keep {
    fn perform(&mut self, r: FaxRequest, _replies: &mpsc::Sender<()>) {
        match r {
            FaxRequest::PagesSent(n) => {
                tracing::info!(pages = n, "fax page confirmed by the far machine");
                (self.on_pages)(n)
            }
            FaxRequest::Finished(f) => *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(f),
        }
    }
}

/// How long connecting (TCP, then the TLS handshake) may take.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// What a SIP stream runs over: TCP, or TLS over TCP.
trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// The one call's way to the far end: a UDP socket of its own, or a connection we
/// opened (TCP or TLS). The far end's requests in the dialog (its BYE, a re-INVITE to
/// T.38) come back on that connection: over TLS our Via says `alias` (RFC 5923), and
/// nothing listens for a new one.
struct SipLink {
    local: SocketAddr,
    transport: Transport,
    io: LinkIo,
}

enum LinkIo {
    Udp(UdpSocket),
    Stream { io: Box<dyn ByteStream>, framer: TcpFramer, peer: SocketAddr },
}

impl SipLink {
    /// Opens the way to `peer` from `ip`. `Ok(Err(why))` when the far end cannot be
    /// reached now (worth another attempt); `Err` for what no retry mends: a certificate
    /// that does not verify, a CA file that cannot be read.
    async fn open(
        cfg: &Config,
        trunk: Option<&TrunkConfig>,
        target: &FaxTarget,
        transport: PlacedTransport,
        peer: SocketAddr,
        ip: std::net::IpAddr,
    ) -> Result<std::result::Result<SipLink, String>> {
        if transport == PlacedTransport::Udp {
            let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await.context("cannot bind a UDP port for SIP")?;
            return Ok(Ok(SipLink { local: socket.local_addr()?, transport: Transport::Udp, io: LinkIo::Udp(socket) }));
        }
        let over = transport.name().to_uppercase();
        // Checked before connecting: a bad CA file is the admin's to mend, not the line's.
        let connector = match transport {
            PlacedTransport::Tls => Some(super::sip_tls::connector(cfg, trunk)?),
            _ => None,
        };
        let tcp = match tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(peer)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Ok(Err(format!("cannot connect to {peer} over {over}: {e}"))),
            Err(_) => return Ok(Err(format!("no {over} connection to {peer} within {} s", CONNECT_WITHIN.as_secs()))),
        };
        tcp.set_nodelay(true).ok();
        let local = tcp.local_addr()?;
        let (io, transport): (Box<dyn ByteStream>, _) = match connector {
            None => (Box::new(tcp), Transport::Tcp(1)),
            Some(connector) => {
                let name = trunk.and_then(|t| t.tls_server_name.clone()).unwrap_or_else(|| target.server_name().into());
                let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                    .with_context(|| format!("{name:?} is no TLS server name (set tls_server_name on the trunk)"))?;
                match tokio::time::timeout(CONNECT_WITHIN, connector.connect(server_name, tcp)).await {
                    Ok(Ok(tls)) => (Box::new(tls), Transport::Tls(1)),
                    // The certificate (or the protocol) is refused: trying again changes nothing.
                    Ok(Err(e)) if e.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
                        let cas = match trunk.and_then(|t| t.tls_ca.as_ref().map(|ca| (t, ca))) {
                            Some((t, ca)) => format!("sip.trunk {:?} tls_ca ({})", t.name, ca.display()),
                            None => format!("the system's CAs ({})", super::sip_tls::SYSTEM_CAS),
                        };
                        bail!("TLS to {peer} failed: {e} (its certificate must be for {name:?} and signed by a CA of {cas})")
                    }
                    Ok(Err(e)) => return Ok(Err(format!("TLS to {peer} failed: {e}"))),
                    Err(_) => {
                        return Ok(Err(format!("no TLS handshake with {peer} within {} s", CONNECT_WITHIN.as_secs())))
                    }
                }
            }
        };
        Ok(Ok(SipLink { local, transport, io: LinkIo::Stream { io, framer: TcpFramer::default(), peer } }))
    }

    async fn send(&mut self, t: &Transmit) -> std::io::Result<()> {
        match &mut self.io {
            LinkIo::Udp(socket) => socket.send_to(&t.bytes, t.peer.addr).await.map(drop),
            LinkIo::Stream { io, .. } => {
                io.write_all(&t.bytes).await?;
                io.flush().await
            }
        }
    }

    /// The next message from the far end, and where from; `None` once the connection
    /// ended. Cancel-safe: bytes read stay in the framer.
    async fn recv(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, Vec<u8>)> {
        match &mut self.io {
            LinkIo::Udp(socket) => loop {
                // ICMP port unreachable from an earlier send shows up here; harmless.
                if let Ok((n, from)) = socket.recv_from(buf).await {
                    return Some((from, buf[..n].to_vec()));
                }
            },
            LinkIo::Stream { io, framer, peer } => loop {
                match framer.next_message() {
                    Ok(Some(m)) => return Some((*peer, m)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "fax call: the far end's SIP stream cannot be read");
                        return None;
                    }
                }
                // Keep-alive pings are not answered: we asked for no keep-alive (RFC 5626).
                framer.take_pings();
                match io.read(buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => framer.push(&buf[..n]),
                }
            },
        }
    }
}

/// The SIP side of the one call: messages in and out over its link, the endpoint's
/// timers, the call task's commands; the answer (or failure) to `placed`, what follows
/// to `events`. Ends when the call is over and the call task has let go of its commands.
async fn sip_loop(
    mut endpoint: Endpoint,
    mut link: SipLink,
    call: CallHandle,
    mut commands: mpsc::Receiver<SipCommand>,
    events: mpsc::Sender<CallEvent>,
    placed: mpsc::Sender<Result<Vec<u8>, (u16, String)>>,
) {
    let mut buf = vec![0u8; 65536];
    let (mut over, mut commands_open, mut link_open) = (false, true, true);
    loop {
        while let Some(t) = endpoint.poll_transmit() {
            if link.send(&t).await.is_err() && link.transport.reliable() {
                link_open = false;
            }
        }
        if !link_open && !over {
            // The connection is gone, and with it the dialog: nothing can reach the far end.
            over = true;
            let _ = placed.try_send(Err((503, "the SIP connection closed".into())));
            let _ = events.try_send(CallEvent::Gone("the SIP connection closed".into()));
        }
        while let Some(ev) = endpoint.poll_event() {
            match ev {
                Event::Answered { answer, .. } => {
                    let _ = placed.try_send(Ok(answer));
                }
                Event::Failed { status, reason, .. } => {
                    over = true;
                    let _ = placed.try_send(Err((status, reason)));
                }
                Event::Reoffer { offer, .. } => {
                    let delivered = events.try_send(CallEvent::Reoffer(offer)).is_ok();
                    if !delivered {
                        let refuse = ReofferAnswer::Refuse(500, "Server Internal Error".into());
                        endpoint.answer_reoffer(Instant::now(), call, refuse);
                    }
                }
                Event::ReinviteAnswered { answer, .. } => {
                    let _ = events.try_send(CallEvent::ReinviteAnswer(Ok(answer)));
                }
                Event::ReinviteFailed { status, .. } => {
                    let _ = events.try_send(CallEvent::ReinviteAnswer(Err(status)));
                }
                Event::RemoteHangup(_) => {
                    over = true;
                    let _ = events.try_send(CallEvent::Gone("the far end hung up".into()));
                }
                Event::Ended { reason, .. } => {
                    over = true;
                    let _ = events.try_send(CallEvent::Gone(reason));
                }
                Event::IncomingCall(inc) => endpoint.reject(Instant::now(), inc.call, 403, "Forbidden"),
                _ => {}
            }
        }
        if over && !commands_open {
            return;
        }
        let deadline = endpoint.poll_timeout().map(tokio::time::Instant::from_std);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            got = link.recv(&mut buf), if link_open => match got {
                Some((from, bytes)) => {
                    endpoint.handle_input(Instant::now(), Peer { addr: from, transport: link.transport }, &bytes)
                }
                None => link_open = false,
            },
            cmd = commands.recv(), if commands_open => {
                let now = Instant::now();
                match cmd {
                    Some(SipCommand::Hangup(c)) => endpoint.hangup(now, c),
                    Some(SipCommand::AnswerReoffer(c, a)) => endpoint.answer_reoffer(now, c, a),
                    Some(SipCommand::Reinvite(c, offer)) => {
                        if !endpoint.reinvite(now, c, &offer) {
                            let _ = events.try_send(CallEvent::ReinviteAnswer(Err(491)));
                        }
                    }
                    Some(SipCommand::CancelReinvite(c)) => endpoint.cancel_reinvite(now, c),
                    Some(_) => {}
                    None => {
                        commands_open = false;
                        // Nobody left to hear the call: end it if it still runs.
                        if !over {
                            endpoint.hangup(now, call);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => endpoint.handle_timeout(Instant::now()),
        }
        if !commands_open && endpoint.active_calls() == 0 {
            over = true;
        }
    }
}
