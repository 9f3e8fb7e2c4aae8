//! The SMDI wire format (Bellcore/Telcordia Simplified Message Desk Interface), sans-IO:
//! bytes from the PBX in, messages out; lamp commands out as bytes.
//!
//! From the PBX: a call detail `MD` + message desk (3 digits) + terminal (4 digits, the
//! logical port) + call type (`A` forward all, `B` busy, `N` no answer, `D` direct, `U`
//! unknown) + the forwarding station + a space + the calling station, then CR LF and,
//! on most switches, ^Y (0x19). Switches vary: stations of 7, 10 or more digits, no
//! forwarding station on a direct call, no calling station (blocked), a missing space.
//! Lamp errors come back as `MWE` or `MWI`, a space or not, the station and a cause
//! (`INV` invalid, `BLK` blocked). To the PBX: `OP:MWI <station>!` + EOT lights a lamp,
//! `RMV:MWI <station>!` + EOT clears it.
//!
//! Lines end at LF (a CR before it, a ^Y after it, NUL padding and leading noise are
//! dropped); a line longer than [`MAX_LINE`] is thrown away up to its end, and what does
//! not parse comes back as [`Inbound::Garbage`] — never a panic.

/// Longest line taken: a call detail is under 40 octets; anything longer is noise.
pub const MAX_LINE: usize = 128;
/// Station numbers are at most this long (E.164 is 15 digits).
const MAX_STATION: usize = 20;
const EOT: u8 = 0x04;

/// Why the call reached voice mail (the MD's call type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// `A`: all calls forwarded (unconditional).
    ForwardAll,
    /// `B`: the station was busy.
    Busy,
    /// `N`: the station did not answer.
    NoAnswer,
    /// `D`: the caller dialled voice mail directly.
    Direct,
    /// `U`: the switch does not say.
    Unknown,
}

/// One call detail (MD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDetail {
    pub desk: String,
    /// The logical terminal (port) the call arrives on: what matches it to its SIP call.
    pub terminal: String,
    pub call_type: CallType,
    /// The station whose calls were forwarded (none on a direct call).
    pub forwarding: Option<String>,
    /// Who is calling (none when the switch withholds it).
    pub calling: Option<String>,
}

/// What the PBX said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    CallDetail(CallDetail),
    /// A lamp command was refused for `station` with `cause` (`INV`, `BLK`, …).
    LampError {
        station: String,
        cause: String,
    },
    /// A line that is none of these (logged).
    Garbage(String),
}

/// Reassembles lines from the link's bytes.
#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    /// Inside a line that grew past [`MAX_LINE`]: dropped up to its end.
    overlong: bool,
    /// Leading digits to strip from station numbers (`msdstrip`).
    strip: usize,
}

impl Decoder {
    /// `strip`: leading digits dropped from every station number (a switch that
    /// prefixes its own digits, as Asterisk's `msdstrip`).
    pub fn new(strip: usize) -> Decoder {
        Decoder { strip, ..Decoder::default() }
    }

    /// Bytes from the link; the messages they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Inbound> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.overlong) {
                        out.push(Inbound::Garbage(format!("a line of more than {MAX_LINE} octets")));
                    } else if let Some(m) = self.parse(&line) {
                        out.push(m);
                    }
                }
                // Frame ends, padding and line noise between messages.
                b'\r' | 0x19 | 0 | EOT => {}
                _ if self.overlong => {}
                _ if self.line.len() >= MAX_LINE => {
                    self.line.clear();
                    self.overlong = true;
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn parse(&self, line: &[u8]) -> Option<Inbound> {
        let text = String::from_utf8_lossy(line);
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        let garbage = || Some(Inbound::Garbage(t.chars().take(MAX_LINE).collect()));
        if let Some(rest) = t.strip_prefix("MD") {
            return self.call_detail(rest).map(Inbound::CallDetail).or_else(garbage);
        }
        for tag in ["MWE", "MWI"] {
            if let Some(rest) = t.strip_prefix(tag) {
                let mut words = rest.split_whitespace();
                let (Some(station), cause) = (words.next(), words.next()) else { return garbage() };
                if !is_station(station) {
                    return garbage();
                }
                let cause = cause.unwrap_or("").chars().take(8).collect();
                // The station our own command named, as we sent it: never stripped.
                return Some(Inbound::LampError { station: station.to_string(), cause });
            }
        }
        garbage()
    }

    fn call_detail(&self, rest: &str) -> Option<CallDetail> {
        let b = rest.as_bytes();
        if b.len() < 8 || !b[..7].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let call_type = match b[7] {
            b'A' => CallType::ForwardAll,
            b'B' => CallType::Busy,
            b'N' => CallType::NoAnswer,
            b'D' => CallType::Direct,
            b'U' => CallType::Unknown,
            _ => return None,
        };
        // After the type: the forwarding station, a space, the calling station —
        // either may be missing (a direct call has no forwarding station; a leading
        // space then stands for it).
        let stations = &rest[8..];
        let (fwd, calling) = match stations.split_once(' ') {
            Some((f, c)) => (f.trim(), c.trim()),
            None => (stations.trim(), ""),
        };
        let station = |s: &str| -> Option<Option<String>> {
            match s {
                "" => Some(None),
                s if is_station(s) => Some(Some(self.stripped(s))),
                _ => None,
            }
        };
        let (mut forwarding, mut calling) = (station(fwd)?, station(calling)?);
        if call_type == CallType::Direct && calling.is_none() {
            // "MD0010001D5551234": on a direct call the one station is the caller's.
            calling = forwarding.take();
        }
        Some(CallDetail {
            desk: rest[..3].to_string(),
            terminal: rest[3..7].to_string(),
            call_type,
            forwarding,
            calling,
        })
    }

    fn stripped(&self, s: &str) -> String {
        if s.len() > self.strip {
            s[self.strip..].to_string()
        } else {
            s.to_string()
        }
    }
}

