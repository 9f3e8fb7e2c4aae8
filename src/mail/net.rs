//! Connections to mail servers: TCP, or TLS for the implicit-TLS schemes, each step
//! bounded in time so a hung server never hangs a pass or the outbox.

use super::account::Account;
use anyhow::{anyhow, Context, Result};
use std::fmt::Debug;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connection timeout and a per-step timeout; a hung server must not hang the outbox.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

/// `f` within [`STEP_TIMEOUT`], its timeout an error that names `what`.
pub async fn step<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| anyhow!("{what}: timed out after {}s", STEP_TIMEOUT.as_secs()))?
}

/// Opens a TCP (or TLS) connection to the account's server.
pub async fn connect(acct: &Account) -> Result<Box<dyn Io>> {
    let addr = format!("{}:{}", acct.host, acct.port);
    let tcp = step("connect", async {
        tokio::net::TcpStream::connect(&addr).await.with_context(|| format!("cannot connect to {addr}"))
    })
    .await?;
    tcp.set_nodelay(true).ok();
    if acct.scheme.tls() {
        let cx = tokio_native_tls::TlsConnector::from(native_tls::TlsConnector::new()?);
        let tls =
            step("TLS handshake", async { cx.connect(&acct.host, tcp).await.context("TLS handshake failed") }).await?;
        Ok(Box::new(tls))
    } else {
        Ok(Box::new(tcp))
    }
}
