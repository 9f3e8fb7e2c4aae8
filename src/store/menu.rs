//! What the mailbox menu needs from the store: the login check with its lockout, and a
//! message's audio.

use super::db::Store;
use crate::model::LoginResult;
use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

/// The lockout rule: `max_attempts` wrong PINs within `window_secs` lock the mailbox for
/// `lock_secs`.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub max_attempts: u32,
    pub window_secs: i64,
    pub lock_secs: i64,
}

/// A message's audio for the phone.
pub enum MessageAudio {
    /// 8 kHz mono samples.
    Pcm(Vec<i16>),
    /// No audio (an e-mail, a fax, a voice mail whose attachment does not play): what
    /// the message is, to be described to the caller instead.
    Describe {
        kind: crate::model::MessageKind,
        /// The sender's name, else address or number.
        from: Option<String>,
        subject: Option<String>,
        /// The message as retrieved (RFC 5322), when it is stored: an e-mail is read out
        /// from it.
        raw: Option<Vec<u8>>,
        /// Whose message it is (whose substitution rules apply).
        mailbox: String,
    },
}

impl Store {
    /// Checks a PIN at `now` (unix seconds). A locked mailbox is refused without looking
    /// at the PIN; an unknown mailbox is just "wrong" (callers cannot probe numbers).
    pub fn check_login(&self, mailbox: &str, pin: &str, now: i64, policy: LoginPolicy) -> Result<LoginResult> {
        let row: Option<(String, Option<i64>)> = self
            .conn()
            .query_row("SELECT pin_hash, locked_until FROM mailbox WHERE number = ?1", [mailbox], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((hash, locked_until)) = row else {
            tracing::info!(mailbox, "login to an unknown mailbox");
            return Ok(LoginResult::Wrong);
        };
        if locked_until.is_some_and(|t| t > now) {
            tracing::warn!(mailbox, "login refused: mailbox locked");
            return Ok(LoginResult::Locked);
        }
        // Argon2 takes tens of milliseconds: verified outside the connection lock.
        if super::pin::verify(pin, &hash) {
            self.conn().execute("DELETE FROM login_failure WHERE mailbox = ?1", [mailbox])?;
            self.conn().execute("UPDATE mailbox SET locked_until = NULL WHERE number = ?1", [mailbox])?;
            return Ok(LoginResult::Ok);
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO login_failure (mailbox, at) VALUES (?1, ?2)", params![mailbox, now])?;
        tx.execute(
            "DELETE FROM login_failure WHERE mailbox = ?1 AND at <= ?2",
            params![mailbox, now - policy.window_secs],
        )?;
        let recent: i64 =
            tx.query_row("SELECT COUNT(*) FROM login_failure WHERE mailbox = ?1", [mailbox], |r| r.get(0))?;
        let locked = recent >= i64::from(policy.max_attempts);
        if locked {
            tx.execute(
                "UPDATE mailbox SET locked_until = ?2 WHERE number = ?1",
                params![mailbox, now + policy.lock_secs],
            )?;
        }
        tx.commit()?;
        if locked {
            tracing::warn!(
                mailbox,
                wrong_pins = recent,
                lock_secs = policy.lock_secs,
                "mailbox locked after wrong PINs"
            );
            return Ok(LoginResult::Locked);
        }
        tracing::info!(mailbox, wrong_pins = recent, "wrong PIN");
        Ok(LoginResult::Wrong)
    }

    /// The audio of message `id`: its recording, or the audio attachment of a voice mail
    /// retrieved from the mail server; otherwise a text to read out.
    pub fn message_audio(&self, id: i64) -> Result<MessageAudio> {
        let m = self.message(id)?.with_context(|| format!("no message {id}"))?;
        // A fax's file is its image: described, not played.
        if let Some(rel) = m.media_path.as_ref().filter(|_| m.kind != crate::model::MessageKind::Fax) {
            return Ok(MessageAudio::Pcm(crate::media::wav::read_8k_mono(&self.root().join(rel))?));
        }
        let raw: Option<Vec<u8>> =
            self.conn().query_row("SELECT raw FROM message_body WHERE message = ?1", [id], |r| r.get(0)).optional()?;
        if let Some(pcm) = raw.as_deref().and_then(audio_attachment) {
            return Ok(MessageAudio::Pcm(pcm));
        }
        Ok(MessageAudio::Describe {
            kind: m.kind,
            from: m.caller_name.or(m.caller),
            subject: m.subject,
            raw,
            mailbox: m.mailbox,
        })
    }
}

/// The first WAV attachment of a message, as 8 kHz mono samples.
fn audio_attachment(raw: &[u8]) -> Option<Vec<i16>> {
    use mail_parser::MimeHeaders;
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let pcm = msg.attachments().find_map(|a| {
        let ct = a.content_type()?;
        if !ct.ctype().eq_ignore_ascii_case("audio") {
            return None;
        }
        // A hint for the decoder: the file name's extension, else the subtype
        // (audio/mpeg is MP3, audio/x-wav and audio/wave are WAV).
        let ext = a
            .attachment_name()
            .and_then(|n| n.rsplit_once('.').map(|(_, e)| e.to_string()))
            .or_else(|| ct.subtype().map(|s| if s.eq_ignore_ascii_case("mpeg") { "mp3".into() } else { "wav".into() }));
        match crate::media::decode::decode_8k_mono(a.contents(), ext.as_deref()) {
            Ok(pcm) => Some(pcm),
            Err(e) => {
                tracing::warn!(attachment = a.attachment_name().unwrap_or("?"), error = %format!("{e:#}"), "voice mail attachment not playable");
                None
            }
        }
    });
    pcm
}

impl Store {
    /// (kind, state, count) of a mailbox's messages, for its message-waiting lamp.
    pub fn mwi_rows(&self, mailbox: &str) -> Result<Vec<(String, String, u32)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT kind, state, COUNT(*) FROM message WHERE mailbox = ?1 GROUP BY kind, state")?;
        let rows = st
            .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

impl Store {
    /// Stores one of a mailbox's greetings durably, then points the mailbox at it. Each
    /// kind has one file (`greetings/<number>[-<kind>].wav`), replaced atomically, so a
    /// new greeting never leaves the old one behind.
    pub fn save_greeting(&self, number: &str, kind: crate::model::GreetingKind, pcm: &[i16]) -> Result<()> {
        anyhow::ensure!(self.mailbox(number)?.is_some(), "no mailbox {number}");
        let rel = super::files::greeting(number, kind);
        crate::media::wav::write_durable(&self.root().join(&rel), pcm)?;
        self.set_greeting_of(number, kind, Some(&rel))
    }

    /// Points (or with `None` no longer points) one of a mailbox's greetings at a file
    /// below the store directory.
    pub fn set_greeting_of(&self, number: &str, kind: crate::model::GreetingKind, rel: Option<&str>) -> Result<()> {
        use crate::model::GreetingKind as G;
        let column = match kind {
            G::Unavailable => "greeting_path",
            G::Busy => "busy_greeting_path",
            G::Name => "name_path",
            G::Temporary => "temp_greeting_path",
        };
        let n = self
            .conn()
            .execute(&format!("UPDATE mailbox SET {column} = ?2 WHERE number = ?1"), params![number, rel])?;
        anyhow::ensure!(n == 1, "no mailbox {number}");
        Ok(())
    }

    /// Sets a new PIN (stored as an Argon2 hash).
    pub fn set_pin(&self, number: &str, pin: &str) -> Result<()> {
        let hash = super::pin::hash(pin)?;
        let n = self.conn().execute("UPDATE mailbox SET pin_hash = ?2 WHERE number = ?1", params![number, hash])?;
        anyhow::ensure!(n == 1, "no mailbox {number}");
        Ok(())
    }
}

impl Store {
    /// Until when (unix seconds) a mailbox is locked by wrong PINs, if it is now.
    pub fn locked_until(&self, number: &str, now: i64) -> Result<Option<i64>> {
        let t: Option<i64> = self
            .conn()
            .query_row("SELECT locked_until FROM mailbox WHERE number = ?1", [number], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(t.filter(|t| *t > now))
    }

    /// Lifts a lockout and forgets the wrong PINs (an admin's decision).
    pub fn unlock(&self, number: &str) -> Result<()> {
        let conn = self.conn();
        let n = conn.execute("UPDATE mailbox SET locked_until = NULL WHERE number = ?1", [number])?;
        anyhow::ensure!(n == 1, "no mailbox {number}");
        conn.execute("DELETE FROM login_failure WHERE mailbox = ?1", [number])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMailbox;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.add_mailbox(&NewMailbox { number: "1000".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        (d, s)
    }

    const POLICY: LoginPolicy = LoginPolicy { max_attempts: 3, window_secs: 600, lock_secs: 900 };

    #[test]
    fn wrong_pins_lock_within_the_window_only_and_the_lock_expires() {
        let (_d, s) = store();
        let t = 1_000_000;
        assert_eq!(s.check_login("1000", "1", t, POLICY).unwrap(), LoginResult::Wrong);
        assert_eq!(s.check_login("1000", "2", t + 10, POLICY).unwrap(), LoginResult::Wrong);
        // A third wrong PIN after the window: the first two no longer count.
        assert_eq!(s.check_login("1000", "3", t + 700, POLICY).unwrap(), LoginResult::Wrong);
        assert_eq!(s.locked_until("1000", t + 700).unwrap(), None);
        assert_eq!(s.check_login("1000", "4", t + 705, POLICY).unwrap(), LoginResult::Wrong);
        // The third within the window locks it, even against the right PIN.
        assert_eq!(s.check_login("1000", "5", t + 710, POLICY).unwrap(), LoginResult::Locked);
        assert_eq!(s.locked_until("1000", t + 710).unwrap(), Some(t + 710 + 900));
        assert_eq!(s.check_login("1000", "1234", t + 800, POLICY).unwrap(), LoginResult::Locked);
        // After the lock: the right PIN works and clears the count.
        assert_eq!(s.check_login("1000", "1234", t + 710 + 901, POLICY).unwrap(), LoginResult::Ok);
        assert_eq!(s.check_login("1000", "9", t + 1700, POLICY).unwrap(), LoginResult::Wrong);
        assert_eq!(s.check_login("1000", "9", t + 1701, POLICY).unwrap(), LoginResult::Wrong);
        assert_eq!(s.locked_until("1000", t + 1701).unwrap(), None, "the count started over");
        // Unknown mailboxes are just wrong; an admin unlock lifts a lock.
        assert_eq!(s.check_login("9999", "1234", t, POLICY).unwrap(), LoginResult::Wrong);
        assert_eq!(s.check_login("1000", "9", t + 1702, POLICY).unwrap(), LoginResult::Locked);
        s.unlock("1000").unwrap();
        assert_eq!(s.check_login("1000", "1234", t + 1703, POLICY).unwrap(), LoginResult::Ok);
    }
}
