//! Durable file writes, below the store and the media code that both need them.
//!
//! Both kinds write a temporary file beside the target and rename it into place only
//! once its bytes are on disk (fsync of the file, then of the directory), so a reader
//! sees the whole file or none. A write that fails — a full disk, an I/O error —
//! removes its temporary file: a full disk is not made fuller by leftovers.

use anyhow::{Context, Result};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

fn temp_beside(path: &Path) -> PathBuf {
    path.with_extension(format!("{:08x}.tmp", rand::random::<u32>()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)?.sync_all().context("fsync of directory failed")
}

/// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of the directory.
/// When this returns Ok the file survives a power cut.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = temp_beside(path);
    let written = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().context("fsync failed")?;
        drop(f);
        std::fs::rename(&tmp, path).with_context(|| format!("cannot rename into {}", path.display()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a file another writer finished (the fax engine's TIFF, written through
/// libtiff) durable where it is: fsync of the file, then of its directory.
pub fn sync_file_and_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .sync_all()
        .context("fsync failed")?;
    sync_dir(path.parent().context("path has no directory")?)
}

/// A file written piece by piece while it is made (a recording), made durable and put
/// in place at the end ([`StreamingFile::finish`]), or thrown away — dropping it
/// unfinished removes the temporary file too.
pub struct StreamingFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
    len: u64,
}

impl StreamingFile {
    /// Starts the file that will be `path`, with `head` as its first bytes.
    pub fn create(path: &Path, head: &[u8]) -> Result<StreamingFile> {
        let dir = path.parent().context("path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = temp_beside(path);
        let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut s = StreamingFile { path: path.to_path_buf(), tmp, file: Some(file), len: 0 };
        s.append(head)?;
        Ok(s)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let f = self.file.as_mut().context("file already finished")?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", self.tmp.display()))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file to `len` bytes, writes `head` over its start (a header that now
    /// knows the length), and makes it durable under its name. On error the temporary
    /// file is gone.
    pub fn finish(mut self, len: u64, head: &[u8]) -> Result<PathBuf> {
        let mut f = self.file.take().context("file already finished")?;
        let done = (|| -> Result<()> {
            f.set_len(len.min(self.len)).context("cannot truncate")?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(head)?;
            f.sync_all().context("fsync failed")?;
            drop(f);
            std::fs::rename(&self.tmp, &self.path)
                .with_context(|| format!("cannot rename into {}", self.path.display()))
        })();
        if let Err(e) = done {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        sync_dir(self.path.parent().context("path has no directory")?)?;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for StreamingFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn a_streamed_file_appears_whole_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/rec.wav");
        let mut s = StreamingFile::create(&path, b"HEAD").unwrap();
        s.append(b"0123456789").unwrap();
        assert!(!path.exists(), "not in place before it is finished");
        assert_eq!(files(&d.path().join("sub")).len(), 1, "one temporary file");
        s.append(b"trailing-silence").unwrap();
        let done = s.finish(4 + 10, b"head").unwrap();
        assert_eq!(std::fs::read(&done).unwrap(), b"head0123456789");
        assert_eq!(files(&d.path().join("sub")), ["rec.wav"]);
        // Dropped unfinished (a call that failed): nothing is left behind.
        let other = d.path().join("sub/other.wav");
        let mut s = StreamingFile::create(&other, b"H").unwrap();
        s.append(b"x").unwrap();
        drop(s);
        assert_eq!(files(&d.path().join("sub")), ["rec.wav"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the temp file was written.
        let target = d.path().join("taken");
        std::fs::create_dir(target.join("x")).ok();
        std::fs::create_dir_all(target.join("inner")).unwrap();
        assert!(write_durable(&target, b"data").is_err());
        assert_eq!(files(d.path()), ["taken"], "the temporary file was removed");
    }
}
