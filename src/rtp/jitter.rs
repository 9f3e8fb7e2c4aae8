//! Receive-side reorder/jitter buffer, paced by the 20 ms playout clock.
//!
//! Packets are keyed by their widened RTP timestamp — the sampling instant of their
//! first sample — not by sequence number: a sender may put other packets in the same
//! sequence space (baresip sends RFC 4733 events between audio packets), and a gap in
//! sequence numbers is then no gap in the audio. Playout starts once `delay` frames of
//! audio are buffered; each tick takes the next 160 samples wherever they come from
//! (any packet size): covered → frame, nothing while later audio waits → lost (silence),
//! buffer empty → underrun (silence, and buffering starts again, so a sender that
//! pauses is not counted as loss). G.711 only: one byte is one sample.

use super::FRAME_SAMPLES;
use std::collections::BTreeMap;

const FRAME: u64 = FRAME_SAMPLES as u64;
/// A packet this far from the playout position (10 s), ahead or behind, restarts the
/// buffer: a new stream or a sender that jumped, not jitter.
const MAX_JUMP: u64 = 500 * FRAME;
/// Above this much buffered audio (2 s) the oldest is dropped so latency cannot grow
/// without bound.
const MAX_DEPTH: u64 = 100 * FRAME;
/// Payloads longer than this are not G.711 packets we offered (ptime ≤ 200 ms).
const MAX_PACKET: usize = 10 * FRAME_SAMPLES;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after their playout time had passed.
    pub late: u64,
    /// Dropped because the buffer was too deep.
    pub overflow: u64,
    /// Frames with no audio at their playout time while later audio waited.
    pub lost: u64,
    pub underruns: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// One frame; samples no packet covered are the fill byte.
    Frame(Vec<u8>),
    Lost,
    /// Nothing to play (not started, or the sender paused).
    Silence,
}

#[derive(Debug)]
pub struct JitterBuffer {
    /// Payloads by the timestamp of their first sample.
    packets: BTreeMap<u64, Vec<u8>>,
    /// The next sample to play: everything before it has been played or given up.
    next: Option<u64>,
    delay: usize,
    playing: bool,
    /// The codec's silence, for samples inside a frame that no packet covered.
    fill: u8,
    pub stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(delay: usize, fill: u8) -> JitterBuffer {
        JitterBuffer {
            packets: BTreeMap::new(),
            next: None,
            delay: delay.max(1),
            playing: false,
            fill,
            stats: JitterStats::default(),
        }
    }

    /// The playout delay in frames it was made with.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// `ts` is the packet's widened timestamp.
    pub fn push(&mut self, ts: u64, payload: &[u8]) {
        self.stats.received += 1;
        if payload.is_empty() || payload.len() > MAX_PACKET {
            self.stats.late += 1;
            return;
        }
        let end = ts + payload.len() as u64;
        match self.next {
            Some(n) if ts > n + MAX_JUMP || end + MAX_JUMP < n => self.restart_at(ts),
            Some(n) if end <= n => {
                self.stats.late += 1;
                return;
            }
            Some(_) => {}
            None => self.next = Some(ts),
        }
        if self.packets.insert(ts, payload.to_vec()).is_some() {
            self.stats.duplicates += 1;
        }
        while self.buffered_samples() > MAX_DEPTH {
            let Some((first, p)) = self.packets.pop_first() else { break };
            self.stats.overflow += 1;
            self.next = Some(first + p.len() as u64);
        }
    }

    fn restart_at(&mut self, ts: u64) {
        self.packets.clear();
        self.next = Some(ts);
        self.playing = false;
    }

    /// From the playout position (or the first packet) to the end of the last packet.
    fn buffered_samples(&self) -> u64 {
        let (Some((&first, _)), Some((&last, p))) = (self.packets.first_key_value(), self.packets.last_key_value())
        else {
            return 0;
        };
        let from = self.next.map_or(first, |n| n.min(first));
        (last + p.len() as u64).saturating_sub(from)
    }

    /// One playout tick.
    pub fn pop(&mut self) -> Playout {
        let Some(mut n) = self.next else {
            return Playout::Silence;
        };
        if !self.playing {
            let Some((&first, _)) = self.packets.first_key_value() else {
                return Playout::Silence;
            };
            // A sender that paused resumes at a later timestamp: start where it did.
            n = n.max(first);
            let (&last, p) = self.packets.last_key_value().expect("not empty");
            if last + p.len() as u64 - n < self.delay as u64 * FRAME {
                return Playout::Silence;
            }
            self.playing = true;
        }
        let until = n + FRAME;
        let mut frame = vec![self.fill; FRAME_SAMPLES];
        let mut covered = false;
        // The packet that starts at or before `n` may reach into this frame.
        let from = self.packets.range(..=n).next_back().map_or(n, |(&k, _)| k);
        for (&start, p) in self.packets.range(from..until) {
            let (s, e) = (start.max(n), (start + p.len() as u64).min(until));
            if s < e {
                let src = &p[(s - start) as usize..(e - start) as usize];
                frame[(s - n) as usize..(e - n) as usize].copy_from_slice(src);
                covered = true;
            }
        }
        if !covered && self.packets.is_empty() {
            // Underrun: the position stays, so the frame that is merely late (the
            // sender's clock or the network hiccuped) is still played when it comes;
            // a sender that paused resumes at its later timestamp (see above).
            self.stats.underruns += 1;
            self.playing = false;
            return Playout::Silence;
        }
        // Drop what is now fully played.
        while let Some((&k, p)) = self.packets.first_key_value() {
            if k + p.len() as u64 > until {
                break;
            }
            self.packets.pop_first();
        }
        self.next = Some(until);
        if covered {
            return Playout::Frame(frame);
        }
        self.stats.lost += 1;
        Playout::Lost
    }

