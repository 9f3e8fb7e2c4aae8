//! Connections to mail servers: TCP, TLS for the implicit-TLS schemes (`imaps`, `pop3s`),
//! and STARTTLS (RFC 3501 §6.2.1, RFC 2595 §4) on `imap://` and `pop3://` when the server
//! offers it. Each step is bounded in time so a hung server never hangs a pass or the
//! outbox.
//!
//! Once a server offers STARTTLS, the upgrade must succeed (a certificate that does not
//! verify is an error, never a quiet fall-back to plain text: that is what an attacker
//! stripping TLS would want). A server that does not offer it is used in plain text,
//! logged once per server, unless `[mail] require_tls` refuses that.

use super::account::{Account, Scheme};
use anyhow::{anyhow, bail, Context, Result};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection timeout and a per-step timeout; a hung server must not hang the outbox.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

/// How this process talks TLS to mail servers (`[mail]`).
#[derive(Debug, Clone)]
pub struct TlsPolicy {
    /// Refuse to log in (or send by SMTP) over a connection that is not encrypted.
    pub require: bool,
    /// Verify the server's certificate and name (off only by explicit choice).
    pub verify: bool,
    /// Trust these CA certificates (DER) as well as the system's.
    pub ca_certs: Vec<Vec<u8>>,
}

impl TlsPolicy {
    /// The policy `[mail]` describes; its CA file read now (an unreadable one is an
    /// error at start, not at the first delivery).
    pub fn from_config(m: &crate::config::MailConfig) -> Result<TlsPolicy> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let mut ca_certs = Vec::new();
        if let Some(f) = &m.ca_file {
            let pem = std::fs::read(f).with_context(|| format!("[mail] ca_file: cannot read {}", f.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| anyhow!("[mail] ca_file {}: {e:?}", f.display()))?;
                ca_certs.push(cert.as_ref().to_vec());
            }
            if ca_certs.is_empty() {
                bail!("[mail] ca_file {}: no PEM certificate in it", f.display());
            }
        }
        Ok(TlsPolicy { require: m.require_tls, verify: m.tls_verify, ca_certs })
    }

    /// The TLS client of the policy.
    fn connector(&self) -> Result<native_tls::TlsConnector> {
        let mut b = native_tls::TlsConnector::builder();
        for der in &self.ca_certs {
            b.add_root_certificate(
                native_tls::Certificate::from_der(der).context("[mail] ca_file: a bad certificate")?,
            );
        }
        if !self.verify {
            b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
        }
        Ok(b.build()?)
    }
}

impl Default for TlsPolicy {
    fn default() -> Self {
        TlsPolicy { require: false, verify: true, ca_certs: Vec::new() }
    }
}

/// The policy of this process and its TLS client, built once. One for all its
/// connections, set at start (by `serve` and every CLI command, from the configuration)
/// — like a TLS library's process default, so that the sync engine, the outbox and the
/// CLI's passes need not carry it through every call.
struct Installed {
    policy: Arc<TlsPolicy>,
    connector: Result<native_tls::TlsConnector, String>,
}

static POLICY: RwLock<Option<Arc<Installed>>> = RwLock::new(None);

fn install(p: TlsPolicy) -> Arc<Installed> {
    let connector = p.connector().map_err(|e| format!("{e:#}"));
    Arc::new(Installed { policy: Arc::new(p), connector })
}

pub fn set_policy(p: TlsPolicy) {
    if !p.verify {
        tracing::warn!("[mail] tls_verify = false: mail servers' certificates are not checked (anyone on the path can read the passwords)");
    }
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(install(p));
}

fn installed() -> Arc<Installed> {
    if let Some(i) = POLICY.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return i.clone();
    }
    POLICY.write().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| install(TlsPolicy::default())).clone()
}

pub fn policy() -> Arc<TlsPolicy> {
    installed().policy.clone()
}

/// `f` within [`STEP_TIMEOUT`], its timeout an error that names `what`.
pub async fn step<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("{what}: timed out after {}s", STEP_TIMEOUT.as_secs()))?
}

/// An open connection to a mail server.
pub struct Connection {
    pub io: Box<dyn Io>,
    /// The server's greeting was read during STARTTLS: the protocol client must not
    /// wait for another one.
    pub greeted: bool,
}

