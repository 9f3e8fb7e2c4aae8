//! Mailboxes: numbers, owners, mail accounts, greetings, time zones.

use super::db::{now_secs, Commit, Store};
use super::pin;
use crate::sip::digest::Ha1;
use anyhow::{bail, Result};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// A mailbox as the CLI creates it.
#[derive(Debug, Clone, Default)]
pub struct NewMailbox {
    pub number: String,
    pub pin: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub imap_url: Option<String>,
    pub pop3_url: Option<String>,
    pub smtp_url: Option<String>,
    /// IANA time zone for the dates the menu speaks (None: the server's).
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    pub number: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub imap_url: Option<String>,
    pub pop3_url: Option<String>,
    pub smtp_url: Option<String>,
    pub greeting_path: Option<String>,
    pub busy_greeting_path: Option<String>,
    pub name_path: Option<String>,
    pub temp_greeting_path: Option<String>,
    /// IANA time zone for the dates the menu speaks (None: the server's).
    pub timezone: Option<String>,
    /// The mailbox's own fax number: calls to it are received as faxes into it.
    pub fax_number: Option<String>,
    /// Its station on the PBX (SMDI call details and lamps), when not its number.
    pub station: Option<String>,
    /// The language its prompts are played in (None: [prompts] language).
    pub language: Option<String>,
}

impl Mailbox {
    /// Where a new message for this mailbox is delivered, if anywhere. IMAP wins: it
    /// lets us place the message directly and learn its UID.
    pub fn delivery_target(&self) -> Option<&'static str> {
        if self.imap_url.is_some() {
            Some("imap")
        } else if self.smtp_url.is_some() && self.email.is_some() {
            Some("smtp")
        } else {
            None
        }
    }
}

impl Store {
    pub fn add_mailbox(&self, m: &NewMailbox) -> Result<()> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row("SELECT 1 FROM mailbox WHERE number = ?1", [&m.number], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if exists {
            bail!("mailbox {} already exists", m.number);
        }
        let list: bool = conn
            .query_row("SELECT 1 FROM list WHERE number = ?1", [&m.number], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if list {
            bail!("{} is a distribution list; a mailbox needs a number of its own", m.number);
        }
        conn.execute(
            "INSERT INTO mailbox (number, pin_hash, name, email, imap_url, pop3_url, smtp_url, created_at, timezone)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                m.number,
                pin::hash(&m.pin)?,
                m.name,
                m.email,
                m.imap_url,
                m.pop3_url,
                m.smtp_url,
                now_secs(),
                m.timezone
            ],
        )?;
        Ok(())
    }

