//! Framing and normalizing in front of `rsip`.
//!
//! `rsip` is a good message model but too strict and too lenient at once on real traffic
//! (see docs/sip.md). This layer splits head and body, unfolds continuation lines,
//! expands compact header names and frames TCP streams by Content-Length, so that what
//! reaches `rsip` is canonical, and what fails can still be answered with a 400.

use std::fmt;

/// Largest SIP message accepted on any transport.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A message split into start line, headers (name, value) in order, and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// No blank line ending the header section.
    Incomplete,
    TooLarge,
    /// Not text, or no start line, or a header line without a colon.
    Garbage(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete => write!(f, "incomplete message"),
            FrameError::TooLarge => write!(f, "message larger than {MAX_MESSAGE} bytes"),
            FrameError::Garbage(why) => write!(f, "{why}"),
        }
    }
}

/// RFC 3261 7.3.3 compact forms, plus the common RFC 3515/3265/4028 ones.
fn expand_compact(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "i" => "Call-ID",
        "m" => "Contact",
        "e" => "Content-Encoding",
        "l" => "Content-Length",
        "c" => "Content-Type",
        "f" => "From",
        "s" => "Subject",
        "k" => "Supported",
        "t" => "To",
        "v" => "Via",
        "o" => "Event",
        "r" => "Refer-To",
        "b" => "Referred-By",
        "u" => "Allow-Events",
        "x" => "Session-Expires",
        _ => return None,
    })
}

/// Finds the end of the header section: returns (head length, separator length).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

impl RawMessage {
    /// Parses one complete message (a UDP datagram, or a TCP frame from [`TcpFramer`]).
    pub fn parse(buf: &[u8]) -> Result<RawMessage, FrameError> {
        if buf.len() > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        // RFC 3261 7.5: tolerate leading CRLFs.
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
        let buf = &buf[start..];
        // A datagram whose header section ends at its last line end, without the blank
        // line (RFC 4475's baddn arrives so): it holds all there is, no body.
        let (head_len, body_at) = match find_head_end(buf) {
            Some((head, sep)) => (head, head + sep),
            None if buf.ends_with(b"\n") => (buf.len() - if buf.ends_with(b"\r\n") { 2 } else { 1 }, buf.len()),
            None => return Err(FrameError::Incomplete),
        };
        let head =
            std::str::from_utf8(&buf[..head_len]).map_err(|_| FrameError::Garbage("header section is not UTF-8"))?;
        let body = buf[body_at..].to_vec();
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start_line = lines.next().unwrap_or("").trim().to_string();
        if start_line.is_empty() {
            return Err(FrameError::Garbage("empty start line"));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation (LWS): joins the previous header with one space.
                let Some(last) = headers.last_mut() else {
                    return Err(FrameError::Garbage("continuation line before any header"));
                };
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(FrameError::Garbage("header line without a colon"))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FrameError::Garbage("malformed header name"));
            }
            let name = expand_compact(name).map(str::to_string).unwrap_or_else(|| name.to_string());
            headers.push((name, value.trim().to_string()));
        }
        Ok(RawMessage { start_line, headers, body })
    }

    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All values of header `name`, splitting comma-separated lists only for Via.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_request(&self) -> bool {
        !self.start_line.starts_with("SIP/")
    }

    /// Canonical bytes: one header per line, CRLF endings, the body as received.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.start_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Splits a TCP byte stream into messages by Content-Length (RFC 3261 18.3).
/// The double CRLFs (pings) in a run of line ends, and where the last one ends.
fn pings_in(b: &[u8]) -> (usize, usize) {
    let (mut pings, mut cut, mut i) = (0, 0, 0);
    while i + 4 <= b.len() {
        if &b[i..i + 4] == b"\r\n\r\n" {
            pings += 1;
            i += 4;
            cut = i;
        } else {
            i += 1;
        }
    }
    (pings, cut)
}

