//! IMAP commands whose every answer is checked: the sync engine's and the outbox's
//! access to a mailbox.
//!
//! async-imap 0.12 parses responses well, but its FETCH, SEARCH, STORE and EXPUNGE
//! streams end at the tagged reply whatever its status, and end quietly when the
//! connection drops: a refused `UID FETCH 1:*` or a cut-off one reads as a short or
//! empty mailbox, and every message it left out as deleted on the server. So the
//! commands here are sent with async-imap's `run_command` and their responses read one
//! at a time up to their own tagged reply ([`Pending::next`]): only a tagged `OK`
//! completes a command; a `NO` or `BAD` is an error in the server's words, and so is an
//! untagged `BYE` or a connection that ends before the tagged reply. What a command
//! returned is evidence only once it completed.

use super::account::{Account, Scheme};
use super::net::{connect, step, Io};
use anyhow::{anyhow, bail, Result};
use async_imap::imap_proto::{AttributeValue, MailboxDatum, RequestId, Response, ResponseCode, Status};

pub type ImapSession = async_imap::Session<Box<dyn Io>>;

/// Connects and logs in to an IMAP account.
pub async fn login(acct: &Account) -> Result<ImapSession> {
    if !matches!(acct.scheme, Scheme::Imap | Scheme::Imaps) {
        bail!("not an IMAP account");
    }
    let conn = connect(acct).await?;
    let mut client = async_imap::Client::new(conn.io);
    if !conn.greeted {
        step("greeting", async {
            client.read_response().await?.ok_or_else(|| anyhow!("server closed the connection before its greeting"))
        })
        .await?;
    }
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

/// IMAP-quoted string.
pub(crate) fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A command sent whose tagged reply has not been read yet.
pub struct Pending {
    tag: RequestId,
    what: String,
    /// APPENDUID of the tagged OK (UIDPLUS, RFC 4315): (UIDVALIDITY, UID).
    appended: Option<(u32, u32)>,
}

/// Sends one command line; `what` names it in errors ("UID FETCH", "SELECT").
pub async fn send(s: &mut ImapSession, what: &str, line: &str) -> Result<Pending> {
    if line.contains(['\r', '\n']) {
        bail!("{what}: command contains a line break");
    }
    let tag = step(what, async { Ok(s.run_command(line).await?) }).await?;
    Ok(Pending { tag, what: what.to_string(), appended: None })
}

/// Words of a tagged or untagged status response, as the server sent them (the
/// response code as imap-proto parsed it, then the text).
fn words(status: &Status, code: Option<&ResponseCode<'_>>, info: Option<&str>) -> String {
    let status = match status {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::PreAuth => "PREAUTH",
        Status::Bye => "BYE",
    };
    // imap-proto keeps only the parsed code; its variant name, upper-cased, is the
    // code's own name (Alert → ALERT, TryCreate → TRYCREATE). Codes it does not know
    // stay in the text, as the server wrote them.
    let code = code
        .map(|c| {
            let name = format!("{c:?}");
            let name = name.split(['(', ' ', '{']).next().unwrap_or("").to_ascii_uppercase();
            format!(" [{name}]")
        })
        .unwrap_or_default();
    format!("{status}{code} {}", info.unwrap_or("(no text)"))
}

impl Pending {
    /// Reads the next response of this command: `Some(f(response))` for an untagged
    /// one, `None` once its tagged `OK` arrived. A tagged `NO`/`BAD`, an untagged `BYE`,
    /// an unreadable response, silence for longer than a step, or the end of the
    /// connection before the tagged reply is an error.
    pub async fn next<T>(&mut self, s: &mut ImapSession, f: impl FnOnce(&Response<'_>) -> T) -> Result<Option<T>> {
        let what = &self.what;
        let r = step(what, async {
            s.read_response().await.map_err(|e| anyhow!("{what}: connection failed before the server's answer: {e}"))
        })
        .await?
        .ok_or_else(|| anyhow!("{what}: connection lost before the server's answer was complete"))?;
        match r.parsed() {
            Response::Done { tag, status, outcome } if *tag == self.tag => match status {
                Status::Ok => {
                    use async_imap::imap_proto::rfc4315::UidSetMember;
                    if let Some(ResponseCode::AppendUid(validity, uids)) = &outcome.code {
                        if let [UidSetMember::Uid(u)] = uids.as_slice() {
                            self.appended = Some((*validity, *u));
                        }
                    }
                    Ok(None)
                }
                st => bail!(
                    "{what} failed: the server answered {}",
                    words(st, outcome.code.as_ref(), outcome.information.as_deref())
                ),
            },
            Response::Data { status: Status::Bye, outcome } => bail!(
                "{what}: the server closed the connection: {}",
                words(&Status::Bye, outcome.code.as_ref(), outcome.information.as_deref())
            ),
            other => Ok(Some(f(other))),
        }
    }

    /// Reads the rest of the command's answer, handing each untagged response to `each`.
    pub async fn finish(&mut self, s: &mut ImapSession, mut each: impl FnMut(&Response<'_>)) -> Result<()> {
        while self.next(s, &mut each).await?.is_some() {}
        Ok(())
    }
}

/// Sends a command and reads its whole answer (see [`Pending::finish`]).
pub async fn run(s: &mut ImapSession, what: &str, line: &str, each: impl FnMut(&Response<'_>)) -> Result<()> {
    send(s, what, line).await?.finish(s, each).await
}

/// The server's capabilities, upper-cased.
pub async fn capabilities(s: &mut ImapSession) -> Result<Vec<String>> {
    use async_imap::imap_proto::Capability;
    let mut caps = Vec::new();
    run(s, "CAPABILITY", "CAPABILITY", |r| {
        if let Response::Capabilities(list) = r {
            caps.extend(list.iter().map(|c| match c {
                Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            }));
        }
    })
    .await?;
    if caps.is_empty() {
        bail!("CAPABILITY: the server listed no capabilities");
    }
    Ok(caps)
}

/// One message's flags as a FETCH reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub uid: u32,
    pub seen: bool,
    pub deleted: bool,
}

/// What one FETCH response carried.
#[derive(Debug)]
pub struct Fetched<'a> {
    pub uid: Option<u32>,
    /// None when the response had no FLAGS.
    pub flags: Option<(bool, bool)>,
    pub body: Option<&'a [u8]>,
}

impl Fetched<'_> {
    pub fn flags(&self) -> Option<Flags> {
        match (self.uid, self.flags) {
            (Some(uid), Some((seen, deleted))) => Some(Flags { uid, seen, deleted }),
            _ => None,
        }
    }
}

/// The attributes of a FETCH response (None for any other response).
pub fn fetched<'a>(r: &'a Response<'a>) -> Option<Fetched<'a>> {
    let Response::Fetch(_, attrs) = r else { return None };
    let mut out = Fetched { uid: None, flags: None, body: None };
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => out.uid = Some(*u),
            AttributeValue::Flags(fl) => {
                out.flags = Some((
                    fl.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")),
                    fl.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")),
                ))
            }
            AttributeValue::BodySection { data: Some(d), .. } => out.body = Some(d),
            AttributeValue::Rfc822(Some(d)) => out.body = Some(d),
            _ => {}
        }
    }
    Some(out)
}

