//! Delivery of a composed message to the subscriber's mail server.
//!
//! IMAP: the message is placed with APPEND. To make a retry safe when the server took
//! the message but the answer was lost, we first search the folder for our Message-ID
//! and only append if it is not there. The server UID comes from the APPENDUID response
//! code (UIDPLUS, RFC 4315); async-imap's own `append` discards it, so [`imap::append`] sends
//! the command itself. Without UIDPLUS the UID is read back by the same search.
//! SMTP (POP3-only mailboxes): lettre; the stable Message-ID lets the retrieve agent
//! recognize a rare duplicate from a lost final reply.

use super::account::{Account, Scheme};
use super::imap::{self, quoted};
use super::net::STEP_TIMEOUT;
use anyhow::{anyhow, Context, Result};
use std::time::Duration;

pub use super::imap::ImapSession;

/// The UIDs of the messages in the selected folder carrying `message_id`, ascending. An
/// error is "unknown", never "absent": the caller must not append on it.
async fn uids_of_message_id(s: &mut ImapSession, message_id: &str) -> Result<Vec<u32>> {
    let id = message_id.replace(['"', '\\', '\r', '\n'], "");
    let mut uids = imap::uid_search(s, &format!("HEADER Message-ID {}", quoted(&id)))
        .await
        .with_context(|| format!("looking for {message_id} in the mailbox"))?;
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// Keeps the first of several copies of one of our messages (`uids` ascending, all
/// carrying `message_id`) and expunges the later ones. Returns the UID kept.
async fn keep_first(s: &mut ImapSession, message_id: &str, uids: &[u32]) -> Result<Option<u32>> {
    let Some((first, later)) = uids.split_first() else { return Ok(None) };
    if !later.is_empty() {
        let set = later.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        tracing::warn!(%message_id, kept = first, expunged = %set, "a retried delivery found an earlier copy: one kept");
        imap::uid_store(s, &set, "+FLAGS.SILENT (\\Deleted)").await?;
        imap::uid_expunge(s, &set).await?;
    }
    Ok(Some(*first))
}

/// After a retry's APPEND placed `appended`: if an earlier attempt's copy is there too,
/// keeps the first copy and expunges the later ones. Returns the UID kept.
pub async fn keep_first_copy(s: &mut ImapSession, message_id: &str, appended: u32) -> Result<u32> {
    let mut uids = uids_of_message_id(s, message_id).await?;
    uids.push(appended);
    uids.sort_unstable();
    uids.dedup();
    Ok(keep_first(s, message_id, &uids).await?.unwrap_or(appended))
}

/// Places `message` in the account's folder exactly once; returns (UIDVALIDITY, UID).
///
/// The message is first looked for by its Message-ID (an earlier attempt may have
/// placed it, perhaps twice: then the first copy is kept). A retry (`retry`: an earlier
/// attempt failed, perhaps after its APPEND reached the server) looks again after its
/// own APPEND: a server may commit the earlier attempt's copy only after the first look
/// (say it was slow to answer, which is why that attempt timed out); then the first copy
/// is kept and ours expunged. A search that fails is an error, never "not there": the
/// outbox tries again later rather than appending a second copy.
pub async fn imap_append(acct: &Account, message_id: &str, message: &[u8], retry: bool) -> Result<(u32, u32)> {
    let mut s = imap::login(acct).await?;
    let uidvalidity = imap::select(&mut s, &acct.folder, imap::Select::Plain).await?.validity;
    // Every attempt looks first: a first attempt too may follow one that was cut off
    // before it was counted (the process stopped mid-APPEND).
    let found = uids_of_message_id(&mut s, message_id).await?;
    let uid = match keep_first(&mut s, message_id, &found).await? {
        Some(uid) => {
            tracing::info!(%message_id, uid, "message already in the mailbox (an earlier attempt succeeded)");
            uid
        }
        None => match imap::append(&mut s, &acct.folder, message).await? {
            Some((validity, uid)) if validity == uidvalidity || uidvalidity == 0 => match retry {
                true => keep_first_copy(&mut s, message_id, uid).await?,
                false => uid,
            },
            _ => {
                // No UIDPLUS: NOOP makes the server report the new message, then search.
                imap::run(&mut s, "NOOP", "NOOP", |_| {}).await?;
                let uids = uids_of_message_id(&mut s, message_id).await?;
                keep_first(&mut s, message_id, &uids)
                    .await?
                    .ok_or_else(|| anyhow!("APPEND succeeded but the message is not found by its Message-ID"))?
            }
        },
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
    Ok((uidvalidity, uid))
}

/// Sends `message` by SMTP to `to`.
pub async fn smtp_send(acct: &Account, from: &str, to: &[&str], message: &[u8]) -> Result<()> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let policy = super::net::policy();
    let mut params = TlsParameters::builder(acct.host.clone())
        .dangerous_accept_invalid_certs(!policy.verify)
        .dangerous_accept_invalid_hostnames(!policy.verify);
    for der in &policy.ca_certs {
        params = params
            .add_root_certificate(Certificate::from_der(der.clone()).context("[mail] ca_file: a bad certificate")?);
    }
    let params = params.build().context("TLS parameters for SMTP")?;
    // smtps: TLS from the first byte. smtp: STARTTLS when offered; required with
    // credentials (SMTP AUTH only over TLS) and with [mail] require_tls.
    let tls = if acct.scheme == Scheme::Smtps {
        Tls::Wrapper(params)
    } else if policy.require || !acct.user.is_empty() {
        Tls::Required(params)
    } else {
        Tls::Opportunistic(params)
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&acct.host)
        .tls(tls)
        .port(acct.port)
        .timeout(Some(STEP_TIMEOUT));
    if !acct.user.is_empty() {
        b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
            acct.user.clone(),
            acct.password.clone(),
        ));
    }
    let mailer = b.build();
    let env = lettre::address::Envelope::new(
        Some(from.parse().context("bad envelope sender")?),
        to.iter()
            .map(|a| a.parse().with_context(|| format!("bad recipient address {a:?}")))
            .collect::<Result<Vec<_>>>()?,
    )?;
    mailer.send_raw(&env, message).await.map_err(|e| {
        let why = e.to_string();
        let hint = if why.contains("STARTTLS") && !acct.user.is_empty() {
            " (SMTP AUTH only over TLS: the password is not sent; use a server with STARTTLS or smtps://)"
        } else if why.contains("STARTTLS") {
            " ([mail] require_tls)"
        } else {
            ""
        };
        anyhow!("SMTP delivery to {}:{} failed: {why}{hint}", acct.host, acct.port)
    })?;
    Ok(())
}
