//! SIP over TCP: one reader and one writer task per connection, under limits a hostile
//! peer cannot exceed — connections in all and per source address, an idle timeout, a
//! deadline for each message to arrive whole (slow-loris), and a cap on the bytes of
//! incomplete messages held for all connections together.

use crate::config::SipTcpConfig;
use crate::sip::frame::TcpFramer;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub enum TcpIn {
    Message(u64, SocketAddr, Vec<u8>),
    Closed(u64),
}

/// What the connections hold of the server, and why connections were refused or closed.
pub struct TcpLimits {
    cfg: SipTcpConfig,
    open: AtomicUsize,
    per_source: Mutex<HashMap<IpAddr, usize>>,
    buffered: AtomicUsize,
    pub refused_total: AtomicU64,
    pub refused_per_source: AtomicU64,
    pub closed_idle: AtomicU64,
    pub closed_slow: AtomicU64,
    pub closed_buffer: AtomicU64,
}

/// A connection's place under the limits, given back when it closes.
pub struct Admission {
    limits: Arc<TcpLimits>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.limits.per_source.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Why a connection was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerSource,
}

impl TcpLimits {
    pub fn new(cfg: SipTcpConfig) -> Arc<TcpLimits> {
        Arc::new(TcpLimits {
            cfg,
            open: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
            buffered: AtomicUsize::new(0),
            refused_total: AtomicU64::new(0),
            refused_per_source: AtomicU64::new(0),
            closed_idle: AtomicU64::new(0),
            closed_slow: AtomicU64::new(0),
            closed_buffer: AtomicU64::new(0),
        })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes a new connection from `ip`, or says which limit it is over.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refused> {
        let mut m = self.per_source.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.load(Ordering::Relaxed) >= self.cfg.max_connections {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Total);
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= self.cfg.max_per_source {
            self.refused_per_source.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerSource);
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Admission { limits: self.clone(), ip })
    }