/// How a folder is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Plain,
    /// `(CONDSTORE)`: HIGHESTMODSEQ reported (RFC 7162).
    Condstore,
    /// `(QRESYNC (uidvalidity modseq))`: changes and expunges since `modseq` reported in
    /// the same answer (needs `ENABLE QRESYNC` first).
    Qresync {
        validity: u32,
        modseq: u64,
    },
}

/// What a completed SELECT reported.
#[derive(Debug, Default)]
pub struct Selected {
    pub validity: u32,
    /// None when the server has no mod-sequences for the folder (NOMODSEQ or no CONDSTORE).
    pub modseq: Option<u64>,
    /// The EXISTS count: informative only, never evidence that messages are gone.
    pub exists: u32,
    /// QRESYNC: UID ranges expunged since the given modseq (inclusive).
    pub vanished: Vec<(u32, u32)>,
    /// QRESYNC: messages changed (or new) since the given modseq.
    pub changed: Vec<Flags>,
}

/// SELECT `folder` as `how` says; UIDVALIDITY is mandatory in the answer
/// (RFC 3501), so an answer without it is an error.
pub async fn select(s: &mut ImapSession, folder: &str, how: Select) -> Result<Selected> {
    let arg = match how {
        Select::Plain => String::new(),
        Select::Condstore => " (CONDSTORE)".to_string(),
        Select::Qresync { validity, modseq } => format!(" (QRESYNC ({validity} {modseq}))"),
    };
    let mut sel = Selected::default();
    let mut validity = None;
    run(s, "SELECT", &format!("SELECT {}{arg}", quoted(folder)), |r| match r {
        Response::Data { status: Status::Ok, outcome } => match &outcome.code {
            Some(ResponseCode::UidValidity(v)) => validity = Some(*v),
            Some(ResponseCode::HighestModSeq(m)) => sel.modseq = Some(*m),
            _ => {}
        },
        Response::MailboxData(MailboxDatum::Exists(n)) => sel.exists = *n,
        Response::Vanished { uids, .. } => sel.vanished.extend(uids.iter().map(|r| (*r.start(), *r.end()))),
        other => {
            if let Some(f) = fetched(other).as_ref().and_then(Fetched::flags) {
                sel.changed.push(f);
            }
        }
    })
    .await
    .map_err(|e| anyhow!("cannot select {folder:?}: {e:#}"))?;
    sel.validity = validity.ok_or_else(|| anyhow!("SELECT {folder:?}: the server did not report UIDVALIDITY"))?;
    Ok(sel)
}