    /// Sets (or, with `None`, removes) a mailbox's SIP digest secrets.
    pub fn set_sip_secret(&self, number: &str, secret: Option<&Ha1>) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            let n = tx.execute(
                "UPDATE mailbox SET sip_realm = ?2, sip_ha1_md5 = ?3, sip_ha1_sha256 = ?4 WHERE number = ?1",
                params![
                    number,
                    secret.map(|s| s.realm.as_str()),
                    secret.map(|s| s.md5.as_str()),
                    secret.map(|s| s.sha256.as_str())
                ],
            )?;
            if n == 0 {
                bail!("no mailbox {number}");
            }
            Ok(())
        })
    }

    /// Every mailbox's SIP digest secrets, for the SIP endpoint.
    pub fn sip_secrets(&self) -> Result<Vec<(String, Ha1)>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT number, sip_realm, sip_ha1_md5, sip_ha1_sha256 FROM mailbox
             WHERE sip_realm IS NOT NULL AND sip_ha1_md5 IS NOT NULL AND sip_ha1_sha256 IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, Ha1 { realm: r.get(1)?, md5: r.get(2)?, sha256: r.get(3)? }))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores a mailbox's name, address and accounts as `m` has them (greetings and PIN
    /// are not touched). With `other_account` (another user, host, port or folder, not
    /// just another password) its rows are unlinked from the old account's UIDs and keys
    /// and the account's sync state is forgotten, so the next pass is a full one that
    /// links our own messages there by Message-ID.
    pub fn update_mailbox(&self, m: &Mailbox, other_account: bool) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            let n = tx.execute(
                "UPDATE mailbox SET name = ?2, email = ?3, imap_url = ?4, pop3_url = ?5, smtp_url = ?6, timezone = ?7
                 WHERE number = ?1",
                params![m.number, m.name, m.email, m.imap_url, m.pop3_url, m.smtp_url, m.timezone],
            )?;
            if n == 0 {
                bail!("no mailbox {}", m.number);
            }
            if other_account {
                tx.execute(
                    "UPDATE message SET server_uid = NULL, uidvalidity = NULL, server_key = NULL, synced_state = NULL
                     WHERE mailbox = ?1",
                    [&m.number],
                )?;
                tx.execute(
                    "UPDATE sync_account SET uidvalidity = NULL, highestmodseq = NULL WHERE mailbox = ?1",
                    [&m.number],
                )?;
            }
            Ok(())
        })
    }

    /// (messages, of them not yet delivered to the mail account) of a mailbox.
    pub fn mailbox_contents(&self, number: &str) -> Result<(i64, i64)> {
        Ok(self.conn().query_row(
            "SELECT count(*), (SELECT count(*) FROM outbox o JOIN message m ON m.id = o.message
                               WHERE m.mailbox = ?1 AND o.delivered_at IS NULL)
             FROM message WHERE mailbox = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Removes a mailbox with everything it has here (rows go by cascade; bodies are
    /// reclaimed later), then its files. Returns how many files were removed.
    pub fn remove_mailbox(&self, number: &str) -> Result<usize> {
        let files: Vec<String> = self.transact(Commit::Durable, |tx| {
            let mut files: Vec<String> = tx
                .prepare(
                    "SELECT media_path FROM message WHERE mailbox = ?1 AND media_path IS NOT NULL
                     UNION ALL SELECT media_path FROM outgoing WHERE mailbox = ?1
                     UNION ALL SELECT media_path FROM trash WHERE mailbox = ?1 AND media_path IS NOT NULL
                     UNION ALL SELECT p FROM (SELECT greeting_path AS p FROM mailbox WHERE number = ?1
                         UNION ALL SELECT busy_greeting_path FROM mailbox WHERE number = ?1
                         UNION ALL SELECT name_path FROM mailbox WHERE number = ?1
                         UNION ALL SELECT temp_greeting_path FROM mailbox WHERE number = ?1) WHERE p IS NOT NULL",
                )?
                .query_map([number], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            files.sort();
            files.dedup();
            // Raw mails kept for the trash entries, which go by cascade.
            tx.execute(
                "INSERT OR IGNORE INTO body_garbage (message) SELECT message FROM trash WHERE mailbox = ?1",
                [number],
            )?;
            if tx.execute("DELETE FROM mailbox WHERE number = ?1", [number])? == 0 {
                bail!("no mailbox {number}");
            }
            // Tables that name a mailbox without a foreign key.
            tx.execute("DELETE FROM sync_log WHERE mailbox = ?1", [number])?;
            tx.execute("DELETE FROM login_failure WHERE mailbox = ?1", [number])?;
            tx.execute("DELETE FROM list_member WHERE mailbox = ?1", [number])?;
            Ok(files)
        })?;
        // Files only once the rows are durably gone: a row never points to a missing file.
        Ok(files.iter().filter(|p| std::fs::remove_file(self.root.join(p)).is_ok()).count())
    }

    pub fn mailbox(&self, number: &str) -> Result<Option<Mailbox>> {
        let conn = self.conn();
        Ok(conn
            .query_row(&format!("SELECT {MAILBOX_COLUMNS} FROM mailbox WHERE number = ?1"), [number], mailbox_from_row)
            .optional()?)
    }

    pub fn mailboxes(&self) -> Result<Vec<Mailbox>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT {MAILBOX_COLUMNS} FROM mailbox ORDER BY number"))?;
        let rows = st.query_map([], mailbox_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The mailbox whose fax number `dialled` is.
    pub fn mailbox_by_fax_number(&self, dialled: &str) -> Result<Option<Mailbox>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT {MAILBOX_COLUMNS} FROM mailbox WHERE fax_number = ?1"),
                [dialled],
                mailbox_from_row,
            )
            .optional()?)
    }

    /// Sets (or, with `None`, removes) a mailbox's fax number; one that is another
    /// mailbox's fax number, or a mailbox's own number, is refused.
    pub fn set_fax_number(&self, number: &str, fax: Option<&str>) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            if let Some(f) = fax {
                let taken: Option<String> = tx
                    .query_row(
                        "SELECT number FROM mailbox WHERE (fax_number = ?1 OR number = ?1) AND number != ?2",
                        params![f, number],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(other) = taken {
                    bail!("{f} is already mailbox {other}'s number or fax number");
                }
            }
            if tx.execute("UPDATE mailbox SET fax_number = ?2 WHERE number = ?1", params![number, fax])? == 0 {
                bail!("no mailbox {number}");
            }
            Ok(())
        })
    }

    /// The mailbox at PBX station `station`: the one whose station it is, else the one
    /// numbered so that has no station of its own.
    pub fn mailbox_by_station(&self, station: &str) -> Result<Option<Mailbox>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailbox WHERE station = ?1 OR (station IS NULL AND number = ?1)
                     ORDER BY station IS NULL LIMIT 1"
                ),
                [station],
                mailbox_from_row,
            )
            .optional()?)
    }

    /// Sets (or, with `None`, removes) a mailbox's PBX station; another mailbox's
    /// station, or the number of another mailbox without a station, is refused.
    pub fn set_station(&self, number: &str, station: Option<&str>) -> Result<()> {
        self.transact(Commit::Durable, |tx| {
            if let Some(st) = station {
                let taken: Option<String> = tx
                    .query_row(
                        "SELECT number FROM mailbox WHERE (station = ?1 OR (station IS NULL AND number = ?1))
                         AND number != ?2",
                        params![st, number],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(other) = taken {
                    bail!("station {st} is already mailbox {other}'s");
                }
            }
            if tx.execute("UPDATE mailbox SET station = ?2 WHERE number = ?1", params![number, station])? == 0 {
                bail!("no mailbox {number}");
            }
            Ok(())
        })
    }

    /// Sets (or, with `None`, removes) the language a mailbox's prompts play in.
    pub fn set_language(&self, number: &str, language: Option<&str>) -> Result<()> {
        if self.conn().execute("UPDATE mailbox SET language = ?2 WHERE number = ?1", params![number, language])? == 0 {
            bail!("no mailbox {number}");
        }
        Ok(())
    }

    /// SQLite's `data_version` on the writers' connection: it moves when another
    /// connection — a `voxbridge` command in another process — commits, never for this
    /// process's own writes (those are announced on the change hub).
    pub fn data_version(&self) -> Result<i64> {
        Ok(self.conn().query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Every mailbox's station with its message-waiting rows (kind, state, count), for
    /// lamps set all at once (SMDI at start-up and after a link outage).
    pub fn stations_with_mwi_rows(&self) -> Result<Vec<StationRows>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT m.number, COALESCE(m.station, m.number), g.kind, g.state, g.n FROM mailbox m
             LEFT JOIN (SELECT mailbox, kind, state, COUNT(*) AS n FROM message GROUP BY mailbox, kind, state) g
             ON g.mailbox = m.number ORDER BY m.number",
        )?;
        let mut out: Vec<StationRows> = Vec::new();
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        for row in rows {
            let (number, station, kind, state, n) = row?;
            if out.last().map(|l| &l.0) != Some(&number) {
                out.push((number, station, Vec::new()));
            }
            if let (Some(k), Some(s), Some(n), Some(last)) = (kind, state, n, out.last_mut()) {
                last.2.push((k, s, n as u32));
            }
        }
        Ok(out)
    }

    /// Counts of (unread, total) messages per mailbox.
    pub fn message_counts(&self, number: &str) -> Result<(i64, i64)> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(state = 'U'), 0), COUNT(*) FROM message WHERE mailbox = ?1",
            [number],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

/// A mailbox's number, its station, and its (kind, state, count) message rows.
pub type StationRows = (String, String, Vec<(String, String, u32)>);

/// The columns [`mailbox_from_row`] reads, in its order.
const MAILBOX_COLUMNS: &str = "number, name, email, imap_url, pop3_url, smtp_url, greeting_path,
    busy_greeting_path, name_path, temp_greeting_path, timezone, fax_number, station, language";

pub(super) fn mailbox_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        number: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        imap_url: r.get(3)?,
        pop3_url: r.get(4)?,
        smtp_url: r.get(5)?,
        greeting_path: r.get(6)?,
        busy_greeting_path: r.get(7)?,
        name_path: r.get(8)?,
        temp_greeting_path: r.get(9)?,
        timezone: r.get(10)?,
        fax_number: r.get(11)?,
        station: r.get(12)?,
        language: r.get(13)?,
    })
}
