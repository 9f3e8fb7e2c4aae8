-- voxbridge schema, version 18: pre-processing substitutions of the admin (mailbox NULL:
-- for every mailbox) and of each mailbox, applied before the language's rule file when
-- an e-mail is read out. Rules run in id order: older first.
CREATE TABLE substitution (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox    TEXT REFERENCES mailbox(number) ON DELETE CASCADE,
    lang       TEXT NOT NULL,
    is_regex   INTEGER NOT NULL,
    pattern    TEXT NOT NULL,
    say        TEXT NOT NULL,
    whole_word INTEGER NOT NULL DEFAULT 1,
    any_case   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX substitution_by_mailbox ON substitution (mailbox, lang);
