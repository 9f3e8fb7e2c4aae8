//! `voxbridge config show`: the configuration in effect — the file's settings with every
//! default filled in — as TOML (like `doveconf -n`), secrets masked.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print the configuration in effect: the file's settings and every default, as TOML
    /// (or JSON). Passwords in URLs are shown as `***`; files holding secrets by path.
    Show {
        #[arg(long)]
        json: bool,
    },
}

/// A URL's password replaced: `smtp://ann:secret@host` → `smtp://ann:***@host`.
pub fn mask_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else { return s.to_string() };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &s[..scheme_end + 3], &rest[..colon], &rest[at..]),
            None => s.to_string(),
        },
        None => s.to_string(),
    }
}

fn mask(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = mask_url(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(mask),
        serde_json::Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                let secret = k.contains("password") && !k.ends_with("_file") || k == "pin" || k == "secret";
                if secret && !v.is_null() {
                    *v = serde_json::Value::String("***".into());
                } else {
                    mask(v);
                }
            }
        }
        _ => {}
    }
}

pub fn run(cfg: &Config, cmd: ConfigCmd) -> Result<()> {
    let ConfigCmd::Show { json } = cmd;
    let mut v = serde_json::to_value(cfg).context("cannot show the configuration")?;
    mask(&mut v);
    if json {
        println!("{v}");
    } else {
        // TOML has no null: unset settings are left out (their defaults are "none").
        let t: toml::Value = serde_json::from_value(strip_nulls(v)).context("cannot show the configuration")?;
        let e = cfg.encryption();
        println!("# encryption: SIP {}", e.sip);
        println!("# encryption: media {}", e.media);
        println!("# encryption: mail {}, certificates {}", e.mail, e.mail_certificates);
        print!("{}", toml::to_string(&t).context("cannot show the configuration")?);
    }
    Ok(())
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(strip_nulls).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(mask_url("smtp://ann:s3cret@mail.example:587"), "smtp://ann:***@mail.example:587");
        assert_eq!(mask_url("imaps://a%40b:p:w@h/INBOX"), "imaps://a%40b:***@h/INBOX");
        assert_eq!(mask_url("smtp://mail.example:25"), "smtp://mail.example:25");
        assert_eq!(mask_url("sip:1001@pbx"), "sip:1001@pbx");
        let mut v = serde_json::json!({"delivery": {"smtp_url": "smtp://u:pw@h"}, "x": {"password": "pw", "password_file": "/etc/f"}});
        mask(&mut v);
        assert_eq!(v["delivery"]["smtp_url"], "smtp://u:***@h");
        assert_eq!((v["x"]["password"].clone(), v["x"]["password_file"].clone()), ("***".into(), "/etc/f".into()));
    }
}
