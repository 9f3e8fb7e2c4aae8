//! The homogenized message: a voice message as an ordinary internet mail (RFC 5322 +
//! MIME) with `Message-Context: voice-message` (RFC 3458), the recording as an
//! `audio/wav` attachment with `Content-Duration` (RFC 3803); a fax the same way with
//! `Message-Context: fax-message` and its TIFF-F as `image/tiff`.
//!
//! Composition is a pure function of the store row and the audio, so a retried
//! delivery sends byte-for-byte the same message with the same Message-ID.

use base64::Engine;

/// Everything a voice message mail is made of.
#[derive(Debug, Clone)]
pub struct VoiceMail<'a> {
    pub message_id: &'a str,
    pub mailbox: &'a str,
    pub mailbox_name: Option<&'a str>,
    pub to_addr: Option<&'a str>,
    pub caller: Option<&'a str>,
    pub caller_name: Option<&'a str>,
    pub received_at: i64,
    pub duration_ms: i64,
    pub domain: &'a str,
    pub wav: &'a [u8],
}

/// "0:42", "1:05:09".
pub fn format_duration(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// RFC 5322 date in UTC, e.g. "Tue, 24 Nov 2026 23:56:00 +0000".
pub fn rfc5322_date(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (y, m, d) = crate::civil::civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WD[days.rem_euclid(7) as usize],
        d,
        MO[m as usize - 1],
        y,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// One header line as mail-builder writes it: text that is not plain ASCII as RFC 2047
/// encoded-words of at most 75 characters, long values folded, display names quoted
/// where they must be. Deterministic (no random part), so a retry sends the same bytes.
fn header(name: &str, value: &impl mail_builder::headers::Header) -> String {
    let mut out = format!("{name}: ").into_bytes();
    value.write_header(&mut out, name.len() + 2);
    // mail-builder writes only ASCII in headers (anything else is encoded).
    String::from_utf8_lossy(&out).into_owned()
}

/// `name: "display" <addr>`, `display` encoded when it must be.
fn address_header(name: &str, display: Option<&str>, addr: &str) -> String {
    header(name, &mail_builder::headers::address::Address::new_address(display, addr))
}

/// `name: text` (unstructured: a Subject), encoded when it must be; line breaks in it
/// become spaces.
fn text_header(name: &str, text: &str) -> String {
    header(name, &mail_builder::headers::text::Text::new(text.replace(['\r', '\n'], " ")))
}

/// Keeps only characters that are safe in the local part of an address.
fn local_part(s: &str) -> String {
    let v: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || "+-._".contains(*c)).collect();
    if v.is_empty() {
        "unknown".into()
    } else {
        v
    }
}

pub fn voice_subject(caller: Option<&str>, duration_ms: i64) -> String {
    match caller {
        Some(c) if !c.is_empty() => {
            format!("Voice message from {c} ({})", format_duration(duration_ms))
        }
        _ => format!("Voice message from an unknown caller ({})", format_duration(duration_ms)),
    }
}

/// Builds the complete message, CRLF line endings.
pub fn voice_message(v: &VoiceMail<'_>) -> Vec<u8> {
    let caller = v.caller.filter(|c| !c.is_empty());
    let from_display = match (v.caller_name, caller) {
        (Some(n), Some(c)) => format!("{n} ({c})"),
        (None, Some(c)) => c.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => "Unknown caller".to_string(),
    };
    let from_addr = format!("{}@{}", local_part(caller.unwrap_or("unknown")), v.domain);
    let to = match (v.to_addr, v.mailbox_name) {
        (Some(a), n) => address_header("To", n, a),
        (None, _) => address_header("To", None, &format!("{}@{}", local_part(v.mailbox), v.domain)),
    };
    let secs = (v.duration_ms + 500) / 1000;
    let subject = voice_subject(caller, v.duration_ms);
    // The boundary is derived from the Message-ID: stable across retries, and it cannot
    // occur in base64 or in our own text.
    let boundary = format!("=_vb_{}", local_part(v.message_id.trim_matches(['<', '>'])));
    let mut m = String::with_capacity(v.wav.len() * 4 / 3 + 2048);
    m += &address_header("From", Some(&from_display), &from_addr);
    m += &to;
    m += &text_header("Subject", &subject);
    m += &format!("Date: {}\r\n", rfc5322_date(v.received_at));
    m += &format!("Message-ID: {}\r\n", v.message_id);
    m += "MIME-Version: 1.0\r\n";
    m += "Message-Context: voice-message\r\n";
    m += &format!("X-Voxbridge-Mailbox: {}\r\n", local_part(v.mailbox));
    m += &voice_body(
        &boundary,
        &format!(
            "You have a new voice message from {from_display} in mailbox {}, received {} and {} long.\r\nThe recording is attached.\r\n",
            v.mailbox,
            rfc5322_date(v.received_at),
            format_duration(v.duration_ms)
        ),
        v.wav,
        secs,
    );
    m.into_bytes()
}

/// The MIME body of a voice message: Content-Type header onwards, a text part and the
/// WAV attachment (RFC 3803 Content-Duration).
fn voice_body(boundary: &str, text: &str, wav: &[u8], secs: i64) -> String {
    let mut m = String::with_capacity(wav.len() * 4 / 3 + 1024);
    m += &format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
    m += "This is a voice message in MIME format.\r\n";
    m += &format!("--{boundary}\r\n");
    m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
    m += text;
    attachment(&mut m, boundary, "audio/wav", "voice-message.wav", &format!("Content-Duration: {secs}\r\n"), wav);
    m += &format!("--{boundary}--\r\n");
    m
}

/// One base64 attachment part: the boundary line, its headers (`extra` ends in CRLF or
/// is empty), the content in 76-character lines.
fn attachment(m: &mut String, boundary: &str, ctype: &str, name: &str, extra: &str, bytes: &[u8]) {
    *m += &format!("--{boundary}\r\n");
    *m += &format!("Content-Type: {ctype}; name=\"{name}\"\r\n");
    *m += "Content-Transfer-Encoding: base64\r\n";
    *m += &format!("Content-Disposition: attachment; filename=\"{name}\"\r\n{extra}\r\n");
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    for chunk in b64.as_bytes().chunks(76) {
        *m += std::str::from_utf8(chunk).expect("base64 is ASCII");
        *m += "\r\n";
    }
}

/// Everything a received fax's mail is made of.
#[derive(Debug, Clone)]
pub struct FaxMail<'a> {
    pub message_id: &'a str,
    pub mailbox: &'a str,
    pub mailbox_name: Option<&'a str>,
    pub to_addr: Option<&'a str>,
    /// The sender's number (caller ID) and the machine's ident (TSI).
    pub caller: Option<&'a str>,
    pub remote_ident: Option<&'a str>,
    pub received_at: i64,
    pub pages: i64,
    pub domain: &'a str,
    pub tiff: &'a [u8],
    /// The same pages as PDF, for mail clients and phones that show no TIFF.
    pub pdf: Option<&'a [u8]>,
    /// Why the fax stopped part way, when it did (T.30's result other than OK).
    pub incomplete: Option<&'a str>,
}

