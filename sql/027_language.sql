-- voxbridge schema, version 27: a mailbox's language (a prompts/<lang> directory, e.g.
-- "de"): its callers hear the deposit's words in it, its subscriber the menu after
-- logging in. NULL: [prompts] language.
ALTER TABLE mailbox ADD COLUMN language TEXT;
