//! RTP port pool: pairs of an even RTP port and the odd RTCP port above it (RFC 3550
//! §11), chosen at random from the configured range — a port in order from the range
//! start is a port a stranger can guess and spray with packets before the caller's
//! arrive — and returned when the call ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

#[derive(Clone)]
pub struct PortPool {
    free: Arc<Mutex<Vec<u16>>>,
    /// How many pairs the range holds.
    pairs: usize,
}

/// A bound RTP/RTCP socket pair whose ports go back to the pool when dropped.
pub struct RtpPort {
    pub socket: UdpSocket,
    pub rtcp: UdpSocket,
    pub port: u16,
    pool: PortPool,
}

impl Drop for RtpPort {
    fn drop(&mut self) {
        self.pool.free.lock().unwrap_or_else(|p| p.into_inner()).push(self.port);
    }
}

fn bind_one(ip: IpAddr, port: u16) -> Option<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
    s.set_nonblocking(true).ok()?;
    // A larger receive buffer absorbs scheduling hiccups under load.
    let _ = socket2::SockRef::from(&s).set_recv_buffer_size(256 * 1024);
    UdpSocket::from_std(s).ok()
}

impl PortPool {
    pub fn new(range: std::ops::RangeInclusive<u16>) -> PortPool {
        let hi = *range.end();
        let free: Vec<u16> = range.filter(|p| p % 2 == 0 && *p < hi).collect();
        PortPool { pairs: free.len(), free: Arc::new(Mutex::new(free)) }
    }

    /// RTP/RTCP pairs (in use, in the range).
    pub fn usage(&self) -> (usize, usize) {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner()).len();
        (self.pairs.saturating_sub(free), self.pairs)
    }

    /// Binds a random free pair; pairs that fail to bind (used by another program) are
    /// put back and another is tried.
    pub fn bind(&self, ip: IpAddr) -> Option<RtpPort> {
        let tries = self.free.lock().unwrap_or_else(|p| p.into_inner()).len();
        let mut failed = Vec::new();
        let mut bound = None;
        for _ in 0..tries {
            let port = {
                let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
                if free.is_empty() {
                    break;
                }
                let i = rand::random_range(0..free.len());
                free.swap_remove(i)
            };
            match (bind_one(ip, port), bind_one(ip, port + 1)) {
                (Some(socket), Some(rtcp)) => {
                    bound = Some(RtpPort { socket, rtcp, port, pool: self.clone() });
                    break;
                }
                _ => failed.push(port),
            }
        }
        self.free.lock().unwrap_or_else(|p| p.into_inner()).extend(failed);
        bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pairs_are_random_even_odd_and_come_back() {
        let pool = PortPool::new(31000..=31199);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let ports: Vec<RtpPort> = (0..20).filter_map(|_| pool.bind(ip)).collect();
        assert_eq!(ports.len(), 20);
        assert!(ports.iter().all(|p| p.port % 2 == 0 && p.rtcp.local_addr().unwrap().port() == p.port + 1));
        let numbers: Vec<u16> = ports.iter().map(|p| p.port).collect();
        let in_order: Vec<u16> = (0..20).map(|i| 31000 + 2 * i).collect();
        assert_ne!(numbers, in_order, "not handed out in order from the start");
        drop(ports);
        assert_eq!(pool.free.lock().unwrap().len(), 100);
    }
}
