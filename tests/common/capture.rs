//! A packet capture on loopback (tcpdump, as root) and the UDP datagrams in it: what
//! really crossed the wire, for tests that must show media is encrypted.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Capture {
    child: Child,
    file: PathBuf,
}

/// One captured UDP datagram.
#[derive(Debug, Clone)]
pub struct Udp {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

impl Capture {
    /// Starts capturing `filter` (a pcap filter, e.g. `udp portrange 20000-20099`) on
    /// `lo` into `dir`; returns once tcpdump listens.
    pub fn start(dir: &Path, filter: &str) -> Capture {
        super::need("tcpdump");
        let file = dir.join("capture.pcap");
        let err = dir.join("tcpdump.log");
        let child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-Z", "root", "-s", "2048", "-w"])
            .arg(&file)
            .args(filter.split_whitespace())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        super::wait_until(Duration::from_secs(10), "tcpdump to listen", || {
            std::fs::read_to_string(&err).unwrap_or_default().contains("listening on")
        });
        Capture { child, file }
    }

    /// Stops the capture and reads its UDP datagrams (IPv4).
    pub fn stop(mut self) -> Vec<Udp> {
        super::unsafe_kill(self.child.id(), 2);
        let _ = self.child.wait();
        read_pcap(&std::fs::read(&self.file).unwrap())
    }
}

/// The IPv4 UDP datagrams of a pcap file (Ethernet, Linux cooked or null link layer).
fn read_pcap(data: &[u8]) -> Vec<Udp> {
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    assert!(data.len() >= 24 && matches!(u32le(data), 0xa1b2c3d4 | 0xa1b23c4d), "a little-endian pcap file");
    let link_header = match u32le(&data[20..]) {
        0 => 4,    // BSD loopback
        1 => 14,   // Ethernet (Linux lo)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => panic!("link type {other}"),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32le(&data[at + 8..]) as usize;
        let Some(frame) = data.get(at + 16..at + 16 + caplen) else { break };
        at += 16 + caplen;
        let Some(ip) = frame.get(link_header..) else { continue };
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        let addr = |a: &[u8], p: &[u8]| {
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]), u16::from_be_bytes([p[0], p[1]])))
        };
        let len = (u16::from_be_bytes([udp[4], udp[5]]) as usize).clamp(8, udp.len());
        out.push(Udp {
            from: addr(&ip[12..16], &udp[0..2]),
            to: addr(&ip[16..20], &udp[2..4]),
            payload: udp[8..len].to_vec(),
        });
    }
    out
}

/// Shannon entropy of `bytes`, in bits per byte: ~8 for ciphertext, far less for G.711
/// speech, tone or silence.
pub fn entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    bytes.iter().for_each(|&b| counts[b as usize] += 1);
    let n = bytes.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum()
}
