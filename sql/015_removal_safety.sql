-- voxbridge schema, version 15: a mail server's error must never lose a message.
--
-- The safety brake (sync::brake): a pass that would remove most of a mailbox's rows as
-- gone from the server keeps them and records the held removal here; `voxbridge
-- sync-log` shows it as needing confirmation until `voxbridge sync NUMBER
-- --confirm-removals`, or until a pass finds the same condition held_since +
-- [sync] confirm_removals_after_secs later.
ALTER TABLE sync_account ADD COLUMN held_since INTEGER;   -- unix seconds; NULL: nothing held
ALTER TABLE sync_account ADD COLUMN held_rows INTEGER;    -- rows kept
ALTER TABLE sync_account ADD COLUMN held_of INTEGER;      -- rows of the mailbox on the server then

-- Removed voice and fax messages, kept for [store] trash_days: the row's description
-- and its media — the recording moved under trash/ (media_path), or for a retrieved one
-- its raw mail, left where it was (message_body keyed by the old row id, taken out of
-- body_garbage; ids are never reused, and a restored row gets its old id back) — so
-- that even a wrong removal can be undone with `voxbridge messages restore`. E-mails
-- are not kept: their copy is the mail server's.
CREATE TABLE trash (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox     TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    removed_at  INTEGER NOT NULL,             -- unix seconds
    reason      TEXT NOT NULL,                -- why the row went (store::Removal)
    message     INTEGER NOT NULL UNIQUE,      -- the removed row's id (restored under it)
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    caller      TEXT,
    caller_name TEXT,
    received_at INTEGER NOT NULL,
    duration_ms INTEGER,
    pages       INTEGER,
    media_path  TEXT,                         -- under trash/, relative to the store
    media_bytes INTEGER,
    message_id  TEXT NOT NULL,
    subject     TEXT
);
CREATE INDEX trash_by_mailbox ON trash(mailbox, id);
CREATE INDEX trash_by_time ON trash(removed_at);
