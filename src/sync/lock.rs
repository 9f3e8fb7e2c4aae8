//! The account registry's lock (seed section C, "session locking"): one sync session per
//! account at a time, across threads *and* processes (the CLI's `voxbridge sync` and the
//! server share the store), by an exclusive lock on `<store>/locks/<mailbox>.lock`.

use anyhow::{Context, Result};
use std::path::Path;

/// Held while a session runs; dropping it releases the account.
#[derive(Debug)]
pub struct AccountLock {
    _file: std::fs::File,
}

impl AccountLock {
    /// Waits until no other session holds the account, then holds it.
    pub fn acquire(store_root: &Path, mailbox: &str) -> Result<AccountLock> {
        let dir = store_root.join("locks");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let safe: String = mailbox.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let path = dir.join(format!("{safe}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(AccountLock { _file: file })
    }

    /// Holds the account if it is free; None if another session runs.
    pub fn try_acquire(store_root: &Path, mailbox: &str) -> Result<Option<AccountLock>> {
        let dir = store_root.join("locks");
        std::fs::create_dir_all(&dir)?;
        let safe: String = mailbox.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{safe}.lock")))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(AccountLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_session_per_account() {
        let d = tempfile::tempdir().unwrap();
        let a = super::AccountLock::try_acquire(d.path(), "100").unwrap();
        assert!(a.is_some());
        assert!(super::AccountLock::try_acquire(d.path(), "100").unwrap().is_none(), "busy");
        assert!(super::AccountLock::try_acquire(d.path(), "200").unwrap().is_some(), "other accounts are free");
        drop(a);
        assert!(super::AccountLock::try_acquire(d.path(), "100").unwrap().is_some(), "released");
    }
}
