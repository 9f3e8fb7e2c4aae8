//! Faxes to send, waiting like deposits wait in the outbox (see sql/023). A job owns a
//! copy of its pages; its state moves queued → sending → sent | failed, or back to
//! queued for another attempt; `pages_sent` is recorded as each page is confirmed.

use super::db::{now_millis, now_secs, Commit, Store};
use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

/// A fax to queue, and where its pages come from.
#[derive(Debug, Clone)]
pub struct NewFaxJob {
    pub mailbox: String,
    pub source_message: Option<i64>,
    pub target: String,
    pub ident: String,
    pub from: FaxSource,
}

#[derive(Debug, Clone)]
pub enum FaxSource {
    /// A TIFF below the store (a received fax), copied.
    File(String),
    /// A TIFF made for the job (an e-mail set onto pages).
    Tiff(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FaxJob {
    pub id: i64,
    pub mailbox: String,
    pub source_message: Option<i64>,
    pub target: String,
    pub ident: String,
    /// The TIFF, below the store.
    pub file: String,
    pub pages: i64,
    pub state: String,
    pub attempts: i64,
    pub pages_sent: i64,
    pub result: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// How an attempt ends for the job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Sent,
    Failed,
    /// Another attempt at this time (unix milliseconds).
    Retry(i64),
}

const COLUMNS: &str = "id, mailbox, source_message, target, ident, file, pages, state, attempts, pages_sent, result,
                       next_attempt_at, created_at, finished_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FaxJob> {
    Ok(FaxJob {
        id: r.get(0)?,
        mailbox: r.get(1)?,
        source_message: r.get(2)?,
        target: r.get(3)?,
        ident: r.get(4)?,
        file: r.get(5)?,
        pages: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        pages_sent: r.get(9)?,
        result: r.get(10)?,
        next_attempt_at: r.get(11)?,
        created_at: r.get(12)?,
        finished_at: r.get(13)?,
    })
}

impl Store {
    /// Copies the pages into the job's own file (durable), then commits the job, due at
    /// once.
    pub fn queue_fax_job(&self, j: &NewFaxJob) -> Result<i64> {
        let bytes = match &j.from {
            FaxSource::File(rel) => {
                let src = self.root().join(rel);
                std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?
            }
            FaxSource::Tiff(t) => t.clone(),
        };
        let pages = crate::fax::tiff::pages(&bytes) as i64;
        let rel = super::files::outgoing_fax(now_secs());
        crate::durable::write_durable(&self.root().join(&rel), &bytes)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO fax_job (mailbox, source_message, target, ident, file, pages, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![j.mailbox, j.source_message, j.target, j.ident, rel, pages, now_millis(), now_secs()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn fax_jobs(&self) -> Result<Vec<FaxJob>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM fax_job ORDER BY id"))?;
        let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn fax_job(&self, id: i64) -> Result<Option<FaxJob>> {
        let conn = self.conn();
        Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM fax_job WHERE id = ?1"), [id], row).optional()?)
    }

    /// Takes a due job for an attempt: `sending`, one attempt more, committed before the
    /// call is placed. `None` when none is due.
    pub fn claim_fax_job(&self, now_ms: i64) -> Result<Option<FaxJob>> {
        // One statement: the job found is the job taken.
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "UPDATE fax_job SET state = 'sending', attempts = attempts + 1
                     WHERE id = (SELECT id FROM fax_job WHERE state = 'queued' AND next_attempt_at <= ?1
                                 ORDER BY next_attempt_at LIMIT 1)
                     RETURNING {COLUMNS}"
                ),
                [now_ms],
                row,
            )
            .optional()?)
    }

    /// The far machine confirmed `pages` of the job's pages.
    pub fn fax_job_pages(&self, id: i64, pages: i64) -> Result<()> {
        self.conn().execute("UPDATE fax_job SET pages_sent = MAX(pages_sent, ?2) WHERE id = ?1", params![id, pages])?;
        Ok(())
    }

    /// Ends an attempt.
    pub fn finish_fax_job(&self, id: i64, end: &JobEnd, result: &str) -> Result<()> {
        let conn = self.conn();
        match end {
            JobEnd::Sent | JobEnd::Failed => conn.execute(
                "UPDATE fax_job SET state = ?2, result = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, if *end == JobEnd::Sent { "sent" } else { "failed" }, result, now_secs()],
            )?,
            JobEnd::Retry(at) => conn.execute(
                "UPDATE fax_job SET state = 'queued', result = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, result, at],
            )?,
        };
        Ok(())
    }

    /// At start-up: jobs a crash left `sending`. One that got no page through is queued
    /// again; one whose pages (some or all) were confirmed is not sent a second time —
    /// all confirmed is sent, some is failed, saying so. Returns (requeued, finished).
    pub fn recover_fax_jobs(&self) -> Result<(usize, usize)> {
        self.transact(Commit::Durable, |conn| {
            let requeued = conn.execute(
                "UPDATE fax_job SET state = 'queued', next_attempt_at = ?1,
                    result = 'interrupted before a page went through; sending again'
             WHERE state = 'sending' AND pages_sent = 0",
                [now_millis()],
            )?;
            let done = conn.execute(
                "UPDATE fax_job SET finished_at = ?1,
                    state = CASE WHEN pages_sent >= pages THEN 'sent' ELSE 'failed' END,
                    result = CASE WHEN pages_sent >= pages THEN 'OK (every page confirmed before an interruption)'
                             ELSE 'interrupted after ' || pages_sent || ' of ' || pages ||
                                  ' pages; not sent again (the far machine has those pages)' END
             WHERE state = 'sending'",
                [now_secs()],
            )?;
            Ok((requeued, done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_fax() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.conn().execute("INSERT INTO mailbox (number, pin_hash, created_at) VALUES ('100', 'x', 0)", []).unwrap();
        // Two IFDs of zero entries: a two-page TIFF as far as the job is concerned.
        let mut two = b"II*\0\x08\0\0\0".to_vec();
        two.extend([0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        std::fs::write(dir.path().join("in.tif"), &two).unwrap();
        (dir, s, "in.tif".into())
    }

    fn job(from: &str) -> NewFaxJob {
        NewFaxJob {
            mailbox: "100".into(),
            source_message: Some(7),
            target: "sip:7001@127.0.0.1".into(),
            ident: "vb".into(),
            from: FaxSource::File(from.into()),
        }
    }

    #[test]
    fn a_job_owns_its_pages_and_moves_through_its_states() {
        let (dir, s, from) = store_with_fax();
        let id = s.queue_fax_job(&job(&from)).unwrap();
        std::fs::remove_file(dir.path().join(&from)).unwrap();
        let j = s.fax_job(id).unwrap().unwrap();
        assert!(dir.path().join(&j.file).exists(), "the job's own copy stays when the source goes");
        assert_eq!((j.pages, j.state.as_str(), j.attempts), (2, "queued", 0));
        let claimed = s.claim_fax_job(now_millis()).unwrap().unwrap();
        assert_eq!((claimed.id, claimed.state.as_str(), claimed.attempts), (id, "sending", 1));
        assert!(s.claim_fax_job(now_millis()).unwrap().is_none(), "a job in progress is not claimed twice");
        s.finish_fax_job(id, &JobEnd::Retry(now_millis() + 60_000), "486 Busy Here").unwrap();
        assert!(s.claim_fax_job(now_millis()).unwrap().is_none(), "not due yet");
        assert!(s.claim_fax_job(now_millis() + 61_000).unwrap().is_some());
        s.fax_job_pages(id, 2).unwrap();
        s.finish_fax_job(id, &JobEnd::Sent, "OK").unwrap();
        let j = s.fax_job(id).unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.pages_sent, j.attempts, j.result.as_deref()), ("sent", 2, 2, Some("OK")));
    }

    #[test]
    fn a_crash_mid_send_resends_only_a_job_that_got_no_page_through() {
        let (_dir, s, from) = store_with_fax();
        let (none, some, all) = (
            s.queue_fax_job(&job(&from)).unwrap(),
            s.queue_fax_job(&job(&from)).unwrap(),
            s.queue_fax_job(&job(&from)).unwrap(),
        );
        for _ in 0..3 {
            s.claim_fax_job(now_millis()).unwrap().unwrap();
        }
        s.fax_job_pages(some, 1).unwrap();
        s.fax_job_pages(all, 2).unwrap();
        assert_eq!(s.recover_fax_jobs().unwrap(), (1, 2));
        let state = |id| s.fax_job(id).unwrap().unwrap();
        assert_eq!(state(none).state, "queued");
        assert_eq!(state(some).state, "failed");
        assert!(state(some).result.unwrap().contains("interrupted after 1 of 2 pages"));
        assert_eq!(state(all).state, "sent");
    }
}
