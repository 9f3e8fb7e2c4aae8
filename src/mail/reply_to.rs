//! Whom a reply goes to (RFC 5322 §3.6.3): the Reply-To addresses, else the From; a reply
//! to all also goes to the original's To and Cc — never back to the subscriber, never
//! twice to one address.

use mail_parser::{Address, MessageParser};

/// The recipients of a reply to `raw`: the main one (To:) and the copies (Cc:). `own`
/// are the subscriber's addresses, left out. `None` when the mail names no usable
/// address to reply to.
pub fn reply_recipients(raw: &[u8], all: bool, own: &[String]) -> Option<(String, Vec<String>)> {
    let head = MessageParser::default().parse_headers(raw)?;
    let mut seen: Vec<String> = own.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut take = |list: Option<&Address>| -> Vec<String> {
        let mut out = Vec::new();
        for a in list.into_iter().flat_map(|l| l.iter()) {
            let Some(addr) = a.address.as_deref().map(str::trim) else { continue };
            // Only a well-formed address goes into headers and the SMTP envelope.
            if addr.parse::<lettre::Address>().is_err() || seen.contains(&addr.to_ascii_lowercase()) {
                continue;
            }
            seen.push(addr.to_ascii_lowercase());
            out.push(addr.to_string());
        }
        out
    };
    let mut main = take(head.reply_to());
    if main.is_empty() {
        main = take(head.from());
    }
    let mut copies = Vec::new();
    if all {
        copies.extend(take(head.to()));
        copies.extend(take(head.cc()));
    }
    let mut main = main.into_iter();
    let first = main.next().or_else(|| (!copies.is_empty()).then(|| copies.remove(0)))?;
    // A Reply-To naming several: the first is To, the others are copies.
    copies.splice(0..0, main);
    Some((first, copies))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Ann <ann@example.com>\r\nTo: Ivy <IVY@example.com>, bob@example.com\r\n\
        Cc: carol@example.com, \"Ann again\" <ANN@example.com>, not an address\r\nSubject: Plans\r\n\r\nHi.\r\n";

    #[test]
    fn reply_goes_to_the_sender_and_reply_all_to_the_others_but_not_to_oneself() {
        let own = vec!["ivy@example.com".to_string()];
        assert_eq!(reply_recipients(MAIL, false, &own), Some(("ann@example.com".into(), vec![])));
        assert_eq!(
            reply_recipients(MAIL, true, &own),
            Some(("ann@example.com".into(), vec!["bob@example.com".into(), "carol@example.com".into()]))
        );
    }

    #[test]
    fn reply_to_wins_over_from_and_a_mail_without_addresses_has_no_reply() {
        let raw = b"From: list-bounces@example.org\r\nReply-To: team@example.org, boss@example.org\r\n\
            To: ivy@example.com\r\nSubject: x\r\n\r\n.\r\n";
        let own = vec!["ivy@example.com".to_string()];
        assert_eq!(
            reply_recipients(raw, false, &own),
            Some(("team@example.org".into(), vec!["boss@example.org".into()]))
        );
        assert_eq!(reply_recipients(b"Subject: nobody\r\n\r\nx\r\n", true, &own), None);
        assert_eq!(
            reply_recipients(b"From: ivy@example.com\r\nSubject: me\r\n\r\nx\r\n", false, &own),
            None,
            "not to oneself"
        );
    }
}