/// "Fax from +1 555 0100 (ACME SALES), 3 pages".
pub fn fax_subject(caller: Option<&str>, remote_ident: Option<&str>, pages: i64) -> String {
    let from = match (caller.filter(|c| !c.is_empty()), remote_ident.filter(|i| !i.is_empty())) {
        (Some(c), Some(i)) if c != i => format!("{c} ({i})"),
        (Some(c), _) => c.to_string(),
        (None, Some(i)) => i.to_string(),
        (None, None) => "an unknown sender".to_string(),
    };
    format!("Fax from {from}, {pages} page{}", if pages == 1 { "" } else { "s" })
}

/// A received fax as mail: `Message-Context: fax-message` (RFC 3458), the TIFF-F as an
/// `image/tiff` attachment and, when made, the PDF as `application/pdf`. Deterministic
/// like [`voice_message`].
pub fn fax_message(f: &FaxMail<'_>) -> Vec<u8> {
    let caller = f.caller.filter(|c| !c.is_empty());
    let from_display = match (f.remote_ident.filter(|i| !i.is_empty()), caller) {
        (Some(i), Some(c)) if i != c => format!("{i} ({c})"),
        (_, Some(c)) => c.to_string(),
        (Some(i), None) => i.to_string(),
        (None, None) => "Unknown sender".to_string(),
    };
    let from_addr = format!("fax-{}@{}", local_part(caller.unwrap_or("unknown")), f.domain);
    let to = match f.to_addr {
        Some(a) => address_header("To", f.mailbox_name, a),
        None => address_header("To", None, &format!("{}@{}", local_part(f.mailbox), f.domain)),
    };
    let boundary = format!("=_vb_{}", local_part(f.message_id.trim_matches(['<', '>'])));
    let mut m = String::with_capacity(f.tiff.len() * 4 / 3 + 2048);
    m += &address_header("From", Some(&from_display), &from_addr);
    m += &to;
    m += &text_header("Subject", &fax_subject(caller, f.remote_ident, f.pages));
    m += &format!("Date: {}\r\n", rfc5322_date(f.received_at));
    m += &format!("Message-ID: {}\r\n", f.message_id);
    m += "MIME-Version: 1.0\r\n";
    m += "Message-Context: fax-message\r\n";
    m += &format!("X-Voxbridge-Mailbox: {}\r\n", local_part(f.mailbox));
    m += &format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
    m += "This is a fax message in MIME format.\r\n";
    m += &format!("--{boundary}\r\n");
    m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
    m += &format!(
        "You have a new fax from {from_display} in mailbox {}, received {}: {} page{}.\r\nThe fax is attached as a TIFF image{}.\r\n",
        f.mailbox,
        rfc5322_date(f.received_at),
        f.pages,
        if f.pages == 1 { "" } else { "s" },
        if f.pdf.is_some() { " and as PDF" } else { "" }
    );
    if let Some(why) = f.incomplete {
        m += &format!(
            "The fax ended before it was complete ({}); these are the pages that arrived.\r\n",
            why.replace(['\r', '\n'], " ")
        );
    }
    let attachments =
        std::iter::once(("image/tiff", "fax.tif", f.tiff)).chain(f.pdf.map(|p| ("application/pdf", "fax.pdf", p)));
    for (ctype, name, bytes) in attachments {
        attachment(&mut m, &boundary, ctype, name, "", bytes);
    }
    m += &format!("--{boundary}--\r\n");
    m.into_bytes()
}

