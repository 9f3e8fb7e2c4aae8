//! Fax calling tone (CNG, ITU-T T.30: 1100 Hz, 0.5 s on, 3 s off) in a caller's audio:
//! how an audio call reveals a fax machine during the greeting or the recording.
//! Sans-IO: one 20 ms frame at a time. A frame counts as tone when the 1100 Hz
//! Goertzel bin holds most of its energy at a level a line can carry; the tone is heard
//! after 400 ms of such frames in a row (a burst is 425–575 ms).

use crate::rtp::FRAME_SAMPLES;

/// Frames of tone in a row that make a CNG burst.
const BURST_FRAMES: u32 = 20;
/// Share of the frame's energy in the 1100 Hz bin (1.0 for a pure tone).
const TONE_SHARE: f64 = 0.6;
/// Mean absolute level below which a frame is too quiet to judge (about −45 dBm0).
const MIN_LEVEL: f64 = 60.0;

#[derive(Debug, Default)]
pub struct CngDetector {
    run: u32,
    heard: bool,
}

/// The share of `pcm`'s energy at `hz` (8 kHz samples): 2|X(hz)|² / (N·Σx²).
pub fn tone_share(pcm: &[i16], hz: f64) -> f64 {
    let n = pcm.len() as f64;
    if pcm.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
    for &x in pcm {
        let x = x as f64;
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n * energy)
}

impl CngDetector {
    /// One frame; true once (the frame that completes the first burst).
    pub fn push(&mut self, pcm: &[i16]) -> bool {
        if self.heard || pcm.len() != FRAME_SAMPLES {
            return false;
        }
        let level = pcm.iter().map(|s| (*s as f64).abs()).sum::<f64>() / pcm.len() as f64;
        // T.30 allows ±38 Hz: three bins across that range (a 20 ms bin is 50 Hz wide).
        let share = [1070.0, 1100.0, 1130.0].iter().map(|hz| tone_share(pcm, *hz)).fold(0.0, f64::max);
        if level >= MIN_LEVEL && share >= TONE_SHARE {
            self.run += 1;
        } else {
            self.run = 0;
        }
        if self.run >= BURST_FRAMES {
            self.heard = true;
        }
        self.heard
    }

    pub fn heard(&self) -> bool {
        self.heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, frames: usize, amp: f64) -> Vec<Vec<i16>> {
        let all: Vec<i16> = (0..frames * FRAME_SAMPLES)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16)
            .collect();
        all.chunks(FRAME_SAMPLES).map(|c| c.to_vec()).collect()
    }

    fn detects(frames: &[Vec<i16>]) -> bool {
        let mut d = CngDetector::default();
        frames.iter().any(|f| d.push(f))
    }

    #[test]
    fn a_cng_burst_is_heard_and_other_sounds_are_not() {
        assert!(detects(&tone(1100.0, 25, 4000.0)), "0.5 s of 1100 Hz");
        assert!(detects(&tone(1080.0, 25, 800.0)), "a little off frequency, quieter");
        assert!(detects(&tone(1135.0, 25, 4000.0)), "at the edge of T.30's tolerance");
        assert!(!detects(&tone(1100.0, 15, 4000.0)), "0.3 s is too short");
        assert!(!detects(&tone(1000.0, 50, 4000.0)), "another tone");
        assert!(!detects(&tone(1100.0, 50, 20.0)), "too quiet to judge");
        // Speech-like: two tones and a chirp together.
        let mix: Vec<Vec<i16>> = tone(1100.0, 50, 2000.0)
            .iter()
            .zip(tone(700.0, 50, 2500.0))
            .zip(tone(1900.0, 50, 2000.0))
            .map(|((a, b), c)| a.iter().zip(&b).zip(&c).map(|((x, y), z)| x / 3 + y / 3 + z / 3).collect())
            .collect();
        assert!(!detects(&mix), "1100 Hz among other sound is not CNG");
        assert!(!detects(&vec![vec![0; FRAME_SAMPLES]; 100]));
    }

    #[test]
    fn a_fax_machine_calling_is_heard_within_its_first_burst() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("none.tif");
        let Ok(mut machine) = crate::fax::spandsp::AudioFax::new(true, crate::fax::spandsp::Job::Send(&src), "x")
        else {
            return; // no libspandsp here: tests/fax.rs covers it where it is installed
        };
        let mut d = CngDetector::default();
        let mut frame = vec![0i16; FRAME_SAMPLES];
        let heard_at = (0..250).find(|_| {
            let n = machine.transmit(&mut frame);
            frame[n..].fill(0);
            d.push(&frame)
        });
        assert!(heard_at.is_some_and(|f| f < 100), "CNG heard at frame {heard_at:?}");
    }
}
