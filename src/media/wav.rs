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

/// The 44-byte header of an 8 kHz 16-bit mono PCM WAV file of `samples` samples.
pub fn header(samples: u64) -> [u8; 44] {
    let data = (samples * 2).min(u32::MAX as u64 - 36) as u32;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&8000u32.to_le_bytes());
    h[28..32].copy_from_slice(&16000u32.to_le_bytes()); // bytes per second
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// A recording written to disk while it is made: memory holds only what has not been
/// appended yet, however long the caller speaks. [`WavStream::finish`] keeps the first
/// samples (trailing silence is cut after the fact) and makes the file durable.
pub struct WavStream {
    file: crate::durable::StreamingFile,
    samples: u64,
}

impl WavStream {
    pub fn create(path: &Path) -> Result<WavStream> {
        Ok(WavStream { file: crate::durable::StreamingFile::create(path, &header(0))?, samples: 0 })
    }

    pub fn append(&mut self, pcm: &[i16]) -> Result<()> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.file.append(&bytes)?;
        self.samples += pcm.len() as u64;
        Ok(())
    }

    /// Samples appended so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Keeps the first `keep` samples and puts the file in place durably; its size.
    pub fn finish(self, keep: u64) -> Result<u64> {
        let keep = keep.min(self.samples);
        let len = 44 + keep * 2;
        self.file.finish(len, &header(keep))?;
        Ok(len)
    }
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
