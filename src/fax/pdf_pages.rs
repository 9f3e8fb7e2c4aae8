//! The fax pages of a PDF: each page's CCITT image (`/CCITTFaxDecode`, what scanners'
//! "fax" profiles and our own received-fax PDFs hold) taken as it is, without decoding,
//! into a TIFF — one page per PDF page, G3 or G4 as the image says, the resolution
//! from the page's size. A page without such an image (typeset text, a JPEG scan) is
//! an error saying how to convert it. lopdf reads the PDF (object streams, xref
//! streams, incremental updates).

use anyhow::{bail, Context, Result};
use lopdf::{Dictionary, Document, Object};

/// One page's CCITT image.
struct Image {
    width: u32,
    rows: u32,
    k: i64,
    byte_align: bool,
    data: Vec<u8>,
    /// The page's size in points, for the resolution.
    page_pt: (f64, f64),
}

/// A TIFF of the PDF's pages (its CCITT data unchanged).
pub fn to_tiff(bytes: &[u8]) -> Result<Vec<u8>> {
    let doc = Document::load_mem(bytes).context("not a PDF lopdf can read")?;
    let mut images = Vec::new();
    for (n, page_id) in doc.get_pages() {
        let image = page_image(&doc, page_id).with_context(|| format!("page {n} of the PDF"))?;
        match image {
            Some(i) => images.push(i),
            None => bail!(
                "page {n} of the PDF holds no CCITT fax image (typeset text or a photo scan): make a fax TIFF of it \
                 first, e.g. `gs -sDEVICE=tiffg4 -r204x196 -o OUT.tif IN.pdf`"
            ),
        }
    }
    if images.is_empty() {
        bail!("the PDF has no pages");
    }
    Ok(tiff(&images))
}

fn page_image(doc: &Document, page_id: lopdf::ObjectId) -> Result<Option<Image>> {
    let page = doc.get_dictionary(page_id)?;
    let page_pt = media_box(doc, page).unwrap_or((612.0, 792.0));
    let (resources, inherited) = doc.get_page_resources(page_id)?;
    let mut dicts: Vec<&Dictionary> = resources.into_iter().collect();
    dicts.extend(inherited.iter().filter_map(|id| doc.get_dictionary(*id).ok()));
    let mut best: Option<Image> = None;
    for res in dicts {
        let Ok(xobjects) = res.get(b"XObject").and_then(|o| deref(doc, o)).and_then(Object::as_dict) else { continue };
        for (_, x) in xobjects.iter() {
            let Ok(Object::Stream(s)) = deref(doc, x) else { continue };
            let d = &s.dict;
            if d.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Image".as_slice()) || !is_ccitt(doc, d) {
                continue;
            }
            let parms = decode_parms(doc, d);
            let int = |dict: Option<&Dictionary>, key: &[u8]| {
                dict.and_then(|p| p.get(key).ok()).and_then(|o| deref(doc, o).ok()).and_then(|o| o.as_i64().ok())
            };
            let width = int(Some(d), b"Width").unwrap_or(0);
            let columns = int(parms, b"Columns").unwrap_or(1728);
            let rows = int(parms, b"Rows").filter(|r| *r > 0).or(int(Some(d), b"Height")).unwrap_or(0);
            if columns <= 0 || rows <= 0 || (width > 0 && width != columns) || columns > 10_000 || rows > 100_000 {
                bail!("a CCITT image of {columns} × {rows} (width {width}) cannot be a fax page");
            }
            let flag = |key: &[u8]| {
                parms.and_then(|p| p.get(key).ok()).and_then(|o| deref(doc, o).ok()).and_then(|o| o.as_bool().ok())
            };
            let image = Image {
                width: columns as u32,
                rows: rows as u32,
                k: int(parms, b"K").unwrap_or(0),
                byte_align: flag(b"EncodedByteAlign").unwrap_or(false),
                data: s.content.clone(),
                page_pt,
            };
            if image.k < 0 && image.byte_align {
                bail!("a G4 image with EncodedByteAlign: TIFF cannot carry it as it is");
            }
            if best.as_ref().is_none_or(|b| image.width * image.rows > b.width * b.rows) {
                best = Some(image);
            }
        }
    }
    Ok(best)
}

