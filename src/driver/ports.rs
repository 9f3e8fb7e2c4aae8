//! RTP port pool: even ports of the configured range, handed out and returned.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

#[derive(Clone)]
pub struct PortPool {
    free: Arc<Mutex<VecDeque<u16>>>,
}

/// A bound RTP socket whose port goes back to the pool when dropped.
pub struct RtpPort {
    pub socket: UdpSocket,
    pub port: u16,
    pool: PortPool,
}

impl Drop for RtpPort {
    fn drop(&mut self) {
        self.pool.free.lock().unwrap_or_else(|p| p.into_inner()).push_back(self.port);
    }
}

impl PortPool {
    pub fn new(range: std::ops::RangeInclusive<u16>) -> PortPool {
        let free = range.filter(|p| p % 2 == 0).collect();
        PortPool { free: Arc::new(Mutex::new(free)) }
    }

    /// Binds the next free port; ports that fail to bind (used by another program) are
    /// skipped and put back at the end.
    pub fn bind(&self, ip: IpAddr) -> Option<RtpPort> {
        let tries = self.free.lock().unwrap_or_else(|p| p.into_inner()).len();
        for _ in 0..tries {
            let port = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop_front()?;
            match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => {
                    s.set_nonblocking(true).ok()?;
                    // A larger receive buffer absorbs scheduling hiccups under load.
                    let sock = socket2::SockRef::from(&s);
                    let _ = sock.set_recv_buffer_size(256 * 1024);
                    let socket = UdpSocket::from_std(s).ok()?;
                    return Some(RtpPort { socket, port, pool: self.clone() });
                }
                Err(_) => self.free.lock().unwrap_or_else(|p| p.into_inner()).push_back(port),
            }
        }
        None
    }
}
