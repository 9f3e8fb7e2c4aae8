//! Validated SIP messages: framing ([`super::frame`]) → `rsip` parse → the checks RFC 3261
//! asks of a UAS (mandatory headers, CSeq, Content-Length). Every failure that can be
//! answered carries the status code and a reason phrase that says what was wrong.

pub use super::frame::RawMessage;
use super::grammar::{self, valid_token};
use rsip::headers::Header;

/// Methods this stack recognizes; anything else is answered 501 (RFC 3261 8.2.1).
pub const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// A request that passed validation.
#[derive(Debug, Clone)]
pub struct Request {
    pub raw: RawMessage,
    pub parsed: rsip::Request,
    pub method: String,
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    /// Top Via branch and sent-by: the transaction key (RFC 3261 17.2.3).
    pub branch: String,
    pub sent_by: String,
}

impl Request {
    /// The user part of the Request-URI as sent, without user parameters
    /// (`sip:5551234;phone-context=x@host` → `5551234`): the number dialled.
    pub fn user(&self) -> Option<&str> {
        uri_user(self.raw.start_line.split_whitespace().nth(1)?)
    }
}

/// A response that passed validation (responses only ever match our client transactions).
#[derive(Debug, Clone)]
pub struct Response {
    pub raw: RawMessage,
    pub status: u16,
    pub cseq_method: String,
    pub branch: String,
}

#[derive(Debug, Clone)]
pub enum Message {
    Request(Box<Request>),
    Response(Response),
}

/// Why a message was refused, and the reply to send if one can be addressed.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub status: u16,
    pub reason: String,
    /// The request as far as it was understood; `None` means drop silently (a response,
    /// or a request without the headers a reply needs).
    pub request: Option<RawMessage>,
}

impl Rejected {
    fn reply(raw: &RawMessage, status: u16, reason: impl Into<String>) -> Rejected {
        // A response is routed by Via alone; the other dialog headers are copied when
        // present (a 400 saying "Missing Call-ID Header" beats silence).
        let can_reply = raw.is_request() && !raw.start_line.starts_with("ACK ") && raw.header("Via").is_some();
        Rejected { status, reason: reason.into(), request: can_reply.then(|| raw.clone()) }
    }
    fn drop(reason: impl Into<String>) -> Rejected {
        Rejected { status: 0, reason: reason.into(), request: None }
    }
}

/// Value of parameter `name` in a header value such as `<sip:a@b>;tag=x` or a Via.
/// Parameters inside `<...>` belong to the URI and are skipped.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after_uri = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after_uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The user part of a SIP URI inside a header value or Request-URI, e.g.
/// `"Bob" <sip:5551234@host;user=phone>` → `5551234`.
pub fn uri_user(value: &str) -> Option<&str> {
    let uri = match name_addr_start(value).and_then(|a| value[a..].find('>').map(|b| (a, a + b))) {
        Some((a, b)) => &value[a + 1..b],
        // An addr-spec: header parameters follow the host, user parameters precede `@`.
        None => value.trim(),
    };
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:")).or_else(|| uri.strip_prefix("tel:"))?;
    if uri.starts_with("tel:") {
        return Some(rest.split(';').next().unwrap_or(rest));
    }
    let (user, _) = rest.split_once('@')?;
    let user = user.split(':').next().unwrap_or(user); // drop a password
    let user = user.split(';').next().unwrap_or(user); // drop user parameters
    (!user.is_empty()).then_some(user)
}

