//! The retrieve agent's pure part: what a fetched message is (seed: "determines message
//! type (e-mail, voice, and fax)"). The I/O side stores it, or links it to the row it
//! came from when it is one of our own deposits (same Message-ID), so nothing is ever
//! imported twice.

use mail_parser::{MessageParser, MimeHeaders};

pub use crate::model::MessageKind as Kind;

/// What the store needs to know of a retrieved message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    pub kind: Kind,
    /// `<...>` form; synthesized from the UID when the message has none.
    pub message_id: String,
    /// Sender address (or caller ID for voice from a gateway).
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    /// Unix seconds from the Date header, if parsable.
    pub date: Option<i64>,
    /// Voice: Content-Duration of the audio part, in ms.
    pub duration_ms: Option<i64>,
}

/// Classifies and summarizes a raw RFC 5322 message. Never panics; unparsable input is
/// still an e-mail (the subscriber should see it, not lose it).
pub fn classify(raw: &[u8], fallback_id: &str) -> Retrieved {
    let parser = MessageParser::default();
    // Headers first. A single-part text message without Message-Context (most e-mail)
    // has no part that could make it voice or fax, so its body is neither parsed nor
    // decoded: that decoding was the largest single cost of classifying an import.
    let Some(head) = parser.parse_headers(raw) else {
        return Retrieved {
            kind: Kind::Email,
            message_id: fallback_id.to_string(),
            from: None,
            from_name: None,
            subject: None,
            date: None,
            duration_ms: None,
        };
    };
    let single_text = head.content_type().is_none_or(|c| c.ctype().eq_ignore_ascii_case("text"));
    let whole = if single_text && head.header_raw("Message-Context").is_none() { None } else { parser.parse(raw) };
    let msg = whole.as_ref().unwrap_or(&head);
    let context = msg.header_raw("Message-Context").map(|v| v.trim().to_ascii_lowercase());
    let mut kind = match context.as_deref() {
        Some("voice-message") => Kind::Voice,
        Some("fax-message") => Kind::Fax,
        _ => Kind::Email,
    };
    let mut duration_ms = None;
    for att in msg.attachments() {
        let ctype = att
            .content_type()
            .map(|c| (c.ctype().to_ascii_lowercase(), c.subtype().unwrap_or("").to_ascii_lowercase()));
        match ctype.as_ref().map(|(t, s)| (t.as_str(), s.as_str())) {
            Some(("audio", _)) => {
                if context.is_none() {
                    kind = Kind::Voice;
                }
                let d = att.headers().iter().find(|h| h.name.as_str().eq_ignore_ascii_case("Content-Duration"));
                // RFC 3803: a count of seconds; anything else (negative, absurdly long)
                // is no duration at all.
                if let Some(secs) = d.and_then(|h| h.value.as_text()).and_then(|t| t.trim().parse::<u32>().ok()) {
                    duration_ms = Some(secs as i64 * 1000);
                }
            }
            Some(("image", "tiff")) if context.is_none() => kind = Kind::Fax,
            _ => {}
        }
    }
    let from = msg.from().and_then(|a| a.first());
    Retrieved {
        kind,
        message_id: msg.message_id().map(|id| format!("<{id}>")).unwrap_or_else(|| fallback_id.to_string()),
        from: from.and_then(|a| a.address()).map(str::to_string),
        from_name: from.and_then(|a| a.name()).map(str::to_string),
        subject: msg.subject().map(str::to_string),
        date: msg.date().map(|d| d.to_timestamp()),
        duration_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_voice_message_is_voice_with_its_id_and_duration() {
        let wav = [0u8; 100];
        let raw = crate::mail::compose::voice_message(&crate::mail::compose::VoiceMail {
            message_id: "<vb.7@x.test>",
            mailbox: "1",
            mailbox_name: None,
            to_addr: None,
            caller: Some("5551234"),
            caller_name: None,
            received_at: 1_700_000_000,
            duration_ms: 42_000,
            domain: "x.test",
            wav: &wav,
        });
        let r = classify(&raw, "<fallback>");
        assert_eq!(r.kind, Kind::Voice);
        assert_eq!(r.message_id, "<vb.7@x.test>");
        assert_eq!(r.duration_ms, Some(42_000));
        assert_eq!(r.date, Some(1_700_000_000));
    }

    #[test]
    fn plain_fax_and_hostile_mail() {
        let plain = b"From: Ann <ann@x.test>\r\nSubject: hi\r\nMessage-ID: <m1@x>\r\n\r\nhello\r\n";
        let r = classify(plain, "<f>");
        assert_eq!(
            (r.kind, r.message_id.as_str(), r.from.as_deref(), r.from_name.as_deref()),
            (Kind::Email, "<m1@x>", Some("ann@x.test"), Some("Ann"))
        );
        let fax = b"Subject: fax\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/tiff\r\nContent-Disposition: attachment; filename=f.tif\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n";
        assert_eq!(classify(fax, "<f>").kind, Kind::Fax);
        // Single-part messages: text is e-mail from its headers alone; anything else is
        // looked at whole (a bare audio body is a voice message).
        let html = b"From: b@x.test\r\nSubject: s\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        let r = classify(html, "<f>");
        assert_eq!((r.kind, r.from.as_deref(), r.date), (Kind::Email, Some("b@x.test"), Some(1_700_000_000)));
        let audio = b"Subject: v\r\nContent-Type: audio/wav\r\nContent-Duration: 7\r\nContent-Transfer-Encoding: base64\r\n\r\nUklGRg==\r\n";
        assert_eq!(classify(audio, "<f>").kind, Kind::Voice);
        // A hostile duration (found by tools/fuzz: it overflowed) is no duration.
        for d in ["99999999999999999", "-5", "7.5"] {
            let text = String::from_utf8_lossy(audio).replace("Content-Duration: 7", &format!("Content-Duration: {d}"));
            assert_eq!(classify(text.as_bytes(), "<f>").duration_ms, None, "{d}");
        }
        let context = b"Subject: v\r\nMessage-Context: fax-message\r\n\r\nsee attached\r\n";
        assert_eq!(classify(context, "<f>").kind, Kind::Fax);
        let r = classify(b"\xff\xfe garbage without headers", "<imap.1.2@local>");
        assert_eq!((r.kind, r.message_id.as_str()), (Kind::Email, "<imap.1.2@local>"));
        let _ = classify(b"", "<e>");
    }
}
