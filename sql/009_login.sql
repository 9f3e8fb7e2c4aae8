-- voxbridge schema, version 9: the mailbox menu's login lockout.
-- Wrong PINs are remembered across calls; enough of them within the window lock the
-- mailbox until locked_until (unix seconds).
CREATE TABLE login_failure (
    mailbox TEXT NOT NULL,
    at      INTEGER NOT NULL   -- unix seconds
);
CREATE INDEX login_failure_by_mailbox ON login_failure(mailbox, at);
ALTER TABLE mailbox ADD COLUMN locked_until INTEGER;
