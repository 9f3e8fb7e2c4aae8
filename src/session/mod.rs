//! The media session layer, sans-IO: what an answered call's media is (RTP audio, or
//! UDPTL for T.38 on the same port), how a re-INVITE's offer changes it, and the call loop every
//! application plugs into.
//!
//! - [`media`]: a call's [`media::MediaSession`] — the RTP session, a T.38 stream once a
//!   fax offer is accepted, our address and the SDP origin; reading a first offer or a
//!   re-offer and answering it.
//! - [`keying`]: whether the audio is SRTP and under which keys (SDES), from the call's
//!   SRTP policy and whether its signalling came over TLS.
//! - [`t38`]: [`t38::T38Stream`] — UDPTL datagrams from the far end's host only, IFPs in
//!   order, ours out with the agreed error correction, the media timeout.
//! - [`app`]: the [`app::Application`] trait an application implements (deposit, menu,
//!   fax reception) and what it asks of the loop.
//! - [`call`]: [`call::CallLoop`] — one application on one media session, fed datagrams,
//!   the 20 ms tick, SIP events and the answers to its requests; it says what to send,
//!   what to ask of SIP, which work to start, and when to hand the call to another
//!   application. The tokio task that drives it is `driver/call_loop.rs`.

pub mod app;
pub mod call;
pub mod keying;
pub mod media;
pub mod t38;

#[cfg(test)]
mod tests;
