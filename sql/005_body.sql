-- voxbridge schema, version 5: raw bodies of retrieved messages live in the database, so
-- that a batch of retrieved messages is made durable by one transaction (one fsync)
-- rather than one file and one fsync per message.
CREATE TABLE message_body (
    message INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    raw     BLOB NOT NULL
);