/// Where the `<` of a name-addr is: the first one outside the quoted display name.
fn name_addr_start(value: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The display name of a From header value, without quotes and escapes.
pub fn display_name(value: &str) -> Option<String> {
    let lt = name_addr_start(value)?;
    let name = value[..lt].trim();
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or(c) } else { c });
            }
            out
        }
        None => name.to_string(),
    };
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Parses and validates one complete message.
pub fn parse(bytes: &[u8]) -> Result<Message, Rejected> {
    let mut raw = RawMessage::parse(bytes).map_err(|e| Rejected::drop(e.to_string()))?;

    // Content-Length against the body (RFC 3261 18.3): more declared than present is an
    // error; extra bytes after the declared length are discarded. The TCP framer reads
    // the same headers by the same rule, so both agree where a message ends.
    let declared = super::frame::declared_length(raw.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    if let Some(cl) = declared.map_err(|why| Rejected::reply(&raw, 400, why))? {
        if cl > raw.body.len() {
            return Err(Rejected::reply(&raw, 400, "Content-Length Larger Than Body"));
        }
        raw.body.truncate(cl);
    }

    if !raw.is_request() {
        return parse_response(raw);
    }

    let mut parts = raw.start_line.split(' ').filter(|s| !s.is_empty());
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejected::reply(&raw, 400, "Malformed Request Line"));
    };
    // A Request-URI is an addr-spec, never a name-addr (RFC 4475 §3.1.2.7).
    if uri.starts_with('<') || uri.ends_with('>') {
        return Err(Rejected::reply(&raw, 400, "Malformed Request-URI"));
    }
    // A well-formed Request-URI of a scheme we cannot serve (RFC 3261 §8.2.2.1, RFC
    // 4475 §3.3.2); a malformed one (`<sip:…>`) is a 400 below.
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if uri.contains(':') && is_scheme && !["sip", "sips", "tel"].contains(&scheme.as_str()) {
        return Err(Rejected::reply(&raw, 416, "Unsupported URI Scheme"));
    }
    let method = method.to_string();
    if !valid_token(&method) {
        return Err(Rejected::reply(&raw, 400, "Malformed Method"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Rejected::reply(&raw, 505, "Version Not Supported"));
    }
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if raw.header(h).is_none() {
            return Err(Rejected::reply(&raw, 400, format!("Missing {h} Header")));
        }
    }
    // Headers that hold one value (RFC 3261 §7.3.1): two of them, and which one counts
    // is anyone's guess (RFC 4475 §3.1.2.19).
    for h in ["From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type"] {
        if raw.headers_named(h).nth(1).is_some() {
            return Err(Rejected::reply(&raw, 400, format!("Multiple {h} Headers")));
        }
    }
    let cseq_value = raw.header("CSeq").unwrap_or_default();
    let mut cs = cseq_value.split_whitespace();
    let (Some(num), Some(cseq_method), None) = (cs.next(), cs.next(), cs.next()) else {
        return Err(Rejected::reply(&raw, 400, "Malformed CSeq"));
    };
    let Ok(cseq) = num.parse::<u32>() else {
        return Err(Rejected::reply(&raw, 400, "Malformed CSeq Number"));
    };
    if cseq_method != method {
        return Err(Rejected::reply(&raw, 400, "CSeq Method Does Not Match Request"));
    }
    if !KNOWN_METHODS.contains(&method.as_str()) {
        return Err(Rejected::reply(&raw, 501, "Not Implemented"));
    }
    for h in ["From", "To"] {
        match grammar::check_address(raw.header(h).unwrap_or_default()) {
            Err("unbalanced quotes") => return Err(Rejected::reply(&raw, 400, format!("Unbalanced Quotes In {h}"))),
            Err(why) => return Err(Rejected::reply(&raw, 400, format!("Malformed {h} Header ({why})"))),
            Ok(()) => {}
        }
    }
    for c in raw.headers_named("Contact").flat_map(grammar::split_list).filter(|c| c.trim() != "*") {
        if let Err(why) = grammar::check_address(c) {
            return Err(Rejected::reply(&raw, 400, format!("Malformed Contact Header ({why})")));
        }
    }
    // Every Via element must parse (RFC 4475 §3.1.2.1: `;;,;,,`); the top one is ours.
    let vias: Vec<_> = raw.headers_named("Via").flat_map(grammar::split_list).map(grammar::parse_via).collect();
    let sent_by = match vias.first() {
        Some(Ok(top)) if vias.iter().all(Result::is_ok) => top.sent_by.clone(),
        _ => return Err(Rejected::reply(&raw, 400, "Malformed Via")),
    };
    let via = grammar::split_list(raw.header("Via").unwrap_or_default())[0].to_string();
    // Without an RFC 3261 branch, fall back to an RFC 2543-style key (17.2.3).
    let branch = match header_param(&via, "branch") {
        Some(b) if b.starts_with("z9hG4bK") => b.to_string(),
        _ => format!(
            "2543:{}:{}:{}",
            raw.header("Call-ID").unwrap_or_default(),
            cseq,
            header_param(raw.header("From").unwrap_or_default(), "tag").unwrap_or("")
        ),
    };

    let for_rsip = match escaped_user_semicolons(uri) {
        Some(escaped) => {
            let mut copy = raw.clone();
            copy.start_line = format!("{method} {escaped} {version}");
            copy.to_bytes()
        }
        None => raw.to_bytes(),
    };
    let parsed = match rsip::Request::try_from(for_rsip.as_slice()) {
        Ok(r) => r,
        Err(e) => {
            let why: String = e.to_string().chars().filter(|c| !c.is_control()).take(60).collect();
            return Err(Rejected::reply(&raw, 400, format!("Malformed Request ({why})")));
        }
    };

    Ok(Message::Request(Box::new(Request {
        method,
        call_id: raw.header("Call-ID").unwrap_or_default().to_string(),
        cseq,
        from_tag: header_param(raw.header("From").unwrap_or_default(), "tag").map(str::to_string),
        to_tag: header_param(raw.header("To").unwrap_or_default(), "tag").filter(|t| !t.is_empty()).map(str::to_string),
        branch,
        sent_by,
        raw,
        parsed,
    })))
}

