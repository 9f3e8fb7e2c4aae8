//! RTCP (RFC 3550 §6): the reports a call sends every few seconds, and what it reads
//! from the far end's. Phones and trunks watch RTCP as well as RTP to tell a live call
//! from a dead one; the reports also say how much of their audio arrived.
//!
//! Sent: a compound packet of a sender report (SR, when we sent audio since the last
//! report) or a receiver report (RR), with one report block for the caller's stream,
//! and an SDES chunk with our CNAME (§6.1: every compound packet carries one). Read:
//! an SR's NTP time, for the LSR/DLSR fields of our next report; the rest is skipped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds between 1900 (NTP's epoch) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The RFC 3550 §6.2 minimum report interval, in 20 ms ticks (5 s).
pub const MIN_INTERVAL_TICKS: u32 = 250;

/// Reception statistics for one source (RFC 3550 appendix A.3 and A.8).
#[derive(Debug, Default, Clone)]
pub struct ReceiverStats {
    base_seq: Option<u64>,
    max_seq: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter in timestamp units, scaled by 16 as in A.8.
    jitter16: u64,
    last_transit: Option<i64>,
}

impl ReceiverStats {
    /// One RTP packet of the stream: its widened sequence number, its timestamp and its
    /// arrival time in timestamp units (8 kHz) on any fixed clock.
    pub fn packet(&mut self, ext_seq: u64, timestamp: u32, arrival_units: u64) {
        let base = *self.base_seq.get_or_insert(ext_seq);
        if ext_seq < base {
            self.base_seq = Some(ext_seq);
        }
        self.max_seq = self.max_seq.max(ext_seq);
        self.received += 1;
        let transit = arrival_units as i64 - timestamp as i64;
        if let Some(last) = self.last_transit {
            // Transit differences wrap with the 32-bit timestamp.
            let d = ((transit - last) as i32).unsigned_abs() as u64;
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// The stream's source changed: its numbering starts again.
    pub fn reset(&mut self) {
        *self = ReceiverStats::default();
    }

    /// Packets expected but not received, over the whole stream.
    pub fn cumulative_lost(&self) -> i64 {
        match self.base_seq {
            Some(b) => (self.max_seq - b + 1) as i64 - self.received as i64,
            None => 0,
        }
    }

    fn block(&mut self, ssrc: u32, lsr: u32, dlsr: u32) -> Option<[u8; 24]> {
        let base = self.base_seq?;
        let expected = self.max_seq - base + 1;
        let (exp_int, rec_int) = (expected - self.expected_prior, self.received - self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_int = exp_int.saturating_sub(rec_int);
        let fraction = (lost_int << 8).checked_div(exp_int).unwrap_or(0).min(255) as u8;
        let cumulative = self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32;
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4] = fraction;
        b[5..8].copy_from_slice(&cumulative.to_be_bytes()[1..]);
        b[8..12].copy_from_slice(&(self.max_seq as u32).to_be_bytes());
        b[12..16].copy_from_slice(&((self.jitter16 >> 4) as u32).to_be_bytes());
        b[16..20].copy_from_slice(&lsr.to_be_bytes());
        b[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(b)
    }
}

/// What our report says about ourselves.
pub struct Report<'a> {
    pub ssrc: u32,
    pub cname: &'a str,
    /// `Some` for a sender report: the wall time and RTP timestamp of the same instant,
    /// and what we sent so far.
    pub sender: Option<SenderInfo>,
}

pub struct SenderInfo {
    pub wallclock: SystemTime,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// The far end's last SR: its NTP time's middle 32 bits and when we got it.
#[derive(Debug, Clone, Copy)]
pub struct LastSr {
    pub ntp_middle: u32,
    pub ssrc: u32,
}

fn ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Builds the compound packet. `remote` is the caller's stream: its source, its
/// statistics, and its last SR with the time since (for LSR/DLSR).
pub fn build(
    me: &Report<'_>,
    remote: Option<(u32, &mut ReceiverStats)>,
    last_sr: Option<(LastSr, Duration)>,
) -> Vec<u8> {
    let (lsr, dlsr) = match last_sr {
        Some((sr, since)) if remote.as_ref().is_some_and(|(s, _)| *s == sr.ssrc) => {
            (sr.ntp_middle, (since.as_micros() as u64 * 65536 / 1_000_000).min(u32::MAX as u64) as u32)
        }
        _ => (0, 0),
    };
    let block = remote.and_then(|(ssrc, stats)| stats.block(ssrc, lsr, dlsr));
    let count = block.is_some() as u8;
    let mut p = Vec::with_capacity(100);
    match &me.sender {
        Some(s) => {
            let words = 6 + 6 * count as u16;
            p.extend([0x80 | count, 200]);
            p.extend(words.to_be_bytes());
            p.extend(me.ssrc.to_be_bytes());
            p.extend(ntp(s.wallclock).to_be_bytes());
            p.extend(s.rtp_timestamp.to_be_bytes());
            p.extend(s.packets.to_be_bytes());
            p.extend(s.octets.to_be_bytes());
        }
        None => {
            let words = 1 + 6 * count as u16;
            p.extend([0x80 | count, 201]);
            p.extend(words.to_be_bytes());
            p.extend(me.ssrc.to_be_bytes());
        }
    }
    if let Some(b) = block {
        p.extend(b);
    }
    // SDES: one chunk, SSRC + CNAME item + end marker, padded to a 32-bit boundary.
    let cname = &me.cname.as_bytes()[..me.cname.len().min(255)];
    let chunk_len = 4 + 2 + cname.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    p.extend([0x81, 202]);
    p.extend(((padded / 4) as u16).to_be_bytes());
    p.extend(me.ssrc.to_be_bytes());
    p.extend([1, cname.len() as u8]);
    p.extend(cname);
    p.resize(p.len() + padded - (4 + 2 + cname.len()), 0);
    p
}

/// Reads a compound packet; returns the SR in it, if any. `None` too for anything
/// malformed: RTCP is only advice.
pub fn read_sr(buf: &[u8]) -> Option<LastSr> {
    let mut rest = buf;
    while rest.len() >= 4 {
        if rest[0] >> 6 != 2 {
            return None;
        }
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        let pkt = rest.get(..len)?;
        if pkt[1] == 200 && pkt.len() >= 28 {
            let ssrc = u32::from_be_bytes(pkt[4..8].try_into().ok()?);
            let ntp_middle = u32::from_be_bytes(pkt[10..14].try_into().ok()?);
            return Some(LastSr { ntp_middle, ssrc });
        }
        rest = &rest[len..];
    }
    None
}

/// Whether a datagram looks like RTCP (version 2, packet type 192–223, RFC 5761 §4).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_report_counts_loss_and_reads_back() {
        let mut st = ReceiverStats::default();
        // 10 packets expected, 8 arrived; perfectly paced, so no jitter.
        for s in (100..110u64).filter(|s| *s != 103 && *s != 107) {
            st.packet(s, (s * 160) as u32, s * 160 + 5);
        }
        assert_eq!(st.cumulative_lost(), 2);
        let me = Report { ssrc: 0xabc, cname: "vb@host", sender: None };
        let p = build(&me, Some((0x5eed, &mut st)), None);
        assert!(is_rtcp(&p));
        assert_eq!(p[1], 201, "RR");
        assert_eq!(p[0] & 0x1f, 1, "one report block");
        assert_eq!(p.len() % 4, 0);
        let block = &p[8..32];
        assert_eq!(u32::from_be_bytes(block[0..4].try_into().unwrap()), 0x5eed);
        assert_eq!(block[4], (2 * 256 / 10) as u8, "fraction lost");
        assert_eq!(&block[5..8], &[0, 0, 2]);
        assert_eq!(u32::from_be_bytes(block[8..12].try_into().unwrap()), 109);
        assert_eq!(u32::from_be_bytes(block[12..16].try_into().unwrap()), 0, "no jitter");
        // The SDES chunk names us; lengths are consistent.
        let sdes = &p[32..];
        assert_eq!(sdes[1], 202);
        assert_eq!((u16::from_be_bytes([sdes[2], sdes[3]]) as usize + 1) * 4, sdes.len());
        assert_eq!(&sdes[10..17], b"vb@host");
        // Nothing new since: fraction 0 in the next report.
        let p2 = build(&me, Some((0x5eed, &mut st)), None);
        assert_eq!(p2[12], 0);
    }

    #[test]
    fn a_sender_report_carries_ntp_and_lsr_dlsr_come_back() {
        let mut st = ReceiverStats::default();
        st.packet(1, 0, 0);
        st.packet(2, 160, 200); // 40 units late: jitter grows
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let me = Report {
            ssrc: 7,
            cname: "x",
            sender: Some(SenderInfo { wallclock: t, rtp_timestamp: 1234, packets: 50, octets: 8000 }),
        };
        let theirs = read_sr(&build(&me, None, None)).expect("our own SR reads back");
        assert_eq!(theirs.ssrc, 7);
        assert_eq!(theirs.ntp_middle, ((ntp(t) >> 16) & 0xffff_ffff) as u32);
        let p = build(&me, Some((7, &mut st)), Some((theirs, Duration::from_millis(500))));
        assert_eq!(p[1], 200, "SR");
        let block = &p[28..52];
        assert!(u32::from_be_bytes(block[12..16].try_into().unwrap()) > 0, "jitter reported");
        assert_eq!(u32::from_be_bytes(block[16..20].try_into().unwrap()), theirs.ntp_middle);
        assert_eq!(u32::from_be_bytes(block[20..24].try_into().unwrap()), 32768, "0.5 s in 1/65536 s");
    }

    #[test]
    fn garbage_is_not_an_sr() {
        assert!(read_sr(&[]).is_none());
        assert!(read_sr(&[0x80, 200, 0xff, 0xff, 0, 0]).is_none(), "length past the end");
        assert!(read_sr(&[0x00; 40]).is_none());
        assert!(!is_rtcp(&[0x80, 0, 0, 0, 0, 0, 0, 0]));
    }
}
