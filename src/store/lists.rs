//! Distribution lists: a number that stands for several mailboxes (forwarding a
//! message to it delivers it to each member).

use super::db::{now_secs, Commit, Store};
use anyhow::{bail, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistributionList {
    pub number: String,
    pub name: Option<String>,
    /// Member mailbox numbers, in number order.
    pub members: Vec<String>,
}

/// What importing the configuration's lists did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListImport {
    /// Lists created from the configuration.
    pub imported: Vec<String>,
    /// Configuration lists whose number is a mailbox's: not imported.
    pub clashing: Vec<String>,
}

impl Store {
    pub fn lists(&self) -> Result<Vec<DistributionList>> {
        let conn = self.conn();
        let heads: Vec<(String, Option<String>)> = conn
            .prepare("SELECT number, name FROM list ORDER BY number")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        drop(conn);
        heads
            .into_iter()
            .map(|(number, name)| Ok(DistributionList { members: self.members(&number)?, number, name }))
            .collect()
    }

    pub fn list(&self, number: &str) -> Result<Option<DistributionList>> {
        let name: Option<Option<String>> =
            self.conn().query_row("SELECT name FROM list WHERE number = ?1", [number], |r| r.get(0)).optional()?;
        let Some(name) = name else { return Ok(None) };
        Ok(Some(DistributionList { number: number.to_string(), name, members: self.members(number)? }))
    }

