//! spandsp 0.0.6 (Debian's libspandsp2) through a small hand-written FFI layer: the only
//! `unsafe` of fax. The library is opened on first use (`dlopen`), like espeak-ng, so a
//! server that never takes a fax never needs it. spandsp reads the TIFF to send and
//! writes the TIFF-F it receives itself (through libtiff).
//!
//! Two engines, both driven by the caller's clock (samples), never by threads:
//! - [`AudioFax`]: T.30 over G.711 — 8 kHz samples in, samples out;
//! - [`T38Fax`]: T.30 over T.38 — IFP packets in, IFP packets out, time advanced by
//!   [`T38Fax::advance`].
//!
//! The state structures are opaque here: spandsp allocates them (`*_init(NULL, …)`) and
//! frees them (`*_free`); only pointers cross. `t30_stats_t` is the one struct read, laid
//! out as in `spandsp/t30.h` (fifteen `int`s).

#![allow(unsafe_code)]

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;

const LIBRARY: &str = "libspandsp.so.2";

// T.30 capabilities (spandsp/t30.h).
const T30_SUPPORT_V27TER: c_int = 0x01;
const T30_SUPPORT_V29: c_int = 0x02;
const T30_SUPPORT_V17: c_int = 0x04;
const T30_SUPPORT_T4_1D: c_int = 0x02;
const T30_SUPPORT_T4_2D: c_int = 0x04;
const T30_SUPPORT_T6: c_int = 0x08;

/// `t30_stats_t` of spandsp 0.0.6.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct T30Stats {
    bit_rate: c_int,
    error_correcting_mode: c_int,
    pages_tx: c_int,
    pages_rx: c_int,
    pages_in_file: c_int,
    x_resolution: c_int,
    y_resolution: c_int,
    width: c_int,
    length: c_int,
    image_size: c_int,
    encoding: c_int,
    bad_rows: c_int,
    longest_bad_row_run: c_int,
    error_correcting_mode_retries: c_int,
    current_status: c_int,
}

type PhaseEHandler = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int);
type TxPacketHandler = unsafe extern "C" fn(*mut c_void, *mut c_void, *const u8, c_int, c_int) -> c_int;

/// The functions used, resolved once.
struct Lib {
    fax_init: unsafe extern "C" fn(*mut c_void, c_int) -> *mut c_void,
    fax_rx: unsafe extern "C" fn(*mut c_void, *mut i16, c_int) -> c_int,
    fax_tx: unsafe extern "C" fn(*mut c_void, *mut i16, c_int) -> c_int,
    fax_set_transmit_on_idle: unsafe extern "C" fn(*mut c_void, c_int),
    fax_get_t30_state: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    fax_free: unsafe extern "C" fn(*mut c_void) -> c_int,
    t38_terminal_init: unsafe extern "C" fn(*mut c_void, c_int, TxPacketHandler, *mut c_void) -> *mut c_void,
    t38_terminal_send_timeout: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    t38_terminal_get_t30_state: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    t38_terminal_get_t38_core_state: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    t38_terminal_free: unsafe extern "C" fn(*mut c_void) -> c_int,
    t38_core_rx_ifp_packet: unsafe extern "C" fn(*mut c_void, *const u8, c_int, u16) -> c_int,
    t38_set_t38_version: unsafe extern "C" fn(*mut c_void, c_int),
    t38_set_max_datagram_size: unsafe extern "C" fn(*mut c_void, c_int),
    t30_set_rx_file: unsafe extern "C" fn(*mut c_void, *const c_char, c_int),
    t30_set_tx_file: unsafe extern "C" fn(*mut c_void, *const c_char, c_int, c_int),
    t30_set_tx_ident: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    t30_get_rx_ident: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    t30_set_ecm_capability: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    t30_set_supported_modems: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    t30_set_supported_compressions: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    t30_set_phase_e_handler: unsafe extern "C" fn(*mut c_void, PhaseEHandler, *mut c_void),
    t30_get_transfer_statistics: unsafe extern "C" fn(*mut c_void, *mut T30Stats),
    t30_completion_code_to_str: unsafe extern "C" fn(c_int) -> *const c_char,
    t30_terminate: unsafe extern "C" fn(*mut c_void),
    _lib: libloading::Library,
}

// SAFETY: the function pointers and the library handle are plain data, usable from any
// thread; every state they act on belongs to one engine value (not shared).
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();

fn lib() -> Result<&'static Lib> {
    LIB.get_or_init(|| open().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow!("{e}"))
}

