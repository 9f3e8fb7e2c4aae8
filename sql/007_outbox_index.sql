-- voxbridge schema, version 7: the foreign key outbox.message needs an index, or every
-- deleted message scans the outbox (SQLite checks child rows on delete).
CREATE INDEX outbox_by_message ON outbox(message);
