//! Small file-system helpers for files outside the ledger's log: bounded
//! reads of inputs, and atomic writes of outputs.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Reads the whole file at `path` (a regular file, a pipe, a device: `-`
/// is not special here), refusing more than `cap` bytes with
/// [`Error::TooLarge`] naming the file, `what` it is and the cap. A regular
/// file's length is checked before anything is read; anything else is read
/// until the cap, growing the buffer with fallible allocations, so neither
/// `/dev/zero` nor a sparse multi-gigabyte file can exhaust memory.
pub fn read_bounded(path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>> {
    let too_large = |out_of_memory| Error::TooLarge {
        path: path.to_path_buf(),
        what,
        cap,
        out_of_memory,
    };
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            "read",
            std::io::Error::other("is a directory"),
        ));
    }
    if meta.is_file() && meta.len() > cap {
        return Err(too_large(false));
    }
    let mut buf: Vec<u8> = Vec::new();
    let first = if meta.is_file() { meta.len() } else { 64 << 10 };
    buf.try_reserve_exact(first.min(cap) as usize + 1)
        .map_err(|_| too_large(true))?;
    loop {
        if buf.len() == buf.capacity() {
            // Double, but never past the cap (plus the one byte that tells
            // a file of exactly `cap` bytes from a longer one).
            let want = (buf.len() as u64 * 2).min(cap + 1) as usize;
            if want <= buf.len() {
                return Err(too_large(false));
            }
            buf.try_reserve_exact(want - buf.len())
                .map_err(|_| too_large(true))?;
        }
        let len = buf.len();
        let room = buf.capacity() - len;
        buf.resize(len + room, 0);
        match f.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(n) => {
                buf.truncate(len + n);
                if buf.len() as u64 > cap {
                    return Err(too_large(false));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(Error::io(path, "read", e)),
        }
    }
}

/// An output file being written (`-o`): readers never see half of it.
///
/// * A regular file (or a new one) is written to a temporary file beside
///   it, fsynced, renamed over it, the directory fsynced, on
///   [`Output::commit`]. A symbolic link is written *through*: its target
///   is replaced the same way, and the link stays (a dangling link is
///   refused).
/// * A FIFO or a character device (`/dev/stdout`, `/dev/null`) is written
///   directly, never replaced.
/// * Anything inside a ledger directory, a directory, a block device or a
///   socket is refused before anything is written.
///
/// Dropped without `commit` (an error on the way), the temporary file is
/// removed: no `.tmp` is left behind, and the target is untouched.
pub struct Output {
    target: std::path::PathBuf,
    file: Option<std::fs::File>,
    /// The temporary file, for an atomic replace.
    tmp: Option<std::path::PathBuf>,
}

/// The ledger directory `dir` is, or lies in (a directory holding `log/`
/// and `HEAD` or `LOCK`).
fn enclosing_ledger(dir: &Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .find(|d| {
            d.join(crate::storage::LOG_DIR).is_dir()
                && (d.join(crate::storage::HEAD_FILE).is_file()
                    || d.join(crate::storage::LOCK_FILE).is_file())
        })
        .map(Path::to_path_buf)
}

impl Output {
    /// Opens `path` for writing, by the rules above.
    pub fn create(path: &Path) -> Result<Output> {
        Self::create_mode(path, None)
    }

