//! Moving a torn tail to `LEDGER/quarantine/` before cutting it off.
//!
//! Order matters: the copy is durable (file fsync + directory fsync) before
//! the segment is truncated, so a crash at any step loses no bytes, and
//! running it again after a crash finishes the job (idempotent).

use std::path::Path;

use super::error::{Result, StorageError};
use super::io::Io;
use super::recovery::Recovery;
use super::window::Window;

/// Copies `[from, from + n)` of `src` into the new file `dst`, durably.
fn copy_out<I: Io + ?Sized>(io: &I, src: &Path, from: u64, n: u64, dst: &Path) -> Result<()> {
    let mut w = Window::new(io, src, from + n);
    io.create_file(dst)
        .map_err(|e| StorageError::io("create", dst, e))?;
    let mut done = 0;
    while done < n {
        let chunk = w.get_upto(from + done, 1 << 20)?.to_vec();
        io.write_at(dst, done, &chunk)
            .map_err(|e| StorageError::io("write", dst, e))?;
        done += chunk.len() as u64;
    }
    io.sync_file(dst)
        .map_err(|e| StorageError::io("sync", dst, e))
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
