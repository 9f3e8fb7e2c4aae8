//! Minimal bilevel TIFF for the fax tests: write uncompressed multi-page fax images
//! (1728 pixels wide, fax resolutions) to send, and read uncompressed ones back (what
//! `tiffcp -c none` makes of a received TIFF-F) to compare pixels. Not a general TIFF
//! library: the production path leaves TIFF to spandsp and libtiff.

#![allow(dead_code)]

pub const WIDTH: usize = 1728;
const ROW_BYTES: usize = WIDTH / 8;

/// One page: rows of 216 octets, a 1 bit black (min-is-white), first pixel in the
/// high bit.
pub type Page = Vec<Vec<u8>>;

/// A page of `rows` rows with a pattern of its own (so pages differ): diagonal bands
/// and a block whose position depends on `n`.
pub fn page(n: usize, rows: usize) -> Page {
    (0..rows)
        .map(|y| {
            (0..ROW_BYTES)
                .map(|x| {
                    let band = if (x * 8 + y + n * 40) % 97 < 12 { 0xff } else { 0x00 };
                    let block =
                        if (y / 20 + n).is_multiple_of(3) && (x / 10 + n).is_multiple_of(4) { 0xf0 } else { 0x00 };
                    band | block
                })
                .collect()
        })
        .collect()
}

