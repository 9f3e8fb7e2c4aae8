//! UDPTL (ITU-T T.38 §9.1 and Annex A): how T.38's IFP packets travel over UDP, each
//! datagram carrying one new IFP and, against loss, either the IFPs sent just before it
//! (redundancy) or XOR parity over earlier ones (FEC). Sans-IO: bytes in, IFPs out.
//!
//! - [`packet`]: the wire format (ASN.1 PER, aligned): parse and encode, errors for
//!   anything malformed, never a panic;
//! - [`receiver`]: IFPs in sequence order, filling gaps from redundancy or FEC;
//! - [`sender`]: datagrams with the error correction the SDP negotiated.

pub mod packet;
pub mod receiver;
pub mod sender;

pub use packet::{Packet, Recovery, UdptlError};
pub use receiver::Receiver;
pub use sender::{ErrorCorrection, Sender};

/// The largest IFP we accept or send; T.38 IFPs are small (a few hundred octets at
/// 14,400 bit/s), and a value from the far end's SDP is never trusted beyond this.
pub const MAX_IFP: usize = 1400;
