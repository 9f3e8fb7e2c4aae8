//! What an e-mail is read as: text → the sentences espeak-ng is given. Sans-IO and pure.
//!
//! Order: the admin's and the mailbox's substitution rules, then the language's rule file
//! ([`rules`], `prompts/<lang>/substitutions.toml`: abbreviations, initialisms, the
//! seed's "ATT"), then the built-in families of the language ([`en`]: money, dates,
//! numbers…). Paragraphs are kept apart, and each is split into sentences so speech can
//! be rendered and skipped sentence by sentence.

/// A pattern compiled once, on first use (for the written-form passes of each language).
macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pat).expect("a valid pattern"));
    };
}

pub mod cleanup;
pub mod de;
pub mod en;
pub mod numbers;
pub mod rules;

pub use rules::Rules;

/// The languages with built-in written forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    /// From a language code (`en`, `en-US`, `de`, `de-AT`); other languages read with
    /// the English forms and their own rule file.
    pub fn from_code(code: &str) -> Lang {
        if code.to_ascii_lowercase().starts_with("de") {
            Lang::De
        } else {
            Lang::En
        }
    }
}

/// The language a text is written in, of those with built-in forms, by its most common
/// words; `None` when too short or undecided. Two languages need no statistical model.
pub fn detect(text: &str) -> Option<Lang> {
    const EN: &[&str] = &[
        "the", "and", "is", "to", "of", "you", "that", "it", "for", "are", "with", "we", "this", "have", "be", "will",
        "not", "at", "on", "your",
    ];
    const DE: &[&str] = &[
        "der", "die", "das", "und", "ist", "nicht", "ich", "sie", "wir", "mit", "zu", "den", "ein", "eine", "auf",
        "für", "es", "auch", "dem", "bitte",
    ];
    let (mut en, mut de) = (0, 0);
    for w in text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).take(400) {
        let w = w.to_lowercase();
        en += EN.contains(&w.as_str()) as u32;
        de += DE.contains(&w.as_str()) as u32;
    }
    match (en, de) {
        (e, d) if e + d < 3 => None,
        (e, d) if d > e * 2 => Some(Lang::De),
        (e, d) if e > d * 2 => Some(Lang::En),
        _ => None,
    }
}

/// How one language's text is made speakable.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    /// Admin and mailbox rules first, then the language file's.
    pub rules: Rules,
    pub options: en::Options,
    pub lang: Lang,
}

impl Reader {
    pub fn new(rules: Rules) -> Reader {
        Reader { rules, options: en::Options::default(), lang: Lang::En }
    }

    /// One paragraph (or sentence) made speakable.
    pub fn normalize(&self, text: &str) -> String {
        let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match self.lang {
            Lang::En => en::normalize(&self.rules.apply(&en::calm_shouting(&t)), self.options),
            Lang::De => de::normalize(&self.rules.apply(&t)),
        }
    }

    /// A raw e-mail as it is read: who and what first ("An e-mail from Ann Lee.
    /// Subject: …"), then what the sender wrote, then its attachments.
    pub fn mail(&self, raw: &[u8]) -> Vec<Vec<String>> {
        let m = cleanup::clean(raw);
        let (mail, from_word, subject_word) = match self.lang {
            Lang::En => ("An e-mail", "from", "Subject"),
            Lang::De => ("Eine E-Mail", "von", "Betreff"),
        };
        let mut text = match &m.from {
            Some(from) => format!("{mail} {from_word} {from}."),
            None => format!("{mail}."),
        };
        if let Some(subject) = &m.subject {
            text.push_str(&format!(" {subject_word}: {}.", subject.trim_end_matches(['.', '!', '?'])));
        }
        if !m.body.is_empty() {
            text.push_str("\n\n");
            text.push_str(&m.body);
        }
        if let Some(a) = cleanup::announce(&m.attachments, self.lang) {
            text.push_str("\n\n");
            text.push_str(&a);
        }
        self.paragraphs(&text)
    }

    /// The text as paragraphs of sentences, each ready for speech.
    pub fn paragraphs(&self, text: &str) -> Vec<Vec<String>> {
        paragraphs_of(text).iter().map(|p| sentences(&self.normalize(p))).filter(|s| !s.is_empty()).collect()
    }
}

/// Paragraphs: runs of lines between blank lines.
fn paragraphs_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(line.trim());
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Splits at `.`, `!`, `?` followed by a space and an upper-case letter or a digit, or
/// at the end. (Abbreviations are expanded before this, so "Dr. Smith" is one sentence.)
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let b: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in b.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let next = b.get(k + 1).map(|x| x.1);
        let after = b.get(k + 2).map(|x| x.1);
        if next == Some(' ') && after.is_some_and(|a| a.is_uppercase() || a.is_ascii_digit()) {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            start = i + 1;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}

#[cfg(test)]
mod tests;
