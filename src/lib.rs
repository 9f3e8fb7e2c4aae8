//! voxbridge — a telephony-first IVR, voice-mail and unified-messaging server.
//!
//! Crate map (see docs/architecture.md for the data flow):
//! - [`config`]: TOML configuration, every key with a default; [`control`]: the control
//!   socket's requests and answers;
//! - [`sip`], [`sdp`], [`rtp`], [`srtp`], [`udptl`], [`smdi`]: sans-IO protocol cores; [`session`]:
//!   a call's media and the loop every application runs on; [`fax`]: the fax engine
//!   and its documents;
//! - [`media`]: G.711 codecs, prompts, TTS, WAV;
//! - [`model`]: types every layer shares; [`durable`]: durable file writes; [`metrics`]:
//!   what the metrics endpoint reports;
//! - [`ivr`]: the dialplan and the call applications (deposit, menu, fax);
//! - [`store`]: SQLite, the single anchor of reference;
//! - [`mail`]: homogenized messages and delivery (IMAP APPEND, SMTP) through the outbox;
//! - [`sync`]: the sync engine; [`notify`]: the change hub; [`services`]: the business
//!   rules every access point calls;
//! - [`driver`]: the tokio tasks that move bytes and fire timers; [`cli`]: admin commands.
//!
//! Protocol cores never read the clock and never touch a socket: they are fed bytes,
//! events and `Instant`s, and return what to send and when to wake them next.

#![deny(unsafe_code)]

pub mod civil;
pub mod cli;
pub mod config;
pub mod control;
pub mod driver;
pub mod durable;
pub mod fax;
pub mod fuzz;
pub mod ivr;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod model;
pub mod mwi;
pub mod notify;
pub mod reading;
pub mod rtp;
pub mod sdp;
pub mod services;
pub mod session;
pub mod sip;
pub mod smdi;
pub mod srtp;
pub mod store;
pub mod sync;
pub mod udptl;
