//! RTP (RFC 3550) for G.711 calls: packet classification, sequence widening, the
//! receive jitter buffer, RFC 4733 telephone events, RTCP reports, which addresses
//! media may go to, and the per-call session.

pub mod address;
pub mod dtmf;
pub mod jitter;
pub mod rtcp;
pub mod session;

/// Samples per 20 ms G.711 frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Frame duration.
pub const FRAME: std::time::Duration = std::time::Duration::from_millis(20);

/// A received RTP packet, parsed at the boundary (rtp-rs does the header work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpIn<'a> {
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

/// What a datagram on an RTP port is. RTCP shares the port when rtcp-mux is used and is
/// told apart by its packet type (RFC 5761 section 4).
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    Rtp(RtpIn<'a>),
    Rtcp,
    Invalid(&'static str),
}

pub fn classify(buf: &[u8]) -> Datagram<'_> {
    if buf.len() < 12 {
        return Datagram::Invalid("shorter than an RTP header");
    }
    if buf[0] >> 6 != 2 {
        return Datagram::Invalid("not RTP version 2");
    }
    if (192..=223).contains(&buf[1]) {
        return Datagram::Rtcp;
    }
    match rtp_rs::RtpReader::new(buf) {
        Ok(r) => Datagram::Rtp(RtpIn {
            payload_type: r.payload_type(),
            seq: r.sequence_number().into(),
            timestamp: r.timestamp(),
            ssrc: r.ssrc(),
            marker: r.mark(),
            payload: r.payload(),
        }),
        Err(_) => Datagram::Invalid("malformed RTP header"),
    }
}

/// Widens wrapping counters — 16-bit sequence numbers, 32-bit timestamps — to 64 bits
/// (as str0m does), so nothing downstream thinks about wrap-around.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper<const BITS: u32> {
    last: Option<u64>,
}

/// RTP sequence numbers.
pub type SeqExtender = Unwrapper<16>;
/// RTP timestamps.
pub type TsExtender = Unwrapper<32>;

impl<const BITS: u32> Unwrapper<BITS> {
    const SPAN: u64 = 1 << BITS;

    pub fn extend(&mut self, value: u32) -> u64 {
        let value = value as u64 & (Self::SPAN - 1);
        let Some(last) = self.last else {
            // Start far from zero so a slightly older value cannot underflow.
            let v = (1u64 << 40) + value;
            self.last = Some(v);
            return v;
        };
        let base = last & !(Self::SPAN - 1);
        let candidates = [base - Self::SPAN + value, base + value, base + Self::SPAN + value];
        let v = *candidates.iter().min_by_key(|c| c.abs_diff(last)).expect("three candidates");
        if v > last {
            self.last = Some(v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_rejects_garbage() {
        assert!(matches!(classify(&[]), Datagram::Invalid(_)));
        assert!(matches!(classify(&[0u8; 12]), Datagram::Invalid(_)));
        let mut rtcp = [0u8; 12];
        rtcp[0] = 0x80;
        rtcp[1] = 200;
        assert_eq!(classify(&rtcp), Datagram::Rtcp);
        // CSRC count pointing past the end must not panic.
        let mut bad = [0u8; 12];
        bad[0] = 0x8f;
        assert!(matches!(classify(&bad), Datagram::Invalid(_)));
        let pkt = rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(7.into())
            .timestamp(160)
            .ssrc(9)
            .payload(&[1, 2])
            .build()
            .unwrap();
        let Datagram::Rtp(r) = classify(&pkt) else { panic!() };
        assert_eq!((r.seq, r.timestamp, r.ssrc, r.payload), (7, 160, 9, &[1u8, 2][..]));
    }

    #[test]
    fn seq_extends_across_wrap() {
        let mut e = SeqExtender::default();
        let a = e.extend(65534);
        assert_eq!(e.extend(65535), a + 1);
        assert_eq!(e.extend(0), a + 2);
        assert_eq!(e.extend(65535), a + 1, "late packet from before the wrap");
        assert_eq!(e.extend(1), a + 3);
        let mut t = TsExtender::default();
        let b = t.extend(u32::MAX - 159);
        assert_eq!(t.extend(0), b + 160, "timestamps wrap at 2^32");
        assert_eq!(t.extend(u32::MAX - 319), b - 160);
    }
}
