//! Pre-processing substitutions (the seed's Pre-Processing server: "ATT" → "A T and T"):
//! an ordered list of literal and regex rules, loaded from
//! `prompts/<lang>/substitutions.toml` and, ahead of them, from the admin's and the
//! mailbox's own. Rules run in order, before the built-in families, each over the
//! text the previous left.
//!
//! ```toml
//! [[rule]]
//! find = "ATT"          # literal; whole words only unless whole_word = false
//! say = "eh T and T"
//! case = "exact"        # or "any"
//!
//! [[rule]]
//! regex = '\bSt\.\s+([A-Z])'
//! say = "Saint $1"      # $1… are the groups
//! ```

use regex::Regex;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Regex,
    pub say: String,
    /// As written in the file, for `substitutions list`.
    pub source: String,
}

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    find: Option<String>,
    regex: Option<String>,
    say: String,
    #[serde(default = "yes")]
    whole_word: bool,
    #[serde(default)]
    case: Case,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Case {
    #[default]
    Exact,
    Any,
}

impl Rule {
    /// A literal rule: `find` as written, as a whole word unless `whole_word` is false.
    pub fn literal(find: &str, say: &str, whole_word: bool, any_case: bool) -> Result<Rule, String> {
        if find.is_empty() {
            return Err("a rule's find is empty".into());
        }
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let mut pat = regex::escape(find);
        if whole_word && word(find.chars().next()) {
            pat = format!(r"\b{pat}");
        }
        if whole_word && word(find.chars().last()) {
            pat = format!(r"{pat}\b");
        }
        if any_case {
            pat = format!("(?i){pat}");
        }
        let pattern = Regex::new(&pat).map_err(|e| format!("rule {find:?}: {e}"))?;
        // In a literal rule `$` is just a dollar sign.
        Ok(Rule { pattern, say: say.replace('$', "$$"), source: format!("find {find:?} → {say:?}") })
    }

    pub fn regex(re: &str, say: &str, any_case: bool) -> Result<Rule, String> {
        let pat = if any_case { format!("(?i){re}") } else { re.to_string() };
        let pattern = Regex::new(&pat).map_err(|e| format!("rule regex {re:?}: {e}"))?;
        Ok(Rule { pattern, say: say.to_string(), source: format!("regex {re:?} → {say:?}") })
    }
}

impl Rules {
    /// Parses a rule file; the error names the rule that is wrong.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let file: RuleFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut rules = Vec::new();
        for (i, r) in file.rule.into_iter().enumerate() {
            let any = r.case == Case::Any;
            let rule = match (r.find, r.regex) {
                (Some(f), None) => Rule::literal(&f, &r.say, r.whole_word, any),
                (None, Some(re)) => Rule::regex(&re, &r.say, any),
                _ => Err("give either find or regex".into()),
            };
            rules.push(rule.map_err(|e| format!("rule {}: {e}", i + 1))?);
        }
        Ok(Rules { rules })
    }

    /// These rules, then `other`'s.
    pub fn then(mut self, other: &Rules) -> Rules {
        self.rules.extend(other.rules.iter().cloned());
        self
    }

    pub fn apply(&self, text: &str) -> String {
        let mut t = text.to_string();
        for r in &self.rules {
            if let std::borrow::Cow::Owned(s) = r.pattern.replace_all(&t, r.say.as_str()) {
                t = s;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_regex_rules_in_order() {
        let r = Rules::parse(
            r#"
[[rule]]
find = "ATT"
say = "eh T and T"
[[rule]]
find = "asap"
say = "as soon as possible"
case = "any"
[[rule]]
regex = '\bSt\.\s+([A-Z])'
say = "Saint $1"
[[rule]]
find = "$"
say = "dollar"
whole_word = false
"#,
        )
        .unwrap();
        assert_eq!(r.apply("ATT and MATT"), "eh T and T and MATT", "whole words only");
        assert_eq!(r.apply("ASAP, asap"), "as soon as possible, as soon as possible");
        assert_eq!(r.apply("St. Louis"), "Saint Louis");
        assert_eq!(r.apply("5$"), "5dollar");
    }

    #[test]
    fn bad_files_say_which_rule() {
        assert!(Rules::parse("[[rule]]\nsay = \"x\"\n").unwrap_err().contains("rule 1: give either find or regex"));
        assert!(Rules::parse("[[rule]]\nregex = \"(\"\nsay = \"x\"\n").unwrap_err().contains("rule 1"));
        assert!(Rules::parse("[[rule]]\nfind = \"a\"\nsay = \"x\"\ncolour = 1\n").is_err());
    }
}
