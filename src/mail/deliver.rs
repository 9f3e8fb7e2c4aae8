//! Delivery of a composed message to the subscriber's mail server.
//!
//! IMAP: the message is placed with APPEND. To make a retry safe when the server took
//! the message but the answer was lost, we first search the folder for our Message-ID
//! and only append if it is not there. The server UID comes from the APPENDUID response
//! code (UIDPLUS, RFC 4315); async-imap's own `append` discards it, so [`append`] sends
//! the command itself. Without UIDPLUS the UID is read back by the same search.
//! SMTP (POP3-only mailboxes): lettre; the stable Message-ID lets the retrieve agent
//! recognize a rare duplicate from a lost final reply.

use super::account::{Account, Scheme};
use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use std::fmt::Debug;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connection timeout and a per-step timeout; a hung server must not hang the outbox.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

pub type ImapSession = async_imap::Session<Box<dyn Io>>;

async fn step<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
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

/// Connects and logs in to an IMAP account.
pub async fn imap_login(acct: &Account) -> Result<ImapSession> {
    if !matches!(acct.scheme, Scheme::Imap | Scheme::Imaps) {
        bail!("not an IMAP account");
    }
    let stream = connect(acct).await?;
    let mut client = async_imap::Client::new(stream);
    step("greeting", async {
        client.read_response().await?.ok_or_else(|| anyhow!("server closed the connection before its greeting"))
    })
    .await?;
    step("login", async {
        client
            .login(&acct.user, &acct.password)
            .await
            .map_err(|(e, _)| anyhow!("login as {} refused: {}", acct.user, server_says(&e)))
    })
    .await
}

/// An IMAP error as the server worded it: async-imap renders a NO or BAD answer as
/// `code: …, info: Some("…")`; an admin wants the server's own text ("NO
/// [AUTHENTICATIONFAILED] Authentication failed.").
fn server_says(e: &async_imap::error::Error) -> String {
    use async_imap::error::Error;
    let (status, detail) = match e {
        Error::No(d) => ("NO", d),
        Error::Bad(d) => ("BAD", d),
        other => return other.to_string(),
    };
    let text = detail
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .map(|t| t.replace("\\\"", "\"").replace("\\\\", "\\"));
    match text {
        Some(t) => format!("{status} {t}"),
        None => format!("{status} ({detail})"),
    }
}

/// Searches the selected folder for a Message-ID; returns the lowest matching UID (the
/// first copy, when a retry made a second one).
async fn find_by_message_id(s: &mut ImapSession, message_id: &str) -> Result<Option<u32>> {
    Ok(uids_of_message_id(s, message_id).await?.into_iter().min())
}

async fn uids_of_message_id(s: &mut ImapSession, message_id: &str) -> Result<Vec<u32>> {
    let id = message_id.replace(['"', '\\', '\r', '\n'], "");
    let uids = step("UID SEARCH", async { Ok(s.uid_search(format!("HEADER Message-ID \"{id}\"")).await?) }).await?;
    Ok(uids.into_iter().collect())
}

/// After a retry's APPEND placed `appended`: if an earlier attempt's copy is there too,
/// keeps the first copy and expunges the later ones. Returns the UID kept.
pub async fn keep_first_copy(s: &mut ImapSession, message_id: &str, appended: u32) -> Result<u32> {
    let mut uids = uids_of_message_id(s, message_id).await?;
    uids.push(appended);
    uids.sort_unstable();
    uids.dedup();
    let (first, later) = (uids[0], &uids[1..]);
    if !later.is_empty() {
        let set = later.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        tracing::warn!(%message_id, kept = first, expunged = %set, "a retried delivery found an earlier copy: one kept");
        step("UID STORE", async {
            let _: Vec<_> = s.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?.try_collect().await?;
            Ok(())
        })
        .await?;
        step("UID EXPUNGE", async {
            let _: Vec<_> = s.uid_expunge(&set).await?.try_collect().await?;
            Ok(())
        })
        .await?;
    }
    Ok(first)
}

