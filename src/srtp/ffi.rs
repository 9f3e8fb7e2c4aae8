//! libsrtp2 2.x (Debian's libsrtp2-1) through `dlopen`: the few functions used and the
//! two structures passed to them, laid out as `srtp2/srtp.h` declares them.

#![allow(unsafe_code)]

use super::{SrtpError, Suite, Way};
use std::os::raw::{c_int, c_uint, c_ulong, c_void};
use std::sync::OnceLock;

const LIBRARY: &str = "libsrtp2.so.1";

/// Room libsrtp may append to a packet: the longest tag plus the longest MKI
/// (`SRTP_MAX_TRAILER_LEN`), and the SRTCP index.
const TRAILER: usize = 16 + 128 + 4;

// srtp_err_status_t values that mean something to the caller.
const OK: c_int = 0;
const AUTH_FAIL: c_int = 7;
const REPLAY_FAIL: c_int = 9;
const REPLAY_OLD: c_int = 10;
const BAD_PARAM: c_int = 2;
const PARSE_ERR: c_int = 21;

// srtp_ssrc_type_t.
const SSRC_ANY_INBOUND: c_int = 2;
const SSRC_ANY_OUTBOUND: c_int = 3;

/// `srtp_crypto_policy_t`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CryptoPolicy {
    cipher_type: u32,
    cipher_key_len: c_int,
    auth_type: u32,
    auth_key_len: c_int,
    auth_tag_len: c_int,
    sec_serv: c_int,
}

/// `srtp_policy_t` (libsrtp 2.x).
#[repr(C)]
struct Policy {
    ssrc_type: c_int,
    ssrc_value: c_uint,
    rtp: CryptoPolicy,
    rtcp: CryptoPolicy,
    key: *const u8,
    keys: *mut c_void,
    num_master_keys: c_ulong,
    deprecated_ekt: *mut c_void,
    window_size: c_ulong,
    allow_repeat_tx: c_int,
    enc_xtn_hdr: *mut c_int,
    enc_xtn_hdr_count: c_int,
    next: *mut Policy,
}

type SetPolicy = unsafe extern "C" fn(*mut CryptoPolicy);
type Transform = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_int) -> c_int;

pub struct Lib {
    create: unsafe extern "C" fn(*mut *mut c_void, *const Policy) -> c_int,
    dealloc: unsafe extern "C" fn(*mut c_void) -> c_int,
    protect: Transform,
    unprotect: Transform,
    protect_rtcp: Transform,
    unprotect_rtcp: Transform,
    aes_cm_128_sha1_80: SetPolicy,
    aes_cm_128_sha1_32: SetPolicy,
    aes_gcm_128: SetPolicy,
    aes_gcm_256: SetPolicy,
    _lib: libloading::Library,
}

static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();

/// The library, loaded and `srtp_init`ed once for the process.
pub fn library() -> Result<&'static Lib, SrtpError> {
    LIB.get_or_init(open).as_ref().map_err(|e| SrtpError::Unavailable(e.clone()))
}

fn open() -> Result<Lib, String> {
    // SAFETY: loading a system library whose initialisers have no preconditions; each
    // symbol is read with the signature libsrtp 2.x's srtp.h declares for it, and
    // srtp_init runs once (OnceLock) before any other call.
    unsafe {
        let lib = libloading::Library::new(LIBRARY)
            .map_err(|e| format!("cannot load {LIBRARY} ({e}); install libsrtp2-1 for encrypted media"))?;
        fn get<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, String> {
            unsafe { lib.get::<T>(name.as_bytes()).map(|s| *s).map_err(|_| format!("{LIBRARY} has no {name}")) }
        }
        let init: unsafe extern "C" fn() -> c_int = get(&lib, "srtp_init")?;
        let status = init();
        if status != OK {
            return Err(format!("srtp_init failed with status {status}"));
        }
        Ok(Lib {
            create: get(&lib, "srtp_create")?,
            dealloc: get(&lib, "srtp_dealloc")?,
            protect: get(&lib, "srtp_protect")?,
            unprotect: get(&lib, "srtp_unprotect")?,
            protect_rtcp: get(&lib, "srtp_protect_rtcp")?,
            unprotect_rtcp: get(&lib, "srtp_unprotect_rtcp")?,
            aes_cm_128_sha1_80: get(&lib, "srtp_crypto_policy_set_rtp_default")?,
            aes_cm_128_sha1_32: get(&lib, "srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32")?,
            aes_gcm_128: get(&lib, "srtp_crypto_policy_set_aes_gcm_128_16_auth")?,
            aes_gcm_256: get(&lib, "srtp_crypto_policy_set_aes_gcm_256_16_auth")?,
            _lib: lib,
        })
    }
}

