//! Audio: G.711 codecs, resampling, WAV files, tones, text to speech and the prompt library.

pub mod cng;
pub mod decode;
pub mod g711;
pub mod prompt_import;
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
    /// Recorded and not yet taken ([`Recorder::take`]).
    pcm: Vec<i16>,
    /// Samples taken so far (written elsewhere, a file).
    taken: usize,
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

    /// Frames recorded so far, taken or not.
    pub fn frames(&self) -> usize {
        (self.taken + self.pcm.len()) / crate::rtp::FRAME_SAMPLES
    }

    /// Frames recorded and not yet taken.
    pub fn pending_frames(&self) -> usize {
        self.pcm.len() / crate::rtp::FRAME_SAMPLES
    }

    /// Silent frames at the end.
    pub fn trailing_silence(&self) -> usize {
        self.silent_run
    }

    /// What was recorded since the last call, for a writer that keeps the recording on
    /// disk while it is made; what is kept in the end is [`Recorder::kept_samples`].
    pub fn take(&mut self) -> Vec<i16> {
        self.taken += self.pcm.len();
        std::mem::take(&mut self.pcm)
    }

    /// Samples of the recording without its trailing silence.
    pub fn kept_samples(&self) -> usize {
        self.frames().saturating_sub(self.silent_run) * crate::rtp::FRAME_SAMPLES
    }

    /// The recording without its trailing silence (as far as it was not taken); the
    /// recorder starts over empty.
    pub fn finish(&mut self) -> Vec<i16> {
        let keep = self.kept_samples().saturating_sub(self.taken);
        let mut pcm = std::mem::take(&mut self.pcm);
        pcm.truncate(keep);
        self.silent_run = 0;
        self.taken = 0;
        pcm
    }

    pub fn clear(&mut self) {
        self.pcm.clear();
        self.silent_run = 0;
        self.taken = 0;
    }
}
