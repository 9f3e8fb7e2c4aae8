//! Fax: the spandsp engine (T.30 over G.711 audio, or over T.38 IFPs) behind a safe
//! interface, and the documents it sends and receives.
//!
//! - [`spandsp`]: the engine (FFI, `unsafe` confined there);
//! - [`tiff`]: a TIFF's pages counted, and whether it can be sent as it is;
//! - [`pdf`]: a received fax's PDF, its CCITT data embedded without re-encoding;
//! - [`document`]: what `fax send` is made into — a TIFF as it is, a scan scaled
//!   ([`libtiff`] decodes any TIFF, [`pages`] scales and writes fax pages), a PDF's
//!   CCITT pages taken as they are ([`pdf_pages`]), text and e-mails set onto pages
//!   ([`text`]).

pub mod document;
pub mod libtiff;
pub mod pages;
pub mod pdf;
pub mod pdf_pages;
pub mod spandsp;
pub mod text;
pub mod tiff;
