//! A column of fixed-width values: owned, or a view into the bytes of a
//! mapped snapshot (format 3) that is read in place and copied only when
//! first modified.

use std::ops::{Deref, Range};
use std::sync::Arc;

use crate::storage::MappedBytes;

/// `Vec<T>` or a shared, read-only slice of `T` inside [`MappedBytes`].
#[derive(Clone)]
pub(crate) enum Col<T> {
    Owned(Vec<T>),
    Shared {
        bytes: Arc<MappedBytes>,
        /// Byte range, checked at construction: aligned for `T` and a
        /// multiple of its size.
        range: Range<usize>,
    },
}

impl<T> Default for Col<T> {
    fn default() -> Self {
        Col::Owned(Vec::new())
    }
}

impl<T: bytemuck::Pod> Col<T> {
    /// A view of `range` in `bytes`, or `None` when it is out of bounds,
    /// misaligned for `T` or not a whole number of values. Values are read
    /// as stored: only for little-endian `T` on a little-endian target
    /// (callers decode otherwise).
    pub(crate) fn shared(bytes: Arc<MappedBytes>, range: Range<usize>) -> Option<Self> {
        let b = bytes.as_bytes().get(range.clone())?;
        bytemuck::try_cast_slice::<u8, T>(b).ok()?;
        Some(Col::Shared { bytes, range })
    }

    /// The values, owned from here on (a shared view is copied once).
    pub(crate) fn to_mut(&mut self) -> &mut Vec<T> {
        if let Col::Shared { .. } = self {
            *self = Col::Owned(self.to_vec());
        }
        match self {
            Col::Owned(v) => v,
            Col::Shared { .. } => unreachable!("made owned above"),
        }
    }

    /// Bytes held: heap capacity, or the mapped bytes viewed.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Col::Owned(v) => v.capacity() * std::mem::size_of::<T>(),
            Col::Shared { range, .. } => range.len(),
        }
    }

    /// Whether this is a view into mapped bytes.
    #[cfg(test)]
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Col::Shared { .. })
    }
}

impl<T: bytemuck::Pod> Deref for Col<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Col::Owned(v) => v,
            // Checked by `shared`; the bytes never move or change.
            Col::Shared { bytes, range } => {
                bytemuck::try_cast_slice(&bytes.as_bytes()[range.clone()]).unwrap_or(&[])
            }
        }
    }
}

impl<T> From<Vec<T>> for Col<T> {
    fn from(v: Vec<T>) -> Self {
        Col::Owned(v)
    }
}

impl<T: bytemuck::Pod + PartialEq> PartialEq for Col<T> {
    fn eq(&self, o: &Self) -> bool {
        **self == **o
    }
}

impl<T: bytemuck::Pod + PartialEq> PartialEq<Vec<T>> for Col<T> {
    fn eq(&self, o: &Vec<T>) -> bool {
        **self == o[..]
    }
}

impl<T: bytemuck::Pod + std::fmt::Debug> std::fmt::Debug for Col<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_checked_and_copied_on_write() {
        let mut raw = Vec::new();
        for v in [1u64, 2, 3] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        let bytes = Arc::new(MappedBytes::copy_of(&raw));
        assert!(
            Col::<u64>::shared(bytes.clone(), 0..25).is_none(),
            "past the end"
        );
        assert!(
            Col::<u64>::shared(bytes.clone(), 1..9).is_none(),
            "misaligned"
        );
        assert!(
            Col::<u64>::shared(bytes.clone(), 0..12).is_none(),
            "partial value"
        );
        let mut c = Col::<u64>::shared(bytes.clone(), 8..24).unwrap();
        assert!(c.is_shared());
        if cfg!(target_endian = "little") {
            assert_eq!(c, vec![2, 3]);
        }
        c.to_mut().push(9);
        assert!(!c.is_shared());
        assert_eq!(c.len(), 3);
        assert_eq!(bytes.as_bytes(), &raw[..], "the mapped bytes are unchanged");
    }
}
