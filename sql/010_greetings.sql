-- voxbridge schema, version 10: greetings recorded by phone. greeting_path (version 1)
-- stays the unavailable greeting; a temporary greeting overrides the others while set;
-- the recorded name replaces the extension's digits in the default greeting.
ALTER TABLE mailbox ADD COLUMN busy_greeting_path TEXT;
ALTER TABLE mailbox ADD COLUMN name_path TEXT;
ALTER TABLE mailbox ADD COLUMN temp_greeting_path TEXT;
