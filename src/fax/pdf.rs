//! A received fax as PDF, made without re-encoding: each page's CCITT data (MH, MR or
//! MMR, as the TIFF-F holds it) goes into the PDF as an image with the
//! `CCITTFaxDecode` filter, the page sized by the fax's resolution. Only the bit order
//! changes (TIFF-F from spandsp is least significant bit first; PDF reads the most
//! significant first). Pure: bytes in, bytes out; a TIFF it cannot read is an error.

use anyhow::{bail, Context, Result};

/// One page's image as the TIFF-F describes it.
struct Page {
    width: u32,
    rows: u32,
    /// `K` of CCITTFaxDecode: -1 MMR (T.6), 0 MH (T.4 1-D), 1 MR (T.4 2-D).
    k: i32,
    /// T.4 with fill bits: each EOL ends on a byte boundary.
    byte_align: bool,
    /// Whether the data has EOL codes (T.4 does, MMR and raw MH do not).
    eol: bool,
    x_dpi: f64,
    y_dpi: f64,
    data: Vec<u8>,
}

struct Tiff<'a> {
    b: &'a [u8],
    le: bool,
}

impl Tiff<'_> {
    fn u16(&self, o: usize) -> Result<u32> {
        let s = self.b.get(o..o + 2).context("TIFF truncated")?;
        Ok(if self.le { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) } as u32)
    }
    fn u32(&self, o: usize) -> Result<u32> {
        let s: [u8; 4] = self.b.get(o..o + 4).context("TIFF truncated")?.try_into()?;
        Ok(if self.le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    }
    /// A tag's values (SHORT or LONG; a RATIONAL as numerator/denominator).
    fn values(&self, entry: usize) -> Result<(u32, Vec<f64>)> {
        let (tag, ty, count) = (self.u16(entry)?, self.u16(entry + 2)?, self.u32(entry + 4)? as usize);
        let size = match ty {
            3 => 2,
            4 => 4,
            5 => 8,
            _ => return Ok((tag, Vec::new())),
        };
        if count > 100_000 {
            bail!("TIFF tag {tag} has {count} values");
        }
        let at = if size * count <= 4 { entry + 8 } else { self.u32(entry + 8)? as usize };
        let mut v = Vec::with_capacity(count);
        for i in 0..count {
            v.push(match ty {
                3 => self.u16(at + i * 2)? as f64,
                4 => self.u32(at + i * 4)? as f64,
                _ => {
                    let (n, d) = (self.u32(at + i * 8)?, self.u32(at + i * 8 + 4)?);
                    if d == 0 {
                        0.0
                    } else {
                        n as f64 / d as f64
                    }
                }
            });
        }
        Ok((tag, v))
    }
}

fn pages(b: &[u8]) -> Result<Vec<Page>> {
    let le = match b.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => bail!("not a TIFF file"),
    };
    let t = Tiff { b, le };
    let mut out = Vec::new();
    let mut ifd = t.u32(4)? as usize;
    let mut seen = std::collections::HashSet::new();
    while ifd != 0 && seen.insert(ifd) {
        let n = t.u16(ifd)? as usize;
        let mut tags = std::collections::HashMap::new();
        for k in 0..n {
            let (tag, v) = t.values(ifd + 2 + k * 12)?;
            tags.insert(tag, v);
        }
        let one = |tag: u32, d: f64| tags.get(&tag).and_then(|v| v.first().copied()).unwrap_or(d);
        let (width, rows) = (one(256, 0.0) as u32, one(257, 0.0) as u32);
        if width == 0 || rows == 0 || width > 10_000 || rows > 100_000 {
            bail!("TIFF page of {width} × {rows} pixels");
        }
        let t4 = one(292, 0.0) as u32;
        let (k, eol, byte_align) = match one(259, 1.0) as u32 {
            2 => (0, false, true),
            3 => (if t4 & 1 != 0 { 1 } else { 0 }, true, t4 & 4 != 0),
            4 => (-1, false, false),
            c => bail!("TIFF page compressed as {c}, not CCITT (a fax)"),
        };
        let offsets = tags.get(&273).context("TIFF page without strips")?;
        let counts = tags.get(&279).context("TIFF page without strip sizes")?;
        if k < 0 && offsets.len() > 1 {
            // Each G4 strip is coded against a white line of its own: strips joined
            // would decode wrong, and one stream is all a PDF image holds.
            bail!("a G4 page in {} strips cannot be embedded as one CCITT image", offsets.len());
        }
        let mut data: Vec<u8> = Vec::new();
        for (o, c) in offsets.iter().zip(counts) {
            let (o, c) = (*o as usize, *c as usize);
            data.extend(b.get(o..o.saturating_add(c)).context("TIFF strip beyond the file")?);
        }
        if one(266, 1.0) as u32 == 2 {
            for v in data.iter_mut() {
                *v = v.reverse_bits();
            }
        }
        // Resolution in dots per inch (unit 3: per centimetre).
        let per_inch = if one(296, 2.0) as u32 == 3 { 2.54 } else { 1.0 };
        let dpi = |tag: u32, d: f64| match one(tag, 0.0) * per_inch {
            r if r > 0.0 => r,
            _ => d,
        };
        out.push(Page { width, rows, k, byte_align, eol, x_dpi: dpi(282, 204.0), y_dpi: dpi(283, 98.0), data });
        ifd = t.u32(ifd + 2 + n * 12)? as usize;
    }
    if out.is_empty() {
        bail!("TIFF without pages");
    }
    Ok(out)
}

