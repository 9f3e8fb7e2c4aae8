//! Fax pages made here (a scaled image, rendered text): black-and-white bitmaps 1728
//! pixels wide at 204 × 196 dpi (T.4 fine resolution), and the TIFF spandsp sends them
//! from — one uncompressed bilevel image per page, its resolution and page number (T.30
//! compresses for the line itself).

/// Pixels across a fax page (A4/Letter at 204 dpi).
pub const WIDTH: usize = 1728;
/// Horizontal and vertical resolution of the pages made here (fine).
pub const X_DPI: f64 = 204.0;
pub const Y_DPI: f64 = 196.0;
/// Pages made at most (from a scan or a text): a fax of more is no fax.
pub const MAX_PAGES: usize = 500;
/// An A4 page's rows at 196 lines per inch (297 mm).
pub const A4_ROWS: usize = 2292;

/// The paper text is set onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Paper {
    #[default]
    A4,
    /// US Letter, 11 inches.
    Letter,
}

impl Paper {
    /// Rows of a page at 196 lines per inch.
    pub fn rows(self) -> usize {
        match self {
            Paper::A4 => A4_ROWS,
            Paper::Letter => 2156,
        }
    }
}

impl std::str::FromStr for Paper {
    type Err = String;
    fn from_str(s: &str) -> Result<Paper, String> {
        match s.to_ascii_lowercase().as_str() {
            "a4" => Ok(Paper::A4),
            "letter" => Ok(Paper::Letter),
            _ => Err(format!("{s:?}: the paper is a4 or letter")),
        }
    }
}

/// One page: `rows` rows of [`WIDTH`] pixels, true = black.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub rows: usize,
    bits: Vec<bool>,
}

impl Page {
    pub fn blank(rows: usize) -> Page {
        Page { rows, bits: vec![false; rows * WIDTH] }
    }

    pub fn set(&mut self, x: usize, y: usize) {
        if x < WIDTH && y < self.rows {
            self.bits[y * WIDTH + x] = true;
        }
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        x < WIDTH && y < self.rows && self.bits[y * WIDTH + x]
    }

    /// Black pixels in rows `from..to` (tests, and what a page holds).
    pub fn ink(&self, from: usize, to: usize) -> usize {
        self.bits[from.min(self.rows) * WIDTH..to.min(self.rows) * WIDTH].iter().filter(|b| **b).count()
    }

    /// The rows packed MSB first, 1 = black (TIFF PhotometricInterpretation 0).
    fn packed(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.rows * WIDTH / 8];
        for (i, _) in self.bits.iter().enumerate().filter(|(_, b)| **b) {
            out[i / 8] |= 0x80 >> (i % 8);
        }
        out
    }
}

/// A greyscale image (0 black … 255 white), `width` × `height`, and its resolution
/// (dots per inch, when the file said).
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    pub dpi: Option<(f64, f64)>,
}

impl Grey {
    /// Scaled to the fax width, its aspect kept (by its resolution, else square
    /// pixels), each fax pixel the average of the source area it covers, black below
    /// half. A page longer than two A4 pages is cut there (a fax machine's limit).
    pub fn to_page(&self) -> Page {
        let (w, h) = (self.width.max(1), self.height.max(1));
        // Physical width of the source in inches, and its vertical resolution.
        let (x_dpi, y_dpi) = self.dpi.filter(|(x, y)| *x > 1.0 && *y > 1.0).unwrap_or_else(|| {
            let d = w as f64 / (WIDTH as f64 / X_DPI);
            (d, d)
        });
        let scale = (WIDTH as f64 / X_DPI) / (w as f64 / x_dpi);
        let rows = ((h as f64 / y_dpi) * scale * Y_DPI).round().clamp(1.0, (2 * A4_ROWS) as f64) as usize;
        // Per fax row: the darkness of the source rows it covers summed by column, then
        // summed along the row, so each fax pixel's area is two subtractions away.
        // Memory stays one source row wide, however large the scan.
        let (fx, fy) = (w as f64 / WIDTH as f64, h as f64 / rows as f64);
        let mut page = Page::blank(rows);
        let mut columns = vec![0u64; w];
        let mut along = vec![0u64; w + 1];
        for ty in 0..rows {
            let (y0, y1) = span(ty, fy, h);
            columns.fill(0);
            for y in y0..y1 {
                for (c, p) in columns.iter_mut().zip(&self.pixels[y * w..(y + 1) * w]) {
                    *c += 255 - *p as u64;
                }
            }
            for x in 0..w {
                along[x + 1] = along[x] + columns[x];
            }
            for tx in 0..WIDTH {
                let (x0, x1) = span(tx, fx, w);
                let area = ((x1 - x0) * (y1 - y0)) as u64;
                if (along[x1] - along[x0]) * 2 > area * 255 {
                    page.set(tx, ty);
                }
            }
        }
        page
    }
}

