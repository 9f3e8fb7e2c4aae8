//! Any TIFF read as greyscale pages, through Debian's libtiff (`libtiff.so.6`, which
//! spandsp itself links): every compression libtiff knows (CCITT G3/G4, LZW, Deflate,
//! JPEG, PackBits…), any bit depth and colour, through `TIFFReadRGBAImageOriented`.
//! The `unsafe` of it is here, each call commented. libtiff's own messages are silenced:
//! what fails comes back as an error naming the file and page.

#![allow(unsafe_code)]

use super::pages::Grey;
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;
use std::sync::OnceLock;

const LIBRARY: &str = "libtiff.so.6";
const TIFFTAG_IMAGEWIDTH: u32 = 256;
const TIFFTAG_IMAGELENGTH: u32 = 257;
const TIFFTAG_XRESOLUTION: u32 = 282;
const TIFFTAG_YRESOLUTION: u32 = 283;
const TIFFTAG_RESOLUTIONUNIT: u32 = 296;
const RESUNIT_CENTIMETER: u16 = 3;
const ORIENTATION_TOPLEFT: c_int = 1;
/// Pixels in one page at most (a 600 dpi A4 scan is 35 million): a bigger one is
/// refused rather than allocated.
const MAX_PIXELS: u64 = 50_000_000;
use super::pages::MAX_PAGES;

type Handler = Option<unsafe extern "C" fn()>;

struct Lib {
    open: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void,
    close: unsafe extern "C" fn(*mut c_void),
    read_directory: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_field: unsafe extern "C" fn(*mut c_void, u32, ...) -> c_int,
    read_rgba: unsafe extern "C" fn(*mut c_void, u32, u32, *mut u32, c_int, c_int) -> c_int,
    _lib: libloading::Library,
}

// SAFETY: plain function pointers and the library handle; each TIFF* is used by one
// thread (the call that opened it).
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();

fn lib() -> Result<&'static Lib> {
    LIB.get_or_init(|| open_lib().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow!("{e}"))
}

fn open_lib() -> Result<Lib> {
    // SAFETY: a system library with no initialiser preconditions; each symbol read with
    // the signature of libtiff 4's tiffio.h.
    unsafe {
        let lib = libloading::Library::new(LIBRARY)
            .with_context(|| format!("cannot load {LIBRARY} (install libtiff6 to convert images for faxing)"))?;
        fn get<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T> {
            unsafe { Ok(*lib.get::<T>(name.as_bytes()).with_context(|| format!("{LIBRARY} has no {name}"))?) }
        }
        // No handler: libtiff prints nothing to stderr (errors come back as results).
        let quiet_errors: unsafe extern "C" fn(Handler) -> Handler = get(&lib, "TIFFSetErrorHandler")?;
        let quiet_warnings: unsafe extern "C" fn(Handler) -> Handler = get(&lib, "TIFFSetWarningHandler")?;
        quiet_errors(None);
        quiet_warnings(None);
        Ok(Lib {
            open: get(&lib, "TIFFOpen")?,
            close: get(&lib, "TIFFClose")?,
            read_directory: get(&lib, "TIFFReadDirectory")?,
            get_field: get(&lib, "TIFFGetField")?,
            read_rgba: get(&lib, "TIFFReadRGBAImageOriented")?,
            _lib: lib,
        })
    }
}

/// Every page of the TIFF at `path`, as greyscale.
pub fn read_pages(path: &Path) -> Result<Vec<Grey>> {
    let lib = lib()?;
    let name = CString::new(path.as_os_str().as_encoded_bytes()).context("a path with a NUL byte")?;
    // SAFETY: both strings are NUL-terminated and outlive the call; NULL is checked.
    let tif = unsafe { (lib.open)(name.as_ptr(), c"r".as_ptr()) };
    if tif.is_null() {
        bail!("{}: libtiff cannot read it as a TIFF", path.display());
    }
    let result = read_all(lib, tif, path);
    // SAFETY: opened above, closed once.
    unsafe { (lib.close)(tif) };
    result
}

fn read_all(lib: &Lib, tif: *mut c_void, path: &Path) -> Result<Vec<Grey>> {
    let mut pages = Vec::new();
    loop {
        let n = pages.len() + 1;
        if n > MAX_PAGES {
            bail!("{}: more than {MAX_PAGES} pages", path.display());
        }
        let (mut w, mut h) = (0u32, 0u32);
        // SAFETY: the tags are uint32 by libtiff's definition; the pointers are live.
        let ok = unsafe {
            (lib.get_field)(tif, TIFFTAG_IMAGEWIDTH, &mut w as *mut u32) == 1
                && (lib.get_field)(tif, TIFFTAG_IMAGELENGTH, &mut h as *mut u32) == 1
        };
        if !ok || w == 0 || h == 0 {
            bail!("{}: page {n} has no size", path.display());
        }
        if w as u64 * h as u64 > MAX_PIXELS {
            bail!("{}: page {n} is {w} × {h} pixels, more than a fax page can use", path.display());
        }
        let mut raster = vec![0u32; w as usize * h as usize];
        // SAFETY: the raster holds w × h pixels, as the call requires.
        let read = unsafe { (lib.read_rgba)(tif, w, h, raster.as_mut_ptr(), ORIENTATION_TOPLEFT, 1) };
        if read != 1 {
            bail!("{}: page {n} cannot be decoded (libtiff does not read its compression or colour)", path.display());
        }
        // ABGR packed, R in the low byte: luminance by Rec. 601 weights.
        let pixels = raster
            .iter()
            .map(|p| {
                let (r, g, b) = (p & 0xff, (p >> 8) & 0xff, (p >> 16) & 0xff);
                ((r * 299 + g * 587 + b * 114) / 1000) as u8
            })
            .collect();
        let (mut xr, mut yr, mut unit) = (0f32, 0f32, 2u16);
        // SAFETY: XResolution/YResolution are float, ResolutionUnit uint16 (libtiff
        // gives the default when absent).
        let has_res = unsafe {
            (lib.get_field)(tif, TIFFTAG_XRESOLUTION, &mut xr as *mut f32) == 1
                && (lib.get_field)(tif, TIFFTAG_YRESOLUTION, &mut yr as *mut f32) == 1
        };
        unsafe { (lib.get_field)(tif, TIFFTAG_RESOLUTIONUNIT, &mut unit as *mut u16) };
        let per_inch = if unit == RESUNIT_CENTIMETER { 2.54 } else { 1.0 };
        // Unit "none" (1) gives an aspect only: taken as no resolution.
        let dpi = (has_res && unit != 1).then_some((xr as f64 * per_inch, yr as f64 * per_inch));
        pages.push(Grey { width: w as usize, height: h as usize, pixels, dpi });
        // SAFETY: the handle is live; 0 means no further directory.
        if unsafe { (lib.read_directory)(tif) } != 1 {
            return Ok(pages);
        }
    }
}