    /// Remaining buffered packets are counted at the end of a call: if the call ended
    /// with packets still waiting, they were not lost, just not yet played.
    pub fn buffered(&self) -> usize {
        self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `frames` frames whose bytes say which frame of the stream they are.
    fn audio(frame_no: u8, frames: usize) -> Vec<u8> {
        (0..frames).flat_map(|i| vec![frame_no + i as u8; FRAME_SAMPLES]).collect()
    }

    fn at(frame_no: u64) -> u64 {
        1_000_000 + frame_no * FRAME
    }

    #[test]
    fn reorders_and_conceals() {
        let mut j = JitterBuffer::new(2, 0xff);
        j.push(at(10), &audio(10, 1));
        assert_eq!(j.pop(), Playout::Silence, "waits for the playout delay");
        j.push(at(12), &audio(12, 1));
        j.push(at(11), &audio(11, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(10, 1)));
        assert_eq!(j.pop(), Playout::Frame(audio(11, 1)));
        assert_eq!(j.pop(), Playout::Frame(audio(12, 1)));
        j.push(at(15), &audio(15, 1));
        j.push(at(16), &audio(16, 1));
        assert_eq!(j.pop(), Playout::Lost);
        assert_eq!(j.pop(), Playout::Lost);
        assert_eq!(j.pop(), Playout::Frame(audio(15, 1)));
        j.push(at(13), &audio(13, 1));
        assert_eq!(j.stats.late, 1);
        j.push(at(16), &audio(16, 1));
        assert_eq!(j.stats.duplicates, 1);
        assert_eq!(j.pop(), Playout::Frame(audio(16, 1)));
        assert_eq!(j.pop(), Playout::Silence);
        assert_eq!((j.stats.lost, j.stats.underruns), (2, 1));
    }

    #[test]
    fn sender_pause_is_not_loss_and_jump_resets() {
        let mut j = JitterBuffer::new(1, 0xff);
        j.push(at(1), &audio(1, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(1, 1)));
        for _ in 0..10 {
            assert_eq!(j.pop(), Playout::Silence);
        }
        // The sender paused 30 frames (its clock ran on): no loss, no delay on resume.
        j.push(at(31), &audio(31, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(31, 1)));
        j.push(at(100_000), &audio(9, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(9, 1)));
        // A sender that restarted its clock far back is a new stream, not late.
        j.push(at(5), &audio(5, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(5, 1)));
        assert_eq!((j.stats.lost, j.stats.late), (0, 0));
    }

    #[test]
    fn a_frame_late_after_an_underrun_is_still_played() {
        let mut j = JitterBuffer::new(1, 0xff);
        j.push(at(0), &audio(0, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(0, 1)));
        assert_eq!(j.pop(), Playout::Silence, "frame 1 is late: underrun");
        j.push(at(1), &audio(1, 1));
        j.push(at(2), &audio(2, 1));
        assert_eq!(j.pop(), Playout::Frame(audio(1, 1)), "played, not dropped as late");
        assert_eq!(j.pop(), Playout::Frame(audio(2, 1)));
        assert_eq!((j.stats.late, j.stats.lost, j.stats.underruns), (0, 0, 1));
    }

    #[test]
    fn any_packet_size_plays_as_20_ms_frames() {
        // 30 ms packets (240 samples) and one 10 ms packet: the frames are cut from them.
        let mut j = JitterBuffer::new(1, 0xff);
        let stream: Vec<u8> = (0..600u32).map(|i| (i / 7) as u8).collect();
        j.push(at(0), &stream[..240]);
        j.push(at(0) + 240, &stream[240..480]);
        j.push(at(0) + 480, &stream[480..560]);
        j.push(at(0) + 560, &stream[560..600]);
        let mut played = Vec::new();
        while let Playout::Frame(f) = j.pop() {
            played.extend(f);
        }
        assert_eq!(&played[..600], &stream[..]);
        assert!(played[600..].iter().all(|&b| b == 0xff), "the last frame's rest is silence");
        assert_eq!(j.stats.lost, 0);
    }

    #[test]
    fn a_packet_that_covers_part_of_a_frame_is_played_with_the_rest_silent() {
        let mut j = JitterBuffer::new(1, 0xff);
        j.push(at(0), &audio(1, 1));
        j.push(at(1) + 80, &[7; 80]);
        assert_eq!(j.pop(), Playout::Frame(audio(1, 1)));
        let Playout::Frame(f) = j.pop() else { panic!("a frame") };
        assert_eq!((&f[..80], &f[80..]), (&[0xff; 80][..], &[7; 80][..]));
    }

    #[test]
    fn depth_is_bounded_and_hostile_sizes_are_refused() {
        let mut j = JitterBuffer::new(1, 0xff);
        for i in 0..150 {
            j.push(at(i), &audio(i as u8, 1));
        }
        assert_eq!(j.stats.overflow, 50);
        assert_eq!(j.pop(), Playout::Frame(audio(50, 1)), "the oldest were dropped");
        j.push(at(200), &[]);
        j.push(at(201), &vec![0; 100_000]);
        assert_eq!(j.buffered(), 99, "empty and oversized payloads not kept");
    }
}
