//! What a text is read as, for the menu and `voxbridge tts`: the language's reader
//! (`<prompts.dir>/<lang>/substitutions.toml` and the built-in families) and the text
//! made into paragraphs of sentences.

use crate::config::Config;
use crate::reading::rules::Rule;
use crate::reading::{Reader, Rules};
use crate::store::Substitution;
use anyhow::{Context, Result};

/// The rule file of `lang`, if the language has one.
pub fn rules_file(cfg: &Config, lang: &str) -> std::path::PathBuf {
    cfg.prompts.dir.join(lang).join("substitutions.toml")
}

/// The reader for `lang`. A language without a rule file reads with the built-in
/// families only; a rule file that does not parse is an error naming the file and rule.
pub fn reader(cfg: &Config, lang: &str) -> Result<Reader> {
    let path = rules_file(cfg, lang);
    let rules = match std::fs::read_to_string(&path) {
        Ok(text) => Rules::parse(&text).map_err(anyhow::Error::msg).with_context(|| format!("{}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(Reader { lang: crate::reading::Lang::from_code(lang), ..Reader::new(rules) })
}

/// The language code a raw e-mail is read in: the one its text is written in when
/// `available` has a reader for it, else `fallback` (the mailbox's or the server's).
pub fn mail_language<'a>(raw: &[u8], available: &[&'a str], fallback: &'a str) -> &'a str {
    let body = crate::reading::cleanup::clean(raw);
    let sample = format!("{} {}", body.subject.unwrap_or_default(), body.body);
    let code = match crate::reading::detect(&sample) {
        Some(crate::reading::Lang::De) => "de",
        Some(crate::reading::Lang::En) => "en",
        None => return fallback,
    };
    available.iter().find(|a| a.starts_with(code)).copied().unwrap_or(fallback)
}

/// The text as it will be spoken: paragraphs of sentences.
pub fn preview(reader: &Reader, text: &str) -> Vec<Vec<String>> {
    reader.paragraphs(text)
}

/// A stored rule as the reader runs it; the error says which rule and why.
pub fn rule(s: &Substitution) -> Result<Rule> {
    let r = if s.is_regex {
        Rule::regex(&s.pattern, &s.say, s.any_case)
    } else {
        Rule::literal(&s.pattern, &s.say, s.whole_word, s.any_case)
    };
    r.map_err(anyhow::Error::msg)
}

/// `base` with stored rules (a mailbox's, then the admin's) ahead of its own. A stored
/// rule that no longer compiles is skipped with a warning: one bad rule must not silence
/// every e-mail.
pub fn with_stored(base: &Reader, stored: &[Substitution]) -> Reader {
    let mut rules = Rules::default();
    for s in stored {
        match rule(s) {
            Ok(r) => rules.rules.push(r),
            Err(e) => tracing::warn!(id = s.id, error = %e, "substitution rule skipped"),
        }
    }
    Reader { rules: rules.then(&base.rules), ..base.clone() }
}

/// The readers of the other languages e-mails may be written in: every language in
/// `[prompts] voices` but the main one whose rule file exists, with its voice. A broken
/// file is an error (named), a missing one means the language is not offered.
pub fn other_readers(cfg: &Config) -> Result<Vec<(String, Reader, String)>> {
    let mut out = Vec::new();
    for (lang, voice) in &cfg.prompts.voices {
        if *lang == cfg.prompts.language || !rules_file(cfg, lang).exists() {
            continue;
        }
        out.push((lang.clone(), reader(cfg, lang)?, voice.clone()));
    }
    Ok(out)
}

/// Which language, reader and voice an e-mail is read with: its own language's when
/// `others` has a reader for it, else the main ones. The one choice for the menu and
/// `tts preview --mail`.
pub fn for_mail<'a>(
    raw: &[u8],
    main: (&'a str, &'a Reader, &'a str),
    others: &'a [(String, Reader, String)],
) -> (&'a str, &'a Reader, &'a str) {
    let codes: Vec<&str> = others.iter().map(|(l, _, _)| l.as_str()).collect();
    let code = mail_language(raw, &codes, main.0);
    match others.iter().find(|(l, _, _)| l == code) {
        Some((l, r, v)) => (l.as_str(), r, v.as_str()),
        None => main,
    }
}
