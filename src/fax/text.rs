//! Text set onto fax pages: DejaVu Sans Mono (Debian's fonts-dejavu-core) at 10 points,
//! A4 or Letter with 15 mm margins at 204 × 196 dpi, lines wrapped at word boundaries, long
//! words broken, tabs to every 8th column, a form feed starting a new page. An e-mail
//! becomes its From, To, Cc, Date and Subject, then what the sender wrote (HTML as text).

use super::pages::{Page, Paper, WIDTH, X_DPI, Y_DPI};
use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use anyhow::{Context, Result};
use std::path::Path;

/// Where Debian puts the font (fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";
const POINTS: f64 = 10.0;
/// Margins: 15 mm on each side, 12 mm at top and bottom.
const MARGIN_X: usize = (15.0 / 25.4 * X_DPI) as usize;
const MARGIN_Y: usize = (12.0 / 25.4 * Y_DPI) as usize;

/// The pages `text` fills.
pub fn render(text: &str, paper: Paper) -> Result<Vec<Page>> {
    render_with(Path::new(FONT), text, paper)
}

pub fn render_with(font_path: &Path, text: &str, paper: Paper) -> Result<Vec<Page>> {
    let bytes = std::fs::read(font_path)
        .with_context(|| format!("cannot read the font {} (install fonts-dejavu-core)", font_path.display()))?;
    let font = FontVec::try_from_vec(bytes).with_context(|| format!("{} is not a font", font_path.display()))?;
    // The font is drawn at the vertical resolution and its advances stretched to the
    // horizontal one (fax pixels are not square).
    let px = (POINTS / 72.0 * Y_DPI) as f32;
    let scale = PxScale { x: px * (X_DPI / Y_DPI) as f32, y: px };
    let scaled = font.as_scaled(scale);
    let advance = scaled.h_advance(font.glyph_id('M')).max(1.0);
    let line_height = (scaled.height() + scaled.line_gap()).ceil().max(1.0) as usize;
    let columns = ((WIDTH - 2 * MARGIN_X) as f32 / advance).floor().max(10.0) as usize;
    let page_rows = paper.rows();
    let lines_per_page = ((page_rows - 2 * MARGIN_Y) / line_height).max(1);

    let mut pages: Vec<Vec<String>> = vec![Vec::new()];
    for paragraph in text.replace("\r\n", "\n").split('\n') {
        for (i, chunk) in paragraph.split('\u{c}').enumerate() {
            if i > 0 {
                pages.push(Vec::new());
            }
            for line in wrap(&expand_tabs(chunk), columns) {
                if pages.last().is_some_and(|p| p.len() >= lines_per_page) {
                    pages.push(Vec::new());
                }
                pages.last_mut().expect("one page at least").push(line);
            }
        }
    }
    while pages.len() > 1 && pages.last().is_some_and(|p| p.iter().all(|l| l.trim().is_empty())) {
        pages.pop();
    }
    if pages.len() > super::pages::MAX_PAGES {
        anyhow::bail!("the text fills {} pages, more than a fax of {} pages", pages.len(), super::pages::MAX_PAGES);
    }
    Ok(pages
        .iter()
        .map(|lines| {
            let mut page = Page::blank(page_rows);
            for (n, line) in lines.iter().enumerate() {
                let baseline = MARGIN_Y as f32 + n as f32 * line_height as f32 + scaled.ascent();
                for (col, c) in line.chars().enumerate() {
                    let glyph = font.glyph_id(c).with_scale_and_position(
                        scale,
                        ab_glyph::point(MARGIN_X as f32 + col as f32 * advance, baseline),
                    );
                    if let Some(outline) = font.outline_glyph(glyph) {
                        let b = outline.px_bounds();
                        outline.draw(|x, y, cover| {
                            if cover >= 0.5 {
                                page.set(
                                    (b.min.x as i32 + x as i32).max(0) as usize,
                                    (b.min.y as i32 + y as i32).max(0) as usize,
                                );
                            }
                        });
                    }
                }
            }
            page
        })
        .collect())
}

fn expand_tabs(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c == '\t' {
            out.push(' ');
            while !out.chars().count().is_multiple_of(8) {
                out.push(' ');
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// `line` in lines of at most `columns` characters, broken at spaces where it can be.
fn wrap(line: &str, columns: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = line.trim_end().chars().collect();
    while rest.len() > columns {
        let cut = rest[..=columns].iter().rposition(|c| *c == ' ').filter(|&i| i > 0).unwrap_or(columns);
        out.push(rest[..cut].iter().collect::<String>().trim_end().to_string());
        rest = rest[cut..].iter().skip_while(|c| **c == ' ').copied().collect();
    }
    out.push(rest.into_iter().collect());
    out
}

/// An e-mail as the text of its fax: the header lines a reader looks for, a blank
/// line, then the body as text (the text part, or the HTML part made text).
pub fn email_text(raw: &[u8]) -> Result<String> {
    let m = mail_parser::MessageParser::default().parse(raw).context("not an e-mail (RFC 5322)")?;
    let mut out = String::new();
    let addrs = |a: Option<&mail_parser::Address>| {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    for (name, value) in [
        ("From", addrs(m.from())),
        ("To", addrs(m.to())),
        ("Cc", addrs(m.cc())),
        ("Date", m.date().map(|d| d.to_rfc822())),
        ("Subject", m.subject().map(str::to_string)),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("{name}: {v}\n"));
        }
    }
    out.push('\n');
    let body = m.body_text(0).map(|t| t.to_string()).unwrap_or_default();
    out.push_str(body.trim_end());
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_spaces_and_long_words_break() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(expand_tabs("a\tb"), "a       b");
    }

    #[test]
    fn text_fills_pages_top_down_and_a_form_feed_starts_one() {
        let one = render("Hello, fax.", Paper::A4).unwrap();
        assert_eq!(one.len(), 1);
        let p = &one[0];
        let line = (POINTS / 72.0 * Y_DPI) as usize * 2;
        assert!(p.ink(MARGIN_Y, MARGIN_Y + line) > 200, "ink on the first line");
        assert_eq!(p.ink(MARGIN_Y + 2 * line, p.rows), 0, "nothing below it");
        assert_eq!((p.rows, render("x", Paper::Letter).unwrap()[0].rows), (2292, 2156), "A4 and Letter");
        assert_eq!(p.ink(0, MARGIN_Y.saturating_sub(5)), 0, "nothing in the top margin");
        // 200 lines: more than one page; a form feed: a page of its own.
        let long: String = (0..200).map(|i| format!("line {i}\n")).collect();
        assert!(render(&long, Paper::A4).unwrap().len() >= 3);
        assert_eq!(render("first\u{c}second", Paper::A4).unwrap().len(), 2);
    }

    #[test]
    fn an_email_is_its_headers_then_what_was_written() {
        let raw = b"From: Ann Example <ann@example.com>\r\nTo: bob@example.com\r\nSubject: Budget\r\n\
            Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nContent-Type: text/html\r\n\r\n<p>Numbers <b>attached</b>.</p>";
        let t = email_text(raw).unwrap();
        assert!(t.starts_with("From: Ann Example <ann@example.com>\nTo: bob@example.com\n"), "{t}");
        assert!(t.contains("Subject: Budget\n") && t.contains("Numbers attached."), "{t}");
    }
}
