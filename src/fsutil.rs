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

/// Writes `bytes` to `path` so readers never see half a file: write a
/// temporary file beside it, fsync it, rename it over `path`, fsync the
/// directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |op, e| Error::io(path, op, e);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create temp file", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename", e)
    })?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(&dir) {
        d.sync_all().map_err(|e| io("fsync directory", e))?;
    }
    Ok(())
}