    /// [`Output::create`], a new file created with Unix permissions `mode`
    /// (e.g. 0600 for a file only its owner may read) when given.
    pub fn create_mode(path: &Path, mode: Option<u32>) -> Result<Output> {
        let refuse = |what: String| Error::io(path, "write output", std::io::Error::other(what));
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => path.canonicalize().map_err(|_| {
                refuse("a symbolic link to nothing: refused (write to its target instead)".into())
            })?,
            Ok(_) => path
                .canonicalize()
                .map_err(|e| Error::io(path, "resolve", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let name = path
                    .file_name()
                    .ok_or_else(|| refuse("not a file name".into()))?;
                dir.canonicalize()
                    .map_err(|e| Error::io(dir, "resolve the output's directory", e))?
                    .join(name)
            }
            Err(e) => return Err(Error::io(path, "stat", e)),
        };
        let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        if let Some(l) = enclosing_ledger(&dir) {
            return Err(refuse(format!(
                "inside the ledger directory {}: refused (an output must never replace a ledger's files)",
                l.display()
            )));
        }
        let io = |op, e| Error::io(path, op, e);
        match std::fs::metadata(&target) {
            Ok(m) if m.is_file() => {}
            #[cfg(unix)]
            Ok(m)
                if {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_fifo() || m.file_type().is_char_device()
                } =>
            {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(|e| io("open", e))?;
                return Ok(Output {
                    target,
                    file: Some(f),
                    tmp: None,
                });
            }
            Ok(_) => {
                return Err(refuse(
                    "not a regular file, FIFO or character device: refused".into(),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("stat", e)),
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        if mode.is_some() {
            // A leftover temp file would keep its own permissions.
            let _ = std::fs::remove_file(&tmp);
        }
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let f = opts.open(&tmp).map_err(|e| io("create temp file", e))?;
        Ok(Output {
            target,
            file: Some(f),
            tmp: Some(tmp),
        })
    }

    /// Makes the output final: for a file, fsync, rename over the target,
    /// fsync the directory. On error the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        let io = |op, e| Error::io(&target, op, e);
        let f = self.file.take();
        let Some(tmp) = self.tmp.clone() else {
            return Ok(());
        };
        if let Some(f) = f {
            f.sync_all().map_err(|e| io("fsync", e))?;
        }
        std::fs::rename(&tmp, &self.target).map_err(|e| io("rename", e))?;
        self.tmp = None;
        #[cfg(unix)]
        if let Some(d) = self.target.parent() {
            if let Ok(d) = std::fs::File::open(d) {
                d.sync_all().map_err(|e| io("fsync directory", e))?;
            }
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.file = None;
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes `bytes` to `path` through an [`Output`] (atomic for a file).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_mode(path, bytes, None)
}

/// [`atomic_write`], a new file created with Unix permissions `mode` when given.
pub fn atomic_write_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    let mut o = Output::create_mode(path, mode)?;
    o.write_all(bytes)
        .map_err(|e| Error::io(path, "write", e))?;
    o.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn output_is_atomic_and_leaves_no_temp_file_on_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.optm");
        std::fs::write(&p, b"old").unwrap();
        // Written, then dropped without commit (what every `?` does).
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"half").unwrap();
        drop(o);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), vec!["m.optm"]);
        atomic_write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(names(d.path()), vec!["m.optm"]);
    }

    #[cfg(unix)]
    #[test]
    fn output_writes_through_links_and_never_into_a_ledger() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::write(&real, b"old").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        atomic_write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        std::os::unix::fs::symlink(d.path().join("none"), d.path().join("dangling")).unwrap();
        assert!(atomic_write(&d.path().join("dangling"), b"x").is_err());
        // A ledger directory (log/ and HEAD), and a link into it.
        let l = d.path().join("L");
        std::fs::create_dir_all(l.join("log")).unwrap();
        std::fs::write(l.join("HEAD"), b"").unwrap();
        let seg = l.join("log").join("00000000000000000001.seg");
        std::fs::write(&seg, b"segment").unwrap();
        std::os::unix::fs::symlink(&seg, d.path().join("into")).unwrap();
        for p in [seg.clone(), d.path().join("into"), l.join("new.optm")] {
            let e = atomic_write(&p, b"x").unwrap_err().to_string();
            assert!(e.contains("inside the ledger directory"), "{e}");
        }
        assert_eq!(std::fs::read(&seg).unwrap(), b"segment");
        assert!(atomic_write(d.path(), b"x").is_err(), "a directory");
    }
}
