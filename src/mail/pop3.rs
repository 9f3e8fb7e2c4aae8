//! A small POP3 client (RFC 1939, with UIDL): enough for the sync engine's server list,
//! retrieval and deletion. Lines and messages are bounded; every server answer is
//! checked for `+OK`, and `-ERR` texts are passed on in the error.

use super::account::Account;
use super::net::{connect, Io, STEP_TIMEOUT};
use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Longest line accepted (RFC 1939 allows 512 octets for responses; messages may be
/// longer per line, so this is generous).
const MAX_LINE: usize = 64 * 1024;
/// Largest message retrieved.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub struct Pop3 {
    io: BufReader<Box<dyn Io>>,
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f).await.map_err(|_| anyhow!("POP3 {what}: timed out"))?
}

impl Pop3 {
    /// Connects and logs in with USER/PASS.
    pub async fn login(acct: &Account) -> Result<Pop3> {
        let conn = connect(acct).await?;
        let mut p = Pop3 { io: BufReader::new(conn.io) };
        if !conn.greeted {
            timed("greeting", p.status()).await?;
        }
        p.command("USER", &format!("USER {}", acct.user)).await?;
        p.command("PASS", &format!("PASS {}", acct.password))
            .await
            .map_err(|e| anyhow!("login as {} refused: {e}", acct.user))?;
        Ok(p)
    }

    async fn line(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let n = (&mut self.io).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        if buf.len() > MAX_LINE {
            bail!("line longer than {MAX_LINE} bytes");
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(buf)
    }

    /// Reads a status line: Ok(text after +OK) or Err(text after -ERR).
    async fn status(&mut self) -> Result<String> {
        let l = self.line().await?;
        let l = String::from_utf8_lossy(&l).to_string();
        if let Some(rest) = l.strip_prefix("+OK") {
            Ok(rest.trim().to_string())
        } else if let Some(rest) = l.strip_prefix("-ERR") {
            Err(anyhow!("{}", rest.trim()))
        } else {
            Err(anyhow!("unexpected POP3 answer {:?}", l.chars().take(80).collect::<String>()))
        }
    }

    async fn command(&mut self, what: &str, cmd: &str) -> Result<String> {
        if cmd.contains(['\r', '\n']) {
            bail!("POP3 {what}: argument contains a line break");
        }
        timed(what, async {
            self.io.get_mut().write_all(format!("{cmd}\r\n").as_bytes()).await?;
            self.io.get_mut().flush().await?;
            self.status().await.with_context(|| format!("POP3 {what}"))
        })
        .await
    }

    /// A multi-line body after +OK, dot-unstuffed, up to `limit` bytes.
    async fn multiline(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await?;
            if l == b"." {
                return Ok(out);
            }
            let l = if l.starts_with(b"..") { &l[1..] } else { &l[..] };
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
            if out.len() > limit {
                bail!("POP3 answer larger than {limit} bytes");
            }
        }
    }

    /// (message number, unique-id) of every message in the maildrop.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>> {
        self.command("UIDL", "UIDL").await?;
        let body = timed("UIDL", self.multiline(MAX_MESSAGE)).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&body).lines() {
            let mut it = line.split_whitespace();
            let (Some(n), Some(uid)) = (it.next(), it.next()) else { bail!("malformed UIDL line {line:?}") };
            out.push((n.parse().with_context(|| format!("malformed UIDL line {line:?}"))?, uid.to_string()));
        }
        Ok(out)
    }

    /// STAT: how many messages the maildrop holds.
    pub async fn stat(&mut self) -> Result<u32> {
        let text = self.command("STAT", "STAT").await?;
        let n = text.split_whitespace().next().unwrap_or("");
        n.parse().map_err(|_| anyhow!("malformed STAT answer {text:?}"))
    }

    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>> {
        self.command("RETR", &format!("RETR {n}")).await?;
        timed("RETR", self.multiline(MAX_MESSAGE)).await
    }

    pub async fn dele(&mut self, n: u32) -> Result<()> {
        self.command("DELE", &format!("DELE {n}")).await.map(|_| ())
    }

    /// QUIT commits deletions (the UPDATE state); only its +OK means they happened.
    pub async fn quit(mut self) -> Result<()> {
        self.command("QUIT", "QUIT").await.map(|_| ())
    }
}
