//! What decides how a mailbox's e-mail is offered and read by phone: the admin's and the
//! mailboxes' own substitution rules (`voxbridge substitutions`) and each mailbox's
//! e-mail filters (`voxbridge filters`).

use super::db::{Commit, Store};
use anyhow::{bail, Result};
use rusqlite::params;

/// One stored rule; `mailbox` `None` is the admin's, for every mailbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Substitution {
    pub id: i64,
    pub mailbox: Option<String>,
    pub lang: String,
    pub is_regex: bool,
    pub pattern: String,
    pub say: String,
    pub whole_word: bool,
    pub any_case: bool,
}

impl Store {
    /// Adds a rule (checked by the caller: it compiles); returns its id.
    pub fn add_substitution(&self, s: &Substitution) -> Result<i64> {
        self.transact(Commit::Durable, |tx| {
            if let Some(m) = &s.mailbox {
                let known: i64 = tx.query_row("SELECT COUNT(*) FROM mailbox WHERE number = ?1", [m], |r| r.get(0))?;
                if known == 0 {
                    bail!("no mailbox {m}");
                }
            }
            tx.execute(
                "INSERT INTO substitution (mailbox, lang, is_regex, pattern, say, whole_word, any_case)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![s.mailbox, s.lang, s.is_regex, s.pattern, s.say, s.whole_word, s.any_case],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Removes rule `id`; false when there was none.
    pub fn remove_substitution(&self, id: i64) -> Result<bool> {
        self.transact(Commit::Durable, |tx| Ok(tx.execute("DELETE FROM substitution WHERE id = ?1", [id])? > 0))
    }

    /// The rules that apply to `mailbox` in `lang`, in the order they run: the
    /// mailbox's own, then the admin's. `None`: the admin's alone.
    pub fn substitutions(&self, mailbox: Option<&str>, lang: &str) -> Result<Vec<Substitution>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, mailbox, lang, is_regex, pattern, say, whole_word, any_case FROM substitution
             WHERE lang = ?2 AND (mailbox IS NULL OR mailbox = ?1)
             ORDER BY mailbox IS NULL, id",
        )?;
        let rows = stmt.query_map(params![mailbox, lang], |r| {
            Ok(Substitution {
                id: r.get(0)?,
                mailbox: r.get(1)?,
                lang: r.get(2)?,
                is_regex: r.get(3)?,
                pattern: r.get(4)?,
                say: r.get(5)?,
                whole_word: r.get(6)?,
                any_case: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Store {
    /// Adds an e-mail filter rule (already parsed by the caller) to `mailbox`.
    pub fn add_filter(&self, mailbox: &str, rule: &str) -> Result<i64> {
        self.transact(Commit::Durable, |tx| {
            let known: i64 = tx.query_row("SELECT COUNT(*) FROM mailbox WHERE number = ?1", [mailbox], |r| r.get(0))?;
            if known == 0 {
                bail!("no mailbox {mailbox}");
            }
            tx.execute("INSERT INTO email_filter (mailbox, rule) VALUES (?1, ?2)", params![mailbox, rule])?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn remove_filter(&self, mailbox: &str, id: i64) -> Result<bool> {
        self.transact(Commit::Durable, |tx| {
            Ok(tx.execute("DELETE FROM email_filter WHERE id = ?1 AND mailbox = ?2", params![id, mailbox])? > 0)
        })
    }

    /// `mailbox`'s filter rules (id, text), oldest first.
    pub fn filters(&self, mailbox: &str) -> Result<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, rule FROM email_filter WHERE mailbox = ?1 ORDER BY id")?;
        let rows = stmt.query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A message as retrieved (RFC 5322), when its body is stored.
    pub fn message_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        Ok(self.conn().query_row("SELECT raw FROM message_body WHERE message = ?1", [id], |r| r.get(0)).optional()?)
    }
}
