-- voxbridge schema, version 6: rows changed here since the last agreed state ("dirty"),
-- found without scanning the mailbox, so a QRESYNC pass costs the changes only.
CREATE INDEX message_dirty ON message(mailbox) WHERE synced_state IS NULL OR synced_state != state;
