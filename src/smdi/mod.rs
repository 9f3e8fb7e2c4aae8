//! SMDI, the PBX link (issue 15): call details in, message lamps out. Sans-IO; the
//! link task (serial line or TCP) will only move bytes.
//!
//! - [`codec`]: the wire format — call details (MD) and lamp errors parsed from the
//!   link's bytes, lamp commands (`OP:MWI` / `RMV:MWI`) made.

pub mod codec;
