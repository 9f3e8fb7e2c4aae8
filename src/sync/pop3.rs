//! One synchronization pass against a POP3 maildrop. POP3 has no flags: states live in
//! the store alone; the server list is UIDL; D becomes DELE (committed by QUIT, and only
//! then are the rows removed). UIDL strings are mapped onto ordered indices so the same
//! compare agent decides as for IMAP (the seed's agents were POP3 agents to begin with).

use super::compare::{compare, ServerMsg, StoreMsg};
use super::gone::{self, Removals};
use super::model::State;
use super::report::{retrieved_row, SyncReport};
use super::retrieve::classify;
use crate::mail::account::Account;
use crate::mail::pop3::Pop3;
use crate::store::{Commit, Removal, Store};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// Messages stored per transaction.
const BATCH: usize = 200;

/// One pass; an `-ERR` or a cut connection anywhere fails it (the client checks every
/// answer and reads multi-line answers to their final dot), and an empty UIDL listing
/// against rows here is checked with STAT before it counts.
pub async fn sync_pop3(store: &Store, mailbox: &str, acct: &Account, removals: &Removals) -> Result<SyncReport> {
    let mut p = Pop3::login(acct).await?;
    let list = p.uidl().await?;
    let mb = mailbox.to_string();
    let rows = store.run(move |st| st.pop3_rows(&mb)).await?;
    if list.is_empty() && !rows.is_empty() {
        let n = p.stat().await?;
        if n > 0 {
            bail!("the POP3 server's answers disagree: UIDL listed no message, STAT counts {n}; nothing was removed");
        }
    }

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
    let mut report =
        SyncReport { mailbox: mailbox.to_string(), mode: "pop3", server_messages: list.len(), ..Default::default() };

    // Retrieve agent: batches of messages, each batch one store transaction.
    let mut batch = Vec::new();
    for (k, idx) in plan.retrieve.iter().enumerate() {
        let (n, key) = msgnum[idx];
        let body = p.retr(n).await?;
        let info = classify(&body, &format!("<pop3.{key}@{}>", acct.host));
        batch.push(retrieved_row(info, State::U, None, Some(key.to_string()), body));
        if batch.len() == BATCH || k + 1 == plan.retrieve.len() {
            let (mb, b) = (mailbox.to_string(), std::mem::take(&mut batch));
            for (id, linked) in store.run(move |st| st.store_retrieved(&mb, &b)).await? {
                if linked {
                    report.linked.push(id);
                } else {
                    report.retrieved.push(id);
                }
            }
        }
    }

    // Delete agent: DELE, then QUIT commits; only then the rows go.
    for (_, idx) in &plan.delete {
        p.dele(msgnum[idx].0).await?;
    }
    p.quit().await?;
    let ids: Vec<i64> = plan.delete.iter().map(|d| d.0).collect();
    store.run(move |st| st.remove_rows(&ids, Commit::Redoable, Removal::Deleted)).await?;
    report.deleted = plan.delete.iter().map(|(id, idx)| (*id, msgnum[idx].0)).collect();

    // Rows whose message the maildrop no longer has (taken by another POP3 client),
    // through the safety brake.
    gone::remove(store, mailbox, removals, plan.gone, &mut report).await?;
    Ok(report)
}
