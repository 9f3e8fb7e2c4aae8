-- voxbridge schema, version 23: faxes to send (`voxbridge fax forward`, the menu's
-- forward to a fax number), waiting like deposits wait in the outbox. The job owns a
-- copy of its pages (`file`, below the store), so removing the message it came from
-- does not touch it. `pages_sent` is written as the far machine confirms each page:
-- a job interrupted by a crash is sent again only if no page went through, never a
-- second time after its pages were confirmed.
CREATE TABLE fax_job (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox         TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    source_message  INTEGER,              -- the message forwarded (may be gone since)
    target          TEXT NOT NULL,        -- sip:NUMBER@HOST[:PORT]
    ident           TEXT NOT NULL,        -- our TSI
    file            TEXT NOT NULL,        -- the TIFF to send, below the store directory
    pages           INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    pages_sent      INTEGER NOT NULL DEFAULT 0,
    result          TEXT,                 -- T.30's result or why the call failed, last attempt
    next_attempt_at INTEGER NOT NULL,     -- unix milliseconds
    created_at      INTEGER NOT NULL,     -- unix seconds
    finished_at     INTEGER
);
CREATE INDEX fax_job_due ON fax_job(state, next_attempt_at);
