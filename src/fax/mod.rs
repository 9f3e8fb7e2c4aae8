//! Fax: the spandsp engine (T.30 over G.711 audio, or over T.38 IFPs) behind a safe
//! interface. Reception and sending build on it (issue 14); today the engine and its
//! tests.

pub mod pdf;
pub mod spandsp;
pub mod tiff;
