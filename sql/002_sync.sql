-- voxbridge schema, version 2: the sync engine.
-- Runs with foreign keys off (see store::migrate), as SQLite's table rebuild requires.

-- A Message-ID is unique per mailbox, not globally: one mail sent to two subscribers is
-- two rows. synced_state is the state both sides agreed on at the last sync (the base
-- that lets a deliberate change in either direction win; see sync::model::merge).
CREATE TABLE message_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox      TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('voice', 'fax', 'email')),
    state        TEXT NOT NULL CHECK (state IN ('U', 'R', 'M', 'D')),
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
    synced_state TEXT CHECK (synced_state IN ('U', 'R', 'M', 'D')),
    UNIQUE (mailbox, message_id)
);
INSERT INTO message_v2 (id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
                        media_path, media_bytes, message_id, subject, server_uid, uidvalidity)
    SELECT id, mailbox, kind, state, caller, caller_name, received_at, duration_ms, pages,
           media_path, media_bytes, message_id, subject, server_uid, uidvalidity FROM message;
DROP TABLE message;
ALTER TABLE message_v2 RENAME TO message;
CREATE INDEX message_by_mailbox ON message(mailbox, id);
CREATE INDEX message_by_uid ON message(mailbox, server_uid);

-- Per-account sync state and backoff.
CREATE TABLE sync_account (
    mailbox         TEXT PRIMARY KEY REFERENCES mailbox(number) ON DELETE CASCADE,
    uidvalidity     INTEGER,
    last_sync_at    INTEGER,
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER
);

-- What each sync pass did (the seed's event agent).
CREATE TABLE sync_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    at      INTEGER NOT NULL,
    ok      INTEGER NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX sync_log_by_mailbox ON sync_log(mailbox, id);