    fn members(&self, number: &str) -> Result<Vec<String>> {
        Ok(self
            .conn()
            .prepare("SELECT mailbox FROM list_member WHERE list = ?1 ORDER BY mailbox")?
            .query_map([number], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a list. Its number must be neither a list's nor a mailbox's (a number
    /// reaches one thing); its members must be mailboxes.
    pub fn add_list(&self, number: &str, name: Option<&str>, members: &[String]) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            if tx.query_row("SELECT 1 FROM list WHERE number = ?1", [number], |_| Ok(())).optional()?.is_some() {
                bail!(
                    "list {number} already exists (change its members with: voxbridge list members {number} --add …)"
                );
            }
            if tx.query_row("SELECT 1 FROM mailbox WHERE number = ?1", [number], |_| Ok(())).optional()?.is_some() {
                bail!("{number} is a mailbox; a list needs a number of its own");
            }
            tx.execute(
                "INSERT INTO list (number, name, created_at) VALUES (?1, ?2, ?3)",
                params![number, name, now_secs()],
            )?;
            add_members(tx, number, members)?;
            Ok(())
        })
    }

    /// Removes a list; false when there is none.
    pub fn remove_list(&self, number: &str) -> Result<bool> {
        self.transact(Commit::Durable, |tx| Ok(tx.execute("DELETE FROM list WHERE number = ?1", [number])? > 0))
    }

    /// Adds and removes members in one transaction; the list as it is afterwards.
    pub fn change_members(&self, number: &str, add: &[String], remove: &[String]) -> Result<DistributionList> {
        self.transact(Commit::Durable, |tx| {
            if tx.query_row("SELECT 1 FROM list WHERE number = ?1", [number], |_| Ok(())).optional()?.is_none() {
                bail!("no list {number} (see: voxbridge list show)");
            }
            add_members(tx, number, add)?;
            for m in remove {
                if tx.execute("DELETE FROM list_member WHERE list = ?1 AND mailbox = ?2", [number, m])? == 0 {
                    bail!("{m} is not a member of list {number}");
                }
            }
            Ok(())
        })?;
        self.list(number)?.ok_or_else(|| anyhow::anyhow!("list {number} vanished"))
    }

    /// Creates the configuration's lists (`[[menu.list]]`) the store has never seen, in
    /// one transaction; each number once, so that a list removed by the CLI stays
    /// removed. Members need not be mailboxes yet (the configuration may name mailboxes
    /// created later); forwarding skips those that are not.
    pub fn import_lists(&self, lists: &[(String, Vec<String>)]) -> Result<ListImport> {
        self.transact(Commit::Durable, |tx| {
            let mut out = ListImport::default();
            for (number, members) in lists {
                if tx
                    .query_row("SELECT 1 FROM list_imported WHERE number = ?1", [number], |_| Ok(()))
                    .optional()?
                    .is_some()
                {
                    continue;
                }
                if tx.query_row("SELECT 1 FROM mailbox WHERE number = ?1", [number], |_| Ok(())).optional()?.is_some() {
                    out.clashing.push(number.clone());
                    continue;
                }
                tx.execute("INSERT INTO list_imported (number) VALUES (?1)", [number])?;
                let fresh = tx.execute(
                    "INSERT OR IGNORE INTO list (number, name, created_at) VALUES (?1, NULL, ?2)",
                    params![number, now_secs()],
                )? > 0;
                if fresh {
                    for m in members {
                        tx.execute("INSERT OR IGNORE INTO list_member (list, mailbox) VALUES (?1, ?2)", [number, m])?;
                    }
                    out.imported.push(number.clone());
                }
            }
            Ok(out)
        })
    }
}

fn add_members(tx: &rusqlite::Transaction<'_>, number: &str, members: &[String]) -> Result<()> {
    for m in members {
        if m == number {
            bail!("list {number} cannot be a member of itself");
        }
        if tx.query_row("SELECT 1 FROM mailbox WHERE number = ?1", [m], |_| Ok(())).optional()?.is_none() {
            bail!("no mailbox {m} (members are mailboxes; see: voxbridge mailbox list)");
        }
        tx.execute("INSERT OR IGNORE INTO list_member (list, mailbox) VALUES (?1, ?2)", [number, m])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMailbox;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        for n in ["1001", "1002", "1003"] {
            s.add_mailbox(&NewMailbox { number: n.into(), pin: "1234".into(), ..Default::default() }).unwrap();
        }
        (d, s)
    }

    #[test]
    fn lists_are_made_changed_and_removed() {
        let (_d, s) = store();
        s.add_list("8000", Some("sales"), &["1002".into(), "1001".into()]).unwrap();
        let l = s.list("8000").unwrap().unwrap();
        assert_eq!((l.name.as_deref(), l.members.clone()), (Some("sales"), vec!["1001".to_string(), "1002".into()]));
        assert!(format!("{:#}", s.add_list("8000", None, &[]).unwrap_err()).contains("already exists"));
        assert!(format!("{:#}", s.add_list("1001", None, &[]).unwrap_err()).contains("is a mailbox"));
        let e = s.add_list("8001", None, &["1001".into(), "4711".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("no mailbox 4711"));
        assert!(s.list("8001").unwrap().is_none(), "nothing of a refused list is written");
        let l = s.change_members("8000", &["1003".into()], &["1001".into()]).unwrap();
        assert_eq!(l.members, vec!["1002".to_string(), "1003".into()]);
        assert!(format!("{:#}", s.change_members("8000", &[], &["1001".into()]).unwrap_err()).contains("not a member"));
        // A removed mailbox leaves its lists.
        s.remove_mailbox("1002").unwrap();
        assert_eq!(s.list("8000").unwrap().unwrap().members, vec!["1003".to_string()]);
        assert!(s.remove_list("8000").unwrap());
        assert!(!s.remove_list("8000").unwrap());
        assert!(s.lists().unwrap().is_empty());
    }

    #[test]
    fn the_configurations_lists_are_imported_once() {
        let (_d, s) = store();
        let cfg =
            vec![("8000".to_string(), vec!["1001".to_string(), "2001".into()]), ("1003".into(), vec!["1001".into()])];
        let first = s.import_lists(&cfg).unwrap();
        assert_eq!(first, ListImport { imported: vec!["8000".into()], clashing: vec!["1003".into()] });
        assert_eq!(s.list("8000").unwrap().unwrap().members, vec!["1001".to_string(), "2001".into()]);
        // Removed by the CLI: it stays removed.
        s.remove_list("8000").unwrap();
        assert_eq!(s.import_lists(&cfg).unwrap().imported, Vec::<String>::new());
        assert!(s.list("8000").unwrap().is_none());
    }
}
