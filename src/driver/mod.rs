//! The tokio side: tasks that only move bytes and fire timers for the sans-IO cores.
//!
//! - [`sip_io`]: one task owning the SIP [`crate::sip::endpoint::Endpoint`], the UDP
//!   socket and the TCP connections;
//! - [`call`]: one task per call, owning its RTP socket, [`crate::rtp::session::RtpSession`]
//!   and application;
//! - the outbox worker ([`crate::mail::outbox`]);
//! - [`sync_io`]: the sync scheduler (polling, triggers, backoff) and its sessions;
//! - [`server`]: start-up, wiring and graceful shutdown.

pub mod call;
pub mod menu_call;
pub mod mwi_io;
pub mod ports;
pub mod server;
pub mod sip_io;
pub mod sync_io;
