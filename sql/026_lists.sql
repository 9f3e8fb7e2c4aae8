-- voxbridge schema, version 26: distribution lists in the store (they were only in the
-- configuration's [[menu.list]]). A message forwarded to a list's number goes to every
-- member mailbox. Members are mailbox numbers; a member's mailbox removed takes its
-- memberships with it (store::remove_mailbox), a list removed its members (cascade).
CREATE TABLE list (
    number     TEXT PRIMARY KEY,
    name       TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE list_member (
    list    TEXT NOT NULL REFERENCES list(number) ON DELETE CASCADE,
    mailbox TEXT NOT NULL,
    PRIMARY KEY (list, mailbox)
) WITHOUT ROWID;
-- The configuration's lists once imported, by number: a list the CLI removed does not
-- come back from the configuration at the next start.
CREATE TABLE list_imported (number TEXT PRIMARY KEY) WITHOUT ROWID;
