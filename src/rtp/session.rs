//! One call's RTP session, sans-IO.
//!
//! Run loop: feed datagrams with [`RtpSession::handle_input`]; at each 20 ms tick call
//! [`RtpSession::handle_tick`], which plays out one received frame and sends one frame of
//! queued audio; drain [`RtpSession::poll_output`]. The session never reads the clock:
//! the tick *is* its clock, so recordings are exactly as long as the call's wall time.

use super::dtmf::DtmfReceiver;
use super::jitter::{JitterBuffer, JitterStats, Playout};
use super::{classify, Datagram, SeqExtender, FRAME_SAMPLES};
use crate::media::g711;
use crate::sdp::{Codec, Negotiated};
use std::collections::VecDeque;
use std::net::SocketAddr;

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Transmit {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    /// The caller's key press (RFC 4733).
    Dtmf(char),
    /// The playback queue ran empty.
    PlaybackDone,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub jitter: JitterStats,
    pub sent: u64,
    pub invalid: u64,
    pub foreign_pt: u64,
    pub dtmf_packets: u64,
}

pub struct RtpSession {
    codec: Codec,
    dtmf_pt: Option<u8>,
    remote: SocketAddr,
    latched: bool,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    playback: VecDeque<u8>,
    talking: bool,
    jitter: JitterBuffer,
    seq_ext: SeqExtender,
    audio_ssrc: Option<u32>,
    dtmf: DtmfReceiver,
    out: VecDeque<Output>,
    stats: SessionStats,
}