/// The body length the headers declare (`Content-Length` or compact `l`), the one rule
/// for the parser and the TCP framer: repeated with different values is an error (a
/// message whose end two readers could disagree on).
pub fn declared_length<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Option<usize>, &'static str> {
    let mut found: Option<usize> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l") {
            let v: usize = v.trim().parse().map_err(|_| "Bad Content-Length")?;
            if found.is_some_and(|f| f != v) {
                return Err("Conflicting Content-Length Headers");
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// Splits a TCP byte stream into messages. Incremental: each byte is scanned for the
/// end of the header section once, however the stream is cut into reads (a peer
/// writing one byte at a time costs linear time, not quadratic).
#[derive(Debug, Default)]
pub struct TcpFramer {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no end of the header section.
    scanned: usize,
    /// RFC 5626 §4.4.1 keep-alive pings (a double CRLF between messages) not yet answered.
    pings: usize,
    /// Set when a head declared no usable Content-Length: that head was handed out (the
    /// parser answers it 400), and the stream ends here, as it cannot be resynchronized.
    broken: Option<&'static str>,
}

impl TcpFramer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held for a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// What is buffered of a message that never completed, when the stream ends (the
    /// peer closed it, or its deadline passed): handed to the parser, which answers a
    /// head that is all there — one with its blank line and a short body, or one whose
    /// last line ends without the blank line (RFC 4475's baddn). `None` when only line
    /// ends are left, or when the stream stopped inside a line: no head is there to
    /// answer, and parsing kilobytes of an endless line once per closing connection is
    /// what a hostile peer would want.
    pub fn take_rest(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        let content = rest.iter().any(|&b| b != b'\r' && b != b'\n');
        let head_there = rest.ends_with(b"\n") || find_head_end(&rest).is_some();
        (self.broken.is_none() && content && head_there).then_some(rest)
    }

    /// Keep-alive pings seen since the last call: each is answered with one CRLF (pong).
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    /// Next complete message, `Ok(None)` if more bytes are needed, or an error after
    /// which the connection should be closed (the stream cannot be resynchronized).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(why) = self.broken {
            return Err(FrameError::Garbage(why));
        }
        if self.scanned == 0 {
            // Between messages CRLFs are keep-alives (RFC 5626 §4.4.1): each double CRLF
            // is a ping. A lone CRLF at the end waits for the rest of its ping.
            let skip = self.buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(self.buf.len());
            let (pings, cut) = pings_in(&self.buf[..skip]);
            self.pings += pings;
            if skip == self.buf.len() {
                // Only line ends so far: what follows the last ping may begin the next
                // one (at most 3 bytes of it are kept).
                let cut = cut.max(skip.saturating_sub(3));
                self.buf.drain(..cut);
                return Ok(None);
            }
            self.buf.drain(..skip);
        }
        // The end of the head may straddle what was scanned before and what is new.
        let from = self.scanned.saturating_sub(3);
        let Some((head_len, sep)) = find_head_end(&self.buf[from..]).map(|(p, sep)| (p + from, sep)) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FrameError::TooLarge);
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]);
        let headers = head.split('\n').filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim(), v));
        let content_length = match declared_length(headers) {
            Ok(cl) => cl,
            Err(why) => {
                // The head alone, so that the sender hears why (RFC 4475 §3.1.2.3, §3.3.9).
                self.broken = Some(why);
                return Ok(Some(self.buf.drain(..head_len + sep).collect()));
            }
        };
        // On a stream, Content-Length is mandatory; without it we assume no body.
        let total = head_len + sep + content_length.unwrap_or(0);
        if total > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        self.scanned = 0;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_expands_compact_names() {
        let m = RawMessage::parse(
            b"\r\nOPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: one\r\n  two\r\nl: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.header("via"), Some("SIP/2.0/UDP h;branch=z9hG4bK1"));
        assert_eq!(m.header("Subject"), Some("one two"));
        assert_eq!(m.header("Content-Length"), Some("0"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for input in [&b""[..], b"\r\n\r\n", b"INVITE\r\nno colon\r\n\r\n", b"\xff\xfe\r\n\r\n"] {
            assert!(RawMessage::parse(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn the_rest_of_a_cut_stream_is_answered_only_when_a_head_is_there() {
        let rest = |bytes: &[u8]| {
            let mut f = TcpFramer::default();
            f.push(bytes);
            assert_eq!(f.next_message().unwrap(), None);
            f.take_rest()
        };
        let head = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n";
        assert!(rest(head).is_some(), "a head without its blank line (baddn)");
        let short_body = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 50\r\n\r\nhello";
        assert!(rest(short_body).is_some(), "a whole head, its body cut short (clerr)");
        assert!(rest(b"OPTIONS sip:a@b SIP/2.0\r\nX-Fill: aaaaaaaaaaaa").is_none(), "cut inside a line");
        assert!(rest(b"\r\n").is_none(), "line ends only");
    }

    #[test]
    fn tcp_framer_splits_by_content_length() {
        let mut f = TcpFramer::default();
        f.push(b"\r\nBYE sip:x SIP/2.0\r\nl: 3\r\n\r\nab");
        assert_eq!(f.next_message().unwrap(), None);
        f.push(b"cOPTIONS sip:y SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        let m1 = f.next_message().unwrap().unwrap();
        assert!(m1.ends_with(b"\r\n\r\nabc"));
        let m2 = f.next_message().unwrap().unwrap();
        assert!(m2.starts_with(b"OPTIONS"));
        assert_eq!(f.next_message().unwrap(), None);
        f.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge));
    }

    #[test]
    fn one_byte_at_a_time_frames_the_same_and_pings_are_counted() {
        let stream =
            b"\r\n\r\nOPTIONS sip:y SIP/2.0\r\nl: 2\r\n\r\nhi\r\n\r\nBYE sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut f = TcpFramer::default();
        let mut got = Vec::new();
        for b in stream {
            f.push(&[*b]);
            while let Some(m) = f.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with(b"OPTIONS") && got[0].ends_with(b"\r\n\r\nhi"));
        assert!(got[1].starts_with(b"BYE"));
        assert_eq!(f.take_pings(), 2, "one before each message");
        assert_eq!((f.take_pings(), f.buffered()), (0, 0));
    }

    #[test]
    fn conflicting_content_lengths_are_an_error_for_framer_and_parser_alike() {
        let two = b"OPTIONS sip:y SIP/2.0\r\nContent-Length: 0\r\nl: 5\r\n\r\nhello";
        let mut f = TcpFramer::default();
        f.push(two);
        let head = f.next_message().unwrap().unwrap();
        assert!(head.ends_with(b"l: 5\r\n\r\n"), "the head is handed out to be answered");
        assert_eq!(f.next_message(), Err(FrameError::Garbage("Conflicting Content-Length Headers")));
        let parsed = super::super::msg::parse(&head).unwrap_err();
        assert_eq!((parsed.status, parsed.reason.as_str()), (400, "Conflicting Content-Length Headers"));
        let same = [("Content-Length", "3"), ("l", " 3")];
        assert_eq!(declared_length(same.into_iter()), Ok(Some(3)));
        assert_eq!(declared_length([("content-length", "x")].into_iter()), Err("Bad Content-Length"));
    }
}
