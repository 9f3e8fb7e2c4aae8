-- voxbridge schema, version 1.
-- The store is the single anchor of reference: every state change is first a row here.

CREATE TABLE mailbox (
    number        TEXT PRIMARY KEY NOT NULL,
    pin_hash      TEXT NOT NULL,              -- PHC string (salted SHA-256, see store::pin)
    name          TEXT,
    email         TEXT,
    imap_url      TEXT,                       -- imap[s]://user:pass@host:port/FOLDER
    pop3_url      TEXT,                       -- pop3[s]://user:pass@host:port
    smtp_url      TEXT,                       -- smtp://host:port
    greeting_path TEXT,                       -- recorded unavailable greeting, if any
    created_at    INTEGER NOT NULL            -- unix seconds
);

CREATE TABLE message (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox      TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('voice', 'fax', 'email')),
    state        TEXT NOT NULL CHECK (state IN ('U', 'R', 'M', 'D')),
    caller       TEXT,                        -- caller ID (user part) or sender address
    caller_name  TEXT,
    received_at  INTEGER NOT NULL,            -- unix seconds
    duration_ms  INTEGER,                     -- voice
    pages        INTEGER,                     -- fax
    media_path   TEXT,                        -- relative to the store directory
    media_bytes  INTEGER,
    message_id   TEXT NOT NULL UNIQUE,        -- RFC 5322 Message-ID, stable across retries
    subject      TEXT,
    server_uid   INTEGER,                     -- IMAP UID once the mailbox holds it
    uidvalidity  INTEGER
);
CREATE INDEX message_by_mailbox ON message(mailbox, id);

-- Deliveries waiting for a mail server. A row is never deleted on failure: it is
-- retried with backoff until delivered_at is set.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message         INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    target          TEXT NOT NULL CHECK (target IN ('imap', 'smtp')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,         -- unix milliseconds
    last_error      TEXT,
    delivered_at    INTEGER,                  -- unix seconds
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(delivered_at, next_attempt_at);
