-- voxbridge schema, version 22: how a received fax's T.30 session ended ("OK", or why
-- it failed part way: the pages that arrived are kept). NULL for other messages.
ALTER TABLE message ADD COLUMN fax_result TEXT;
