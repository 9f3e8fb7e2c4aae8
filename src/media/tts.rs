//! Text to speech with espeak-ng, through its C library (`espeakng-sys`).
//!
//! espeak-ng keeps global state and is not re-entrant, so every synthesis holds one
//! process-wide lock; callers run it on tokio's blocking pool. Output is 22.05 kHz from
//! the library, resampled here to the 8 kHz of G.711.

#![allow(unsafe_code)]

use anyhow::{anyhow, bail, Result};
use espeakng_sys as ffi;
use std::ffi::CString;
use std::os::raw::{c_int, c_short};
use std::sync::Mutex;

/// The library's sample rate once initialized (None: not yet).
static ENGINE: Mutex<Option<u32>> = Mutex::new(None);

/// Receives synthesized audio: appends it to the `Vec<i16>` passed as `user_data`.
unsafe extern "C" fn collect(wav: *mut c_short, n: c_int, events: *mut ffi::espeak_EVENT) -> c_int {
    if wav.is_null() || n <= 0 || events.is_null() {
        return 0;
    }
    // SAFETY: espeak-ng hands back the `user_data` given to `espeak_Synth`, which is a
    // `&mut Vec<i16>` alive for the whole (synchronous) call; `wav` holds `n` samples.
    unsafe {
        let out = (*events).user_data as *mut Vec<i16>;
        if !out.is_null() {
            (*out).extend_from_slice(std::slice::from_raw_parts(wav, n as usize));
        }
    }
    0
}

/// Speaks `text` with espeak-ng `voice` at `words_per_minute`; returns 8 kHz PCM.
pub fn synthesize(text: &str, voice: &str, words_per_minute: u32) -> Result<Vec<i16>> {
    let text = CString::new(text).map_err(|_| anyhow!("text contains a NUL byte"))?;
    let voice_c = CString::new(voice).map_err(|_| anyhow!("voice name contains a NUL byte"))?;
    let mut engine = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY (all calls below): the engine lock serializes every use of the library's
    // global state; pointers passed are valid C strings or the live output vector.
    let rate = match *engine {
        Some(r) => r,
        None => {
            let r = unsafe {
                ffi::espeak_Initialize(ffi::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), 0)
            };
            if r <= 0 {
                bail!("espeak-ng failed to initialize (is espeak-ng-data installed?)");
            }
            unsafe { ffi::espeak_SetSynthCallback(Some(collect)) };
            *engine = Some(r as u32);
            r as u32
        }
    };
    if unsafe { ffi::espeak_SetVoiceByName(voice_c.as_ptr()) } != ffi::espeak_ERROR_EE_OK {
        bail!("espeak-ng has no voice {voice:?} (see `espeak-ng --voices`)");
    }
    unsafe { ffi::espeak_SetParameter(ffi::espeak_PARAMETER_espeakRATE, words_per_minute as c_int, 0) };
    let mut out: Vec<i16> = Vec::new();
    let r = unsafe {
        ffi::espeak_Synth(
            text.as_ptr() as *const _,
            text.as_bytes_with_nul().len(),
            0,
            ffi::espeak_POSITION_TYPE_POS_CHARACTER,
            0,
            ffi::espeakCHARS_UTF8,
            std::ptr::null_mut(),
            &mut out as *mut Vec<i16> as *mut _,
        )
    };
    if r != ffi::espeak_ERROR_EE_OK {
        bail!("espeak-ng synthesis failed (error {r})");
    }
    drop(engine);
    Ok(super::resample::resample(&out, rate, 8000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn speaks_and_refuses_unknown_voices() {
        let pcm = super::synthesize("Your message has been saved.", "en-us", 150).unwrap();
        // Roughly two seconds of speech, not silence.
        assert!((8000..32000).contains(&pcm.len()), "{} samples", pcm.len());
        assert!(crate::media::mean_level(&pcm) > 300);
        let faster = super::synthesize("Your message has been saved.", "en-us", 300).unwrap();
        assert!(faster.len() < pcm.len() * 3 / 4, "rate is applied");
        assert!(super::synthesize("x", "no-such-voice", 150).is_err());
    }
}
