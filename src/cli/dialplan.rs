//! `voxbridge dialplan check [FILE]`: every problem of a dialplan, each with its file
//! and line, before the server is told to `reload` it.

use super::ExitError;
use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// The dialplan is invalid (sysexits' EX_DATAERR).
pub const EXIT_INVALID: u8 = 65;

#[derive(Debug, Subcommand)]
pub enum DialplanCmd {
    /// Check a dialplan: TOML syntax, unknown applications and keys, malformed patterns,
    /// menu keys with two meanings (or on an application that has none), prompts its
    /// applications play that the prompt directory ([prompts] dir and language) lacks,
    /// and routes that no number can reach because an earlier route takes them all (a
    /// warning).
    ///
    /// Prints `FILE:LINE: error|warning: …` for each; exits 65 when there is an error
    /// (the server would refuse it and keep the old one), 0 otherwise.
    ///
    /// Example: voxbridge dialplan check dialplans/new.toml && voxbridge reload
    Check {
        /// The dialplan (default: [dialplan] file of the configuration).
        file: Option<PathBuf>,
    },
}

pub fn run(cfg: &Config, cmd: DialplanCmd) -> Result<()> {
    let DialplanCmd::Check { file } = cmd;
    let path = file.unwrap_or_else(|| cfg.dialplan.file.clone());
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read dialplan {}", path.display()))?;
    let mut problems = crate::ivr::dialplan::check(&text);
    if !problems.iter().any(|p| p.error) {
        problems.extend(missing_prompts(cfg, &text)?);
    }
    for p in &problems {
        println!("{}:{}: {}: {}", path.display(), p.line, if p.error { "error" } else { "warning" }, p.message);
    }
    let errors = problems.iter().filter(|p| p.error).count();
    if errors > 0 {
        return Err(ExitError { code: EXIT_INVALID, message: format!("{}: {errors} error(s)", path.display()) }.into());
    }
    let routes = crate::ivr::dialplan::Dialplan::parse(&text)?.routes.len();
    println!("{}: {routes} routes, {} warning(s)", path.display(), problems.len());
    Ok(())
}

/// The prompts the dialplan's applications would play that the configured language
/// has no text for (callers would hear nothing there), at the first route needing each.
fn missing_prompts(cfg: &Config, text: &str) -> Result<Vec<crate::ivr::dialplan::Problem>> {
    let dialplan = crate::ivr::dialplan::Dialplan::parse(text)?;
    let dir = cfg.prompts.dir.join(&cfg.prompts.language);
    let texts = crate::media::prompts::read_texts(&dir)
        .with_context(|| format!("cannot read the prompt texts of {}", dir.display()))?;
    let ids: Vec<&str> = texts.keys().map(String::as_str).collect();
    let lines = crate::ivr::dialplan::route_lines(text);
    Ok(crate::ivr::prompt_use::missing(&dialplan, &ids)
        .into_iter()
        .map(|(id, pattern)| {
            let i = dialplan.routes.iter().position(|r| r.pattern == pattern).unwrap_or(0);
            crate::ivr::dialplan::Problem {
                line: lines.get(i).copied().unwrap_or(1),
                error: true,
                message: format!(
                    "route {pattern:?} plays prompt {id:?}, which {} does not have",
                    dir.join("prompts.toml").display()
                ),
            }
        })
        .collect())
}
