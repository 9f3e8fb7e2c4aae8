//! An e-mail made into what a person wrote: the body to read, without the quoted
//! history, the signature, the disclaimer and the list footer, and the attachments
//! announced by kind and name. MIME (charsets, transfer encodings, multipart) is
//! mail-parser's; HTML is rendered to text here (paragraphs, list items and table cells
//! kept as pauses; style sheets, scripts, images and quote containers dropped; links by
//! their text).

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What of a mail is read out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CleanMail {
    /// The sender's display name, else the address.
    pub from: Option<String>,
    pub subject: Option<String>,
    /// Paragraphs separated by blank lines.
    pub body: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    /// "a PDF document", "an image", …
    pub kind: &'static str,
}

/// Parses and cleans a raw message; a message mail-parser cannot read is an empty one.
pub fn clean(raw: &[u8]) -> CleanMail {
    let Some(msg) = MessageParser::default().parse(raw) else { return CleanMail::default() };
    let from = msg.from().and_then(|a| a.first()).and_then(|a| {
        a.name.as_deref().filter(|n| !n.trim().is_empty()).or(a.address.as_deref()).map(|s| s.trim().to_string())
    });
    let subject = msg.subject().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let body = match msg.text_part(0).map(|p| &p.body) {
        Some(PartType::Text(t)) => clean_text(t),
        Some(PartType::Html(h)) => clean_text(&html_to_text(h)),
        _ => match msg.html_part(0).map(|p| &p.body) {
            Some(PartType::Html(h)) => clean_text(&html_to_text(h)),
            _ => String::new(),
        },
    };
    let attachments = msg
        .attachments()
        .filter(|p| !p.is_message() || p.attachment_name().is_some())
        .map(|p| {
            let ctype =
                p.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase());
            let name = p.attachment_name().map(str::to_string);
            Attachment { kind: kind_of(ctype.as_deref().unwrap_or(""), name.as_deref().unwrap_or("")), name }
        })
        .collect();
    CleanMail { from, subject, body, attachments }
}

fn kind_of(ctype: &str, name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match (ctype, ext.as_str()) {
        (_, "pdf") | ("application/pdf", _) => "a PDF document",
        (_, "doc" | "docx" | "odt" | "rtf") => "a text document",
        (_, "xls" | "xlsx" | "ods" | "csv") => "a spreadsheet",
        (_, "ppt" | "pptx" | "odp") => "a presentation",
        (_, "zip" | "gz" | "tgz" | "7z" | "rar") => "a compressed archive",
        (_, "ics") | ("text/calendar", _) => "a calendar invitation",
        (_, "vcf") | ("text/vcard" | "text/x-vcard", _) => "a contact card",
        (c, _) if c.starts_with("image/") => "an image",
        (c, _) if c.starts_with("audio/") => "a sound recording",
        (c, _) if c.starts_with("video/") => "a video",
        (c, _) if c.starts_with("message/") => "a forwarded message",
        (c, _) if c.starts_with("text/") => "a text file",
        _ => "a file",
    }
}

const COUNT: [&str; 10] = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"];

/// "One attachment: a PDF document, budget dot P D F." (German: "Ein Anhang: ein P D F
/// Dokument, budget Punkt P D F.") — `None` without attachments.
pub fn announce(attachments: &[Attachment], lang: super::Lang) -> Option<String> {
    if attachments.is_empty() {
        return None;
    }
    let n = attachments.len();
    let each: Vec<String> = attachments
        .iter()
        .map(|a| {
            let kind = if lang == super::Lang::De { kind_de(a.kind) } else { a.kind };
            match a.name.as_deref().map(|f| spoken_file_name(f, lang)) {
                Some(name) if !name.is_empty() => format!("{kind}, {name}"),
                _ => kind.to_string(),
            }
        })
        .collect();
    Some(match lang {
        super::Lang::En => {
            let count = COUNT.get(n).map(|s| s.to_string()).unwrap_or_else(|| super::numbers::cardinal(n as u64));
            format!("{count} attachment{}: {}.", if n == 1 { "" } else { "s" }, each.join("; "))
        }
        super::Lang::De => {
            let count = if n == 1 { "Ein".to_string() } else { capitalized(&super::de::cardinal(n as u64)) };
            format!("{count} {}: {}.", if n == 1 { "Anhang" } else { "Anhänge" }, each.join("; "))
        }
    })
}

