//! Moving a torn tail to `LEDGER/quarantine/` before cutting it off.
//!
//! Order matters: the copy is durable (file fsync + directory fsync) before
//! the segment is truncated, so a crash at any step loses no bytes, and
//! running it again after a crash finishes the job (idempotent).

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Io;
use super::recovery::Recovery;
use super::window::Window;

/// Copies `[from, from + n)` of `src` into the new file `dst`, durably.
/// On failure (a full disk, say) the partial copy is removed: the segment
/// is not cut, and the next open starts the copy again.
fn copy_out<I: Io + ?Sized>(io: &I, src: &Path, from: u64, n: u64, dst: &Path) -> Result<()> {
    io.create_file(dst)
        .map_err(|e| StorageError::io("create", dst, e))?;
    let r = (|| {
        let mut w = Window::new(io, src, from + n);
        let mut done = 0;
        while done < n {
            let chunk = w.get_upto(from + done, 1 << 20)?.to_vec();
            io.write_at(dst, done, &chunk)
                .map_err(|e| StorageError::io("write", dst, e))?;
            done += chunk.len() as u64;
        }
        io.sync_file(dst)
            .map_err(|e| StorageError::io("sync", dst, e))
    })();
    if r.is_err() {
        let _ = io.remove_file(dst);
    }
    r
}

/// Whether `dst` already holds exactly `[from, from + n)` of `src` (left by an
/// earlier, interrupted recovery).
fn same_bytes<I: Io + ?Sized>(io: &I, src: &Path, from: u64, n: u64, dst: &Path) -> Result<bool> {
    if io
        .file_len(dst)
        .map_err(|e| StorageError::io("stat", dst, e))?
        != n
    {
        return Ok(false);
    }
    let mut a = Window::new(io, src, from + n);
    let mut b = Window::new(io, dst, n);
    let mut done = 0;
    while done < n {
        let x = a.get_upto(from + done, 1 << 20)?.to_vec();
        if b.get_upto(done, x.len())? != &x[..] {
            return Ok(false);
        }
        done += x.len() as u64;
    }
    Ok(true)
}

/// Moves the tail's bytes to `quarantine_dir` durably, then cuts them from
/// the segment durably. Idempotent: a crash at any step leaves either the
/// uncut segment (and maybe a quarantine copy, reused if complete) or the cut
/// one, and running it again finishes the job.
pub(crate) fn quarantine_tail<I: Io + ?Sized>(
    io: &I,
    quarantine_dir: &Path,
    tail: &mut Recovery,
) -> Result<()> {
    let seg = tail.segment.clone();
    let stem = seg
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("segment")
        .to_owned();
    let (from, n) = (tail.truncated_at, tail.bytes);
    let mut k = 0u32;
    let dst = loop {
        let name = match k {
            0 => format!("{stem}-{from}.torn"),
            _ => format!("{stem}-{from}.{k}.torn"),
        };
        let dst = quarantine_dir.join(name);
        if !io
            .exists(&dst)
            .map_err(|e| StorageError::io("stat", &dst, e))?
        {
            copy_out(io, &seg, from, n, &dst)?;
            break dst;
        }
        if same_bytes(io, &seg, from, n, &dst)? {
            // Visible is not durable (a process crash keeps the page cache).
            io.sync_file(&dst)
                .map_err(|e| StorageError::io("sync", &dst, e))?;
            break dst;
        }
        k += 1;
    };
    io.sync_dir(quarantine_dir)
        .map_err(|e| StorageError::io("sync dir", quarantine_dir, e))?;
    if tail.segment_removed {
        io.remove_file(&seg)
            .map_err(|e| StorageError::io("remove", &seg, e))?;
        let dir = seg.parent().unwrap_or(Path::new("."));
        io.sync_dir(dir)
            .map_err(|e| StorageError::io("sync dir", dir, e))?;
    } else {
        io.truncate(&seg, from)
            .map_err(|e| StorageError::io("truncate", &seg, e))?;
        io.sync_file(&seg)
            .map_err(|e| StorageError::io("sync", &seg, e))?;
    }
    tail.quarantine = Some(dst);
    Ok(())
}

/// A file in `LEDGER/quarantine/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineFile {
    /// Its path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Its length in bytes.
    pub bytes: u64,
    /// blake3 of its bytes (read in windows, never whole).
    pub blake3: [u8; 32],
}

/// The files in `root/quarantine/`, sorted by name, with their hashes.
pub fn list<I: Io + ?Sized>(io: &I, root: &Path) -> Result<Vec<QuarantineFile>> {
    let dir = root.join(super::QUARANTINE_DIR);
    if !io
        .exists(&dir)
        .map_err(|e| StorageError::io("stat", &dir, e))?
    {
        return Ok(Vec::new());
    }
    super::io::refuse_symlink(io, &dir)?;
    let mut names = io
        .list_dir(&dir)
        .map_err(|e| StorageError::io("list", &dir, e))?;
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        super::io::refuse_symlink(io, &path)?;
        let bytes = io
            .file_len(&path)
            .map_err(|e| StorageError::io("stat", &path, e))?;
        let mut w = Window::new(io, &path, bytes);
        let mut h = blake3::Hasher::new();
        let mut at = 0;
        while at < bytes {
            let c = w.get_upto(at, 1 << 20)?;
            h.update(c);
            at += c.len() as u64;
        }
        out.push(QuarantineFile {
            path,
            name,
            bytes,
            blake3: *h.finalize().as_bytes(),
        });
    }
    Ok(out)
}
