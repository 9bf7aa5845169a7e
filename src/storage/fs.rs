//! [`FsIo`]: the real file system behind the [`Io`] trait.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::io::{Io, IoLock};

/// Real files and directories.
///
/// Files written through [`Io::write_at`] stay open in a small cache until
/// [`Io::release`], rename, remove or truncate, so that [`Io::sync_file`]
/// fsyncs the *same* file descriptor the writes went through and therefore
/// sees any write-back error they caused (Linux reports such an error only to
/// descriptors that were open when it happened).
#[derive(Debug, Default)]
pub struct FsIo {
    open: Mutex<HashMap<PathBuf, Arc<File>>>,
}

impl FsIo {
    /// A new handle with no open files.
    pub fn new() -> Self {
        FsIo::default()
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<File>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (each operation is a single insert/remove), so poisoning is ignored.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, path: &Path) -> io::Result<Arc<File>> {
        if let Some(f) = self.cache().get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(OpenOptions::new().read(true).write(true).open(path)?);
        self.cache().insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    fn forget(&self, path: &Path) {
        self.cache().remove(path);
    }
}

#[cfg(unix)]
fn pwrite(f: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, data, offset)
}

#[cfg(unix)]
fn pread(f: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn pwrite(f: &File, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = f.seek_write(data, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn pread(f: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_read(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Whether the open file `f` is the file or directory `path` names now.
#[cfg(unix)]
fn same_inode(f: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let a = f.metadata()?;
    match fs::metadata(path) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn same_inode(_f: &File, path: &Path) -> io::Result<bool> {
    // Windows does not let an open file be removed or replaced.
    path.try_exists()
}

impl Io for FsIo {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        match fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            r => r,
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            // Non-UTF-8 names cannot be ours; they are skipped.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let cached = self.cache().get(path).cloned();
        match cached {
            Some(f) => pread(&f, offset, buf),
            None => pread(&File::open(path)?, offset, buf),
        }
    }

    fn map_file(&self, path: &Path) -> io::Result<super::mapped::MappedBytes> {
        super::mapped::MappedBytes::map(&File::open(path)?)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.cache().insert(path.to_path_buf(), Arc::new(f));
        Ok(())
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        pwrite(&*self.handle(path)?, offset, data)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.handle(path)?.set_len(len)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.handle(path)?.sync_all()
    }

    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.handle(path)?.sync_data()
    }

    #[cfg(unix)]
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    #[cfg(not(unix))]
    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        // Directory handles cannot be fsynced portably; NTFS journals
        // metadata operations itself.
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        fs::remove_file(path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<IoLock>> {
        // A directory is locked through a read-only descriptor of it: it
        // cannot be unlinked while it holds the ledger's files, unlike a
        // lock file (which `rm` takes away from under its holder).
        let f = if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            File::open(path)?
        } else {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?
        };
        match f.try_lock() {
            Ok(()) => Ok(Some(IoLock::new(f))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn lock_is_current(&self, lock: &IoLock, path: &Path) -> io::Result<bool> {
        match lock.guard::<File>() {
            Some(f) => same_inode(f, path),
            None => Ok(false),
        }
    }

    fn is_current(&self, path: &Path) -> io::Result<bool> {
        let cached = self.cache().get(path).cloned();
        match cached {
            Some(f) => same_inode(&f, path),
            None => Ok(true),
        }
    }

    fn is_symlink(&self, path: &Path) -> io::Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(m) => Ok(m.file_type().is_symlink()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn release(&self, path: &Path) {
        self.forget(path);
    }
}
