//! Text to speech with espeak-ng, through its C library: types and constants from
//! `espeakng-sys`, the library itself opened on first use (`libloading`).
//!
//! Opened lazily because linking it pulls 36 shared libraries (PulseAudio, ALSA, D-Bus
//! through pcaudiolib) into every process: 6 ms of start-up for each CLI command and
//! memory for a server whose prompts are all cached — neither of which ever speaks.
//! Nothing here references the library's symbols directly, so the linker (`--as-needed`)
//! leaves it out of the binary's dependencies; `voxbridge_needs_no_espeak_to_start` in
//! the tests checks that.
//!
//! espeak-ng keeps global state and is not re-entrant, so every synthesis holds one
//! process-wide lock; callers run it on tokio's blocking pool. Output is 22.05 kHz from
//! the library, resampled here to the 8 kHz of G.711.

#![allow(unsafe_code)]

use anyhow::{anyhow, bail, Context, Result};
use espeakng_sys as ffi;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_short, c_uint, c_void};
use std::sync::Mutex;

/// The shared object of Debian's libespeak-ng1 (and of every distribution's build).
const LIBRARY: &str = "libespeak-ng.so.1";

type Initialize = unsafe extern "C" fn(ffi::espeak_AUDIO_OUTPUT, c_int, *const c_char, c_int) -> c_int;
type SetSynthCallback = unsafe extern "C" fn(ffi::t_espeak_callback);
type SetVoiceByName = unsafe extern "C" fn(*const c_char) -> ffi::espeak_ERROR;
type SetParameter = unsafe extern "C" fn(ffi::espeak_PARAMETER, c_int, c_int) -> ffi::espeak_ERROR;
type Synth = unsafe extern "C" fn(
    *const c_void,
    usize,
    c_uint,
    ffi::espeak_POSITION_TYPE,
    c_uint,
    c_uint,
    *mut c_uint,
    *mut c_void,
) -> ffi::espeak_ERROR;

/// The library's entry points used here, with the signatures `espeakng-sys` gives them.
struct Engine {
    initialize: Initialize,
    set_synth_callback: SetSynthCallback,
    set_voice_by_name: SetVoiceByName,
    set_parameter: SetParameter,
    synth: Synth,
    /// Sample rate once `espeak_Initialize` succeeded.
    rate: Option<u32>,
    /// Keeps the entry points above valid: never unloaded.
    _lib: libloading::Library,
}

impl Engine {
    fn open() -> Result<Engine> {
        // SAFETY: loading runs the library's initializers (C++ statics of espeak-ng and
        // its audio back-ends), which have no preconditions; each symbol is read with the
        // type of its declaration in espeak-ng's header (through espeakng-sys).
        unsafe {
            let lib = libloading::Library::new(LIBRARY)
                .with_context(|| format!("cannot load {LIBRARY} (install espeak-ng, or record every prompt)"))?;
            fn get<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T> {
                // SAFETY: see open(); T is the symbol's declared type.
                unsafe { Ok(*lib.get::<T>(name.as_bytes()).with_context(|| format!("{LIBRARY} has no {name}"))?) }
            }
            Ok(Engine {
                initialize: get(&lib, "espeak_Initialize")?,
                set_synth_callback: get(&lib, "espeak_SetSynthCallback")?,
                set_voice_by_name: get(&lib, "espeak_SetVoiceByName")?,
                set_parameter: get(&lib, "espeak_SetParameter")?,
                synth: get(&lib, "espeak_Synth")?,
                rate: None,
                _lib: lib,
            })
        }
    }
}

/// The opened library (None: not yet).
static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

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
    let mut guard = ENGINE.lock().unwrap_or_else(|p| p.into_inner());
    let engine = match guard.as_mut() {
        Some(e) => e,
        None => guard.insert(Engine::open()?),
    };
    // SAFETY (all calls below): the engine lock serializes every use of the library's
    // global state; pointers passed are valid C strings or the live output vector.
    let rate = match engine.rate {
        Some(r) => r,
        None => {
            let r = unsafe {
                (engine.initialize)(ffi::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), 0)
            };
            if r <= 0 {
                bail!("espeak-ng failed to initialize (is espeak-ng-data installed?)");
            }
            unsafe { (engine.set_synth_callback)(Some(collect)) };
            engine.rate = Some(r as u32);
            r as u32
        }
    };
    if unsafe { (engine.set_voice_by_name)(voice_c.as_ptr()) } != ffi::espeak_ERROR_EE_OK {
        bail!("espeak-ng has no voice {voice:?} (see `espeak-ng --voices`)");
    }
    unsafe { (engine.set_parameter)(ffi::espeak_PARAMETER_espeakRATE, words_per_minute as c_int, 0) };
    let mut out: Vec<i16> = Vec::new();
    let r = unsafe {
        (engine.synth)(
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
    drop(guard);
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