    /// Moves this connection's share of buffered bytes from `from` to `to`; false when
    /// that would take all connections over the cap.
    fn rebuffer(&self, from: usize, to: usize) -> bool {
        if to <= from {
            self.buffered.fetch_sub(from - to, Ordering::Relaxed);
            return true;
        }
        let cap = self.cfg.buffer_mib * 1024 * 1024;
        let before = self.buffered.fetch_add(to - from, Ordering::Relaxed);
        if before + (to - from) > cap {
            self.buffered.fetch_sub(to - from, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// How long a connection the peer shut stays writable for the answers still due.
const HALF_CLOSED_LINGER: Duration = Duration::from_secs(4);

/// How long a TLS handshake may take: a client that connects and says nothing must not
/// hold a connection slot longer than an idle one would.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Starts the tasks of one accepted connection; returns the sender of its writer. With
/// `tls`, the handshake comes first (bounded), then the same framing, limits and writer
/// over the decrypted stream; messages queued before it ends wait in the writer's
/// channel.
pub fn spawn(
    id: u64,
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    addr: SocketAddr,
    admission: Admission,
    to_sip: mpsc::Sender<TcpIn>,
) -> mpsc::Sender<Vec<u8>> {
    stream.set_nodelay(true).ok();
    let (wtx, wrx) = mpsc::channel::<Vec<u8>>(64);
    let pong = wtx.clone();
    tokio::spawn(async move {
        let Some(acceptor) = tls else {
            return serve(id, stream, addr, admission, to_sip, pong, wrx).await;
        };
        match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => serve(id, tls, addr, admission, to_sip, pong, wrx).await,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no handshake within {} s", TLS_HANDSHAKE.as_secs()),
                };
                tracing::info!(peer = %addr, error = %why, "SIP TLS handshake failed; connection closed");
                drop(admission);
                let _ = to_sip.send(TcpIn::Closed(id)).await;
            }
        }
    });
    wtx
}

/// One connection's writer and reader over any byte stream (TCP, or TLS over TCP).
async fn serve<S>(
    id: u64,
    stream: S,
    addr: SocketAddr,
    admission: Admission,
    to_sip: mpsc::Sender<TcpIn>,
    pong: mpsc::Sender<Vec<u8>>,
    mut wrx: mpsc::Receiver<Vec<u8>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    {
        let limits = admission.limits.clone();
        let idle = Duration::from_secs(limits.cfg.idle_secs);
        let whole_within = Duration::from_secs(limits.cfg.message_secs);
        let mut framer = TcpFramer::default();
        let mut rbuf = vec![0u8; 16384];
        let mut held = 0usize;
        // When the first byte of the message now incomplete arrived.
        let mut partial_since: Option<Instant> = None;
        let mut last_read = Instant::now();
        // When the last complete message arrived.
        let mut last_message: Option<Instant> = None;
        let why = 'conn: loop {
            let deadline = match partial_since {
                Some(t) => (t + whole_within).min(last_read + idle),
                None => last_read + idle,
            };
            let n = tokio::select! {
                r = rd.read(&mut rbuf) => match r {
                    Ok(0) => break "closed by the peer",
                    Err(_) => break "read error",
                    Ok(n) => n,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if partial_since.is_some_and(|t| t + whole_within <= Instant::now()) {
                        limits.closed_slow.fetch_add(1, Ordering::Relaxed);
                        break "a message did not arrive whole in time";
                    }
                    limits.closed_idle.fetch_add(1, Ordering::Relaxed);
                    break "idle";
                }
            };
            last_read = Instant::now();
            framer.push(&rbuf[..n]);
            let mut completed = false;
            loop {
                match framer.next_message() {
                    Ok(Some(m)) => {
                        completed = true;
                        last_message = Some(Instant::now());
                        if to_sip.send(TcpIn::Message(id, addr, m)).await.is_err() {
                            break 'conn "server stopping";
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(peer = %addr, error = %e, "closing SIP TCP connection: unframeable stream");
                        break 'conn "unframeable stream";
                    }
                }
            }
            for _ in 0..framer.take_pings() {
                let _ = pong.try_send(b"\r\n".to_vec());
            }
            let now_held = framer.buffered();
            if !limits.rebuffer(held, now_held) {
                limits.closed_buffer.fetch_add(1, Ordering::Relaxed);
                break "the server's buffer for incomplete messages is full";
            }
            held = now_held;
            partial_since = match (now_held, partial_since) {
                (0, _) => None,
                (_, Some(t)) if !completed => Some(t),
                _ => Some(last_read),
            };
        };
        // A message cut short by the end of the stream is still answered when its head is
        // all there (a 400 that says what was wrong beats silence); the reply is queued
        // before the connection is forgotten, so the writer still sends it.
        if let Some(rest) = framer.take_rest() {
            let _ = to_sip.send(TcpIn::Message(id, addr, rest)).await;
        }
        limits.rebuffer(held, 0);
        if why == "closed by the peer" && last_message.is_some_and(|t| t.elapsed() < HALF_CLOSED_LINGER) {
            // Perhaps only its sending side (a half-close) right after a request: answers
            // still in the making, such as an INVITE's final response after routing, can
            // still reach it. Its admission is held meanwhile, so the caps stay true.
            tokio::time::sleep(HALF_CLOSED_LINGER).await;
        }
        tracing::debug!(peer = %addr, reason = why, "SIP TCP connection closed");
        drop(admission);
        let _ = to_sip.send(TcpIn::Closed(id)).await;
    }
}

/// Accept errors that mean "out of file descriptors or memory": retrying at once
/// only spins; accepting pauses instead.
pub fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SipTcpConfig {
        SipTcpConfig { max_connections: 3, max_per_source: 2, idle_secs: 1, message_secs: 1, buffer_mib: 1 }
    }

    #[test]
    fn connections_are_admitted_up_to_the_limits_and_given_back() {
        let l = TcpLimits::new(cfg());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(Refused::PerSource));
        let _b1 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).err(), Some(Refused::Total));
        drop(a1);
        assert_eq!(l.open(), 2);
        assert!(l.admit(a).is_ok(), "a closed connection's place is free again");
    }

    #[test]
    fn buffered_bytes_are_capped_across_connections() {
        let l = TcpLimits::new(cfg());
        assert!(l.rebuffer(0, 600 * 1024));
        assert!(!l.rebuffer(0, 600 * 1024), "a second connection would go over 1 MiB");
        assert!(l.rebuffer(600 * 1024, 0));
        assert!(l.rebuffer(0, 600 * 1024));
    }
}
