//! What an e-mail is read as: text → the sentences espeak-ng is given. Sans-IO and pure.
//!
//! Order: the admin's and the mailbox's substitution rules, then the language's rule file
//! ([`rules`], `prompts/<lang>/substitutions.toml`: abbreviations, initialisms, the
//! seed's "ATT"), then the built-in families of the language ([`en`]: money, dates,
//! numbers…). Paragraphs are kept apart, and each is split into sentences so speech can
//! be rendered and skipped sentence by sentence.

pub mod cleanup;
pub mod en;
pub mod numbers;
pub mod rules;

pub use rules::Rules;

/// How one language's text is made speakable.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    /// Admin and mailbox rules first, then the language file's.
    pub rules: Rules,
    pub options: en::Options,
}

impl Reader {
    pub fn new(rules: Rules) -> Reader {
        Reader { rules, options: en::Options::default() }
    }

    /// One paragraph (or sentence) made speakable.
    pub fn normalize(&self, text: &str) -> String {
        let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
        en::normalize(&self.rules.apply(&en::calm_shouting(&t)), self.options)
    }

    /// A raw e-mail as it is read: who and what first ("An e-mail from Ann Lee.
    /// Subject: …"), then what the sender wrote, then its attachments.
    pub fn mail(&self, raw: &[u8]) -> Vec<Vec<String>> {
        let m = cleanup::clean(raw);
        let mut text = match &m.from {
            Some(from) => format!("An e-mail from {from}."),
            None => "An e-mail.".to_string(),
        };
        if let Some(subject) = &m.subject {
            text.push_str(&format!(" Subject: {}.", subject.trim_end_matches(['.', '!', '?'])));
        }
        if !m.body.is_empty() {
            text.push_str("\n\n");
            text.push_str(&m.body);
        }
        if let Some(a) = cleanup::announce(&m.attachments) {
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
