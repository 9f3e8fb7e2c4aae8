//! Audio: G.711 codecs, resampling, WAV files, tones, text to speech and the prompt library.

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
