//! Small file-system helpers for files outside the ledger's log.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` so readers never see half a file: write a
/// temporary file beside it, fsync it, rename it over `path`, fsync the
/// directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_mode(path, bytes, None)
}

/// [`atomic_write`], the temporary file created with Unix permissions
/// `mode` (e.g. 0600 for a file only its owner may read) when given.
pub fn atomic_write_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
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
    let written = opts
        .open(&tmp)
        .map_err(|e| io("create temp file", e))
        .and_then(|mut f| {
            f.write_all(bytes).map_err(|e| io("write", e))?;
            f.sync_all().map_err(|e| io("fsync", e))
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
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
