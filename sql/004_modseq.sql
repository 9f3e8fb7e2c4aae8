-- voxbridge schema, version 4: CONDSTORE (RFC 7162) — the mailbox's HIGHESTMODSEQ seen at
-- the start of the last complete pass, from which the next pass asks only for changes.
ALTER TABLE sync_account ADD COLUMN highestmodseq INTEGER;