impl RtpSession {
    pub fn new(n: &Negotiated, jitter_frames: usize) -> RtpSession {
        RtpSession {
            codec: n.codec,
            dtmf_pt: n.dtmf_pt,
            remote: n.remote,
            latched: false,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            playback: VecDeque::new(),
            talking: false,
            jitter: JitterBuffer::new(jitter_frames),
            seq_ext: SeqExtender::default(),
            audio_ssrc: None,
            dtmf: DtmfReceiver::default(),
            out: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        s.jitter = self.jitter.stats;
        s
    }

    /// Queues encoded audio (in this session's codec) after whatever is already queued.
    pub fn play(&mut self, encoded: &[u8]) {
        self.playback.extend(encoded);
    }

    /// Drops queued audio (barge-in). What is played next starts a new talkspurt: its
    /// first packet carries the marker bit (RFC 3551 4.1), as the audio is discontinuous.
    pub fn stop_playback(&mut self) {
        self.playback.clear();
        self.talking = false;
    }

    /// The far end changed the session (a re-INVITE): a new address, codec or DTMF
    /// payload type. A new address is latched again from the first packet that comes
    /// from it; audio still queued is re-encoded in the new codec.
    pub fn retarget(&mut self, n: &Negotiated) {
        if n.remote != self.remote {
            self.remote = n.remote;
            self.latched = false;
        }
        if n.codec != self.codec {
            let queued: Vec<u8> = self.playback.drain(..).collect();
            let mut pcm = Vec::with_capacity(queued.len());
            g711::decode_into(self.codec, &queued, &mut pcm);
            self.playback.extend(g711::encode(n.codec, &pcm));
            self.codec = n.codec;
            // The caller's audio in the old codec cannot be decoded in the new one.
            let stats = self.jitter.stats;
            self.jitter = JitterBuffer::new(self.jitter.delay());
            self.jitter.stats = stats;
            self.seq_ext = SeqExtender::default();
            self.audio_ssrc = None;
        }
        self.dtmf_pt = n.dtmf_pt;
    }

    pub fn is_playing(&self) -> bool {
        !self.playback.is_empty()
    }

    pub fn handle_input(&mut self, from: SocketAddr, buf: &[u8]) {
        let pkt = match classify(buf) {
            Datagram::Rtp(p) => p,
            Datagram::Rtcp => return,
            Datagram::Invalid(_) => {
                self.stats.invalid += 1;
                return;
            }
        };
        if Some(pkt.payload_type) == self.dtmf_pt {
            self.stats.dtmf_packets += 1;
            if let Some(d) = self.dtmf.handle(pkt.ssrc, pkt.timestamp, pkt.payload) {
                self.out.push_back(Output::Dtmf(d));
            }
            return;
        }
        if pkt.payload_type != self.codec.payload_type() {
            self.stats.foreign_pt += 1;
            return;
        }
        // Symmetric RTP (RFC 4961): answer where the caller's audio comes from.
        if !self.latched {
            self.remote = from;
            self.latched = true;
        }
        if self.audio_ssrc != Some(pkt.ssrc) {
            // A new source restarts sequence numbering.
            self.audio_ssrc = Some(pkt.ssrc);
            self.seq_ext = SeqExtender::default();
        }
        let seq = self.seq_ext.extend(pkt.seq);
        self.jitter.push(seq, pkt.payload);
    }

    /// One 20 ms tick: returns the caller's audio for this frame (silence when missing)
    /// and queues at most one outgoing packet.
    pub fn handle_tick(&mut self, pcm_out: &mut Vec<i16>) {
        pcm_out.clear();
        match self.jitter.pop() {
            Playout::Frame(p) => g711::decode_into(self.codec, &p, pcm_out),
            Playout::Lost | Playout::Silence => {}
        }
        pcm_out.resize(FRAME_SAMPLES, 0);

        if !self.playback.is_empty() {
            let n = FRAME_SAMPLES.min(self.playback.len());
            let mut payload: Vec<u8> = self.playback.drain(..n).collect();
            payload.resize(FRAME_SAMPLES, g711::silence_byte(self.codec));
            let marker = !self.talking;
            self.talking = true;
            let bytes = rtp_rs::RtpPacketBuilder::new()
                .payload_type(self.codec.payload_type())
                .ssrc(self.ssrc)
                .sequence(self.seq.into())
                .timestamp(self.timestamp)
                .marked(marker)
                .payload(&payload)
                .build()
                .expect("a 160-byte payload always fits");
            self.seq = self.seq.wrapping_add(1);
            self.stats.sent += 1;
            self.out.push_back(Output::Transmit { to: self.remote, bytes });
            if self.playback.is_empty() {
                self.out.push_back(Output::PlaybackDone);
            }
        } else {
            self.talking = false;
        }
        // The timestamp follows the clock even while we are silent (RFC 3550 5.1).
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg() -> Negotiated {
        Negotiated { remote: "127.0.0.1:6000".parse().unwrap(), codec: Codec::Pcmu, dtmf_pt: Some(101) }
    }

    fn pkt(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(5)
            .sequence(seq.into())
            .timestamp(ts)
            .payload(payload)
            .build()
            .unwrap()
    }

    #[test]
    fn playback_is_paced_with_seq_ts_and_marker() {
        let mut s = RtpSession::new(&neg(), 1);
        s.play(&vec![0x11u8; 400]);
        let mut pcm = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..5 {
            s.handle_tick(&mut pcm);
            while let Some(o) = s.poll_output() {
                sent.push(o);
            }
        }
        let pkts: Vec<_> = sent
            .iter()
            .filter_map(|o| match o {
                Output::Transmit { bytes, .. } => {
                    Some(rtp_rs::RtpReader::new(bytes).unwrap().create_builder().build().unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(pkts.len(), 3, "400 bytes = 3 packets");
        let r: Vec<_> = pkts.iter().map(|p| rtp_rs::RtpReader::new(p).unwrap()).collect();
        assert!(r[0].mark() && !r[1].mark());
        assert_eq!(u16::from(r[1].sequence_number()), u16::from(r[0].sequence_number()).wrapping_add(1));
        assert_eq!(r[1].timestamp(), r[0].timestamp().wrapping_add(160));
        assert_eq!(r[2].payload().len(), 160, "last frame padded with silence");
        assert_eq!(sent.iter().filter(|o| **o == Output::PlaybackDone).count(), 1);
        // After a pause the timestamp has moved on with the clock and the marker is set.
        s.play(&[0x22; 160]);
        s.handle_tick(&mut pcm);
        let Some(Output::Transmit { bytes, .. }) = s.poll_output() else { panic!() };
        let r4 = rtp_rs::RtpReader::new(&bytes).unwrap();
        assert!(r4.mark());
        assert_eq!(r4.timestamp(), r[0].timestamp().wrapping_add(160 * 5));
    }

    #[test]
    fn receives_audio_latches_and_reports_dtmf_once() {
        let mut s = RtpSession::new(&neg(), 1);
        let src: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        s.handle_input(src, &pkt(0, 1, 0, &[0x80; 160]));
        let mut pcm = Vec::new();
        s.handle_tick(&mut pcm);
        assert_eq!(pcm.len(), 160);
        assert!(pcm[0] > 30000, "decoded µ-law 0x80");
        for _ in 0..3 {
            s.handle_input(src, &pkt(101, 2, 500, &[11, 0x8a, 0, 160]));
        }
        assert_eq!(s.poll_output(), Some(Output::Dtmf('#')));
        assert_eq!(s.poll_output(), None);
        s.handle_input(src, &[1, 2, 3]);
        s.handle_input(src, &pkt(18, 3, 0, &[0; 20]));
        assert_eq!((s.stats().invalid, s.stats().foreign_pt), (1, 1));
        s.play(&[0; 160]);
        s.handle_tick(&mut pcm);
        assert!(matches!(s.poll_output(), Some(Output::Transmit { to, .. }) if to == src), "symmetric RTP");
    }

    #[test]
    fn retarget_moves_the_stream_and_re_encodes_what_is_queued() {
        let mut s = RtpSession::new(&neg(), 1);
        let src: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        s.handle_input(src, &pkt(0, 1, 0, &[0xff; 160]));
        s.play(&g711::encode(Codec::Pcmu, &[1000; 320]));
        let moved = Negotiated { remote: "127.0.0.1:7100".parse().unwrap(), codec: Codec::Pcma, dtmf_pt: None };
        s.retarget(&moved);
        assert_eq!(s.codec(), Codec::Pcma);
        let mut pcm = Vec::new();
        s.handle_tick(&mut pcm);
        let Some(Output::Transmit { to, bytes }) = s.poll_output() else { panic!("a packet") };
        assert_eq!(to, moved.remote, "the new address until the caller's audio comes from it");
        let r = rtp_rs::RtpReader::new(&bytes).unwrap();
        assert_eq!(r.payload_type(), 8);
        assert_eq!(r.payload(), &g711::encode(Codec::Pcma, &g711_round_trip(1000))[..160]);
        // Now PCMU packets are foreign, PCMA ones are heard; DTMF is off.
        s.handle_input(moved.remote, &pkt(0, 2, 160, &[0xff; 160]));
        s.handle_input(moved.remote, &pkt(101, 3, 320, &[1, 0x8a, 0, 160]));
        assert_eq!(s.stats().foreign_pt, 2);
    }

    /// A µ-law round trip of one sample value, as a frame.
    fn g711_round_trip(v: i16) -> Vec<i16> {
        let mut out = Vec::new();
        g711::decode_into(Codec::Pcmu, &g711::encode(Codec::Pcmu, &[v]), &mut out);
        vec![out[0]; 160]
    }
}