/// Opens a connection to the account's server: TLS for `imaps`/`pop3s`; for `imap`/`pop3`
/// STARTTLS when offered (required by [`TlsPolicy::require`]).
pub async fn connect(acct: &Account) -> Result<Connection> {
    let p = installed();
    let addr = format!("{}:{}", acct.host, acct.port);
    let mut tcp = step("connect", async {
        tokio::net::TcpStream::connect(&addr).await.with_context(|| format!("cannot connect to {addr}"))
    })
    .await?;
    tcp.set_nodelay(true).ok();
    if acct.scheme.tls() {
        let io = handshake(&p, &acct.host, tcp).await?;
        return Ok(Connection { io: Box::new(io), greeted: false });
    }
    let offered = match acct.scheme {
        Scheme::Imap => step("STARTTLS", imap_starttls(&mut tcp)).await?,
        Scheme::Pop3 => step("STLS", pop3_stls(&mut tcp)).await?,
        _ => false,
    };
    if offered {
        let io = handshake(&p, &acct.host, tcp).await?;
        return Ok(Connection { io: Box::new(io), greeted: true });
    }
    if p.policy.require {
        bail!(
            "{addr} offers no STARTTLS and [mail] require_tls is set: not logging in over plain text \
             (use {}s:// if the server has implicit TLS)",
            format!("{:?}", acct.scheme).to_lowercase()
        );
    }
    plain_warning(&addr);
    Ok(Connection { io: Box::new(tcp), greeted: matches!(acct.scheme, Scheme::Imap | Scheme::Pop3) })
}

/// Says once per server that its password goes in clear.
fn plain_warning(addr: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut w = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !w.iter().any(|a| a == addr) {
        w.push(addr.to_string());
        tracing::warn!(server = addr, "mail server offers no STARTTLS: logging in over plain text");
    }
}