#[derive(Clone, Copy)]
pub enum Op {
    Protect,
    Unprotect,
    ProtectRtcp,
    UnprotectRtcp,
}

/// An `srtp_t` with one stream template (any SSRC, one way), freed on drop.
pub struct Context {
    ctx: *mut c_void,
    way: Way,
    lib: &'static Lib,
}

// SAFETY: an srtp_t is plain heap state with no thread affinity; `&mut self` on every
// use keeps it to one thread at a time, which is all libsrtp asks of a session.
unsafe impl Send for Context {}

impl Context {
    pub fn new(suite: Suite, key: &[u8], way: Way) -> Result<Context, SrtpError> {
        let lib = library()?;
        let (rtp_policy, rtcp_policy) = match suite {
            // SRTCP keeps the 80-bit tag under the _32 suite (RFC 4568 §6.2.2).
            Suite::AesCm128HmacSha1_80 => (lib.aes_cm_128_sha1_80, lib.aes_cm_128_sha1_80),
            Suite::AesCm128HmacSha1_32 => (lib.aes_cm_128_sha1_32, lib.aes_cm_128_sha1_80),
            Suite::AeadAes128Gcm => (lib.aes_gcm_128, lib.aes_gcm_128),
            Suite::AeadAes256Gcm => (lib.aes_gcm_256, lib.aes_gcm_256),
        };
        let mut policy = Policy {
            ssrc_type: match way {
                Way::Inbound => SSRC_ANY_INBOUND,
                Way::Outbound => SSRC_ANY_OUTBOUND,
            },
            ssrc_value: 0,
            rtp: CryptoPolicy::default(),
            rtcp: CryptoPolicy::default(),
            key: key.as_ptr(),
            keys: std::ptr::null_mut(),
            num_master_keys: 0,
            deprecated_ekt: std::ptr::null_mut(),
            // 0: libsrtp's default replay window (128 packets).
            window_size: 0,
            allow_repeat_tx: 0,
            enc_xtn_hdr: std::ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: std::ptr::null_mut(),
        };
        let mut ctx = std::ptr::null_mut();
        // SAFETY: the setters fill the structs they are given; srtp_create reads the
        // policy and derives its session keys from `key` (the caller's slice of the
        // suite's length, checked by `Srtp::new`) before it returns — neither pointer
        // is kept.
        let status = unsafe {
            rtp_policy(&mut policy.rtp);
            rtcp_policy(&mut policy.rtcp);
            (lib.create)(&mut ctx, &policy)
        };
        if status != OK || ctx.is_null() {
            return Err(SrtpError::Library(status));
        }
        Ok(Context { ctx, way, lib })
    }

    pub fn way(&self) -> Way {
        self.way
    }

    /// Transforms `packet` in place, growing it for the trailer first and cutting it to
    /// the length libsrtp reports after.
    pub fn apply(&mut self, packet: &mut Vec<u8>, op: Op) -> Result<(), SrtpError> {
        let (f, grows) = match op {
            Op::Protect => (self.lib.protect, true),
            Op::ProtectRtcp => (self.lib.protect_rtcp, true),
            Op::Unprotect => (self.lib.unprotect, false),
            Op::UnprotectRtcp => (self.lib.unprotect_rtcp, false),
        };
        // libsrtp reads the RTP header's fields before it checks lengths in some paths:
        // anything shorter than a fixed header (or an RTCP header and SRTCP index) is
        // refused here.
        let min = match op {
            Op::Protect | Op::Unprotect => 12,
            Op::ProtectRtcp => 8,
            Op::UnprotectRtcp => 8 + 4,
        };
        if packet.len() < min || packet.len() > 0xffff {
            return Err(SrtpError::Malformed);
        }
        let mut len = packet.len() as c_int;
        if grows {
            packet.resize(packet.len() + TRAILER, 0);
        }
        // SAFETY: `packet` holds `len` bytes of packet plus, when protecting, TRAILER
        // bytes of room for what libsrtp appends; libsrtp writes no further than that
        // and reports the new length in `len`.
        let status = unsafe { f(self.ctx, packet.as_mut_ptr().cast(), &mut len) };
        if status != OK {
            if grows {
                packet.truncate(packet.len() - TRAILER);
            }
            return Err(match status {
                AUTH_FAIL => SrtpError::AuthFailed,
                REPLAY_FAIL | REPLAY_OLD => SrtpError::Replay,
                BAD_PARAM | PARSE_ERR => SrtpError::Malformed,
                s => SrtpError::Library(s),
            });
        }
        packet.truncate(len.max(0) as usize);
        Ok(())
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from srtp_create and is freed once, here.
        unsafe {
            (self.lib.dealloc)(self.ctx);
        }
    }
}
