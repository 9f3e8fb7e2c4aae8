//! The media session layer, sans-IO: what an answered call's media is (RTP audio today,
//! UDPTL for T.38 next), how a re-INVITE's offer changes it, and the call loop every
//! application plugs into.
//!
//! - [`media`]: a call's [`media::MediaSession`] — the RTP session, our address and the
//!   SDP origin; reading a re-offer and answering it.
//! - [`app`]: the [`app::Application`] trait an application implements (deposit, menu,
//!   later fax reception) and what it asks of the loop.
//! - [`call`]: [`call::CallLoop`] — one application on one media session, fed datagrams,
//!   the 20 ms tick, SIP events and the answers to its requests; it says what to send,
//!   what to ask of SIP, which work to start, and when to hand the call to another
//!   application. The tokio task that drives it is `driver/call_loop.rs`.

pub mod app;
pub mod call;
pub mod media;

#[cfg(test)]
mod tests;
