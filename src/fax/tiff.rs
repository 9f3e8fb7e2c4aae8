//! What the store needs to know of a TIFF the fax engine wrote: how many pages it holds
//! (a fax cut part way has no T.30 count, but the pages received are in the file); and
//! whether a TIFF given to `fax send` is one the engine can send. Reads only the header,
//! the IFD chain and a few tags; a malformed file is 0 pages or an error, never a panic.

/// The widths T.4 pages come in at 204 dpi (A4/Letter, B4, A3).
const FAX_WIDTHS: [u32; 3] = [1728, 2048, 2432];

/// The number of images (IFDs) in a TIFF file's bytes.
pub fn pages(bytes: &[u8]) -> usize {
    ifds(bytes).len()
}

/// The page count of a TIFF the fax engine can send as it is — every page bilevel (one
/// sample of one bit) and of a fax width; else what is wrong, by page.
pub fn sendable(bytes: &[u8]) -> Result<usize, String> {
    let Some(read) = Reader::new(bytes) else { return Err("not a TIFF file".into()) };
    let list = ifds(bytes);
    if list.is_empty() {
        return Err("a TIFF without a page".into());
    }
    for (i, &at) in list.iter().enumerate() {
        let page = i + 1;
        let tag = |t: u16| read.tag(at, t);
        let width = tag(256).ok_or(format!("page {page} has no width"))?;
        if !FAX_WIDTHS.contains(&width) {
            return Err(format!(
                "page {page} is {width} pixels wide; a fax page is 1728 (A4/Letter at 204 dpi), 2048 or 2432 — \
                 scale it first (e.g. `convert IN -resize 1728x -monochrome -compress Group4 OUT.tif`)"
            ));
        }
        let (bits, samples) = (tag(258).unwrap_or(1), tag(277).unwrap_or(1));
        if bits != 1 || samples != 1 {
            return Err(format!(
                "page {page} has {samples} sample(s) of {bits} bit(s) a pixel; a fax page is black and white \
                 (1 bit) — convert it first (e.g. `convert IN -monochrome -compress Group4 OUT.tif`)"
            ));
        }
    }
    Ok(list.len())
}

/// One bilevel image of a TIFF to write: its one strip, as coded, and what says how.
pub struct Image<'a> {
    pub width: u32,
    pub rows: u32,
    pub data: &'a [u8],
    /// 1 none, 3 T.4 (G3), 4 T.6 (G4).
    pub compression: u32,
    pub x_dpi: u32,
    pub y_dpi: u32,
    /// T4Options (292) or T6Options (293), when the compression has them.
    pub options: Option<(u16, u32)>,
}

/// A TIFF of `images`, one page each (Class F's tags: min-is-white, MSB first, the
/// resolution in inches, `PageNumber`), little-endian.
pub fn write(images: &[Image<'_>]) -> Vec<u8> {
    let mut out: Vec<u8> = b"II*\0\0\0\0\0".to_vec();
    let mut link = 4;
    for (i, im) in images.iter().enumerate() {
        let data_at = out.len() as u32;
        out.extend(im.data);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let xres_at = out.len() as u32;
        out.extend(im.x_dpi.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        let yres_at = out.len() as u32;
        out.extend(im.y_dpi.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        let ifd_at = out.len() as u32;
        out[link..link + 4].copy_from_slice(&ifd_at.to_le_bytes());
        // (tag, type, count, value): 3 SHORT, 4 LONG, 5 RATIONAL (value = its offset).
        let mut entries: Vec<(u16, u16, u32, u32)> = vec![
            (254, 4, 1, 2),                                          // NewSubfileType: a page
            (256, 4, 1, im.width),                                   // ImageWidth
            (257, 4, 1, im.rows),                                    // ImageLength
            (258, 3, 1, 1),                                          // BitsPerSample
            (259, 3, 1, im.compression),                             // Compression
            (262, 3, 1, 0),                                          // Photometric: min-is-white
            (266, 3, 1, 1),                                          // FillOrder: MSB first
            (273, 4, 1, data_at),                                    // StripOffsets
            (277, 3, 1, 1),                                          // SamplesPerPixel
            (278, 4, 1, im.rows),                                    // RowsPerStrip
            (279, 4, 1, im.data.len() as u32),                       // StripByteCounts
            (282, 5, 1, xres_at),                                    // XResolution
            (283, 5, 1, yres_at),                                    // YResolution
            (296, 3, 1, 2),                                          // ResolutionUnit: inch
            (297, 3, 2, (i as u32) | ((images.len() as u32) << 16)), // PageNumber: this, of all
        ];
        entries.extend(im.options.map(|(tag, v)| (tag, 4, 1, v)));
        // TIFF wants the entries in tag order.
        entries.sort_by_key(|e| e.0);
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, ty, count, value) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(ty.to_le_bytes());
            out.extend(count.to_le_bytes());
            out.extend(value.to_le_bytes());
        }
        link = out.len();
        out.extend(0u32.to_le_bytes());
    }
    out
}

/// The byte order and integer readers of a TIFF.
struct Reader<'a> {
    bytes: &'a [u8],
    le: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Reader<'a>> {
        let le = match bytes.get(..4) {
            Some(b"II*\0") => true,
            Some(b"MM\0*") => false,
            _ => return None,
        };
        Some(Reader { bytes, le })
    }

    fn u16_at(&self, o: usize) -> Option<usize> {
        let b = self.bytes.get(o..o.checked_add(2)?)?;
        Some(if self.le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) } as usize)
    }

    fn u32_at(&self, o: usize) -> Option<usize> {
        let b: [u8; 4] = self.bytes.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as usize)
    }

    /// A SHORT or LONG tag's first value in the IFD at `at`.
    fn tag(&self, at: usize, tag: u16) -> Option<u32> {
        let n = self.u16_at(at)?;
        (0..n.min(4096)).find_map(|i| {
            let e = at + 2 + i * 12;
            if self.u16_at(e)? != tag as usize {
                return None;
            }
            match self.u16_at(e + 2)? {
                3 => self.u16_at(e + 8).map(|v| v as u32),
                4 => self.u32_at(e + 8).map(|v| v as u32),
                _ => None,
            }
        })
    }
}