/// `sip:user;par=u%40example.net@example.com` with the `;` of the user part escaped
/// (`%3B`), which `rsip` would otherwise take for the start of URI parameters; `None`
/// when the user part has none. (The user is read from the original: [`Request::user`].)
fn escaped_user_semicolons(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let at = rest.find('@')?;
    let user = &rest[..at];
    user.contains(';').then(|| format!("{scheme}:{}{}", user.replace(';', "%3B"), &rest[at..]))
}

fn parse_response(raw: RawMessage) -> Result<Message, Rejected> {
    let mut parts = raw.start_line.splitn(3, ' ');
    let (Some(_version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(Rejected::drop("malformed status line"));
    };
    let status: u16 = code.parse().map_err(|_| Rejected::drop("malformed status code"))?;
    if !(100..700).contains(&status) {
        return Err(Rejected::drop("status code out of range"));
    }
    let cseq_method = raw
        .header("CSeq")
        .and_then(|v| v.split_whitespace().nth(1))
        .ok_or_else(|| Rejected::drop("response without CSeq"))?
        .to_string();
    let branch = raw
        .header("Via")
        .and_then(|v| header_param(v.split(',').next().unwrap_or(v), "branch"))
        .ok_or_else(|| Rejected::drop("response without Via branch"))?
        .to_string();
    rsip::Response::try_from(raw.to_bytes().as_slice())
        .map_err(|e| Rejected::drop(format!("malformed response: {e}")))?;
    Ok(Message::Response(Response { raw, status, cseq_method, branch }))
}

/// Builds a response to `req`, copying Via, From, To, Call-ID and CSeq (RFC 3261 8.2.6.2),
/// adding `to_tag` to To when the request's To has none.
pub fn build_response(
    req: &RawMessage,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut headers: Vec<Header> = Vec::new();
    for v in req.headers_named("Via") {
        headers.push(Header::Other("Via".into(), v.to_string()));
    }
    // Record-Route is echoed in responses that establish a dialog (12.1.1).
    if (101..300).contains(&status) {
        for v in req.headers_named("Record-Route") {
            headers.push(Header::Other("Record-Route".into(), v.to_string()));
        }
    }
    if let Some(from) = req.header("From") {
        headers.push(Header::Other("From".into(), from.into()));
    }
    if let Some(to) = req.header("To") {
        let to = match to_tag {
            Some(tag) if header_param(to, "tag").is_none() && status > 100 => {
                format!("{to};tag={tag}")
            }
            _ => to.to_string(),
        };
        headers.push(Header::Other("To".into(), to));
    }
    for h in ["Call-ID", "CSeq"] {
        if let Some(v) = req.header(h) {
            headers.push(Header::Other(h.into(), v.into()));
        }
    }
    for (n, v) in extra {
        headers.push(Header::Other((*n).into(), v.clone()));
    }
    let body_bytes = body.map(|(_, b)| b.to_vec()).unwrap_or_default();
    if let Some((ct, _)) = body {
        headers.push(Header::Other("Content-Type".into(), ct.into()));
    }
    headers.push(Header::Other("Content-Length".into(), body_bytes.len().to_string()));
    let resp = rsip::Response {
        status_code: rsip::StatusCode::Other(status, reason.into()),
        version: rsip::Version::V2,
        headers: headers.into(),
        body: body_bytes,
    };
    resp.to_string().into_bytes()
}

/// Builds an in-dialog request (BYE, and later NOTIFY/REFER) from explicit header values.
/// 64 random bits in hex: tags, branches, Call-IDs.
pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn build_request(method: &str, uri: &str, headers: &[(&str, String)], body: Option<(&str, &[u8])>) -> Vec<u8> {
    // rsip only models the methods it knows; every method we send is one of them.
    let method: rsip::Method = method.parse().unwrap_or(rsip::Method::Options);
    let uri = rsip::Uri::try_from(uri).unwrap_or_default();
    let mut hs: Vec<Header> = headers.iter().map(|(n, v)| Header::Other((*n).into(), v.clone())).collect();
    let body_bytes = body.map(|(_, b)| b.to_vec()).unwrap_or_default();
    if let Some((ct, _)) = body {
        hs.push(Header::Other("Content-Type".into(), ct.into()));
    }
    hs.push(Header::Other("Content-Length".into(), body_bytes.len().to_string()));
    let req = rsip::Request { method, uri, version: rsip::Version::V2, headers: hs.into(), body: body_bytes };
    req.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n\
From: \"Alice\" <sip:5551234@127.0.0.1>;tag=f1\r\n\
To: <sip:100@127.0.0.1>\r\n\
Call-ID: c1@h\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:5551234@127.0.0.1:5070>\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_invite() {
        let Ok(Message::Request(r)) = parse(INVITE.as_bytes()) else { panic!() };
        assert_eq!(r.method, "INVITE");
        assert_eq!(r.branch, "z9hG4bKabc");
        assert_eq!(r.sent_by, "127.0.0.1:5070");
        assert_eq!(r.from_tag.as_deref(), Some("f1"));
        assert_eq!(r.to_tag, None);
        assert_eq!(uri_user(r.raw.header("From").unwrap()), Some("5551234"));
        assert_eq!(display_name(r.raw.header("From").unwrap()).as_deref(), Some("Alice"));
        assert_eq!(r.parsed.uri.user(), Some("100"));
    }

    fn rejected(msg: &str) -> Rejected {
        match parse(msg.as_bytes()) {
            Err(r) => r,
            Ok(_) => panic!("accepted: {msg}"),
        }
    }

    #[test]
    fn rejects_with_right_codes() {
        let r = rejected(&INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"));
        assert_eq!((r.status, r.request.is_some()), (400, true));
        let r = rejected(&INVITE.replace("Call-ID: c1@h\r\n", ""));
        assert_eq!(r.status, 400);
        assert!(r.reason.contains("Call-ID"));
        let r = rejected(&INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia"));
        assert_eq!(r.status, 505);
        let r = rejected(&INVITE.replace("INVITE", "FOOBAR"));
        assert_eq!(r.status, 501);
        let r = rejected(&INVITE.replace("Content-Length: 0", "Content-Length: 50"));
        assert_eq!(r.status, 400);
        let r = rejected(&INVITE.replace("\"Alice\"", "\"Alice"));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn response_copies_dialog_headers_and_adds_tag() {
        let Ok(Message::Request(r)) = parse(INVITE.as_bytes()) else { panic!() };
        let resp = build_response(&r.raw, 486, "Busy Here", Some("t9"), &[], None);
        let text = String::from_utf8(resp.clone()).unwrap();
        assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
        assert!(text.contains("To: <sip:100@127.0.0.1>;tag=t9\r\n"));
        let Ok(Message::Response(p)) = parse(&resp) else { panic!("{text}") };
        assert_eq!((p.status, p.cseq_method.as_str(), p.branch.as_str()), (486, "INVITE", "z9hG4bKabc"));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix and single-byte corruption of a valid
        // request must give Ok or Err, never a panic.
        let base = INVITE.as_bytes();
        for i in 0..base.len() {
            let _ = parse(&base[..i]);
            for b in [0u8, b'\r', b'\n', b':', b';', b'<', b'"', 0xff] {
                let mut m = base.to_vec();
                m[i] = b;
                let _ = parse(&m);
            }
        }
    }
}