fn is_station(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_STATION && s.bytes().all(|b| b.is_ascii_digit())
}

/// The command that lights (`on`) or clears a station's message lamp; `None` for a
/// station that is not digits (it could not be sent as one).
pub fn lamp(station: &str, on: bool) -> Option<Vec<u8>> {
    if !is_station(station) {
        return None;
    }
    let verb = if on { "OP" } else { "RMV" };
    let mut out = format!("{verb}:MWI {station}!").into_bytes();
    out.push(EOT);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(line: &str) -> CallDetail {
        match &Decoder::new(0).push(format!("{line}\r\n\x19").as_bytes())[..] {
            [Inbound::CallDetail(d)] => d.clone(),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn call_details_of_every_type_and_length_are_read() {
        let d = md("MD0010042B5551001 5559876");
        assert_eq!((d.desk.as_str(), d.terminal.as_str(), d.call_type), ("001", "0042", CallType::Busy));
        assert_eq!((d.forwarding.as_deref(), d.calling.as_deref()), (Some("5551001"), Some("5559876")));
        // Ten-digit stations; forward all; no answer; unknown.
        let d = md("MD0020007A2125551001 2125559876");
        assert_eq!((d.call_type, d.forwarding.as_deref()), (CallType::ForwardAll, Some("2125551001")));
        assert_eq!(md("MD0010001N1001 2000").call_type, CallType::NoAnswer);
        assert_eq!(md("MD0010001U1001 2000").call_type, CallType::Unknown);
        // A direct call: no forwarding station (a space, or nothing, stands for it).
        let d = md("MD0010003D 5559876");
        assert_eq!((d.call_type, d.forwarding, d.calling.as_deref()), (CallType::Direct, None, Some("5559876")));
        assert_eq!(md("MD0010003D5559876").calling.as_deref(), Some("5559876"));
        // The calling number withheld.
        let d = md("MD0010004B5551001");
        assert_eq!((d.forwarding.as_deref(), d.calling), (Some("5551001"), None));
        let d = md("MD0010004N5551001 ");
        assert_eq!(d.calling, None);
    }

    #[test]
    fn bytes_in_any_pieces_and_leading_digits_stripped() {
        let mut dec = Decoder::new(2);
        let all = b"\x00\x00MD0010042B995551001 995559876\r\n\x19MD0010043N991001 992000\r\n\x19";
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            got.extend(dec.push(chunk));
        }
        let [Inbound::CallDetail(a), Inbound::CallDetail(b)] = &got[..] else { panic!("{got:?}") };
        assert_eq!((a.forwarding.as_deref(), a.calling.as_deref()), (Some("5551001"), Some("5559876")));
        assert_eq!((b.terminal.as_str(), b.forwarding.as_deref()), ("0043", Some("1001")));
        // A lamp error names the station as our command did: not stripped.
        let got = dec.push(
            b"MWE 5551001 INV
",
        );
        assert!(matches!(&got[..], [Inbound::LampError { station, .. }] if station == "5551001"), "{got:?}");
    }

    #[test]
    fn lamp_errors_with_or_without_a_space_are_read() {
        let got = Decoder::new(0).push(b"MWE 5551001 INV\r\n\x19MWI5551002 BLK\r\nMWE 5551003\r\n");
        assert_eq!(
            got,
            [
                Inbound::LampError { station: "5551001".into(), cause: "INV".into() },
                Inbound::LampError { station: "5551002".into(), cause: "BLK".into() },
                Inbound::LampError { station: "5551003".into(), cause: "".into() },
            ]
        );
    }

    #[test]
    fn garbage_truncation_and_overlong_lines_are_errors_never_panics() {
        let mut dec = Decoder::new(0);
        let got = dec.push(b"hello\r\nMD001\r\nMD0010042X1 2\r\nMD0010042Bab 12\r\n\xff\xfe\r\n");
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got.iter().all(|m| matches!(m, Inbound::Garbage(_))), "{got:?}");
        // A line that never ends is dropped up to its end; the next one is read.
        let mut long = vec![b'7'; 10 * MAX_LINE];
        long.extend(b"\r\nMD0010042B1001 2000\r\n");
        let got = dec.push(&long);
        assert!(matches!(&got[..], [Inbound::Garbage(_), Inbound::CallDetail(_)]), "{got:?}");
        // A fragment waits for its end.
        assert!(dec.push(b"MD0010042B1001").is_empty());
        assert!(
            matches!(&dec.push(b" 2000\r\n")[..], [Inbound::CallDetail(d)] if d.calling.as_deref() == Some("2000"))
        );
    }

    #[test]
    fn lamps_are_lit_and_cleared_with_eot() {
        assert_eq!(lamp("5551001", true).unwrap(), b"OP:MWI 5551001!\x04");
        assert_eq!(lamp("5551001", false).unwrap(), b"RMV:MWI 5551001!\x04");
        assert_eq!(lamp("55!1", true), None, "no command for a station that is not digits");
        assert_eq!(lamp("", false), None);
    }
}
