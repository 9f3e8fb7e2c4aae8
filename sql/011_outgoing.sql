-- voxbridge schema, version 11: voice replies sent by phone to an e-mail address. They
-- wait here like deposits wait in the outbox: retried with backoff, with a Message-ID
-- fixed at creation so a retry never makes a second, different message.
CREATE TABLE outgoing (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox         TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    rcpt            TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    subject         TEXT NOT NULL,
    in_reply_to     TEXT,                 -- Message-ID of the message answered
    media_path      TEXT NOT NULL,        -- the recorded reply, below the store directory
    duration_ms     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,     -- unix milliseconds
    last_error      TEXT,
    sent_at         INTEGER,              -- unix seconds
    created_at      INTEGER NOT NULL
);
CREATE INDEX outgoing_due ON outgoing(sent_at, next_attempt_at);
