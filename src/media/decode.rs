//! Audio of any common kind decoded to 8 kHz mono PCM: the attachments of voice mails
//! that other systems send (Asterisk, Exchange, gateways), by symphonia — WAV as PCM,
//! µ-law, A-law or IMA ADPCM, MP3, FLAC, Ogg Vorbis and AAC (in M4A/MP4). GSM 6.10 WAV ("wav49", Asterisk's default for
//! e-mailed voice mail) has no sound crate in Rust: it is recognized and refused with
//! a clear reason, so the message is announced rather than played.

use anyhow::{anyhow, bail, Context, Result};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The longest audio decoded, in seconds of the source: a hostile or broken file cannot
/// make the decoder fill memory.
const MAX_SECS: u64 = 30 * 60;

/// WAVE_FORMAT_GSM610.
const WAVE_GSM610: u16 = 0x0031;

/// Decodes `bytes` (a whole file; `ext` a hint such as "mp3" or "wav") to 8 kHz mono
/// 16-bit PCM.
pub fn decode_8k_mono(bytes: &[u8], ext: Option<&str>) -> Result<Vec<i16>> {
    Ok(decode(bytes, ext)?.pcm)
}

/// Decoded audio: 8 kHz mono, and what the source was.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub pcm: Vec<i16>,
    pub rate: u32,
    pub channels: usize,
}

/// [`decode_8k_mono`], saying what the source's rate and channels were.
pub fn decode(bytes: &[u8], ext: Option<&str>) -> Result<Decoded> {
    if wav_format_tag(bytes) == Some(WAVE_GSM610) {
        bail!("GSM 6.10 WAV (wav49) is not supported: no sound crate decodes it");
    }
    let owned = bytes.to_vec();
    let ext = ext.map(str::to_ascii_lowercase);
    // symphonia is a third-party parser fed hostile input: a panic in it must not end
    // the call task, only this decode.
    std::panic::catch_unwind(move || decode_all(owned, ext.as_deref()))
        .map_err(|_| anyhow!("the audio decoder failed on this file"))?
}

fn decode_all(bytes: Vec<u8>, ext: Option<&str>) -> Result<Decoded> {
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    if let Some(e) = ext {
        hint.with_extension(e);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .context("not an audio file symphonia knows (WAV, MP3, FLAC, Ogg Vorbis, AAC/M4A)")?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| anyhow!("no audio track"))?;
    let (id, params) = (track.id, track.codec_params.clone());
    let rate = params.sample_rate.ok_or_else(|| anyhow!("no sample rate"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .context("unsupported audio codec")?;
    let limit = (MAX_SECS * rate as u64) as usize;
    let mut mono: Vec<i16> = Vec::new();
    let mut source_channels = params.channels.map_or(1, |c| c.count());
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(e).context("cannot read the audio"),
        };
        if packet.track_id() != id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            // One damaged frame is skipped, as players do.
            Err(SymError::DecodeError(why)) => {
                tracing::debug!(why, "audio frame skipped");
                continue;
            }
            Err(e) => return Err(e).context("cannot decode the audio"),
        };
        let spec = *buf.spec();
        let channels = spec.channels.count().max(1);
        source_channels = channels;
        let mut samples = SampleBuffer::<i16>::new(buf.capacity() as u64, spec);
        samples.copy_interleaved_ref(buf);
        mono.extend(
            samples
                .samples()
                .chunks(channels)
                .map(|c| (c.iter().map(|s| *s as i32).sum::<i32>() / c.len() as i32) as i16),
        );
        if mono.len() > limit {
            bail!("audio longer than {MAX_SECS} s");
        }
    }
    if mono.is_empty() {
        bail!("the audio decoded to nothing");
    }
    Ok(Decoded { pcm: super::resample::resample(&mono, rate, 8000), rate, channels: source_channels })
}

/// The format tag of a RIFF/WAVE file's `fmt ` chunk, if `bytes` is one.
fn wav_format_tag(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        if id == b"fmt " {
            return bytes.get(pos + 8..pos + 10).map(|t| u16::from_le_bytes([t[0], t[1]]));
        }
        pos = pos.checked_add(8 + len + (len & 1))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero crossings per second of `pcm` at 8 kHz: twice the frequency of a pure tone.
    fn crossings_per_sec(pcm: &[i16]) -> f64 {
        let n = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        n as f64 / (pcm.len() as f64 / 8000.0)
    }

    /// The fixtures are one second of 440 Hz (sox), encoded by sox and lame.
    #[test]
    fn every_common_voice_mail_format_decodes_to_the_same_tone() {
        let fixtures: [(&str, &[u8], &str); 4] = [
            ("µ-law WAV", include_bytes!("../../tests/fixtures/audio/tone-ulaw.wav"), "wav"),
            ("A-law WAV", include_bytes!("../../tests/fixtures/audio/tone-alaw.wav"), "wav"),
            ("IMA ADPCM WAV", include_bytes!("../../tests/fixtures/audio/tone-ima.wav"), "wav"),
            ("MP3 (16 kHz)", include_bytes!("../../tests/fixtures/audio/tone.mp3"), "mp3"),
        ];
        for (what, bytes, ext) in fixtures {
            let pcm = decode_8k_mono(bytes, Some(ext)).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let secs = pcm.len() as f64 / 8000.0;
            assert!((0.95..1.15).contains(&secs), "{what}: {secs} s");
            let f = crossings_per_sec(&pcm[800..pcm.len() - 800]) / 2.0;
            assert!((420.0..460.0).contains(&f), "{what}: {f} Hz");
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!(peak > 8000, "{what}: audible, peak {peak}");
        }
    }

    #[test]
    fn hostile_or_unsupported_input_is_an_error() {
        assert!(decode_8k_mono(b"", None).is_err());
        assert!(decode_8k_mono(b"RIFF\x04\x00\x00\x00WAVE", Some("wav")).is_err());
        let mut gsm = include_bytes!("../../tests/fixtures/audio/tone-ulaw.wav").to_vec();
        gsm[20..22].copy_from_slice(&WAVE_GSM610.to_le_bytes());
        assert!(decode_8k_mono(&gsm, Some("wav")).unwrap_err().to_string().contains("GSM 6.10"));
        let mp3 = include_bytes!("../../tests/fixtures/audio/tone.mp3");
        for cut in [10, 100, 1000] {
            let _ = decode_8k_mono(&mp3[..cut], Some("mp3")); // an error or a short tone, no panic
        }
        let mut noise = vec![0u8; 4096];
        for (i, b) in noise.iter_mut().enumerate() {
            *b = (i * 7919 % 251) as u8;
        }
        let _ = decode_8k_mono(&noise, Some("mp3"));
    }
}
