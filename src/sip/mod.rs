//! SIP: framing ([`frame`]), validated messages ([`msg`], with the grammar checks `rsip` lacks in [`grammar`]), transactions ([`txn`]) and the
//! user-agent core with dialogs ([`endpoint`]); per-source limits ([`limits`]); digest authentication ([`digest`]) and who may do what ([`access`]); whom a diverted call was for ([`redirection`]); deadlines in a priority queue ([`timers`]). All sans-IO; the sockets live in
//! `crate::driver::sip_io`.

pub mod access;
pub mod digest;
pub mod endpoint;
pub mod frame;
pub mod grammar;
pub mod invite_client;
pub mod limits;
pub mod msg;
pub mod redirection;
pub mod reuse;
pub mod subscriptions;
pub mod timers;
pub mod txn;
