//! The parts of the RFC 3261 §25 grammar that `rsip` does not check, or checks
//! differently, and that the RFC 4475 torture messages probe: the name-addr and addr-spec
//! forms of From, To and Contact, and Via elements. Each check says what is malformed, for
//! the reason phrase of the 400.

/// The value with its quoted strings taken out (RFC 3261 §25.1: `\"` and `\\` are
/// escapes inside them), or `None` when a quoted string is not closed.
pub fn outside_quotes(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        loop {
            match chars.next()? {
                '\\' => {
                    chars.next()?;
                }
                '"' => break,
                _ => {}
            }
        }
    }
    Some(out)
}

pub fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The elements of a comma-separated header value, splitting only at commas outside
/// quoted strings and `<…>` (a URI may hold commas).
pub fn split_list(value: &str) -> Vec<&str> {
    let (mut out, mut start) = (Vec::new(), 0);
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// Header parameters `;name[=value]` after an address or a Via: each has a token name
/// (an empty one, as in `;;;`, is malformed: RFC 4475 §3.1.2.1).
fn check_params(params: &str) -> Result<(), &'static str> {
    let params = params.trim();
    if params.is_empty() {
        return Ok(());
    }
    let Some(params) = params.strip_prefix(';') else {
        return Err("text after the address");
    };
    for p in params.split(';') {
        let name = p.split('=').next().unwrap_or("").trim();
        if !valid_token(name) {
            return Err("empty or malformed parameter");
        }
    }
    Ok(())
}

/// One From, To or Contact value: `display-name <URI> *(;param)` or `URI *(;param)`.
/// A display name is a quoted string or tokens (RFC 4475 §3.1.2.15); nothing but the URI
/// is inside the brackets, and no space (§3.1.2.14); a URI with `?` headers must be in
/// brackets (§3.1.2.13).
pub fn check_address(value: &str) -> Result<(), &'static str> {
    let outside = outside_quotes(value.trim()).ok_or("unbalanced quotes")?;
    match outside.find('<') {
        Some(lt) => {
            // Tokens, or what a quoted string left: spaces. Non-ASCII is let through (a
            // phone that writes an unquoted UTF-8 name means it as one).
            let display_ok = outside[..lt]
                .bytes()
                .all(|b| !b.is_ascii() || b.is_ascii_whitespace() || valid_token(&(b as char).to_string()));
            if !display_ok {
                return Err("malformed display name");
            }
            let Some(len) = outside[lt..].find('>') else {
                return Err("unclosed <");
            };
            let uri = &outside[lt + 1..lt + len];
            if uri.is_empty() || uri.contains(|c: char| c.is_whitespace() || c == '<') || !uri.contains(':') {
                return Err("malformed URI in <>");
            }
            let rest = &outside[lt + len + 1..];
            if rest.contains(['<', '>']) {
                return Err("text after the address");
            }
            check_params(rest)
        }
        None => {
            let (uri, params) = match outside.find(';') {
                Some(i) => outside.split_at(i),
                None => (outside.as_str(), ""),
            };
            let uri = uri.trim();
            if uri.contains('>') || !uri.contains(':') || uri.contains(char::is_whitespace) {
                return Err("malformed address");
            }
            if uri.contains('?') {
                return Err("a URI with headers must be in <>");
            }
            check_params(params)
        }
    }
}

/// One Via element (RFC 3261 §20.42): `SIP / 2.0 / UDP sent-by *(;param)`, with the
/// spaces §25.1 allows around `/` and `:`.
#[derive(Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    /// `host[:port]`, spaces removed.
    pub sent_by: String,
}

pub fn parse_via(elem: &str) -> Result<Via, &'static str> {
    let (head, params) = match elem.find(';') {
        Some(i) => elem.split_at(i),
        None => (elem, ""),
    };
    let mut parts = head.splitn(3, '/');
    let (Some(name), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("malformed Via");
    };
    let rest = rest.trim_start();
    let (transport, sent_by) = rest.split_once(char::is_whitespace).ok_or("malformed Via")?;
    let sent_by: String = sent_by.split_whitespace().collect();
    if !valid_token(name.trim()) || !valid_token(version.trim()) || !valid_token(transport) || sent_by.is_empty() {
        return Err("malformed Via");
    }
    check_params(params).map_err(|_| "malformed Via parameter")?;
    Ok(Via { transport: transport.to_string(), sent_by })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_the_torture_tests_call_valid() {
        for v in [
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
            r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33"#,
            "caller<sip:caller@example.com>;tag=323",
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"ra\";tag=_token~1'+`*%!-.",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            "<sip:a@b>;+sip.instance=\"<urn:uuid:1>\"",
            "Müller <sip:m@example.com>",
        ] {
            assert_eq!(check_address(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn addresses_the_torture_tests_call_malformed() {
        for (v, why) in [
            ("\"Watson, Thomas\" < sip:t.watson@example.org >", "malformed URI in <>"),
            ("Bell, Alexander <sip:a.g.bell@example.com>;tag=43", "malformed display name"),
            ("\"Joe\" <sip:joe@example.org>;;;;", "empty or malformed parameter"),
            ("sip:user@example.com?Route=%3Csip:sip.example.com%3E", "a URI with headers must be in <>"),
            ("\"unclosed <sip:a@b>", "unbalanced quotes"),
            ("<sip:a@b> junk", "text after the address"),
        ] {
            assert_eq!(check_address(v), Err(why), "{v}");
        }
    }

    #[test]
    fn via_elements_with_spaces_and_empty_parameters() {
        assert_eq!(
            parse_via("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw"),
            Ok(Via { transport: "UDP".into(), sent_by: "192.0.2.2".into() })
        );
        assert_eq!(
            parse_via("SIP / 2.0 / TCP spindle.example.com : 5061 ; branch = z9hG4bK9ikj8").unwrap().sent_by,
            "spindle.example.com:5061"
        );
        for bad in ["SIP/2.0/UDP 192.0.2.15;;", ";", "", "SIP/2.0 host", "SIP/2.0/UDP"] {
            assert!(parse_via(bad).is_err(), "{bad}");
        }
        assert_eq!(split_list("SIP/2.0/UDP 192.0.2.15;;,;,,").len(), 4);
        assert_eq!(split_list("\"a, b\" <sip:x@y>, <sip:z@w;p=1,2>").len(), 2);
    }
}