async fn handshake(
    p: &Installed,
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_native_tls::TlsStream<tokio::net::TcpStream>> {
    let cx = tokio_native_tls::TlsConnector::from(p.connector.clone().map_err(|e| anyhow!(e))?);
    step("TLS handshake", async {
        cx.connect(host, tcp).await.map_err(|e| {
            let why = e.to_string();
            let hint = if why.contains("certificate verify failed") || why.contains("self signed") {
                " — the server's certificate is not trusted: set [mail] ca_file to the CA that signed it"
            } else {
                ""
            };
            anyhow!("TLS handshake with {host} failed: {why}{hint}")
        })
    })
    .await
}

/// One line from the server, read byte by byte: nothing after it may be consumed before
/// the TLS handshake (those bytes belong to TLS).
async fn line(tcp: &mut tokio::net::TcpStream) -> Result<String> {
    let mut buf = Vec::new();
    loop {
        let b = tcp.read_u8().await.context("the server closed the connection")?;
        buf.push(b);
        if b == b'\n' {
            break;
        }
        if buf.len() > 8192 {
            bail!("a server line longer than 8192 bytes before login");
        }
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
}

/// Whether an IMAP capability list (the words of a CAPABILITY line) has STARTTLS.
fn has_starttls(words: &str) -> bool {
    words.split(|c: char| c.is_ascii_whitespace() || c == '[' || c == ']').any(|w| w.eq_ignore_ascii_case("STARTTLS"))
}

/// IMAP: reads the greeting, asks for capabilities unless the greeting names them, and
/// sends STARTTLS when offered. True when the connection is ready for the handshake.
async fn imap_starttls(tcp: &mut tokio::net::TcpStream) -> Result<bool> {
    let greeting = line(tcp).await?;
    let upper = greeting.to_ascii_uppercase();
    if upper.starts_with("* BYE") {
        bail!("the server refused the connection: {greeting}");
    }
    if !upper.starts_with("* OK") {
        // PREAUTH or garbage: no STARTTLS possible (RFC 3501: only in the not
        // authenticated state).
        bail!("unexpected IMAP greeting: {greeting:?}");
    }
    let mut offered = upper.contains("[CAPABILITY") && has_starttls(&upper);
    if !upper.contains("[CAPABILITY") {
        tcp.write_all(b"vb0 CAPABILITY\r\n").await?;
        loop {
            let l = line(tcp).await?.to_ascii_uppercase();
            if l.starts_with("* CAPABILITY") {
                offered = has_starttls(&l);
            } else if l.starts_with("VB0 ") {
                break;
            }
        }
    }
    if !offered {
        return Ok(false);
    }
    tcp.write_all(b"vb1 STARTTLS\r\n").await?;
    loop {
        let l = line(tcp).await?;
        if let Some(rest) = l.strip_prefix("vb1 ") {
            if rest.to_ascii_uppercase().starts_with("OK") {
                return Ok(true);
            }
            bail!("the server offered STARTTLS but refused it: {rest}");
        }
    }
}

/// POP3: reads the greeting, asks CAPA (RFC 2449) and sends STLS when offered.
async fn pop3_stls(tcp: &mut tokio::net::TcpStream) -> Result<bool> {
    let greeting = line(tcp).await?;
    if !greeting.starts_with("+OK") {
        bail!("unexpected POP3 greeting: {greeting:?}");
    }
    tcp.write_all(b"CAPA\r\n").await?;
    if !line(tcp).await?.starts_with("+OK") {
        // No CAPA: an RFC 1939 server, which has no STLS either.
        return Ok(false);
    }
    let mut offered = false;
    loop {
        let l = line(tcp).await?;
        if l == "." {
            break;
        }
        offered |= l.eq_ignore_ascii_case("STLS");
    }
    if !offered {
        return Ok(false);
    }
    tcp.write_all(b"STLS\r\n").await?;
    let answer = line(tcp).await?;
    if !answer.starts_with("+OK") {
        bail!("the server offered STLS but refused it: {answer}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_words_and_ca_files() {
        assert!(has_starttls("* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] ready"));
        assert!(has_starttls("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready"));
        assert!(!has_starttls("* CAPABILITY IMAP4rev1 XSTARTTLS LOGINDISABLED"));
        let dir = tempfile::tempdir().unwrap();
        let ca = |text: &str| {
            let f = dir.path().join("ca.pem");
            std::fs::write(&f, text).unwrap();
            TlsPolicy::from_config(&crate::config::MailConfig { ca_file: Some(f), ..Default::default() })
        };
        let two = "x\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAAAB\n-----END CERTIFICATE-----\n";
        assert_eq!(ca(two).unwrap().ca_certs.len(), 2);
        assert!(ca("-----BEGIN CERTIFICATE-----\nno end").is_err());
        assert!(ca("no certificate").is_err());
    }

    /// A scripted server: sends `script` (answers to whatever is asked), then waits.
    async fn scripted(script: &'static [u8]) -> tokio::net::TcpStream {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(script).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        tokio::net::TcpStream::connect(addr).await.unwrap()
    }

    #[tokio::test]
    async fn hostile_or_refusing_servers_are_errors_not_hangs() {
        let e = |r: Result<bool>| format!("{:#}", r.unwrap_err());
        let mut t = scripted(b"* BYE too busy\r\n").await;
        assert!(e(imap_starttls(&mut t).await).contains("refused the connection"));
        let mut t = scripted(b"* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\nvb0 OK done\r\nvb1 NO not now\r\n").await;
        assert!(e(imap_starttls(&mut t).await).contains("refused it: NO not now"));
        let mut t = scripted(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n").await;
        assert!(!imap_starttls(&mut t).await.unwrap(), "not offered");
        let long: &'static [u8] = Box::leak(vec![b'x'; 9000].into_boxed_slice());
        let mut t = scripted(long).await;
        assert!(e(imap_starttls(&mut t).await).contains("longer than 8192"));
        let mut t = scripted(b"+OK pop\r\n-ERR no CAPA\r\n").await;
        assert!(!pop3_stls(&mut t).await.unwrap(), "an RFC 1939 server");
        let mut t = scripted(b"+OK pop\r\n+OK\r\nUSER\r\nSTLS\r\n.\r\n-ERR later\r\n").await;
        assert!(e(pop3_stls(&mut t).await).contains("refused it: -ERR later"));
        let mut t = scripted(b"garbage\r\n").await;
        assert!(e(pop3_stls(&mut t).await).contains("unexpected POP3 greeting"));
    }
}