fn capitalized(word: &str) -> String {
    let mut c = word.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The German for a kind of attachment ([`kind_of`]'s words).
fn kind_de(kind: &str) -> &'static str {
    match kind {
        "a PDF document" => "ein P D F Dokument",
        "a text document" => "ein Textdokument",
        "a spreadsheet" => "eine Tabelle",
        "a presentation" => "eine Präsentation",
        "a compressed archive" => "ein komprimiertes Archiv",
        "a calendar invitation" => "eine Kalendereinladung",
        "a contact card" => "eine Visitenkarte",
        "an image" => "ein Bild",
        "a sound recording" => "eine Tonaufnahme",
        "a video" => "ein Video",
        "a forwarded message" => "eine weitergeleitete Nachricht",
        "a text file" => "eine Textdatei",
        _ => "eine Datei",
    }
}

/// "budget.pdf" → "budget dot P D F"; "Q3_report-final.xlsx" → "Q3 report final dot X L S X"
/// (German: "Punkt").
pub fn spoken_file_name(name: &str, lang: super::Lang) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let stem: String = stem.chars().map(|c| if matches!(c, '_' | '-' | '.') { ' ' } else { c }).collect();
    let stem = stem.split_whitespace().collect::<Vec<_>>().join(" ");
    if ext.is_empty() || ext.len() > 5 {
        return stem;
    }
    let dot = if lang == super::Lang::De { "Punkt" } else { "dot" };
    let letters: Vec<String> =
        ext.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase().to_string()).collect();
    let spelled = if lang == super::Lang::De { letters.join(" ") } else { super::en::spell(ext) };
    format!("{stem} {dot} {spelled}")
}

/// Where a table cell ended: a comma between cells, nothing after the last.
const CELL_END: char = '\u{1F}';

/// HTML rendered to text: block ends are line breaks, list items their own lines, table
/// cells separated by commas; `<head>`, `<style>`, `<script>`, images and the quote
/// containers of Gmail, Thunderbird, Outlook and Apple Mail dropped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    // Depth inside elements whose content is never read.
    let mut skip: Vec<String> = Vec::new();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip.is_empty() {
                out.push_str(&decode_entities(rest));
            }
            break;
        };
        if skip.is_empty() {
            out.push_str(&decode_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let attrs = tag.to_ascii_lowercase();
        let hidden = matches!(name.as_str(), "head" | "style" | "script" | "title" | "xml")
            || (name == "blockquote")
            || (name == "div"
                && (attrs.contains("gmail_quote")
                    || attrs.contains("moz-cite-prefix")
                    || attrs.contains("divrplyfwdmsg")
                    || attrs.contains("appendonsend")
                    || attrs.contains("gmail_signature")
                    || attrs.contains("moz-signature")))
            || attrs.contains("display:none")
            || attrs.contains("display: none");
        if !skip.is_empty() {
            // Count nested elements of the same name, so the right end tag ends the skip.
            if closing && skip.last() == Some(&name) {
                skip.pop();
            } else if !closing && !tag.ends_with('/') && skip.last() == Some(&name) {
                skip.push(name);
            }
            continue;
        }
        if hidden && !closing && !tag.ends_with('/') {
            // Outlook's reply header (`divRplyFwdMsg`, `appendonsend`) starts the quoted
            // history: nothing after it is the writer's.
            if attrs.contains("divrplyfwdmsg") || attrs.contains("appendonsend") {
                break;
            }
            skip.push(name);
            continue;
        }
        match (name.as_str(), closing) {
            ("br", _) => out.push('\n'),
            ("p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "tr" | "table" | "ul" | "ol", _) => {
                out.push_str("\n\n")
            }
            ("li", false) => out.push_str("\n\n"),
            ("td" | "th", true) => out.push(CELL_END),
            ("hr", _) => out.push_str("\n\n"),
            _ => {}
        }
    }
    // Tidy: spaces, and at most one blank line between paragraphs.
    let mut lines: Vec<String> = Vec::new();
    for line in out.lines() {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        let l = l.trim_end_matches([CELL_END, ' ']).replace(CELL_END, ", ");
        let l = l.split_whitespace().collect::<Vec<_>>().join(" ").replace(" ,", ",");
        if l.is_empty() && lines.last().is_none_or(|p| p.is_empty()) {
            continue;
        }
        lines.push(l);
    }
    lines.join("\n").trim().to_string()
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                "ndash" => '–',
                "mdash" => '—',
                "hellip" => '…',
                "rsquo" | "lsquo" => '\'',
                "rdquo" | "ldquo" => '"',
                "euro" => '€',
                "pound" => '£',
                "copy" => '©',
                "eacute" => 'é',
                "egrave" => 'è',
                "ecirc" => 'ê',
                "aacute" => 'á',
                "agrave" => 'à',
                "iacute" => 'í',
                "oacute" => 'ó',
                "uacute" => 'ú',
                "ntilde" => 'ñ',
                "ccedil" => 'ç',
                "auml" => 'ä',
                "ouml" => 'ö',
                "uuml" => 'ü',
                "Auml" => 'Ä',
                "Ouml" => 'Ö',
                "Uuml" => 'Ü',
                "szlig" => 'ß',
                e if e.starts_with("#x") || e.starts_with("#X") => {
                    char::from_u32(u32::from_str_radix(&e[2..], 16).ok()?)?
                }
                e if e.starts_with('#') => char::from_u32(e[1..].parse().ok()?)?,
                _ => return None,
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lines that begin the quoted history: everything from them on is someone else's.
fn starts_history(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    let wrote = |s: &str| {
        // "On Tue, 3 Dec 2024 at 10:02, Ann <ann@x> wrote:", perhaps wrapped onto two lines.
        let s = s.trim_end();
        s.ends_with("wrote:")
            || s.ends_with("schrieb:")
            || s.ends_with("a écrit :")
            || s.ends_with("a écrit:")
            || s.ends_with("escribió:")
            || s.ends_with("ha scritto:")
            || s.ends_with("schreef:")
            || s.ends_with("skrev:")
    };
    let opener = ["on ", "am ", "le ", "el ", "il ", "op ", "den "].iter().any(|p| lower.starts_with(p));
    (opener && (wrote(&lower) || next.is_some_and(|n| wrote(&n.to_lowercase()))))
        || (l.starts_with("-----")
            && (lower.contains("original message")
                || lower.contains("ursprüngliche nachricht")
                || lower.contains("forwarded message")))
        || lower.starts_with("begin forwarded message")
        || (l.starts_with("________________")
            && next.is_some_and(|n| n.trim_start().starts_with("From:") || n.trim_start().starts_with("Von:")))
        || ((l.starts_with("From:") || l.starts_with("Von:"))
            && next.is_some_and(|n| {
                let n = n.trim_start();
                n.starts_with("Sent:") || n.starts_with("Date:") || n.starts_with("Gesendet:") || n.starts_with("To:")
            }))
}

/// Lines that begin a signature, a disclaimer or a list footer: nothing after is read.
fn starts_trailer(line: &str) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    line.trim_end() == "--"
        || line == "-- "
        || [
            "sent from my ",
            "get outlook for ",
            "sent from mail for ",
            "sent from yahoo mail",
            "von meinem iphone gesendet",
            "sent via ",
        ]
        .iter()
        .any(|p| lower.starts_with(p))
        || [
            "confidentiality notice",
            "disclaimer",
            "this e-mail and any attachments",
            "this email and any attachments",
            "this message and any attachments",
            "this e-mail is confidential",
            "this email is confidential",
            "the information contained in this",
            "this message contains confidential",
            "privileged and confidential",
            "you received this message because you are subscribed",
            "to unsubscribe",
            "unsubscribe from this list",
            "if you no longer wish to receive",
            "click here to unsubscribe",
            "diese e-mail enthält vertrauliche",
        ]
        .iter()
        .any(|p| lower.starts_with(p))
        || (l.starts_with("____________") && lower.len() < 80 && l.chars().all(|c| c == '_'))
}