/// The source pixels `[a, b)` a target pixel `t` covers at `f` source pixels per target
/// pixel: at least one.
fn span(t: usize, f: f64, len: usize) -> (usize, usize) {
    let a = ((t as f64 * f).floor() as usize).min(len - 1);
    let b = (((t + 1) as f64 * f).ceil() as usize).clamp(a + 1, len);
    (a, b)
}

/// The TIFF of `pages` (uncompressed, fine resolution).
pub fn tiff(pages: &[Page]) -> Vec<u8> {
    let packed: Vec<Vec<u8>> = pages.iter().map(Page::packed).collect();
    let images: Vec<super::tiff::Image<'_>> = pages
        .iter()
        .zip(&packed)
        .map(|(p, data)| super::tiff::Image {
            width: WIDTH as u32,
            rows: p.rows as u32,
            data,
            compression: 1,
            x_dpi: X_DPI as u32,
            y_dpi: Y_DPI as u32,
            options: None,
        })
        .collect();
    super::tiff::write(&images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_scan_is_fitted_to_the_fax_width_with_its_aspect() {
        // A4 at 300 dpi, grey, one black square an inch from the top left, an inch wide.
        let (w, h) = (2480, 3508);
        let mut pixels = vec![230u8; w * h];
        for y in 300..600 {
            for x in 300..600 {
                pixels[y * w + x] = 20;
            }
        }
        let p = Grey { width: w, height: h, pixels, dpi: Some((300.0, 300.0)) }.to_page();
        // 2480 px at 300 dpi is 8.27 in; fitted to 8.47 in: rows 3508/300 × 1.024 × 196.
        assert_eq!(p.rows, (3508.0 / 300.0 * (1728.0 / 204.0) / (2480.0 / 300.0) * 196.0f64).round() as usize);
        let x = |v: f64| v * 1728.0 / 2480.0;
        let y = |v: f64| v / 300.0 * 1.0242 * 196.0;
        assert!(p.get(x(450.0) as usize, y(450.0) as usize), "the square's middle is black");
        assert!(!p.get(x(700.0) as usize, y(450.0) as usize) && !p.get(x(450.0) as usize, y(700.0) as usize));
        assert!(!p.get(10, 10), "light grey stays white");
        let side = (x(600.0) - x(300.0)) as usize;
        let black = p.ink(0, p.rows);
        let want = side * (y(600.0) - y(300.0)) as usize;
        assert!(black.abs_diff(want) * 20 < want, "{black} black pixels, about {want} wanted");
    }

    #[test]
    fn the_tiff_is_one_page_per_image_with_its_number() {
        let mut a = Page::blank(10);
        a.set(0, 0);
        let t = tiff(&[a, Page::blank(20)]);
        assert_eq!(crate::fax::tiff::pages(&t), 2);
        assert_eq!(crate::fax::tiff::sendable(&t), Ok(2));
        assert_eq!(t[8], 0x80, "the first pixel black, MSB first");
    }
}
