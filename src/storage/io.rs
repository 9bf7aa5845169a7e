//! The small set of file-system operations the log and snapshots use.
//!
//! All disk access goes through [`Io`], so the crash and fault tests can run
//! the real log code on [`MemIo`](super::MemIo), an in-memory model that
//! knows which bytes and directory entries are durable. [`FsIo`](super::FsIo)
//! is the real file system.
//!
//! Paths are whole paths; the trait is stateless from the caller's side. An
//! implementation may keep a file open between calls: [`Io::sync_file`] must
//! report write-back errors of earlier [`Io::write_at`] calls to the same path
//! (that is why `FsIo` caches its handles; an fsync on a freshly opened file
//! descriptor can miss an error that happened before it was opened).

use super::mapped::MappedBytes;
use std::any::Any;
use std::io;
use std::path::Path;

/// [`StorageError::Symlink`] if `p` is a symbolic link: the parts of a
/// ledger directory must be inside it.
pub(crate) fn refuse_symlink<I: Io + ?Sized>(io: &I, p: &Path) -> super::Result<()> {
    if io
        .is_symlink(p)
        .map_err(|e| super::StorageError::io("stat", p, e))?
    {
        return Err(super::StorageError::Symlink {
            path: p.to_path_buf(),
        });
    }
    Ok(())
}

/// A held lock; dropping it releases the lock.
pub struct IoLock(#[allow(dead_code)] Box<dyn Any + Send + Sync>);

impl IoLock {
    /// Wraps whatever keeps the lock alive (an open file, a guard).
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        IoLock(Box::new(guard))
    }

    /// The guard, if it is a `T` (for [`Io::lock_is_current`]).
    pub fn guard<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for IoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IoLock")
    }
}

/// File-system operations used by the storage layer.
///
/// Durability contract (what [`MemIo`](super::MemIo) models): data written by
/// [`write_at`](Io::write_at) / [`truncate`](Io::truncate) is durable only
/// after [`sync_file`](Io::sync_file) of that file returns Ok; a directory
/// entry created, renamed or removed by [`create_dir`](Io::create_dir),
/// [`create_file`](Io::create_file), [`rename`](Io::rename) or
/// [`remove_file`](Io::remove_file) is durable only after
/// [`sync_dir`](Io::sync_dir) of the containing directory returns Ok.
pub trait Io: Send + Sync {
    /// Creates the directory `path` (its parent must exist). Ok if it exists.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Names of the entries of directory `path` (files and directories),
    /// in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Length of the file in bytes.
    fn file_len(&self, path: &Path) -> io::Result<u64>;

    /// Fills `buf` from the file starting at byte `offset`; an error of kind
    /// `UnexpectedEof` if the file is shorter.
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Creates an empty file at `path`, truncating it if it exists.
    fn create_file(&self, path: &Path) -> io::Result<()>;

    /// Writes all of `data` at byte `offset` of an existing file (extending it
    /// if needed).
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Sets the file's length to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;

    /// Makes the file's data and length durable (fsync).
    fn sync_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the file's data durable, not necessarily its metadata
    /// (`fdatasync`). Only for a file whose length has not changed since
    /// its last [`sync_file`](Io::sync_file); then it is as durable as
    /// that. Default: [`sync_file`](Io::sync_file).
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        self.sync_file(path)
    }

    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Atomically renames `from` to `to` (same directory), replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Tries to take an exclusive lock on the file or directory at `path`
    /// (a file is created if nothing is there). `Ok(None)` if someone else
    /// holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<IoLock>>;

    /// Whether `lock`, taken by [`try_lock`](Io::try_lock) on `path`, still
    /// locks what `path` names now: false once that file or directory was
    /// removed, replaced or moved away (its lock then protects nothing).
    fn lock_is_current(&self, lock: &IoLock, path: &Path) -> io::Result<bool>;

    /// Whether the file `path` names is still the one earlier writes to
    /// `path` went to (an implementation that keeps handles open writes
    /// through them: a file removed or replaced under it would silently
    /// take the writes). Default true.
    fn is_current(&self, path: &Path) -> io::Result<bool> {
        let _ = path;
        Ok(true)
    }

    /// Whether `path` is a symbolic link (not followed). Default false.
    fn is_symlink(&self, path: &Path) -> io::Result<bool> {
        let _ = path;
        Ok(false)
    }

    /// Hints that `path` will not be written again soon: an implementation
    /// that caches open handles may close it. Never fails.
    fn release(&self, path: &Path) {
        let _ = path;
    }

    /// Reads the whole file with one allocation sized from its length.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let len = self.file_len(path)?;
        let len =
            usize::try_from(len).map_err(|_| io::Error::other("file too large for memory"))?;
        let mut buf = vec![0u8; len];
        self.read_at(path, 0, &mut buf)?;
        Ok(buf)
    }

    /// The whole file, to be read in place: a read-only memory map where
    /// the `Io` has real files ([`FsIo`](super::FsIo)); otherwise (the
    /// default) an aligned copy read with [`read_all`](Io::read_all). Only
    /// for files that are never modified in place (snapshots).
    fn map_file(&self, path: &Path) -> io::Result<MappedBytes> {
        Ok(MappedBytes::copy_of(&self.read_all(path)?))
    }
}

/// A shared reference to an `Io` is an `Io` (e.g. `verify` opens a
/// `Log<&I>` without taking ownership).
impl<T: Io + ?Sized> Io for &T {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        (**self).create_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        (**self).list_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        (**self).exists(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        (**self).file_len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(path, offset, buf)
    }
    fn create_file(&self, path: &Path) -> io::Result<()> {
        (**self).create_file(path)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(path, offset, data)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        (**self).truncate(path, len)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        (**self).sync_file(path)
    }
    fn sync_data(&self, path: &Path) -> io::Result<()> {
        (**self).sync_data(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        (**self).sync_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        (**self).remove_file(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<IoLock>> {
        (**self).try_lock(path)
    }
    fn lock_is_current(&self, lock: &IoLock, path: &Path) -> io::Result<bool> {
        (**self).lock_is_current(lock, path)
    }
    fn is_current(&self, path: &Path) -> io::Result<bool> {
        (**self).is_current(path)
    }
    fn is_symlink(&self, path: &Path) -> io::Result<bool> {
        (**self).is_symlink(path)
    }
    fn release(&self, path: &Path) {
        (**self).release(path)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        (**self).read_all(path)
    }
    fn map_file(&self, path: &Path) -> io::Result<MappedBytes> {
        (**self).map_file(path)
    }
}
