//! The keep-mask kernels: for each row of an array, whether it may be used.
//!
//! Three strategies:
//! * with a dense bitset of the excluded rows (built once per shard and
//!   cached, when the largest excluded row is below [`DENSE_LIMIT`]): one
//!   branch-free lookup per row, any order;
//! * otherwise, sorted input: a galloping merge of the excluded bitmap into
//!   the rows (cost ~ one pass + E log(n/E));
//! * otherwise: `RoaringBitmap::contains` per row.
//!
//! Rows wider than `u32` (from `uint64` input) are never excluded.

use roaring::RoaringBitmap;

/// Largest excluded row for which a dense bitset is built (16 MiB of bits).
pub const DENSE_LIMIT: u32 = 1 << 27;

/// A row index type accepted from numpy.
pub trait Row: Copy + Ord + Send + Sync {
    /// The row as `u64`.
    fn wide(self) -> u64;
}

impl Row for u32 {
    #[inline(always)]
    fn wide(self) -> u64 {
        self as u64
    }
}

impl Row for u64 {
    #[inline(always)]
    fn wide(self) -> u64 {
        self
    }
}

/// Dense bitset of `ex` (bit `r` set iff `r` is excluded), if small enough.
pub fn dense(ex: &RoaringBitmap) -> Option<Box<[u64]>> {
    let max = ex.max()?;
    if max >= DENSE_LIMIT {
        return None;
    }
    let mut words = vec![0u64; (max as usize >> 6) + 1].into_boxed_slice();
    for x in ex.iter() {
        words[x as usize >> 6] |= 1u64 << (x & 63);
    }
    Some(words)
}

/// Whether `rows` is sorted ascending (chunked so the compare vectorises).
pub fn is_sorted<T: Row>(rows: &[T]) -> bool {
    if rows.len() < 2 {
        return true;
    }
    let (a, b) = (&rows[..rows.len() - 1], &rows[1..]);
    a.chunks(4096)
        .zip(b.chunks(4096))
        .all(|(x, y)| x.iter().zip(y).fold(true, |ok, (p, q)| ok & (p <= q)))
}

/// First index `>= start` whose row is `>= x` (exponential then binary search).
#[inline]
fn lower_bound_from<T: Row>(rows: &[T], start: usize, x: u64) -> usize {
    let n = rows.len();
    let mut bound = 1usize;
    while start + bound < n && rows[start + bound].wide() < x {
        bound *= 2;
    }
    let lo = start + bound / 2;
    let hi = (start + bound + 1).min(n);
    lo + rows[lo..hi].partition_point(|r| r.wide() < x)
}

fn merge_sorted<T: Row>(ex: &RoaringBitmap, lo: u32, hi: u32, rows: &[T], out: &mut [bool]) {
    out.fill(true);
    let mut i = 0usize;
    for x in ex.range(lo..=hi) {
        i = lower_bound_from(rows, i, x as u64);
        if i >= rows.len() {
            break;
        }
        while i < rows.len() && rows[i].wide() == x as u64 {
            out[i] = false;
            i += 1;
        }
    }
}

fn by_dense<T: Row>(words: &[u64], rows: &[T], out: &mut [bool]) {
    for (o, r) in out.iter_mut().zip(rows) {
        let r = r.wide();
        let w = (r >> 6) as usize;
        *o = match words.get(w) {
            Some(bits) => (bits >> (r & 63)) & 1 == 0,
            None => true,
        };
    }
}

fn by_contains<T: Row>(ex: &RoaringBitmap, rows: &[T], out: &mut [bool]) {
    for (o, r) in out.iter_mut().zip(rows) {
        let r = r.wide();
        *o = r > u32::MAX as u64 || !ex.contains(r as u32);
    }
}

/// Writes into `out[i]` whether `rows[i]` may be used. `dense` is the
/// shard's cached bitset, or `None` to use the bitmap itself.
///
/// With a dense bitset, one lookup per row (about 1 ns, bound by reading the
/// rows) beats the merge's sortedness pass + fill + searches in every case
/// measured (see `bench_keep_mask.py`), so the merge is only used without one.
pub fn keep_mask<T: Row>(ex: &RoaringBitmap, dense: Option<&[u64]>, rows: &[T], out: &mut [bool]) {
    debug_assert_eq!(rows.len(), out.len());
    if ex.is_empty() || rows.is_empty() {
        out.fill(true);
        return;
    }
    if let Some(words) = dense {
        by_dense(words, rows, out);
        return;
    }
    if is_sorted(rows) {
        let lo = rows[0].wide();
        if lo > u32::MAX as u64 {
            out.fill(true);
            return;
        }
        let hi = rows[rows.len() - 1].wide().min(u32::MAX as u64) as u32;
        // The merge pays ~log(n/E) per excluded row in range, `contains` a
        // few ns per row.
        if ex.range_cardinality(lo as u32..=hi) <= (rows.len() as u64).saturating_mul(4) {
            merge_sorted(ex, lo as u32, hi, rows, out);
            return;
        }
    }
    by_contains(ex, rows, out);
}
