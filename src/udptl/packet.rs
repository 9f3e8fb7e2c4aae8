//! The UDPTL datagram (T.38 Annex A, `UDPTLPacket`), PER-aligned:
//!
//! ```text
//! seq-number (2 octets) | primary-ifp-packet (open type: length + octets) |
//! error-recovery: 1 bit choice in an octet —
//!   0: secondary-ifp-packets  (count, then that many open types, newest first)
//!   1: fec-info               (fec-npackets as 1-octet length + value, count,
//!                              that many open types of XOR parity)
//! ```
//! Lengths are PER length determinants: one octet below 128, two octets (`10xxxxxx`)
//! below 16384; larger ones are fragmented, which no fax IFP needs: refused.

/// What a datagram carries besides its new IFP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The IFPs of the sequence numbers just before this one, newest first.
    Redundancy(Vec<Vec<u8>>),
    /// Parity: entry `m` is the XOR of the IFPs `seq + m - span*n`, stepping by `n`, up
    /// to (not including) `seq + m`, where `n` is the number of entries.
    Fec { span: u8, entries: Vec<Vec<u8>> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub seq: u16,
    pub primary: Vec<u8>,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdptlError {
    /// The datagram ends inside a field.
    Truncated,
    /// A length of 16384 or more (PER fragmentation).
    Fragmented,
    /// An IFP longer than the limit, or more recovery entries than any sender uses.
    TooLarge,
    /// FEC information that is not what T.38 defines (fec-npackets not one octet).
    BadFec,
}

impl std::fmt::Display for UdptlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UdptlError::Truncated => "UDPTL datagram truncated",
            UdptlError::Fragmented => "UDPTL length of 16384 or more (fragmented): not supported",
            UdptlError::TooLarge => "UDPTL IFP or recovery list too large",
            UdptlError::BadFec => "UDPTL FEC information malformed",
        })
    }
}

impl std::error::Error for UdptlError {}

/// Most recovery entries in one datagram we take (senders use 1–4 redundant IFPs or a
/// few FEC entries; Asterisk caps FEC entries at 5).
pub const MAX_ENTRIES: usize = 16;

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn octet(&mut self) -> Result<u8, UdptlError> {
        let b = *self.buf.get(self.at).ok_or(UdptlError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn length(&mut self) -> Result<usize, UdptlError> {
        let first = self.octet()?;
        if first & 0x80 == 0 {
            return Ok(first as usize);
        }
        if first & 0x40 == 0 {
            let second = self.octet()?;
            return Ok((((first & 0x3f) as usize) << 8) | second as usize);
        }
        Err(UdptlError::Fragmented)
    }

    fn open_type(&mut self, max: usize) -> Result<&'a [u8], UdptlError> {
        let n = self.length()?;
        if n > max {
            return Err(UdptlError::TooLarge);
        }
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(UdptlError::Truncated)?;
        let v = &self.buf[self.at..end];
        self.at = end;
        Ok(v)
    }
}

