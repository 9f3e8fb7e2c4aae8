-- voxbridge schema, version 8: cheaper message rows for large mailboxes.
-- Runs with foreign keys off (see store::migrate), as SQLite's table rebuild requires.
--
-- Measured on a 100,000-message mailbox (docs/sync.md):
-- * `CHECK (x IN (...))` makes SQLite build a temporary B-tree for the list on every
--   INSERT and on every UPDATE of the column; the same rule written with `=`/`OR` costs
--   three comparisons. Same constraints, cheaper form.
-- * message_by_mailbox(mailbox, id) only ordered listings; every sync query uses
--   message_by_uid, and a per-mailbox listing can use the UNIQUE (mailbox, message_id)
--   index. One index fewer to update per inserted or deleted row.
-- * message_by_key serves POP3 rows only; IMAP rows (server_key NULL) stay out of it.
CREATE TABLE message_v8 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox      TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind = 'voice' OR kind = 'fax' OR kind = 'email'),
    state        TEXT NOT NULL CHECK (state = 'U' OR state = 'R' OR state = 'M' OR state = 'D'),
    caller       TEXT,
    caller_name  TEXT,
    received_at  INTEGER NOT NULL,
    duration_ms  INTEGER,
    pages        INTEGER,
    media_path   TEXT,
    media_bytes  INTEGER,
    message_id   TEXT NOT NULL,
    subject      TEXT,
    server_uid   INTEGER,
    uidvalidity  INTEGER,
    synced_state TEXT CHECK (synced_state IS NULL OR synced_state = 'U' OR synced_state = 'R'
                             OR synced_state = 'M' OR synced_state = 'D'),
    server_key   TEXT,
    UNIQUE (mailbox, message_id)
);
INSERT INTO message_v8 (id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
                        media_path, media_bytes, message_id, subject, server_uid, uidvalidity, synced_state,
                        server_key)
    SELECT id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
           media_path, media_bytes, message_id, subject, server_uid, uidvalidity, synced_state, server_key
    FROM message;
-- Keep AUTOINCREMENT's high-water mark: a deleted message's id is never given again.
DELETE FROM sqlite_sequence WHERE name = 'message_v8';
INSERT INTO sqlite_sequence (name, seq) SELECT 'message_v8', seq FROM sqlite_sequence WHERE name = 'message';
DROP TABLE message;
ALTER TABLE message_v8 RENAME TO message;
CREATE INDEX message_by_uid ON message(mailbox, server_uid);
CREATE INDEX message_by_key ON message(mailbox, server_key) WHERE server_key IS NOT NULL;
CREATE INDEX message_dirty ON message(mailbox) WHERE synced_state IS NULL OR synced_state != state;