fn open() -> Result<Lib> {
    // SAFETY: loading a system library whose initialisers have no preconditions; each
    // symbol is read with the signature spandsp 0.0.6's headers declare for it.
    unsafe {
        let lib = libloading::Library::new(LIBRARY)
            .with_context(|| format!("cannot load {LIBRARY} (install libspandsp2 to receive faxes)"))?;
        fn get<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T> {
            unsafe { Ok(*lib.get::<T>(name.as_bytes()).with_context(|| format!("{LIBRARY} has no {name}"))?) }
        }
        Ok(Lib {
            fax_init: get(&lib, "fax_init")?,
            fax_rx: get(&lib, "fax_rx")?,
            fax_tx: get(&lib, "fax_tx")?,
            fax_set_transmit_on_idle: get(&lib, "fax_set_transmit_on_idle")?,
            fax_get_t30_state: get(&lib, "fax_get_t30_state")?,
            fax_free: get(&lib, "fax_free")?,
            t38_terminal_init: get(&lib, "t38_terminal_init")?,
            t38_terminal_send_timeout: get(&lib, "t38_terminal_send_timeout")?,
            t38_terminal_get_t30_state: get(&lib, "t38_terminal_get_t30_state")?,
            t38_terminal_get_t38_core_state: get(&lib, "t38_terminal_get_t38_core_state")?,
            t38_terminal_free: get(&lib, "t38_terminal_free")?,
            t38_core_rx_ifp_packet: get(&lib, "t38_core_rx_ifp_packet")?,
            t38_set_t38_version: get(&lib, "t38_set_t38_version")?,
            t38_set_max_datagram_size: get(&lib, "t38_set_max_datagram_size")?,
            t30_set_rx_file: get(&lib, "t30_set_rx_file")?,
            t30_set_tx_file: get(&lib, "t30_set_tx_file")?,
            t30_set_tx_ident: get(&lib, "t30_set_tx_ident")?,
            t30_get_rx_ident: get(&lib, "t30_get_rx_ident")?,
            t30_set_ecm_capability: get(&lib, "t30_set_ecm_capability")?,
            t30_set_supported_modems: get(&lib, "t30_set_supported_modems")?,
            t30_set_supported_compressions: get(&lib, "t30_set_supported_compressions")?,
            t30_set_phase_e_handler: get(&lib, "t30_set_phase_e_handler")?,
            t30_get_transfer_statistics: get(&lib, "t30_get_transfer_statistics")?,
            t30_completion_code_to_str: get(&lib, "t30_completion_code_to_str")?,
            t30_terminate: get(&lib, "t30_terminate")?,
            _lib: lib,
        })
    }
}

/// What the engine does with the fax.
#[derive(Debug, Clone)]
pub enum Job<'a> {
    /// Receive into this TIFF-F file (written by spandsp as pages arrive).
    Receive(&'a Path),
    /// Send the pages of this TIFF.
    Send(&'a Path),
}

/// How a fax call ended (T.30 phase E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// spandsp's T.30 completion code: 0 is success.
    pub code: i32,
    /// Its text ("OK", "Disconnected after permitted retries", …).
    pub text: String,
    pub pages_received: u32,
    pub pages_sent: u32,
    /// The far end's ident (TSI/CSI), as it sent it.
    pub remote_ident: String,
    pub bit_rate: u32,
    pub ecm: bool,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// What spandsp's callbacks write into: its address is passed as their user data, so
/// it lives in a `Box` that outlives the engine state.
#[derive(Default)]
struct Shared {
    phase_e: Option<c_int>,
    /// IFPs to send and how many times spandsp asks each to be sent (its repeats).
    ifps: Vec<(Vec<u8>, u32)>,
}

unsafe extern "C" fn on_phase_e(_t30: *mut c_void, user: *mut c_void, code: c_int) {
    // SAFETY: `user` is the `Shared` the engine registered, alive while the engine is.
    if let Some(shared) = unsafe { (user as *mut Shared).as_mut() } {
        shared.phase_e = Some(code);
    }
}

unsafe extern "C" fn on_tx_packet(
    _core: *mut c_void,
    user: *mut c_void,
    buf: *const u8,
    len: c_int,
    count: c_int,
) -> c_int {
    // SAFETY: as above; `buf` points to `len` octets valid for this call.
    let Some(shared) = (unsafe { (user as *mut Shared).as_mut() }) else { return -1 };
    if buf.is_null() || len < 0 {
        return -1;
    }
    let ifp = unsafe { std::slice::from_raw_parts(buf, len as usize) }.to_vec();
    shared.ifps.push((ifp, count.max(1) as u32));
    0
}

/// Sets up the T.30 side common to both engines: the file, the ident, V.17/V.29/V.27ter,
/// MH/MR/MMR, ECM, and the end-of-call handler.
fn configure_t30(lib: &Lib, t30: *mut c_void, job: &Job<'_>, ident: &str, shared: *mut Shared) -> Result<()> {
    if t30.is_null() {
        bail!("spandsp gave no T.30 state");
    }
    let path = match job {
        Job::Receive(p) | Job::Send(p) => p,
    };
    let file = CString::new(path.as_os_str().as_encoded_bytes()).context("file name contains a NUL byte")?;
    let ident = CString::new(ident.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(20).collect::<String>())?;
    // SAFETY: `t30` is the live T.30 state of an engine being built; the strings are
    // NUL-terminated and spandsp copies them into its state.
    unsafe {
        match job {
            // -1: no page limit.
            Job::Receive(_) => (lib.t30_set_rx_file)(t30, file.as_ptr(), -1),
            Job::Send(_) => (lib.t30_set_tx_file)(t30, file.as_ptr(), -1, -1),
        }
        (lib.t30_set_tx_ident)(t30, ident.as_ptr());
        (lib.t30_set_supported_modems)(t30, T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17);
        (lib.t30_set_supported_compressions)(t30, T30_SUPPORT_T4_1D | T30_SUPPORT_T4_2D | T30_SUPPORT_T6);
        (lib.t30_set_ecm_capability)(t30, 1);
        (lib.t30_set_phase_e_handler)(t30, on_phase_e, shared as *mut c_void);
    }
    Ok(())
}

/// Pages sent and confirmed by the far machine so far (MCF), while T.30 runs.
fn pages_tx(lib: &Lib, t30: *mut c_void) -> u32 {
    let mut st = T30Stats::default();
    // SAFETY: `t30` is live; the struct has spandsp 0.0.6's layout.
    unsafe { (lib.t30_get_transfer_statistics)(t30, &mut st) };
    st.pages_tx.max(0) as u32
}

fn outcome(lib: &Lib, t30: *mut c_void, code: c_int) -> Outcome {
    let mut st = T30Stats::default();
    // SAFETY: `t30` is live; the statistics struct has spandsp 0.0.6's layout; the
    // strings returned are spandsp's own (static text, or the state's ident buffer).
    unsafe {
        (lib.t30_get_transfer_statistics)(t30, &mut st);
        let text = (lib.t30_completion_code_to_str)(code);
        let ident = (lib.t30_get_rx_ident)(t30);
        let s = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().trim().to_string()
            }
        };
        Outcome {
            code,
            text: s(text),
            pages_received: st.pages_rx.max(0) as u32,
            pages_sent: st.pages_tx.max(0) as u32,
            remote_ident: s(ident),
            bit_rate: st.bit_rate.max(0) as u32,
            ecm: st.error_correcting_mode != 0,
        }
    }
}

