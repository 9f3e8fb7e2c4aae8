//! The tokio side: tasks that only move bytes and fire timers for the sans-IO cores.
//!
//! - [`sip_io`]: one task owning the SIP [`crate::sip::endpoint::Endpoint`], the UDP
//!   socket, the per-source rate limit and the TCP listener; [`sip_tcp`]: each TCP
//!   connection's reader and writer, under the connection and buffer limits;
//! - [`dispatch`]: one task per call — route, negotiate, answer — handing the call to its
//!   application's loop: [`deposit_call`], [`menu_call`] or [`fax_call`], on the call
//!   loop ([`call_loop`]) that owns the media socket and the application ([`call`]:
//!   what they share);
//! - [`fax_send`]: one outgoing fax call with a SIP endpoint of its own (`voxbridge fax
//!   send`), on the same call loop;
//! - [`mwi_io`]: the message-waiting task; [`sync_io`]: the sync scheduler (polling,
//!   triggers, backoff) and its sessions; the outbox worker ([`crate::mail::outbox`]);
//! - [`channels`]: every message these tasks send each other;
//! - [`server`]: start-up, wiring (the change hub's sinks) and graceful shutdown.

pub mod active_calls;
pub mod call;
pub mod call_loop;
pub mod channels;
pub mod control_io;
pub mod deposit_call;
pub mod dispatch;
pub mod fax_call;
pub mod fax_jobs;
pub mod fax_send;
pub mod menu_call;
pub mod metrics_http;
pub mod mwi_io;
pub mod ports;
pub mod server;
pub mod sip_io;
pub mod sip_tcp;
pub mod sip_tls;
pub mod smdi_io;
pub mod sync_io;
pub mod systemd;