/// Places `message` in the account's folder exactly once; returns (UIDVALIDITY, UID).
///
/// The message is first looked for by its Message-ID (an earlier attempt may have
/// placed it). A retry (`retry`: an earlier attempt failed, perhaps after its APPEND
/// reached the server) looks again after its own APPEND: a server may commit the
/// earlier attempt's copy only after the first look (say it was slow to answer, which
/// is why that attempt timed out); then the first copy is kept and ours expunged.
pub async fn imap_append(acct: &Account, message_id: &str, message: &[u8], retry: bool) -> Result<(u32, u32)> {
    let mut s = imap_login(acct).await?;
    let mbox = step("SELECT", async {
        s.select(&acct.folder).await.with_context(|| format!("cannot select folder {:?}", acct.folder))
    })
    .await?;
    // Mandatory in a SELECT answer; missing means the answer was cut off.
    let uidvalidity =
        mbox.uid_validity.ok_or_else(|| anyhow!("SELECT {:?} did not complete (connection lost?)", acct.folder))?;
    // Every attempt looks first: a first attempt too may follow one that was cut off
    // before it was counted (the process stopped mid-APPEND).
    let uid = match find_by_message_id(&mut s, message_id).await? {
        Some(uid) => {
            tracing::info!(%message_id, uid, "message already in the mailbox (an earlier attempt succeeded)");
            uid
        }
        None => match step("APPEND", append(&mut s, &acct.folder, message)).await? {
            Some((validity, uid)) if validity == uidvalidity || uidvalidity == 0 => match retry {
                true => keep_first_copy(&mut s, message_id, uid).await?,
                false => uid,
            },
            _ => {
                // No UIDPLUS: NOOP makes the server report the new message, then search.
                step("NOOP", async { Ok(s.noop().await?) }).await?;
                find_by_message_id(&mut s, message_id)
                    .await?
                    .ok_or_else(|| anyhow!("APPEND succeeded but the message is not found by its Message-ID"))?
            }
        },
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
    Ok((uidvalidity, uid))
}

/// IMAP-quoted string.
pub(crate) fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// APPEND with a synchronizing literal; returns (UIDVALIDITY, UID) from APPENDUID when
/// the server sends it.
pub async fn append(s: &mut ImapSession, folder: &str, message: &[u8]) -> Result<Option<(u32, u32)>> {
    use async_imap::imap_proto::rfc4315::UidSetMember;
    use async_imap::imap_proto::{Response, ResponseCode, Status};
    use tokio::io::AsyncWriteExt;
    if folder.contains(['\r', '\n']) {
        bail!("folder name {folder:?} contains a line break");
    }
    let tag = s.run_command(format!("APPEND {} {{{}}}", quoted(folder), message.len())).await?;
    loop {
        let r = s.read_response().await?.ok_or_else(|| anyhow!("connection closed during APPEND"))?;
        match r.parsed() {
            Response::Continue(_) => break,
            Response::Done { tag: t, outcome, .. } if *t == tag => {
                bail!("APPEND refused: {}", outcome.information.as_deref().unwrap_or("no reason given"))
            }
            _ => {}
        }
    }
    let stream = s.get_mut();
    stream.write_all(message).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await?;
    loop {
        let r = s.read_response().await?.ok_or_else(|| anyhow!("connection closed during APPEND"))?;
        if let Response::Done { tag: t, status, outcome } = r.parsed() {
            if *t != tag {
                continue;
            }
            if *status != Status::Ok {
                bail!("APPEND failed: {}", outcome.information.as_deref().unwrap_or("no reason given"));
            }
            return Ok(match &outcome.code {
                Some(ResponseCode::AppendUid(validity, uids)) => match uids.as_slice() {
                    [UidSetMember::Uid(uid)] => Some((*validity, *uid)),
                    _ => None,
                },
                _ => None,
            });
        }
    }
}

/// Sends `message` by SMTP to `to`.
pub async fn smtp_send(acct: &Account, from: &str, to: &str, message: &[u8]) -> Result<()> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let mut b = if acct.scheme == Scheme::Smtps {
        AsyncSmtpTransport::<Tokio1Executor>::relay(&acct.host)?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&acct.host)
    };
    b = b.port(acct.port).timeout(Some(STEP_TIMEOUT));
    if !acct.user.is_empty() {
        b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
            acct.user.clone(),
            acct.password.clone(),
        ));
    }
    let mailer = b.build();
    let env = lettre::address::Envelope::new(
        Some(from.parse().context("bad envelope sender")?),
        vec![to.parse().with_context(|| format!("bad recipient address {to:?}"))?],
    )?;
    mailer
        .send_raw(&env, message)
        .await
        .map_err(|e| anyhow!("SMTP delivery to {}:{} failed: {e}", acct.host, acct.port))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_refusals_read_as_the_server_worded_them() {
        use async_imap::error::Error;
        let no = Error::No(r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication \"x\" failed.")"#.into());
        assert_eq!(super::server_says(&no), r#"NO [AUTHENTICATIONFAILED] Authentication "x" failed."#);
        assert_eq!(super::server_says(&Error::Bad("code: None, info: None".into())), "BAD (code: None, info: None)");
        assert_eq!(super::server_says(&Error::ConnectionLost), "connection lost");
    }
}
