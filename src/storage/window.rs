//! A read window over one file: sequential reads without loading the whole
//! file, and without ever allocating more than the file holds.

use std::path::Path;

use super::error::{Result, StorageError};
use super::io::Io;

/// Default window size: reads are made in chunks of this many bytes.
pub(crate) const WINDOW: usize = 1 << 20;

pub(crate) struct Window<'a, I: Io + ?Sized> {
    io: &'a I,
    path: &'a Path,
    /// File length when the window was opened; reads never go past it.
    len: u64,
    start: u64,
    buf: Vec<u8>,
    chunk: usize,
}

impl<'a, I: Io + ?Sized> Window<'a, I> {
    pub(crate) fn new(io: &'a I, path: &'a Path, len: u64) -> Self {
        Window {
            io,
            path,
            len,
            start: 0,
            buf: Vec::new(),
            chunk: WINDOW,
        }
    }

    /// The file length the window reads within.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes `[offset, offset + n)`, or `None` if that runs past the end
    /// of the file. Allocates at most `max(n, WINDOW)` bytes, and never more
    /// than the file length.
    pub(crate) fn get(&mut self, offset: u64, n: usize) -> Result<Option<&[u8]>> {
        let Some(end) = offset.checked_add(n as u64) else {
            return Ok(None);
        };
        if end > self.len {
            return Ok(None);
        }
        let have_end = self.start + self.buf.len() as u64;
        if offset < self.start || end > have_end {
            // Refill from `offset`; the file is at least `end` bytes long.
            let want = (self.len - offset).min(n.max(self.chunk) as u64) as usize;
            self.buf.clear();
            self.buf.resize(want, 0);
            self.start = offset;
            self.io
                .read_at(self.path, offset, &mut self.buf)
                .map_err(|e| StorageError::io("read", self.path, e))?;
        }
        let s = (offset - self.start) as usize;
        Ok(Some(&self.buf[s..s + n]))
    }

    /// The bytes `[offset, min(offset + n, len))` (possibly empty).
    pub(crate) fn get_upto(&mut self, offset: u64, n: usize) -> Result<&[u8]> {
        let avail = self.len.saturating_sub(offset).min(n as u64) as usize;
        Ok(self.get(offset, avail)?.unwrap_or(&[]))
    }
}
