//! One server per store. Two `voxbridge serve` processes on one store (say with
//! different SIP ports) would each run the outbox: both could APPEND the same message
//! before either recorded it — a second copy in the subscriber's mailbox. The server
//! holds an exclusive lock on `<store>/server.lock` (with its pid inside, for the
//! error) for as long as it runs. One-shot commands do not take it: they share the
//! store with a running server by design (WAL mode, account locks).

use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held while a server runs on the store; released when dropped or the process ends.
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

impl ServerLock {
    /// Takes the store for this process, or fails naming the server that has it.
    pub fn acquire(store_root: &Path) -> Result<ServerLock> {
        let path = store_root.join("server.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                bail!(
                    "another voxbridge server (pid {}) runs on the store {}: one server per store \
                     (stop that server, or set [store] path to another directory)",
                    pid.trim(),
                    store_root.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(ServerLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::ServerLock;

    #[test]
    fn one_server_per_store() {
        let d = tempfile::tempdir().unwrap();
        let first = ServerLock::acquire(d.path()).unwrap();
        let err = format!("{:#}", ServerLock::acquire(d.path()).unwrap_err());
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        ServerLock::acquire(d.path()).expect("released with its holder");
    }
}
