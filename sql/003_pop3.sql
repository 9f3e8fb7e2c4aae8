-- voxbridge schema, version 3: POP3 unique-ids (UIDL strings) for rows of POP3 mailboxes.
ALTER TABLE message ADD COLUMN server_key TEXT;
CREATE INDEX message_by_key ON message(mailbox, server_key);