impl Packet {
    /// Parses one datagram; IFPs (primary, redundant, parity) longer than `max_ifp` are
    /// refused. Trailing octets after the recovery field are ignored, as other stacks do.
    pub fn parse(buf: &[u8], max_ifp: usize) -> Result<Packet, UdptlError> {
        let mut r = Reader { buf, at: 0 };
        let seq = u16::from_be_bytes([r.octet()?, r.octet()?]);
        let primary = r.open_type(max_ifp)?.to_vec();
        let choice = r.octet()?;
        let recovery = if choice & 0x80 == 0 {
            let n = r.length()?;
            if n > MAX_ENTRIES {
                return Err(UdptlError::TooLarge);
            }
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.open_type(max_ifp)?.to_vec());
            }
            Recovery::Redundancy(v)
        } else {
            // fec-npackets is an unconstrained INTEGER: a length octet, then the value.
            if r.octet()? != 1 {
                return Err(UdptlError::BadFec);
            }
            let span = r.octet()?;
            let n = r.length()?;
            if n > MAX_ENTRIES {
                return Err(UdptlError::TooLarge);
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(r.open_type(max_ifp)?.to_vec());
            }
            Recovery::Fec { span, entries }
        };
        Ok(Packet { seq, primary, recovery })
    }

    /// The datagram. An empty IFP is sent as one zero octet (X.691 §10.1: an open type
    /// is never empty). IFPs above 16383 octets cannot be encoded: the sender never
    /// makes them ([`crate::udptl::MAX_IFP`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.primary.len() * 2);
        out.extend(self.seq.to_be_bytes());
        open_type(&mut out, &self.primary);
        match &self.recovery {
            Recovery::Redundancy(v) => {
                out.push(0x00);
                length(&mut out, v.len());
                for ifp in v {
                    open_type(&mut out, ifp);
                }
            }
            Recovery::Fec { span, entries } => {
                out.push(0x80);
                out.extend([1, *span]);
                length(&mut out, entries.len());
                for e in entries {
                    open_type(&mut out, e);
                }
            }
        }
        out
    }
}

fn length(out: &mut Vec<u8>, n: usize) {
    debug_assert!(n < 0x4000, "UDPTL lengths stay below 16384");
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.extend((((n & 0x3fff) | 0x8000) as u16).to_be_bytes());
    }
}

fn open_type(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        out.extend([1, 0]);
    } else {
        length(out, data.len());
        out.extend(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_round_trip_in_both_recovery_modes() {
        for recovery in [
            Recovery::Redundancy(vec![]),
            Recovery::Redundancy(vec![vec![1, 2], vec![3; 200]]),
            Recovery::Fec { span: 3, entries: vec![vec![9; 10], vec![8; 130]] },
        ] {
            let p = Packet { seq: 0xfffe, primary: vec![7; 300], recovery };
            let bytes = p.encode();
            assert_eq!(Packet::parse(&bytes, 1400), Ok(p));
        }
    }

    #[test]
    fn the_wire_format_is_t38_annex_a() {
        // seq 5, a 2-octet IFP, redundancy with one 1-octet IFP.
        let p = Packet { seq: 5, primary: vec![0xaa, 0xbb], recovery: Recovery::Redundancy(vec![vec![0xcc]]) };
        assert_eq!(p.encode(), [0x00, 0x05, 0x02, 0xaa, 0xbb, 0x00, 0x01, 0x01, 0xcc]);
        // A 200-octet IFP has a two-octet length.
        let p = Packet { seq: 1, primary: vec![0; 200], recovery: Recovery::Redundancy(vec![]) };
        assert_eq!(&p.encode()[2..4], [0x80, 200]);
        // FEC: choice bit, fec-npackets as length 1 + span, entry count.
        let p = Packet { seq: 9, primary: vec![1], recovery: Recovery::Fec { span: 3, entries: vec![vec![2]] } };
        assert_eq!(p.encode(), [0x00, 0x09, 0x01, 0x01, 0x80, 0x01, 0x03, 0x01, 0x01, 0x02]);
    }

    #[test]
    fn malformed_datagrams_are_errors() {
        let good = Packet { seq: 1, primary: vec![5; 20], recovery: Recovery::Redundancy(vec![vec![6; 20]]) }.encode();
        for cut in 0..good.len() {
            assert!(Packet::parse(&good[..cut], 1400).is_err(), "cut at {cut}");
        }
        assert_eq!(Packet::parse(&[0, 1, 0xc1, 0], 1400), Err(UdptlError::Fragmented));
        assert_eq!(Packet::parse(&good, 10), Err(UdptlError::TooLarge));
        assert_eq!(Packet::parse(&[0, 1, 1, 9, 0x80, 2, 0, 0], 1400), Err(UdptlError::BadFec));
        assert_eq!(Packet::parse(&[0, 1, 1, 9, 0x00, 17], 1400), Err(UdptlError::TooLarge));
    }
}