/// Writes `pages` as an uncompressed TIFF at 204 × `y_dpi` dots per inch.
pub fn write(path: &std::path::Path, pages: &[Page], y_dpi: u32) {
    let mut out: Vec<u8> = b"II*\0\0\0\0\0".to_vec();
    let mut ifd_link = 4; // where the offset of the next IFD goes
    for (i, p) in pages.iter().enumerate() {
        let data_at = out.len() as u32;
        for row in p {
            out.extend(row);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let xres_at = out.len() as u32;
        out.extend(204u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        let yres_at = out.len() as u32;
        out.extend(y_dpi.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        let ifd_at = out.len() as u32;
        out[ifd_link..ifd_link + 4].copy_from_slice(&ifd_at.to_le_bytes());
        let rows = p.len() as u32;
        // (tag, type, count, value): type 3 SHORT, 4 LONG, 5 RATIONAL (value = offset).
        let entries: [(u16, u16, u32, u32); 16] = [
            (254, 4, 1, 2),
            (256, 4, 1, WIDTH as u32),
            (257, 4, 1, rows),
            (258, 3, 1, 1),
            (259, 3, 1, 1),
            (262, 3, 1, 0),
            (266, 3, 1, 1),
            (273, 4, 1, data_at),
            (277, 3, 1, 1),
            (278, 4, 1, rows),
            (279, 4, 1, rows * ROW_BYTES as u32),
            (282, 5, 1, xres_at),
            (283, 5, 1, yres_at),
            (284, 3, 1, 1),
            (296, 3, 1, 2),
            (297, 3, 2, (i as u32) | ((pages.len() as u32) << 16)),
        ];
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, ty, count, value) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(ty.to_le_bytes());
            out.extend(count.to_le_bytes());
            out.extend(value.to_le_bytes());
        }
        ifd_link = out.len();
        out.extend(0u32.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// Reads every page of an uncompressed bilevel TIFF (either byte order, any strips,
/// either fill order and photometric), as rows with 1 = black, first pixel high.
pub fn read(path: &std::path::Path) -> Vec<Page> {
    let b = std::fs::read(path).unwrap();
    let le = &b[..2] == b"II";
    let u16_at =
        |o: usize| if le { u16::from_le_bytes([b[o], b[o + 1]]) } else { u16::from_be_bytes([b[o], b[o + 1]]) };
    let u32_at = |o: usize| {
        let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let mut pages = Vec::new();
    let mut ifd = u32_at(4) as usize;
    while ifd != 0 {
        let n = u16_at(ifd) as usize;
        let mut tags = std::collections::HashMap::new();
        for k in 0..n {
            let e = ifd + 2 + k * 12;
            let (tag, ty, count) = (u16_at(e), u16_at(e + 2), u32_at(e + 4) as usize);
            // Only SHORT and LONG values are needed (sizes, offsets, flags).
            let size = match ty {
                3 => 2,
                4 => 4,
                _ => continue,
            };
            let at = if size * count <= 4 { e + 8 } else { u32_at(e + 8) as usize };
            let values: Vec<u32> =
                (0..count).map(|i| if ty == 3 { u16_at(at + i * 2) as u32 } else { u32_at(at + i * 4) }).collect();
            tags.insert(tag, values);
        }
        let get = |t: u16, d: u32| tags.get(&t).and_then(|v| v.first().copied()).unwrap_or(d);
        assert_eq!(get(259, 1), 1, "uncompressed only (run tiffcp -c none first)");
        let (width, rows) = (get(256, 0) as usize, get(257, 0) as usize);
        let row_bytes = width.div_ceil(8);
        let mut data: Vec<u8> = Vec::new();
        for (o, c) in tags[&273].iter().zip(&tags[&279]) {
            data.extend(&b[*o as usize..(*o + *c) as usize]);
        }
        let (lsb_first, min_is_black) = (get(266, 1) == 2, get(262, 0) == 1);
        for v in data.iter_mut() {
            if lsb_first {
                *v = v.reverse_bits();
            }
            if min_is_black {
                *v = !*v;
            }
        }
        pages.push((0..rows).map(|r| data[r * row_bytes..(r + 1) * row_bytes].to_vec()).collect());
        ifd = u32_at(ifd + 2 + n * 12) as usize;
    }
    pages
}

/// The pages of any TIFF libtiff reads (a received TIFF-F in MH, MR or MMR), through
/// `tiffcp -c none` (libtiff-tools).
pub fn decode(path: &std::path::Path) -> Vec<Page> {
    let plain = path.with_extension("plain.tif");
    let st = std::process::Command::new("tiffcp")
        .args(["-c", "none"])
        .arg(path)
        .arg(&plain)
        .status()
        .expect("tiffcp (libtiff-tools)");
    assert!(st.success(), "tiffcp failed on {}", path.display());
    read(&plain)
}

/// The pages of a PDF rendered by `pdftoppm` (poppler-utils) at the fax's own
/// resolution (204 × `y_dpi`), black and white: what a viewer shows, pixel for pixel.
pub fn render_pdf(path: &std::path::Path, y_dpi: u32) -> Vec<Page> {
    let prefix = path.with_extension("render");
    let st = std::process::Command::new("pdftoppm")
        .args(["-mono", "-rx", "204", "-ry", &y_dpi.to_string()])
        .arg(path)
        .arg(&prefix)
        .status()
        .expect("pdftoppm (poppler-utils)");
    assert!(st.success(), "pdftoppm failed on {}", path.display());
    let dir = path.parent().unwrap();
    let stem = prefix.file_name().unwrap().to_string_lossy().to_string();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&stem))
                && p.extension().is_some_and(|e| e == "pbm")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            // P4: "P4\n<w> <h>\n" then rows of ceil(w/8) octets, 1 = black, high bit first.
            let b = std::fs::read(f).unwrap();
            let mut fields = Vec::new();
            let mut at = 0;
            while fields.len() < 3 {
                while b[at].is_ascii_whitespace() {
                    at += 1;
                }
                let start = at;
                while !b[at].is_ascii_whitespace() {
                    at += 1;
                }
                fields.push(String::from_utf8_lossy(&b[start..at]).to_string());
            }
            at += 1;
            assert_eq!(fields[0], "P4");
            let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
            let row = w.div_ceil(8);
            (0..h).map(|r| b[at + r * row..at + (r + 1) * row].to_vec()).collect()
        })
        .collect()
}

/// Writes a one-page 8-bit greyscale TIFF (a scan: min-is-black 0 … 255 white is
/// written as min-is-white), `w` × `h` at `dpi`, then recompresses it with
/// `tiffcp -c lzw` so that reading it takes a real decoder.
pub fn write_grey_lzw(path: &std::path::Path, w: usize, h: usize, pixels: &[u8], dpi: u32) {
    let plain = path.with_extension("grey.tif");
    let mut out: Vec<u8> = b"II*\0\0\0\0\0".to_vec();
    let data_at = out.len() as u32;
    // Min-is-white: 0 white, 255 black.
    out.extend(pixels.iter().map(|p| 255 - p));
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let res_at = out.len() as u32;
    out.extend(dpi.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let ifd_at = out.len() as u32;
    out[4..8].copy_from_slice(&ifd_at.to_le_bytes());
    let entries: [(u16, u16, u32, u32); 12] = [
        (256, 4, 1, w as u32),
        (257, 4, 1, h as u32),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 0),
        (273, 4, 1, data_at),
        (277, 3, 1, 1),
        (278, 4, 1, h as u32),
        (279, 4, 1, (w * h) as u32),
        (282, 5, 1, res_at),
        (283, 5, 1, res_at),
        (296, 3, 1, 2),
    ];
    out.extend((entries.len() as u16).to_le_bytes());
    for (tag, ty, count, value) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(ty.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value.to_le_bytes());
    }
    out.extend(0u32.to_le_bytes());
    std::fs::write(&plain, out).unwrap();
    let st = std::process::Command::new("tiffcp").args(["-c", "lzw"]).arg(&plain).arg(path).status().unwrap();
    assert!(st.success(), "tiffcp -c lzw");
}

/// Whether pixel (`x`, `y`) of a decoded page is black.
pub fn black(p: &Page, x: usize, y: usize) -> bool {
    p.get(y).is_some_and(|row| row[x / 8] & (0x80 >> (x % 8)) != 0)
}

/// Black pixels of a decoded page in rows `from..to`.
pub fn ink(p: &Page, from: usize, to: usize) -> usize {
    p.iter().take(to).skip(from).map(|r| r.iter().map(|b| b.count_ones() as usize).sum::<usize>()).sum()
}
