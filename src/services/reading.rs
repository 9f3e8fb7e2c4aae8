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
    Ok(Reader::new(rules))
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
    Reader { rules: rules.then(&base.rules), options: base.options }
}
