//! E-mails rendered to speech, kept for the next listen (sql/020_speech_cache.sql): a
//! 5,000-word mail is 17 s of a core to render and 50 MB of samples, so the cache is
//! bounded and least recently used rows leave first. Rows go with their message's
//! deletion or a changed body (triggers), and a text key that no longer matches (other
//! rules, another voice) is a miss.

use super::db::{Commit, Store};
use crate::model::SpeechMarks;
use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// The samples and marks rendered for message `id` from the text `key` names, if
    /// cached; a hit counts as a use at `now`.
    pub fn cached_speech(&self, id: i64, key: &str, now: i64) -> Result<Option<(Vec<i16>, SpeechMarks)>> {
        Ok(self.cached_speech_head(id, key, now, usize::MAX)?.map(|(pcm, marks, _)| (pcm, marks)))
    }

    /// The first `max_samples` of what message `id` was rendered to from the text `key`
    /// names, its marks and its whole length in samples, if cached — read without
    /// loading the rest (a 5,000-word mail is 50 MB: the first audio should not wait for
    /// all of it). A hit counts as a use at `now`.
    pub fn cached_speech_head(
        &self,
        id: i64,
        key: &str,
        now: i64,
        max_samples: usize,
    ) -> Result<Option<(Vec<i16>, SpeechMarks, usize)>> {
        use std::io::Read;
        let conn = self.conn();
        let marks: Option<String> = conn
            .query_row("SELECT marks FROM speech_cache WHERE message = ?1 AND text_key = ?2", params![id, key], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(marks) = marks else { return Ok(None) };
        let marks: SpeechMarks = serde_json::from_str(&marks).context("speech cache marks")?;
        let mut blob = conn.blob_open(rusqlite::MAIN_DB, "speech_audio", "pcm", id, true)?;
        let total = blob.len() / 2;
        let mut head = vec![0u8; total.min(max_samples) * 2];
        blob.read_exact(&mut head)?;
        drop(blob);
        drop(conn);
        // Without an fsync (a durable commit here cost the first packet 20 ms): a lost
        // use only makes this rendering a little likelier to be evicted.
        self.transact(Commit::Redoable, |tx| {
            tx.execute("UPDATE speech_cache SET used_at = ?2 WHERE message = ?1", params![id, now])?;
            Ok(())
        })?;
        let pcm = head.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        Ok(Some((pcm, marks, total)))
    }

    /// Keeps what message `id` was rendered to (replacing an older rendering), then
    /// drops the least recently used rows until the cache holds at most `cap_bytes`.
    /// Nothing is kept for a message that is gone or marked deleted. Not fsynced: a
    /// lost row is rendered again.
    pub fn cache_speech(
        &self,
        id: i64,
        key: &str,
        pcm: &[i16],
        marks: &SpeechMarks,
        now: i64,
        cap_bytes: u64,
    ) -> Result<()> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        if bytes.len() as u64 > cap_bytes {
            return Ok(());
        }
        let marks = serde_json::to_string(marks)?;
        self.transact(Commit::Redoable, |tx| {
            let live: i64 =
                tx.query_row("SELECT count(*) FROM message WHERE id = ?1 AND state IN ('U', 'R')", [id], |r| r.get(0))?;
            if live == 0 {
                return Ok(());
            }
            tx.execute(
                "INSERT OR REPLACE INTO speech_cache (message, text_key, marks, bytes, used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, key, marks, bytes.len() as i64, now],
            )?;
            tx.execute("INSERT OR REPLACE INTO speech_audio (message, pcm) VALUES (?1, ?2)", params![id, bytes])?;
            let mut total: i64 = tx.query_row("SELECT coalesce(sum(bytes), 0) FROM speech_cache", [], |r| r.get(0))?;
            while total as u64 > cap_bytes {
                let Some((oldest, size)) = tx
                    .query_row(
                        "SELECT message, bytes FROM speech_cache WHERE message != ?1 ORDER BY used_at, message LIMIT 1",
                        [id],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?
                else {
                    break;
                };
                tx.execute("DELETE FROM speech_cache WHERE message = ?1", [oldest])?;
                total -= size;
            }
            Ok(())
        })
    }

    /// How many renderings are cached and their size in bytes.
    pub fn speech_cache_size(&self) -> Result<(i64, i64)> {
        Ok(self.conn().query_row("SELECT count(*), coalesce(sum(bytes), 0) FROM speech_cache", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MarkAction;
    use crate::store::{NewMailbox, NewVoiceMessage};

    fn with_messages(n: usize) -> (tempfile::TempDir, Store, Vec<i64>) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        s.add_mailbox(&NewMailbox { number: "100".into(), pin: "1234".into(), ..Default::default() }).unwrap();
        let ids = (0..n)
            .map(|i| {
                s.insert_voice_message(&NewVoiceMessage {
                    mailbox: "100".into(),
                    caller: None,
                    caller_name: None,
                    received_at: 1,
                    duration_ms: 1,
                    media_path: format!("recordings/{i}.wav"),
                    media_bytes: 1,
                    message_id: format!("<{i}@t>"),
                    subject: "s".into(),
                })
                .unwrap()
            })
            .collect();
        (d, s, ids)
    }

    fn marks() -> SpeechMarks {
        SpeechMarks { sentences: vec![0, 160], paragraphs: vec![0] }
    }

    #[test]
    fn a_rendering_is_kept_for_its_text_and_dropped_with_its_message() {
        let (_d, s, ids) = with_messages(2);
        let pcm: Vec<i16> = (0..320).map(|i| i as i16 - 160).collect();
        s.cache_speech(ids[0], "k1", &pcm, &marks(), 10, 1 << 20).unwrap();
        assert_eq!(s.cached_speech(ids[0], "k1", 11).unwrap(), Some((pcm.clone(), marks())));
        assert_eq!(s.cached_speech(ids[0], "k2", 11).unwrap(), None, "other rules or voice: a miss");
        assert_eq!(s.cached_speech(ids[1], "k1", 11).unwrap(), None);
        let (head, m, total) = s.cached_speech_head(ids[0], "k1", 11, 100).unwrap().unwrap();
        assert_eq!((&head[..], m, total), (&pcm[..100], marks(), 320), "the start only, and how long it all is");
        assert_eq!(s.cached_speech_head(ids[0], "k1", 11, 1_000).unwrap().unwrap().0, pcm);
        assert!(s.cached_speech_head(ids[0], "k2", 11, 100).unwrap().is_none());
        // Marked deleted (by phone or mail client): gone, and not cached again while so.
        s.mark("100", ids[0], MarkAction::Delete).unwrap();
        assert_eq!(s.cached_speech(ids[0], "k1", 12).unwrap(), None);
        s.cache_speech(ids[0], "k1", &pcm, &marks(), 12, 1 << 20).unwrap();
        assert_eq!(s.speech_cache_size().unwrap().0, 0);
        // Removed from the store: gone with it.
        s.cache_speech(ids[1], "k1", &pcm, &marks(), 13, 1 << 20).unwrap();
        assert_eq!(s.speech_cache_size().unwrap().0, 1);
        s.conn().execute("DELETE FROM message WHERE id = ?1", [ids[1]]).unwrap();
        assert_eq!(s.speech_cache_size().unwrap(), (0, 0));
        let audio: i64 = s.conn().query_row("SELECT count(*) FROM speech_audio", [], |r| r.get(0)).unwrap();
        assert_eq!(audio, 0, "the samples go with their row");
    }

    #[test]
    fn the_cache_keeps_within_its_cap_dropping_the_least_recently_heard() {
        let (_d, s, ids) = with_messages(4);
        let pcm = vec![1i16; 500]; // 1,000 bytes each
        for (t, id) in ids.iter().take(3).enumerate() {
            s.cache_speech(*id, "k", &pcm, &marks(), t as i64, 3_000).unwrap();
        }
        assert!(s.cached_speech(ids[0], "k", 10).unwrap().is_some(), "heard again: now the most recent");
        s.cache_speech(ids[3], "k", &pcm, &marks(), 11, 3_000).unwrap();
        assert_eq!(s.speech_cache_size().unwrap(), (3, 3_000));
        let audio: i64 = s.conn().query_row("SELECT count(*) FROM speech_audio", [], |r| r.get(0)).unwrap();
        assert_eq!(audio, 3, "evicted samples go too");
        assert!(s.cached_speech(ids[1], "k", 12).unwrap().is_none(), "the least recently heard left");
        assert!(s.cached_speech(ids[0], "k", 12).unwrap().is_some());
        // A rendering larger than the whole cache is not kept (and evicts nothing).
        s.cache_speech(ids[1], "k", &vec![0i16; 2_000], &marks(), 13, 3_000).unwrap();
        assert_eq!(s.speech_cache_size().unwrap(), (3, 3_000));
    }
}
