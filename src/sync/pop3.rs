//! One synchronization pass against a POP3 maildrop. POP3 has no flags: states live in
//! the store alone; the server list is UIDL; D becomes DELE (committed by QUIT, and only
//! then are the rows removed). UIDL strings are mapped onto ordered indices so the same
//! compare agent decides as for IMAP (the seed's agents were POP3 agents to begin with).

use super::compare::{compare, ServerMsg, StoreMsg};
use super::imap::SyncReport;
use super::model::State;
use super::retrieve::{classify, Kind};
use crate::mail::account::Account;
use crate::mail::pop3::Pop3;
use crate::store::{RetrievedRow, Store};
use anyhow::Result;
use std::collections::BTreeMap;

pub async fn sync_pop3(store: &Store, mailbox: &str, acct: &Account) -> Result<SyncReport> {
    let mut p = Pop3::login(acct).await?;
    let list = p.uidl().await?;
    let mb = mailbox.to_string();
    let rows = store.run(move |st| st.pop3_rows(&mb)).await?;

    // Keys → indices in one sorted order, shared by both lists.
    let mut keys: Vec<&str> = list.iter().map(|(_, k)| k.as_str()).chain(rows.iter().map(|r| r.1.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    let index: BTreeMap<&str, u32> = keys.iter().enumerate().map(|(i, k)| (*k, i as u32 + 1)).collect();
    let msgnum: BTreeMap<u32, (u32, &str)> = list.iter().map(|(n, k)| (index[k.as_str()], (*n, k.as_str()))).collect();

    let mut store_list: Vec<StoreMsg> =
        rows.iter().map(|(id, k, st)| StoreMsg { id: *id, uid: index[k.as_str()], state: *st, synced: None }).collect();
    store_list.sort_by_key(|m| m.uid);
    let server_list: Vec<ServerMsg> = msgnum.keys().map(|&uid| ServerMsg { uid, state: None }).collect();
    let plan = compare(&store_list, &server_list);
    let mut report = SyncReport { mailbox: mailbox.to_string(), server_messages: list.len(), ..Default::default() };

    // Retrieve agent.
    for idx in &plan.retrieve {
        let (n, key) = msgnum[idx];
        let body = p.retr(n).await?;
        let info = classify(&body, &format!("<pop3.{key}@{}>", acct.host));
        let (mb, key) = (mailbox.to_string(), key.to_string());
        let (id, linked) = store
            .run(move |st| {
                if let Some(id) = st.link_key_by_message_id(&mb, &info.message_id, &key)? {
                    return Ok((id, true));
                }
                let safe_key: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                let rel = format!(
                    "mail/{}/pop3-{safe_key}.eml",
                    mb.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>()
                );
                crate::store::write_durable(&st.root().join(&rel), &body)?;
                let id = st.insert_retrieved(
                    &mb,
                    &RetrievedRow {
                        kind: info.kind.as_str(),
                        state: State::U,
                        message_id: info.message_id.clone(),
                        caller: info.from.clone(),
                        caller_name: info.from_name.clone(),
                        subject: info.subject.clone(),
                        received_at: info.date.unwrap_or_else(crate::store::now_secs),
                        duration_ms: if info.kind == Kind::Voice { info.duration_ms } else { None },
                        media_path: rel,
                        media_bytes: body.len() as i64,
                        uid: None,
                        server_key: Some(key),
                    },
                )?;
                Ok((id, false))
            })
            .await?;
        if linked {
            report.linked.push(id);
        } else {
            report.retrieved.push(id);
        }
    }

    // Delete agent: DELE, then QUIT commits; only then the rows go.
    for (_, idx) in &plan.delete {
        p.dele(msgnum[idx].0).await?;
    }
    p.quit().await?;
    let ids: Vec<i64> = plan.delete.iter().map(|d| d.0).collect();
    store.run(move |st| st.remove_rows(&ids)).await?;
    report.deleted = plan.delete.iter().map(|(id, idx)| (*id, msgnum[idx].0)).collect();

    // Rows whose message the maildrop no longer has (taken by another POP3 client).
    let gone = plan.gone.clone();
    store.run(move |st| st.remove_rows(&gone)).await?;
    report.gone = plan.gone;
    Ok(report)
}