const SIGN_OFFS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks!",
    "thx",
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "best",
    "cheers",
    "sincerely",
    "yours",
    "all the best",
    "many thanks",
    "best wishes",
    "mit freundlichen grüßen",
    "viele grüße",
    "gruß",
    "grüße",
    "see you",
    "see you then",
    "see you soon",
    "talk soon",
    "speak soon",
    "take care",
    "love",
    "best wishes",
    "greetings",
    "ciao",
];

/// The writer's own words of a plain-text body.
pub fn clean_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut wrapped_attribution = false;
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).copied();
        if std::mem::take(&mut wrapped_attribution) {
            continue;
        }
        if starts_trailer(line) {
            break;
        }
        if starts_history(line, next) {
            // "On … wrote:" before quotes the writer answers in between (bottom- and
            // inline-posting): only the attribution goes. Otherwise the rest is history.
            let attribution = !line.trim_start().starts_with('-')
                && !line.trim_start().starts_with('_')
                && !line.trim_start().starts_with("From:")
                && !line.trim_start().starts_with("Von:")
                && !line.to_lowercase().starts_with("begin forwarded");
            let answered = lines[i + 1..]
                .iter()
                .take_while(|l| !starts_trailer(l))
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('>') && !l.trim_end().ends_with("wrote:"));
            if attribution && answered {
                wrapped_attribution = !line.trim_end().ends_with(':');
                continue;
            }
            break;
        }
        if line.trim_start().starts_with('>') {
            continue; // quoted (bottom-posting keeps what is between the quotes)
        }
        kept.push(line);
    }
    // A sign-off ("Thanks,") followed by at most four short lines (name, title, phone)
    // to the end: the sign-off stays, the rest is a signature.
    if let Some(pos) = kept.iter().rposition(|l| {
        let w = l.trim().trim_end_matches([',', '!', '.']).to_lowercase();
        SIGN_OFFS.contains(&w.as_str())
    }) {
        let tail: Vec<&&str> = kept[pos + 1..].iter().filter(|l| !l.trim().is_empty()).collect();
        if tail.len() <= 4 && tail.iter().all(|l| l.trim().len() <= 60) {
            kept.truncate(pos + 1);
        }
    }
    // Paragraphs: blank lines kept single, edges trimmed.
    let mut out: Vec<String> = Vec::new();
    for l in kept {
        let l = l.trim();
        if l.is_empty() && out.last().is_none_or(|p: &String| p.is_empty()) {
            continue;
        }
        out.push(l.to_string());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}
