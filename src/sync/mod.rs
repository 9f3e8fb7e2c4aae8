//! The message synchronization engine (seed sections B and C).
//!
//! The store is the single anchor of reference. Pure agents decide ([`compare`],
//! [`retrieve::classify`]); the I/O side ([`imap`]) executes their plans against SQLite
//! and the mail server. See docs/sync.md.

pub mod compare;
pub mod imap;
pub mod lock;
pub mod model;
pub mod retrieve;
pub mod scheduler;
