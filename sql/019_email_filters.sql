-- voxbridge schema, version 19: per-mailbox filters deciding which e-mails the phone
-- menu offers (the seed's E-mail Filtering server). Each rule is kept as the text the
-- admin gave (`voxbridge filters add`), parsed by services::filters. Filtered mail still
-- syncs; it is only not read out.
CREATE TABLE email_filter (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL REFERENCES mailbox(number) ON DELETE CASCADE,
    rule    TEXT NOT NULL
);
CREATE INDEX email_filter_by_mailbox ON email_filter (mailbox);
