-- voxbridge schema, version 16: a mailbox's own time zone (IANA name, e.g.
-- "Europe/Berlin"), for the dates and times the menu speaks; NULL: the server's
-- ([mailbox] timezone, else the system's).
ALTER TABLE mailbox ADD COLUMN timezone TEXT;
