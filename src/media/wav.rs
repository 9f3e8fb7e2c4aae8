//! WAV files: durable writes of recordings, and reading prompts at any format.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes 8 kHz 16-bit mono PCM to `path` durably: temp file, fsync, rename, fsync of
/// the directory. When this returns Ok the recording survives a power cut.
pub fn write_durable(path: &Path, pcm: &[i16]) -> Result<u64> {
    let bytes = encode(pcm)?;
    crate::durable::write_durable(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// 8 kHz 16-bit mono PCM as WAV bytes.
pub fn encode(pcm: &[i16]) -> Result<Vec<u8>> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + pcm.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec)?;
        let mut i16w = w.get_i16_writer(pcm.len() as u32);
        for &s in pcm {
            i16w.write_sample(s);
        }
        i16w.flush()?;
        w.finalize()?;
    }
    Ok(out.into_inner())
}

/// Reads a WAV file as mono 16-bit PCM at 8 kHz, converting as needed.
pub fn read_8k_mono(path: &Path) -> Result<Vec<i16>> {
    let r = hound::WavReader::open(path).with_context(|| format!("cannot read WAV {}", path.display()))?;
    to_8k_mono(r).with_context(|| format!("cannot read WAV {}", path.display()))
}

/// Decodes WAV bytes (a mail attachment) as mono 16-bit PCM at 8 kHz.
pub fn decode_8k_mono(bytes: &[u8]) -> Result<Vec<i16>> {
    to_8k_mono(hound::WavReader::new(std::io::Cursor::new(bytes))?)
}

fn to_8k_mono<R: std::io::Read>(mut r: hound::WavReader<R>) -> Result<Vec<i16>> {
    let spec = r.spec();
    let samples: Vec<i32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => r.samples::<i16>().map(|s| s.map(i32::from)).collect::<Result<_, _>>()?,
        (hound::SampleFormat::Int, 8) => {
            r.samples::<i8>().map(|s| s.map(|v| (v as i32) << 8)).collect::<Result<_, _>>()?
        }
        (hound::SampleFormat::Int, b) if b > 16 => {
            r.samples::<i32>().map(|s| s.map(|v| v >> (b - 16))).collect::<Result<_, _>>()?
        }
        (hound::SampleFormat::Float, _) => {
            r.samples::<f32>().map(|s| s.map(|v| (v * 32767.0) as i32)).collect::<Result<_, _>>()?
        }
        _ => anyhow::bail!("unsupported WAV format {:?}", spec),
    };
    let ch = spec.channels.max(1) as usize;
    let mono: Vec<i16> =
        samples.chunks(ch).map(|c| (c.iter().sum::<i32>() / c.len() as i32).clamp(-32768, 32767) as i16).collect();
    Ok(super::resample::resample(&mono, spec.sample_rate, 8000))
}

/// Writes any PCM to a file, not durably (prompt cache).
pub fn write_plain(path: &Path, pcm: &[i16]) -> Result<()> {
    // Unique temp name: several servers may fill one shared cache at once.
    let tmp = path.with_extension(format!("{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    std::fs::write(&tmp, encode(pcm)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durable_write_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r/x.wav");
        let pcm: Vec<i16> = (0..8000).map(|i| (i % 100) as i16).collect();
        let size = super::write_durable(&p, &pcm).unwrap();
        assert_eq!(size, 44 + 16000);
        assert_eq!(super::read_8k_mono(&p).unwrap(), pcm);
        assert!(!p.with_extension("wav.tmp").exists());
    }
}