/// A voice reply recorded by phone, to the sender of an e-mail.
pub struct VoiceReply<'a> {
    pub message_id: &'a str,
    pub mailbox: &'a str,
    pub mailbox_name: Option<&'a str>,
    pub from_addr: &'a str,
    pub rcpt: &'a str,
    /// Copies (a reply to all).
    pub cc: &'a [String],
    pub subject: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub date: i64,
    pub duration_ms: i64,
    pub wav: &'a [u8],
}

/// Builds a voice reply (deterministic: a retry sends the same bytes).
pub fn voice_reply(r: &VoiceReply<'_>) -> Vec<u8> {
    let display = r.mailbox_name.map(str::to_string).unwrap_or_else(|| format!("Mailbox {}", r.mailbox));
    let boundary = format!("=_vb_{}", local_part(r.message_id.trim_matches(['<', '>'])));
    let mut m = String::new();
    m += &address_header("From", Some(&display), r.from_addr);
    m += &address_header("To", None, r.rcpt);
    if !r.cc.is_empty() {
        use mail_builder::headers::address::Address;
        let list = r.cc.iter().map(|a| Address::new_address(None::<&str>, a.as_str())).collect();
        m += &header("Cc", &Address::new_list(list));
    }
    m += &text_header("Subject", r.subject);
    m += &format!("Date: {}\r\n", rfc5322_date(r.date));
    m += &format!("Message-ID: {}\r\n", r.message_id);
    if let Some(irt) = r.in_reply_to {
        m += &format!("In-Reply-To: {irt}\r\nReferences: {irt}\r\n");
    }
    m += "MIME-Version: 1.0\r\n";
    m += "Message-Context: voice-message\r\n";
    m += &voice_body(
        &boundary,
        &format!(
            "A voice reply from {display}, {} long. The recording is attached.\r\n",
            format_duration(r.duration_ms)
        ),
        r.wav,
        (r.duration_ms + 500) / 1000,
    );
    m.into_bytes()
}

