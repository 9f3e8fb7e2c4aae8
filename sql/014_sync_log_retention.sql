-- voxbridge schema, version 14: the sync event log is kept for [sync] log_keep_days and
-- pruned by time (one pass per account per poll would otherwise grow it for ever);
-- sync_account.next_attempt_at (unix seconds) now says when an account in backoff is
-- retried, so `voxbridge sync-log` can show it.
CREATE INDEX sync_log_by_time ON sync_log(at);