/// The PDF of a fax's TIFF-F: one PDF page per fax page, at its real size.
pub fn from_tiff(tiff: &[u8]) -> Result<Vec<u8>> {
    let pages = pages(tiff)?;
    let mut pdf: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets: Vec<usize> = Vec::new();
    let n = pages.len();
    // Objects: 1 catalog, 2 page tree, then per page: page, content, image.
    let page_id = |i: usize| 3 + i * 3;
    let mut object = |pdf: &mut Vec<u8>, body: &[u8]| {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n", offsets.len()).as_bytes());
        pdf.extend(body);
        pdf.extend(b"\nendobj\n");
    };
    object(&mut pdf, b"<< /Type /Catalog /Pages 2 0 R >>");
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", page_id(i))).collect();
    object(&mut pdf, format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).as_bytes());
    for (i, p) in pages.iter().enumerate() {
        // In points, rounded down to 1/10000: a viewer rendering at the fax's own
        // resolution gets exactly its pixels (rounding up made one row more).
        let pt = |px: u32, dpi: f64| (px as f64 / dpi * 72.0 * 10_000.0).floor() / 10_000.0;
        let (w, h) = (pt(p.width, p.x_dpi), pt(p.rows, p.y_dpi));
        let id = page_id(i);
        object(
            &mut pdf,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w:.4} {h:.4}] /Contents {} 0 R /Resources << /XObject << /Im1 {} 0 R >> >> >>",
                id + 1,
                id + 2
            )
            .as_bytes(),
        );
        let content = format!("q {w:.4} 0 0 {h:.4} 0 0 cm /Im1 Do Q");
        object(&mut pdf, format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).as_bytes());
        let mut image = format!(
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 1 \
             /Filter /CCITTFaxDecode /DecodeParms << /K {} /Columns {} /Rows {} /EndOfLine {} /EncodedByteAlign {} /BlackIs1 false >> \
             /Length {} >>\nstream\n",
            p.width,
            p.rows,
            p.k,
            p.width,
            p.rows,
            p.eol,
            p.byte_align,
            p.data.len()
        )
        .into_bytes();
        image.extend(&p.data);
        image.extend(b"\nendstream");
        object(&mut pdf, &image);
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        pdf.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes(),
    );
    Ok(pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_fax_tiff_is_an_error_never_a_panic() {
        assert!(from_tiff(b"").is_err());
        assert!(from_tiff(b"%PDF-1.4").is_err());
        assert!(from_tiff(b"II*\0\x08\0\0\0\x01\0").is_err(), "truncated IFD");
        // An uncompressed page is not a fax.
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend(3u16.to_le_bytes());
        for (tag, v) in [(256u16, 1728u32), (257, 10), (259, 1)] {
            t.extend(tag.to_le_bytes());
            t.extend(4u16.to_le_bytes());
            t.extend(1u32.to_le_bytes());
            t.extend(v.to_le_bytes());
        }
        t.extend(0u32.to_le_bytes());
        assert!(format!("{:#}", from_tiff(&t).unwrap_err()).contains("not CCITT"));
        // A G4 page in two strips (offsets and counts as 2-long arrays at 100 and 108).
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        t.extend(5u16.to_le_bytes());
        for (tag, count, v) in [(256u16, 1, 1728u32), (257, 1, 10), (259, 1, 4), (273, 2, 100), (279, 2, 108)] {
            t.extend(tag.to_le_bytes());
            t.extend(4u16.to_le_bytes());
            t.extend((count as u32).to_le_bytes());
            t.extend(v.to_le_bytes());
        }
        t.extend(0u32.to_le_bytes());
        t.resize(100, 0);
        for v in [116u32, 118, 2, 2] {
            t.extend(v.to_le_bytes());
        }
        t.extend([0u8; 4]);
        assert!(format!("{:#}", from_tiff(&t).unwrap_err()).contains("in 2 strips"));
    }
}
