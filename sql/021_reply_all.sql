-- voxbridge schema, version 21: a voice reply to all of an e-mail's recipients. The
-- copies (Cc) are kept with the reply, as a JSON array of addresses, so a retry sends
-- the same message to the same people.
ALTER TABLE outgoing ADD COLUMN cc TEXT NOT NULL DEFAULT '[]';
