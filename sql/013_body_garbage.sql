-- voxbridge schema, version 13: the raw body of a removed message is reclaimed after the
-- fact instead of inside the transaction that removes its row. Removing a row used to
-- delete its body by ON DELETE CASCADE, which rewrote one 4 KiB body page per message:
-- half of what a pass that saw 1,000 expunges wrote to the WAL (and fsynced) before it
-- could end. Now a trigger queues the id in body_garbage (a few pages for 1,000 ids),
-- and the store's maintenance thread (or the end of a one-shot `voxbridge sync`)
-- deletes those bodies when writers are quiet. Message ids are never reused
-- (AUTOINCREMENT), so a queued body can never belong to a newer message.
-- Runs with foreign keys off (see store::migrate).
CREATE TABLE body_garbage (message INTEGER PRIMARY KEY);
CREATE TABLE message_body_v13 (
    message INTEGER PRIMARY KEY,
    raw     BLOB NOT NULL
);
INSERT INTO message_body_v13 (message, raw) SELECT message, raw FROM message_body;
DROP TABLE message_body;
ALTER TABLE message_body_v13 RENAME TO message_body;
-- Bodies whose message was already gone (none, while the cascade held).
INSERT INTO body_garbage (message) SELECT message FROM message_body WHERE message NOT IN (SELECT id FROM message);
CREATE TRIGGER message_body_to_garbage AFTER DELETE ON message
BEGIN
    INSERT OR IGNORE INTO body_garbage (message) VALUES (old.id);
END;
