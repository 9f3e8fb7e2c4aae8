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
        let (head_len, sep) = find_head_end(buf).ok_or(FrameError::Incomplete)?;
        let head =
            std::str::from_utf8(&buf[..head_len]).map_err(|_| FrameError::Garbage("header section is not UTF-8"))?;
        let body = buf[head_len + sep..].to_vec();
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
#[derive(Debug, Default)]
pub struct TcpFramer {
    buf: Vec<u8>,
}

impl TcpFramer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Next complete message, `Ok(None)` if more bytes are needed, or an error after
    /// which the connection should be closed (the stream cannot be resynchronized).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        // Keep-alive CRLFs between messages (RFC 5626) are skipped.
        let skip = self.buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        let Some((head_len, sep)) = find_head_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FrameError::TooLarge);
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]);
        let mut content_length: Option<usize> = None;
        for line in head.split('\n') {
            if let Some((n, v)) = line.split_once(':') {
                let n = n.trim();
                if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l") {
                    content_length = Some(v.trim().parse().map_err(|_| FrameError::Garbage("bad Content-Length"))?);
                }
            }
        }
        // On a stream, Content-Length is mandatory; without it we assume no body.
        let total = head_len + sep + content_length.unwrap_or(0);
        if total > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
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
}
