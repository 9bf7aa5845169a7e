//! The bytes of a file used in place: a read-only memory map of a snapshot
//! (format 3), or, for an [`Io`](super::Io) without real files, a heap copy
//! aligned to 8 bytes so the same zero-copy views work on it.
//!
//! Mapping hazard: a file truncated while mapped makes the next access to a
//! page past its new end raise `SIGBUS`. Snapshots are never modified in
//! place: they are written to a temp file and renamed over a fresh name, and
//! a replaced or pruned snapshot is unlinked, which leaves a live mapping
//! intact (docs/SECURITY.md, "Snapshots").

use std::fs::File;
use std::io;

/// Immutable bytes, 8-byte aligned at their start.
pub struct MappedBytes {
    inner: Inner,
}

enum Inner {
    Map(memmap2::Mmap),
    Heap(Vec<u64>, usize),
    Empty,
}

impl MappedBytes {
    /// An 8-byte-aligned copy of `b`.
    pub fn copy_of(b: &[u8]) -> Self {
        let mut words = vec![0u64; b.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..b.len()].copy_from_slice(b);
        MappedBytes {
            inner: Inner::Heap(words, b.len()),
        }
    }

    /// Maps `file` read-only (an empty file is not mapped).
    pub fn map(file: &File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(MappedBytes {
                inner: Inner::Empty,
            });
        }
        // SAFETY: the map is read-only, and the files mapped (snapshots) are
        // never written or truncated in place once renamed into place: a
        // new snapshot is a new file, an old one is only unlinked. Whoever
        // truncates one anyway (outside optout) gets SIGBUS, never a read
        // of other memory.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(MappedBytes {
            inner: Inner::Map(map),
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Map(m) => m,
            Inner::Heap(w, n) => &bytemuck::cast_slice(w)[..*n],
            Inner::Empty => &[],
        }
    }

    /// Whether the bytes are a memory map (not a heap copy).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Map(_))
    }
}

impl std::fmt::Debug for MappedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MappedBytes({} bytes{})",
            self.as_bytes().len(),
            if self.is_mapped() { ", mapped" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_aligned_and_exact() {
        for n in [0, 1, 7, 8, 9, 100] {
            let b: Vec<u8> = (0..n as u8).collect();
            let m = MappedBytes::copy_of(&b);
            assert_eq!(m.as_bytes(), &b[..]);
            assert_eq!(m.as_bytes().as_ptr() as usize % 8, 0);
        }
    }

    #[test]
    fn maps_a_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"mapped bytes").unwrap();
        let m = MappedBytes::map(&File::open(&p).unwrap()).unwrap();
        assert!(m.is_mapped());
        assert_eq!(m.as_bytes(), b"mapped bytes");
        drop(m);
        std::fs::write(&p, b"").unwrap();
        let e = MappedBytes::map(&File::open(&p).unwrap()).unwrap();
        assert_eq!(e.as_bytes(), b"");
    }
}