/// T.30 over G.711: feed it what the far end sends, take what it sends.
pub struct AudioFax {
    state: *mut c_void,
    shared: Box<Shared>,
}

// SAFETY: the state is only ever touched through `&mut self`.
unsafe impl Send for AudioFax {}

impl AudioFax {
    /// `calling`: we placed the call (sending, usually).
    pub fn new(calling: bool, job: Job<'_>, ident: &str) -> Result<AudioFax> {
        let lib = lib()?;
        // SAFETY: NULL asks spandsp to allocate the state; it is freed in Drop.
        let state = unsafe { (lib.fax_init)(std::ptr::null_mut(), calling as c_int) };
        if state.is_null() {
            bail!("spandsp could not start a fax session");
        }
        let mut fax = AudioFax { state, shared: Box::default() };
        let shared_ptr: *mut Shared = &mut *fax.shared;
        // SAFETY: the state is live; the T.30 state belongs to it.
        let t30 = unsafe {
            (lib.fax_set_transmit_on_idle)(state, 1);
            (lib.fax_get_t30_state)(state)
        };
        configure_t30(lib, t30, &job, ident, shared_ptr)?;
        Ok(fax)
    }

    /// The far end's audio (8 kHz, 16 bit).
    pub fn receive(&mut self, pcm: &[i16]) {
        let Ok(lib) = lib() else { return };
        let mut buf = pcm.to_vec();
        // SAFETY: spandsp reads `len` samples (it takes a mutable pointer but only reads).
        unsafe { (lib.fax_rx)(self.state, buf.as_mut_ptr(), buf.len() as c_int) };
    }

    /// Our audio for the next `out.len()` samples (silence when idle).
    pub fn transmit(&mut self, out: &mut [i16]) -> usize {
        let Ok(lib) = lib() else { return 0 };
        // SAFETY: spandsp writes at most `max_len` samples into `out`.
        let n = unsafe { (lib.fax_tx)(self.state, out.as_mut_ptr(), out.len() as c_int) };
        n.clamp(0, out.len() as c_int) as usize
    }