fn deref<'a>(doc: &'a Document, o: &'a Object) -> lopdf::Result<&'a Object> {
    match o {
        Object::Reference(id) => doc.get_object(*id),
        other => Ok(other),
    }
}

/// Whether the image's only filter is CCITTFaxDecode (other filters before it would
/// need decoding first).
fn is_ccitt(doc: &Document, d: &Dictionary) -> bool {
    match d.get(b"Filter").and_then(|o| deref(doc, o)) {
        Ok(Object::Name(n)) => n == b"CCITTFaxDecode",
        Ok(Object::Array(a)) => a.len() == 1 && matches!(&a[0], Object::Name(n) if n == b"CCITTFaxDecode"),
        _ => false,
    }
}

fn decode_parms<'a>(doc: &'a Document, d: &'a Dictionary) -> Option<&'a Dictionary> {
    match d.get(b"DecodeParms").and_then(|o| deref(doc, o)).ok()? {
        Object::Dictionary(p) => Some(p),
        Object::Array(a) => a.first().and_then(|o| deref(doc, o).ok()).and_then(|o| o.as_dict().ok()),
        _ => None,
    }
}

/// The page's MediaBox size in points, its own or inherited.
fn media_box(doc: &Document, page: &Dictionary) -> Option<(f64, f64)> {
    let mut dict = page;
    for _ in 0..32 {
        if let Ok(b) = dict.get(b"MediaBox").and_then(|o| deref(doc, o)).and_then(Object::as_array) {
            let n: Vec<f64> = b.iter().filter_map(|o| deref(doc, o).ok()?.as_float().ok().map(f64::from)).collect();
            if n.len() == 4 {
                return Some(((n[2] - n[0]).abs(), (n[3] - n[1]).abs())).filter(|(w, h)| *w > 1.0 && *h > 1.0);
            }
        }
        dict = deref(doc, dict.get(b"Parent").ok()?).ok()?.as_dict().ok()?;
    }
    None
}

/// The TIFF of the images: G3 (T.4, 1D or 2D) or G4 (T.6) as each one is.
fn tiff(images: &[Image]) -> Vec<u8> {
    let dpi = |pixels: u32, pt: f64| ((pixels as f64 / (pt / 72.0)).round() as u32).clamp(50, 1200);
    let list: Vec<super::tiff::Image<'_>> = images
        .iter()
        .map(|im| super::tiff::Image {
            width: im.width,
            rows: im.rows,
            data: &im.data,
            compression: if im.k < 0 { 4 } else { 3 },
            x_dpi: dpi(im.width, im.page_pt.0),
            y_dpi: dpi(im.rows, im.page_pt.1),
            // T4Options: bit 0 two-dimensional, bit 2 fill bits (byte-aligned EOLs).
            options: Some(if im.k < 0 {
                (293, 0)
            } else {
                (292, u32::from(im.k > 0) | if im.byte_align { 4 } else { 0 })
            }),
        })
        .collect();
    super::tiff::write(&list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    #[test]
    fn what_is_no_pdf_or_has_no_fax_image_is_an_error() {
        assert!(to_tiff(b"%PDF-1.4 garbage").is_err());
        assert!(to_tiff(b"").is_err());
        // A page of typeset text (no image at all).
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let content = doc.add_object(lopdf::Stream::new(Dictionary::new(), b"BT ET".to_vec()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let e = to_tiff(&bytes).unwrap_err().to_string();
        assert!(e.contains("page 1 of the PDF holds no CCITT fax image"), "{e}");
    }
}
