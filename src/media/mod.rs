//! Audio: G.711 codecs, resampling, WAV files, tones, text to speech and the prompt library.

pub mod decode;
pub mod g711;
pub mod prompts;
pub mod resample;
pub mod tts;
pub mod wav;

/// A sine tone at 8 kHz with 5 ms ramps, e.g. the 1 kHz beep before recording.
pub fn tone(freq_hz: f64, millis: u32, amplitude: f64) -> Vec<i16> {
    let n = (8 * millis) as usize;
    let ramp = 40usize;
    (0..n)
        .map(|i| {
            let env = (i.min(n - 1 - i) as f64 / ramp as f64).min(1.0);
            (amplitude * env * (2.0 * std::f64::consts::PI * freq_hz * i as f64 / 8000.0).sin() * 32767.0) as i16
        })
        .collect()
}

/// Mean absolute level of a frame, for silence detection.
pub fn mean_level(pcm: &[i16]) -> u32 {
    if pcm.is_empty() {
        return 0;
    }
    (pcm.iter().map(|&s| (s as i32).unsigned_abs()).sum::<u32>()) / pcm.len() as u32
}

/// The caller's audio being recorded (a message, a greeting, a reply), 20 ms frames at a
/// time, with the run of silent frames at its end: what ends a recording on silence and
/// is cut off when it stops — the pause before a caller finds the # key or hangs up is
/// dead air to the listener.
#[derive(Debug, Default)]
pub struct Recorder {
    pcm: Vec<i16>,
    silent_run: usize,
}

impl Recorder {
    /// Appends one frame; it is silent when its mean level is below `silence_level`.
    pub fn push(&mut self, frame: &[i16], silence_level: u32) {
        self.pcm.extend_from_slice(frame);
        if mean_level(frame) < silence_level {
            self.silent_run += 1;
        } else {
            self.silent_run = 0;
        }
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> usize {
        self.pcm.len() / crate::rtp::FRAME_SAMPLES
    }

    /// Silent frames at the end.
    pub fn trailing_silence(&self) -> usize {
        self.silent_run
    }

    /// The recording without its trailing silence; the recorder starts over empty.
    pub fn finish(&mut self) -> Vec<i16> {
        let keep = self.frames().saturating_sub(self.silent_run);
        let mut pcm = std::mem::take(&mut self.pcm);
        pcm.truncate(keep * crate::rtp::FRAME_SAMPLES);
        self.silent_run = 0;
        pcm
    }

    pub fn clear(&mut self) {
        self.pcm.clear();
        self.silent_run = 0;
    }
}