/// A new globally unique Message-ID for a message deposited here.
pub fn new_message_id(domain: &str) -> String {
    format!("<vb.{:016x}{:016x}@{domain}>", rand::random::<u64>(), rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(1795996800), "Mon, 30 Nov 2026 00:00:00 +0000");
        assert_eq!(format_duration(42_400), "0:42");
        assert_eq!(format_duration(3_725_000), "1:02:05");
    }

    #[test]
    fn message_parses_back_with_attachment_and_context() {
        use mail_parser::MimeHeaders;
        let wav: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let v = VoiceMail {
            message_id: "<vb.1@example.test>",
            mailbox: "1001",
            mailbox_name: Some("Zoë"),
            to_addr: Some("zoe@example.test"),
            caller: Some("5551234"),
            caller_name: Some("Alice"),
            received_at: 1795996800,
            duration_ms: 42_000,
            domain: "example.test",
            wav: &wav,
        };
        let bytes = voice_message(&v);
        assert_eq!(bytes, voice_message(&v), "deterministic");
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Voice message from 5551234 (0:42)"));
        assert_eq!(msg.message_id(), Some("vb.1@example.test"));
        assert_eq!(msg.header_raw("Message-Context").map(str::trim), Some("voice-message"));
        assert_eq!(msg.attachment_count(), 1);
        let att = msg.attachment(0).unwrap();
        assert_eq!(att.contents(), &wav[..]);
        assert_eq!(att.content_type().map(|c| (c.ctype(), c.subtype())), Some(("audio", Some("wav"))));
        assert_eq!(msg.to().and_then(|a| a.first()).and_then(|a| a.name()), Some("Zoë"));
    }

    /// A non-ASCII subject and name: RFC 2047 encoded-words of at most 75 characters,
    /// every header line plain ASCII, decoded back by mail-parser. (Before, a reply's
    /// Subject went out as raw 8-bit and a long name as one over-long encoded-word.)
    #[test]
    fn non_ascii_subjects_and_names_are_encoded_words_within_the_limits() {
        let subject = "Re: Grüße — Übergabe der Räumlichkeiten am Freitag, bitte vollständig lesen";
        let name = "Zoë Ærøskøbing-Ñandú, Geschäftsführerin der Überseegesellschaft";
        let wav = vec![0u8; 64];
        let r = VoiceReply {
            message_id: "<vb.2@example.test>",
            mailbox: "1001",
            mailbox_name: Some(name),
            from_addr: "voicemail@example.test",
            rcpt: "sender@example.test",
            cc: &[],
            subject,
            in_reply_to: Some("<orig@example.test>"),
            date: 1795996800,
            duration_ms: 2000,
            wav: &wav,
        };
        let bytes = voice_reply(&r);
        assert_eq!(bytes, voice_reply(&r), "deterministic");
        let head = &bytes[..bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
        assert!(head.is_ascii(), "headers are 7-bit");
        for line in head.split(|b| *b == b'\n') {
            assert!(line.len() <= 78 + 1, "line over 78 characters: {}", String::from_utf8_lossy(line));
        }
        let text = String::from_utf8_lossy(head);
        for word in text.split_whitespace().filter(|w| w.starts_with("=?")) {
            assert!(word.trim_end_matches([',', '"']).len() <= 75, "encoded-word over 75 characters: {word}");
        }
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some(subject));
        assert_eq!(msg.from().and_then(|a| a.first()).and_then(|a| a.name()), Some(name));
        let short = VoiceReply { subject: "Re: Grüße — Übergabe", ..r };
        let bytes = voice_reply(&short);
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Re: Grüße — Übergabe"));
    }

    #[test]
    fn a_reply_to_all_names_the_copies_in_cc() {
        let cc = vec!["bob@example.test".to_string(), "carol@example.test".to_string()];
        let r = VoiceReply {
            message_id: "<vb.3@example.test>",
            mailbox: "1001",
            mailbox_name: None,
            from_addr: "voicemail@example.test",
            rcpt: "ann@example.test",
            cc: &cc,
            subject: "Re: Plans",
            in_reply_to: Some("<orig@example.test>"),
            date: 1795996800,
            duration_ms: 2000,
            wav: &[0u8; 64],
        };
        let bytes = voice_reply(&r);
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.into_iter().flat_map(|l| l.iter()).filter_map(|x| x.address.as_deref().map(str::to_string)).collect()
        };
        assert_eq!(addrs(msg.to()), ["ann@example.test"]);
        assert_eq!(addrs(msg.cc()), ["bob@example.test", "carol@example.test"]);
        let none = VoiceReply { cc: &[], ..r };
        assert!(!String::from_utf8_lossy(&voice_reply(&none)).contains("Cc:"));
    }

    #[test]
    fn a_fax_is_a_mail_with_its_tiff_and_its_context() {
        let tiff = b"II*\0fake tiff bytes".to_vec();
        let f = FaxMail {
            message_id: "<vb.fax1@example.test>",
            mailbox: "1001",
            mailbox_name: Some("Ann"),
            to_addr: Some("ann@example.test"),
            caller: Some("+15550100"),
            remote_ident: Some("ACME SALES"),
            received_at: 1795996800,
            pages: 3,
            domain: "example.test",
            tiff: &tiff,
            pdf: Some(b"%PDF-1.4 fake"),
            incomplete: None,
        };
        let bytes = fax_message(&f);
        assert_eq!(bytes, fax_message(&f), "deterministic");
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(msg.subject(), Some("Fax from +15550100 (ACME SALES), 3 pages"));
        assert_eq!(msg.header_raw("Message-Context").map(str::trim), Some("fax-message"));
        let a = msg.attachments().next().expect("the TIFF");
        assert_eq!(a.contents(), &tiff[..]);
        use mail_parser::MimeHeaders;
        assert_eq!(a.content_type().map(|c| (c.ctype(), c.subtype())), Some(("image", Some("tiff"))));
        let pdf = msg.attachments().nth(1).expect("the PDF");
        assert_eq!((pdf.contents(), pdf.attachment_name()), (&b"%PDF-1.4 fake"[..], Some("fax.pdf")));
        assert_eq!(fax_subject(None, None, 1), "Fax from an unknown sender, 1 page");
        assert!(!String::from_utf8_lossy(&bytes).contains("before it was complete"));
        let cut = fax_message(&FaxMail { incomplete: Some("Disconnected"), ..f });
        assert!(String::from_utf8_lossy(&cut).contains("The fax ended before it was complete (Disconnected)"));
    }
}