    /// How the fax ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        let code = self.shared.phase_e?;
        let lib = lib().ok()?;
        // SAFETY: the state is live.
        let t30 = unsafe { (lib.fax_get_t30_state)(self.state) };
        Some(outcome(lib, t30, code))
    }

    /// Pages sent and confirmed by the far machine so far, while T.30 runs.
    pub fn pages_sent_so_far(&self) -> u32 {
        let Ok(lib) = lib() else { return 0 };
        // SAFETY: the state is live.
        pages_tx(lib, unsafe { (lib.fax_get_t30_state)(self.state) })
    }

    /// The call is gone: T.30 ends now (phase E with its reason — OK when only the
    /// final disconnect was left, "call dropped" when pages were still under way).
    pub fn terminate(&mut self) {
        let Ok(lib) = lib() else { return };
        // SAFETY: the state is live; t30_terminate does nothing once phase E is over.
        unsafe { (lib.t30_terminate)((lib.fax_get_t30_state)(self.state)) };
    }
}

impl Drop for AudioFax {
    fn drop(&mut self) {
        if let Ok(lib) = lib() {
            // SAFETY: allocated by fax_init, freed once; the callbacks' `Shared` is
            // freed after (field order).
            unsafe { (lib.fax_free)(self.state) };
        }
    }
}

/// T.30 over T.38: feed it the far end's IFPs, take the ones to send, advance its clock.
pub struct T38Fax {
    state: *mut c_void,
    shared: Box<Shared>,
}

// SAFETY: as for AudioFax.
unsafe impl Send for T38Fax {}

impl T38Fax {
    /// `version`: the T.38 version agreed in SDP; `max_datagram`: the far end's.
    pub fn new(calling: bool, job: Job<'_>, ident: &str, version: u8, max_datagram: usize) -> Result<T38Fax> {
        let lib = lib()?;
        let mut shared = Box::<Shared>::default();
        let shared_ptr: *mut Shared = &mut *shared;
        // The box moves into the engine below; its heap address (what spandsp keeps)
        // does not change.
        // SAFETY: NULL asks spandsp to allocate; the packet handler's user data is the
        // boxed `Shared`, which lives as long as the state (dropped after it).
        let state = unsafe {
            (lib.t38_terminal_init)(std::ptr::null_mut(), calling as c_int, on_tx_packet, shared_ptr as *mut c_void)
        };
        if state.is_null() {
            bail!("spandsp could not start a T.38 session");
        }
        let fax = T38Fax { state, shared };
        // SAFETY: the state is live; its core and T.30 states belong to it.
        let t30 = unsafe {
            let core = (lib.t38_terminal_get_t38_core_state)(state);
            if !core.is_null() {
                (lib.t38_set_t38_version)(core, version as c_int);
                (lib.t38_set_max_datagram_size)(core, max_datagram as c_int);
            }
            (lib.t38_terminal_get_t30_state)(state)
        };
        configure_t30(lib, t30, &job, ident, shared_ptr)?;
        Ok(fax)
    }

    /// One IFP from the far end, with its UDPTL sequence number.
    pub fn receive(&mut self, ifp: &[u8], seq: u16) {
        let Ok(lib) = lib() else { return };
        // SAFETY: the state is live; spandsp reads `len` octets.
        unsafe {
            let core = (lib.t38_terminal_get_t38_core_state)(self.state);
            (lib.t38_core_rx_ifp_packet)(core, ifp.as_ptr(), ifp.len() as c_int, seq);
        }
    }

    /// Lets `samples` (8 kHz) of time pass: spandsp's timers run and it emits IFPs.
    pub fn advance(&mut self, samples: usize) {
        let Ok(lib) = lib() else { return };
        // SAFETY: the state is live.
        unsafe { (lib.t38_terminal_send_timeout)(self.state, samples as c_int) };
    }

    /// The IFPs to send since the last call, each with how often to send it.
    pub fn take_ifps(&mut self) -> Vec<(Vec<u8>, u32)> {
        std::mem::take(&mut self.shared.ifps)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        let code = self.shared.phase_e?;
        let lib = lib().ok()?;
        // SAFETY: the state is live.
        let t30 = unsafe { (lib.t38_terminal_get_t30_state)(self.state) };
        Some(outcome(lib, t30, code))
    }

    /// Pages sent and confirmed by the far machine so far, while T.30 runs.
    pub fn pages_sent_so_far(&self) -> u32 {
        let Ok(lib) = lib() else { return 0 };
        // SAFETY: the state is live.
        pages_tx(lib, unsafe { (lib.t38_terminal_get_t30_state)(self.state) })
    }

    /// As [`AudioFax::terminate`].
    pub fn terminate(&mut self) {
        let Ok(lib) = lib() else { return };
        // SAFETY: the state is live; t30_terminate does nothing once phase E is over.
        unsafe { (lib.t30_terminate)((lib.t38_terminal_get_t30_state)(self.state)) };
    }
}

impl Drop for T38Fax {
    fn drop(&mut self) {
        if let Ok(lib) = lib() {
            // SAFETY: allocated by t38_terminal_init, freed once, before `shared`.
            unsafe { (lib.t38_terminal_free)(self.state) };
        }
    }
}
