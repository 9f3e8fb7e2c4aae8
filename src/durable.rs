//! Durable file writes, below the store and the media code that both need them.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
/// When this returns Ok the file survives a power cut.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("{:08x}.tmp", rand::random::<u32>()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all().context("fsync failed")?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all().context("fsync of directory failed")?;
    Ok(())
}
