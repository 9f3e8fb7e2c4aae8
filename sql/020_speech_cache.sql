-- voxbridge schema, version 20: e-mails rendered to speech, kept for the next listen
-- (the seed's Media Conversion server keeps the audio in the message store). One row
-- per message: the text it was rendered from (as a SHA-256 over voice and sentences,
-- so changed rules or a changed mail render anew), the 8 kHz s16le samples and where
-- sentences and paragraphs start. A cache: written without an fsync, bounded by
-- `[menu] speech_cache_mb` (least recently used first out), and dropped by these
-- triggers when its message is marked deleted, removed, or its body changes.
CREATE TABLE speech_cache (
    message  INTEGER PRIMARY KEY,
    text_key TEXT    NOT NULL,
    marks    TEXT    NOT NULL,
    bytes    INTEGER NOT NULL,
    used_at  INTEGER NOT NULL
);
-- The samples in a table of their own: a row is read and updated (used_at) without
-- walking, or rewriting, the overflow pages of 50 MB of audio.
CREATE TABLE speech_audio (
    message INTEGER PRIMARY KEY,
    pcm     BLOB NOT NULL
);
CREATE INDEX speech_cache_by_use ON speech_cache (used_at);
CREATE TRIGGER speech_cache_row_removed AFTER DELETE ON speech_cache
BEGIN
    DELETE FROM speech_audio WHERE message = old.message;
END;
CREATE TRIGGER speech_cache_message_removed AFTER DELETE ON message
BEGIN
    DELETE FROM speech_cache WHERE message = old.id;
END;
CREATE TRIGGER speech_cache_message_deleted AFTER UPDATE OF state ON message
WHEN new.state IN ('M', 'D')
BEGIN
    DELETE FROM speech_cache WHERE message = new.id;
END;
CREATE TRIGGER speech_cache_body_changed AFTER UPDATE ON message_body
BEGIN
    DELETE FROM speech_cache WHERE message = old.message;
END;
CREATE TRIGGER speech_cache_body_removed AFTER DELETE ON message_body
BEGIN
    DELETE FROM speech_cache WHERE message = old.message;
END;
