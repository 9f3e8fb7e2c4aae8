//! SMDI, the PBX link (issue 15): call details in, message lamps out. Sans-IO; the
//! link task (`driver::smdi_io`, a serial line or TCP) only moves bytes.
//!
//! - [`codec`]: the wire format — call details (MD) and lamp errors parsed from the
//!   link's bytes, lamp commands (`OP:MWI` / `RMV:MWI`) made.
//! - [`desk`]: the message desk — call details matched to calls by terminal (else by
//!   calling number), lamps coalesced, paced to the line, retried and re-sent.

pub mod codec;
pub mod desk;
