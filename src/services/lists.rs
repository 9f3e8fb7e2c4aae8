//! Distribution lists: the store holds them (`voxbridge list …`); the configuration's
//! `[[menu.list]]` are imported into it once, by the server at start-up and by any
//! `list` command, so that sites that configured lists keep them.

use crate::config::DistributionList;
use crate::store::lists::ListImport;
use crate::store::Store;
use anyhow::{bail, Result};

/// Imports the configuration's lists the store has never seen, and says what it did:
/// a list created, a number that is a mailbox's (not imported), a list whose members
/// the configuration now names differently (the store's copy is the one in use).
pub fn import_configured(store: &Store, lists: &[DistributionList]) -> Result<ListImport> {
    let wanted: Vec<(String, Vec<String>)> = lists.iter().map(|l| (l.number.clone(), l.members.clone())).collect();
    let done = store.import_lists(&wanted)?;
    for n in &done.imported {
        tracing::info!(list = %n, "distribution list imported from [[menu.list]]; manage it with `voxbridge list`");
    }
    for n in &done.clashing {
        tracing::warn!(list = %n, "[[menu.list]] number is a mailbox's; the list is not imported");
    }
    for l in lists {
        if done.imported.contains(&l.number) {
            continue;
        }
        if let Some(have) = store.list(&l.number)? {
            let mut want = l.members.clone();
            want.sort();
            want.dedup();
            if want != have.members {
                tracing::warn!(
                    list = %l.number,
                    "[[menu.list]] names other members than the store's list, which is the one in use \
                     (see: voxbridge list show {}); the configuration's entry can go",
                    l.number
                );
            }
        }
    }
    Ok(done)
}

/// A list number: digits only (it is dialled on a keypad when forwarding), like a
/// mailbox's.
pub fn check_number(number: &str) -> Result<()> {
    if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit()) {
        bail!("a list number is 1 to 32 digits, got {number:?}");
    }
    Ok(())
}
