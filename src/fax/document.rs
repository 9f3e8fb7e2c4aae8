//! What `fax send` (and a forwarded e-mail) is turned into before spandsp sends it: a
//! TIFF of fax pages is sent as it is; another TIFF (a scan, any width, grey or colour)
//! is scaled onto 1728-pixel pages; a PDF's CCITT pages are taken as they are (scaled
//! when of another width); plain text and e-mails are set onto A4 pages.

use super::{libtiff, pages, text};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A document ready for the fax engine.
#[derive(Debug)]
pub struct Prepared {
    /// The TIFF to send when it is not the file itself.
    pub tiff: Option<Vec<u8>>,
    pub pages: usize,
    /// What the file was taken as, for the log and the report.
    pub kind: &'static str,
}

/// Reads `path` (its bytes are `bytes`) as a fax document; text goes onto `paper`.
pub fn prepare(path: &Path, bytes: &[u8], paper: pages::Paper) -> Result<Prepared> {
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        if let Ok(pages) = super::tiff::sendable(bytes) {
            return Ok(Prepared { tiff: None, pages, kind: "TIFF" });
        }
        return scaled(path, "TIFF scaled to fax pages");
    }
    if bytes.starts_with(b"%PDF") {
        let t = super::pdf_pages::to_tiff(bytes).with_context(|| path.display().to_string())?;
        if let Ok(pages) = super::tiff::sendable(&t) {
            return Ok(Prepared { tiff: Some(t), pages, kind: "PDF of fax pages" });
        }
        // CCITT pages of another width: decoded and scaled like a scan.
        let tmp = std::env::temp_dir().join(format!(
            "voxbridge-pdf-{}-{:08x}.tif",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&tmp, &t).with_context(|| format!("cannot write {}", tmp.display()))?;
        let made = scaled(&tmp, "PDF scaled to fax pages");
        let _ = std::fs::remove_file(&tmp);
        return made;
    }
    let Ok(s) = std::str::from_utf8(bytes) else {
        bail!("{}: not a TIFF, plain text (UTF-8) or an e-mail", path.display());
    };
    let (body, kind) = if looks_like_mail(s) { (text::email_text(bytes)?, "e-mail") } else { (s.to_string(), "text") };
    let made = text::render(&body, paper)?;
    Ok(Prepared { pages: made.len(), tiff: Some(pages::tiff(&made)), kind })
}

/// Any TIFF libtiff reads, page by page onto fax pages.
fn scaled(path: &Path, kind: &'static str) -> Result<Prepared> {
    let made: Vec<pages::Page> = libtiff::read_pages(path)?.iter().map(pages::Grey::to_page).collect();
    Ok(Prepared { pages: made.len(), tiff: Some(pages::tiff(&made)), kind })
}

/// An e-mail starts with header lines and has a From or a Subject among them.
fn looks_like_mail(s: &str) -> bool {
    let head = s.split("\n\n").next().unwrap_or("").split("\r\n\r\n").next().unwrap_or("");
    let first = head.lines().next().unwrap_or("");
    let header = |l: &str| {
        l.split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    header(first)
        && head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("from:") || l.starts_with("subject:")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_mail_are_told_apart() {
        assert!(looks_like_mail("From: a@b\r\nSubject: x\r\n\r\nhi"));
        assert!(looks_like_mail("Received: x\nFrom: a@b\n\nhi"));
        assert!(!looks_like_mail("Dear Sir: about the invoice\n\nFrom: me"));
        assert!(!looks_like_mail("Hello\nFrom: nobody"));
    }

    #[test]
    fn text_is_set_onto_pages_and_binary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("note.txt");
        let d = prepare(&p, b"Please call back.\n", pages::Paper::A4).unwrap();
        assert_eq!((d.pages, d.kind), (1, "text"));
        assert_eq!(crate::fax::tiff::sendable(d.tiff.as_ref().unwrap()), Ok(1));
        assert!(prepare(&p, b"\x89PNG\r\n\x1a\n\xff\xfe", pages::Paper::A4)
            .unwrap_err()
            .to_string()
            .contains("not a TIFF"));
        assert!(prepare(&p, b"%PDF-1.7", pages::Paper::A4).is_err(), "a PDF lopdf cannot read");
    }
}