/// The offsets of a TIFF's IFDs, in order.
fn ifds(bytes: &[u8]) -> Vec<usize> {
    let Some(r) = Reader::new(bytes) else { return Vec::new() };
    let (u16_at, u32_at) = (|o| r.u16_at(o), |o| r.u32_at(o));
    let mut found = Vec::new();
    let mut at = u32_at(4).unwrap_or(0);
    // A chain that loops or runs off the file ends the list.
    let mut seen = std::collections::HashSet::new();
    while at != 0 && seen.insert(at) && found.len() < 10_000 {
        let Some(entries) = u16_at(at) else { break };
        let Some(next) = u32_at(at + 2 + entries * 12) else { break };
        found.push(at);
        at = next;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{pages, sendable};

    #[test]
    fn pages_are_counted_and_bad_files_are_none() {
        // Two IFDs of zero entries: header → 8 → 14 → end.
        let mut two = b"II*\0\x08\0\0\0".to_vec();
        two.extend([0, 0, 14, 0, 0, 0]);
        two.extend([0, 0, 0, 0, 0, 0]);
        assert_eq!(pages(&two), 2);
        assert_eq!(pages(b"not a tiff"), 0);
        assert_eq!(pages(b"II*\0\xff\xff\0\0"), 0, "IFD past the end");
        // A loop: the IFD points to itself.
        assert_eq!(pages(b"II*\0\x08\0\0\0\0\0\x08\0\0\0"), 1);
    }

    /// A one-IFD little-endian TIFF with these (tag, type, value) entries.
    fn tiff(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend((entries.len() as u16).to_le_bytes());
        for &(tag, ty, v) in entries {
            t.extend(tag.to_le_bytes());
            t.extend(ty.to_le_bytes());
            t.extend(1u32.to_le_bytes());
            t.extend(v.to_le_bytes());
        }
        t.extend([0, 0, 0, 0]);
        t
    }

    #[test]
    fn a_fax_page_is_sendable_and_other_images_are_refused_saying_why() {
        assert_eq!(sendable(&tiff(&[(256, 4, 1728), (258, 3, 1)])), Ok(1));
        assert_eq!(sendable(&tiff(&[(256, 3, 2048)])), Ok(1), "SHORT width, bits default to 1");
        let wide = sendable(&tiff(&[(256, 4, 2480), (258, 3, 1)])).unwrap_err();
        assert!(wide.contains("page 1 is 2480 pixels wide"), "{wide}");
        let grey = sendable(&tiff(&[(256, 4, 1728), (258, 3, 8)])).unwrap_err();
        assert!(grey.contains("8 bit(s)"), "{grey}");
        assert!(sendable(&tiff(&[(258, 3, 1)])).unwrap_err().contains("no width"));
        assert_eq!(sendable(b"%PDF-1.4"), Err("not a TIFF file".into()));
        assert_eq!(sendable(b"II*\0\0\0\0\0"), Err("a TIFF without a page".into()));
    }
}