/// `UID SEARCH criteria`: the UIDs found.
pub async fn uid_search(s: &mut ImapSession, criteria: &str) -> Result<Vec<u32>> {
    let mut uids = Vec::new();
    run(s, "UID SEARCH", &format!("UID SEARCH {criteria}"), |r| {
        if let Response::MailboxData(MailboxDatum::Search(v)) = r {
            uids.extend_from_slice(v);
        }
    })
    .await?;
    Ok(uids)
}

/// `UID FETCH set (UID FLAGS)`, optionally `(CHANGEDSINCE m)`.
pub async fn uid_fetch_flags(s: &mut ImapSession, set: &str, changed_since: Option<u64>) -> Result<Vec<Flags>> {
    let modifier = changed_since.map(|m| format!(" (CHANGEDSINCE {m})")).unwrap_or_default();
    let mut out = Vec::new();
    run(s, "UID FETCH", &format!("UID FETCH {set} (UID FLAGS){modifier}"), |r| {
        if let Some(f) = fetched(r).as_ref().and_then(Fetched::flags) {
            out.push(f);
        }
    })
    .await?;
    Ok(out)
}

/// `UID STORE set query` (say `+FLAGS.SILENT (\Deleted)`).
pub async fn uid_store(s: &mut ImapSession, set: &str, query: &str) -> Result<()> {
    run(s, "UID STORE", &format!("UID STORE {set} {query}"), |_| {}).await
}

/// `UID EXPUNGE set` (UIDPLUS, RFC 4315).
pub async fn uid_expunge(s: &mut ImapSession, set: &str) -> Result<()> {
    run(s, "UID EXPUNGE", &format!("UID EXPUNGE {set}"), |_| {}).await
}

/// APPEND with a synchronizing literal; returns (UIDVALIDITY, UID) from APPENDUID when
/// the server sends it.
pub async fn append(s: &mut ImapSession, folder: &str, message: &[u8]) -> Result<Option<(u32, u32)>> {
    use tokio::io::AsyncWriteExt;
    let mut p = send(s, "APPEND", &format!("APPEND {} {{{}}}", quoted(folder), message.len())).await?;
    // The server's go-ahead for the literal; a refusal arrives as the tagged reply.
    loop {
        match p.next(s, |r| matches!(r, Response::Continue(_))).await? {
            Some(true) => break,
            Some(false) => {}
            None => bail!("APPEND: the server answered OK before taking the message"),
        }
    }
    step("APPEND", async {
        let stream = s.get_mut();
        stream.write_all(message).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
        Ok(())
    })
    .await?;
    p.finish(s, |_| {}).await?;
    Ok(p.appended)
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

    #[test]
    fn refusals_read_in_the_servers_words() {
        use async_imap::imap_proto::Response;
        let said = |raw: &[u8]| match Response::parse(raw).unwrap().1 {
            Response::Done { status, outcome, .. } => {
                super::words(&status, outcome.code.as_ref(), outcome.information.as_deref())
            }
            _ => unreachable!("a tagged reply"),
        };
        assert_eq!(said(b"A1 NO [SERVERBUG] Internal error occurred.\r\n"), "NO [SERVERBUG] Internal error occurred.");
        assert_eq!(said(b"A1 NO [ALERT] Mailbox is full\r\n"), "NO [ALERT] Mailbox is full");
        assert_eq!(said(b"A1 NO [TRYCREATE] No such folder\r\n"), "NO [TRYCREATE] No such folder");
        assert_eq!(said(b"A1 BAD Error in IMAP command\r\n"), "BAD Error in IMAP command");
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(super::quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
