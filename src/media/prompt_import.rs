//! A studio's or marketing department's audio made a prompt: decoded whatever it is
//! (WAV of any kind, MP3, FLAC, Ogg Vorbis, AAC/M4A — symphonia), down-mixed to mono and
//! resampled to 8 kHz, its leading and trailing silence trimmed, and its loudness brought
//! to one target for every prompt (EBU R128 integrated loudness, the `ebur128` crate), its
//! peaks kept below clipping. Pure: bytes in, samples and a report out.

use anyhow::{bail, Context, Result};

/// The loudness every imported prompt is brought to, in LUFS, unless configured.
pub const DEFAULT_TARGET_LUFS: f64 = -20.0;
/// Highest sample peak after the gain, in dBFS (G.711 clips hard).
const PEAK_DBFS: f64 = -1.0;
/// A 20 ms frame is silence below this mean absolute level (about -50 dBFS).
const SILENCE_LEVEL: f64 = 100.0;
/// Silence kept before and after the trimmed sound, in samples (50 ms).
const MARGIN: usize = 400;

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// 8 kHz mono.
    pub pcm: Vec<i16>,
    pub source_rate: u32,
    pub source_channels: usize,
    /// Integrated loudness before and after, LUFS.
    pub loudness_before: f64,
    pub loudness_after: f64,
    /// Silence cut from the start and the end, in milliseconds.
    pub trimmed_ms: (u64, u64),
}

/// Integrated loudness (EBU R128) of 8 kHz mono audio, or `None` for silence.
pub fn loudness(pcm: &[i16]) -> Result<Option<f64>> {
    let mut m = ebur128::EbuR128::new(1, 8000, ebur128::Mode::I).context("loudness meter")?;
    m.add_frames_i16(pcm).context("loudness meter")?;
    let l = m.loudness_global().context("loudness meter")?;
    Ok(l.is_finite().then_some(l))
}

/// The samples between the first and the last 20 ms frame that is not silence, with a
/// short margin; `None` when every frame is silence.
fn trim(pcm: &[i16]) -> Option<(usize, usize)> {
    let loud =
        |f: &[i16]| f.iter().map(|s| s.unsigned_abs() as f64).sum::<f64>() / f.len().max(1) as f64 >= SILENCE_LEVEL;
    let frames: Vec<&[i16]> = pcm.chunks(160).collect();
    let first = frames.iter().position(|f| loud(f))?;
    let last = frames.iter().rposition(|f| loud(f))?;
    Some(((first * 160).saturating_sub(MARGIN), ((last + 1) * 160 + MARGIN).min(pcm.len())))
}

/// Imports `bytes` (a whole file; `ext` a hint such as "mp3"), to `target_lufs`.
pub fn import(bytes: &[u8], ext: Option<&str>, target_lufs: f64) -> Result<Imported> {
    if bytes.is_empty() {
        bail!("the file is empty");
    }
    let decoded = super::decode::decode(bytes, ext)?;
    let Some((a, b)) = trim(&decoded.pcm) else { bail!("the audio is silent: nothing to play") };
    let mut pcm = decoded.pcm[a..b].to_vec();
    if pcm.len() < 800 {
        bail!("the audio is shorter than 0.1 s once its silence is trimmed");
    }
    let before = loudness(&pcm)?.context("the audio is too quiet to measure")?;
    let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0).max(1) as f64 / 32768.0;
    // The gain that reaches the target, held back where the peak would clip.
    let gain_db = (target_lufs - before).min(PEAK_DBFS - 20.0 * peak.log10());
    let gain = 10f64.powf(gain_db / 20.0);
    for s in pcm.iter_mut() {
        *s = (*s as f64 * gain).round().clamp(-32768.0, 32767.0) as i16;
    }
    let after = loudness(&pcm)?.unwrap_or(f64::NEG_INFINITY);
    let ms = |n: usize| n as u64 / 8;
    Ok(Imported {
        source_rate: decoded.rate,
        source_channels: decoded.channels,
        loudness_before: before,
        loudness_after: after,
        trimmed_ms: (ms(a), ms(decoded.pcm.len() - b)),
        pcm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_padded_tone_is_trimmed_and_brought_to_the_target() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend(crate::media::tone(440.0, 1000, 0.02));
        pcm.extend(vec![3i16; 4000]);
        let wav = crate::media::wav::encode(&pcm).unwrap();
        let got = import(&wav, Some("wav"), -20.0).unwrap();
        assert_eq!((got.source_rate, got.source_channels), (8000, 1));
        assert!((got.loudness_after - -20.0).abs() < 0.5, "{got:?}");
        assert!(got.loudness_before < -35.0, "{}", got.loudness_before);
        assert!((940..=960).contains(&got.trimmed_ms.0), "{:?}", got.trimmed_ms);
        assert!((440..=460).contains(&got.trimmed_ms.1), "{:?}", got.trimmed_ms);
        assert!((1090..=1110).contains(&(got.pcm.len() / 8)), "{} ms", got.pcm.len() / 8);
        // A loud one is not pushed into clipping.
        let loud = crate::media::wav::encode(&crate::media::tone(440.0, 1000, 0.99)).unwrap();
        let got = import(&loud, Some("wav"), -3.0).unwrap();
        let peak = got.pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak < 32000, "{peak}");
    }

    #[test]
    fn silence_garbage_and_empty_files_are_refused() {
        let silent = crate::media::wav::encode(&[0i16; 8000]).unwrap();
        assert!(import(&silent, Some("wav"), -20.0).unwrap_err().to_string().contains("silent"));
        assert!(import(b"", None, -20.0).unwrap_err().to_string().contains("empty"));
        assert!(import(b"not audio at all, just text", Some("mp3"), -20.0).is_err());
        let wav = crate::media::wav::encode(&crate::media::tone(440.0, 1000, 0.3)).unwrap();
        assert!(import(&wav[..60], Some("wav"), -20.0).is_err(), "truncated");
    }
}
