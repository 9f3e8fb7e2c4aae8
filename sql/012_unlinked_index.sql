-- voxbridge schema, version 12: a Message-ID links a retrieved message only to a row that
-- is on no server yet (a deposit waiting to be recognized, or every row after a
-- UIDVALIDITY change). Before, UNIQUE (mailbox, message_id) made two copies of one
-- message on the server share one row, whose UID then flipped between them at every
-- pass (and the body was fetched again each time). Two copies are now two rows.
-- The partial index holds only unlinked rows: an expunge no longer updates an index
-- entry per removed row for it. Runs with foreign keys off (see store::migrate).
CREATE TABLE message_v12 (
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
    server_key   TEXT
);
INSERT INTO message_v12 (id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
                        media_path, media_bytes, message_id, subject, server_uid, uidvalidity, synced_state,
                        server_key)
    SELECT id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
           media_path, media_bytes, message_id, subject, server_uid, uidvalidity, synced_state, server_key
    FROM message;
-- Keep AUTOINCREMENT's high-water mark: a deleted message's id is never given again.
DELETE FROM sqlite_sequence WHERE name = 'message_v12';
INSERT INTO sqlite_sequence (name, seq) SELECT 'message_v12', seq FROM sqlite_sequence WHERE name = 'message';
DROP TABLE message;
ALTER TABLE message_v12 RENAME TO message;
CREATE INDEX message_by_uid ON message(mailbox, server_uid);
CREATE INDEX message_unlinked ON message(mailbox, message_id) WHERE server_uid IS NULL AND server_key IS NULL;
CREATE INDEX message_by_key ON message(mailbox, server_key) WHERE server_key IS NOT NULL;
CREATE INDEX message_dirty ON message(mailbox) WHERE synced_state IS NULL OR synced_state != state;
