-- voxbridge schema, version 24: a mailbox's own fax number. A call to it is received as
-- a fax into the mailbox, whatever the dialplan says (no route per mailbox needed).
ALTER TABLE mailbox ADD COLUMN fax_number TEXT;
CREATE UNIQUE INDEX mailbox_fax_number ON mailbox(fax_number) WHERE fax_number IS NOT NULL;
