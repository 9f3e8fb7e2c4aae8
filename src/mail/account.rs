//! Mail account URLs: `imap://user:password@host:port/FOLDER`, `imaps://…`,
//! `pop3://user:password@host:port`, `pop3s://…`, `smtp://[user:password@]host:port`,
//! `smtps://…`. User and password may be percent-encoded.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// IMAP folder (default INBOX); empty for other schemes.
    pub folder: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Smtp,
    Smtps,
}

impl Scheme {
    pub fn tls(self) -> bool {
        matches!(self, Scheme::Imaps | Scheme::Pop3s | Scheme::Smtps)
    }
}

/// Percent-decoding of URL user and password (`url` leaves them encoded).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Account {
    /// Parses and checks a URL; `expected` lists the schemes allowed in this position.
    pub fn parse(url: &str, expected: &[Scheme]) -> Result<Account> {
        let u = url::Url::parse(url).with_context(|| format!("{url:?} is not a valid URL"))?;
        let (scheme, default_port) = match u.scheme() {
            "imap" => (Scheme::Imap, 143),
            "imaps" => (Scheme::Imaps, 993),
            "pop3" => (Scheme::Pop3, 110),
            "pop3s" => (Scheme::Pop3s, 995),
            "smtp" => (Scheme::Smtp, 25),
            "smtps" => (Scheme::Smtps, 465),
            other => bail!("unsupported URL scheme {other:?} in {url:?}"),
        };
        if !expected.contains(&scheme) {
            bail!(
                "{url:?}: expected a URL of scheme {}",
                expected.iter().map(|s| format!("{s:?}").to_lowercase()).collect::<Vec<_>>().join(" or ")
            );
        }
        let host = u.host_str().filter(|h| !h.is_empty()).with_context(|| format!("{url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let user = decode(u.username());
        let password = decode(u.password().unwrap_or(""));
        if matches!(scheme, Scheme::Imap | Scheme::Imaps | Scheme::Pop3 | Scheme::Pop3s)
            && (user.is_empty() || password.is_empty())
        {
            bail!("{url:?} needs a user and a password (scheme://user:password@host:port)");
        }
        let folder = match scheme {
            Scheme::Imap | Scheme::Imaps => {
                let f = decode(u.path().trim_start_matches('/'));
                if f.is_empty() {
                    "INBOX".to_string()
                } else {
                    f
                }
            }
            _ => String::new(),
        };
        Ok(Account { scheme, host, port: u.port().unwrap_or(default_port), user, password, folder })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let a = Account::parse("imap://bob:s%40cret@127.0.0.1:10143/INBOX", &[Scheme::Imap]).unwrap();
        assert_eq!(
            (a.user.as_str(), a.password.as_str(), a.port, a.folder.as_str()),
            ("bob", "s@cret", 10143, "INBOX")
        );
        let a = Account::parse("imaps://bob:x@mail.example", &[Scheme::Imap, Scheme::Imaps]).unwrap();
        assert_eq!((a.port, a.folder.as_str(), a.scheme.tls()), (993, "INBOX", true));
        let a = Account::parse("smtp://127.0.0.1:10025", &[Scheme::Smtp]).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 10025));
        assert!(Account::parse("imap://127.0.0.1:1/INBOX", &[Scheme::Imap])
            .unwrap_err()
            .to_string()
            .contains("user and a password"));
        assert!(Account::parse("http://x", &[Scheme::Imap]).is_err());
        assert!(Account::parse("pop3://a:b@h", &[Scheme::Imap]).unwrap_err().to_string().contains("expected"));
        assert!(Account::parse("not a url", &[Scheme::Imap]).is_err());
    }
}
