//! Ordinals to per-shard row bitmaps: the counting sort on the high 16
//! bits, the L1 radix sort of each partition, and the run-by-run walk.

use super::*;

/// Adds `rows` (any order) to `b`, sorting only when needed.
pub(super) fn add_rows(b: &mut RoaringBitmap, rows: &mut Vec<u32>) {
    // Strictly ascending, or sort: never let from_sorted_iter fail.
    if !rows.windows(2).all(|w| w[0] < w[1]) {
        rows.sort_unstable();
        rows.dedup();
    }
    let add = RoaringBitmap::from_sorted_iter(rows.iter().copied())
        .unwrap_or_else(|_| rows.iter().copied().collect());
    if b.is_empty() {
        *b = add;
    } else {
        *b |= add;
    }
}

/// Ascending, unique ordinals as rows of their shards, one bitmap per
/// stretch of one shard (a shard registered in several stretches appears
/// once per stretch).
pub(super) fn shard_rows(
    recs: &crate::index::Records,
    ords: &[u32],
) -> Vec<(ShardId, RoaringBitmap)> {
    let mut out = Vec::new();
    let mut cur: Option<ShardId> = None;
    let mut rows: Vec<u32> = Vec::new();
    let mut flush = |cur: Option<ShardId>, rows: &mut Vec<u32>| {
        if let Some(c) = cur {
            let mut b = RoaringBitmap::new();
            add_rows(&mut b, rows);
            out.push((c, b));
        }
        rows.clear();
    };
    recs.for_each_record(ords, |_, id| {
        if cur != Some(id.shard()) {
            flush(cur, &mut rows);
            cur = Some(id.shard());
        }
        rows.push(id.row());
    });
    flush(cur, &mut rows);
    out
}

/// The gathered ordinals of one reason (any order, duplicates allowed) as
/// per-shard row bitmaps. With several workers the ordinal space is
/// partitioned once, then each worker sorts a contiguous range of
/// partitions and maps it to rows; the results come back in ordinal order.
pub(super) fn gathered_rows(
    recs: &crate::index::Records,
    ords: &mut [u32],
    threads: usize,
) -> Vec<(ShardId, RoaringBitmap)> {
    if ords.len() < 1 << 12 {
        let mut v = ords.to_vec();
        v.sort_unstable();
        v.dedup();
        return shard_rows(recs, &v);
    }
    with_parted(|parted| split_rows(recs, ords, threads, parted))
}

/// [`gathered_rows`] of a large set, partitioned through `parted`.
fn split_rows(
    recs: &crate::index::Records,
    ords: &mut [u32],
    threads: usize,
    parted: &mut Vec<u32>,
) -> Vec<(ShardId, RoaringBitmap)> {
    let start = partition_high(ords, recs.n_ords, parted);
    let parted = &parted[..];
    let buckets = start.len() - 1;
    let threads = threads.clamp(1, buckets);
    // Bucket cuts with about as many ordinals on each side.
    let mut cuts = vec![0usize];
    for t in 1..threads {
        let want = (ords.len() * t / threads) as u32;
        cuts.push(start.partition_point(|&x| x < want).min(buckets));
    }
    cuts.push(buckets);
    let mut slices: Vec<&mut [u32]> = Vec::with_capacity(threads);
    let mut rest: &mut [u32] = ords;
    let mut at = 0usize;
    for t in 0..threads {
        let end = start[cuts[t + 1]] as usize;
        let (a, b) = rest.split_at_mut(end - at);
        slices.push(a);
        rest = b;
        at = end;
    }
    let work = |t: usize, dst: &mut [u32]| {
        let base = start[cuts[t]] as usize;
        radix_partitions(parted, &start, cuts[t]..cuts[t + 1], base, dst);
        let n = dedup_sorted(dst);
        shard_rows(recs, &dst[..n])
    };
    if threads == 1 {
        return work(0, slices.pop().unwrap_or_default());
    }
    std::thread::scope(|s| {
        let work = &work;
        let hs: Vec<_> = slices
            .into_iter()
            .enumerate()
            .map(|(t, dst)| s.spawn(move || work(t, dst)))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("rows worker"))
            .collect()
    })
}

/// Removes repeats from a sorted slice in place; returns the unique count.
pub(super) fn dedup_sorted(v: &mut [u32]) -> usize {
    if v.is_empty() {
        return 0;
    }
    let mut n = 1;
    for i in 1..v.len() {
        if v[i] != v[n - 1] {
            v[n] = v[i];
            n += 1;
        }
    }
    n
}

/// Ordinals kept in a partition buffer between evaluations, at most
/// (16 M: 64 MiB); a larger one is freed after use.
const KEEP_PARTED: usize = 1 << 24;

thread_local! {
    /// The partition buffer of this thread's last large sort, kept for the
    /// next: a fresh buffer of millions of ordinals costs a page fault per
    /// 4 KiB written (a long-lived process evaluates again and again).
    static PARTED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's partition buffer (a new one if it is in use).
fn with_parted<R>(f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
    PARTED.with(|p| match p.try_borrow_mut() {
        Ok(mut v) => {
            let r = f(&mut v);
            if v.capacity() > KEEP_PARTED {
                *v = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Partitions ordinals by their high 16 bits (a counting sort: two
/// sequential passes) into `parted` (resized to fit); returns where
/// partition `b` starts (`start[b]..start[b + 1]`).
pub(super) fn partition_high(ords: &[u32], n_ords: u32, parted: &mut Vec<u32>) -> Vec<u32> {
    let buckets = (n_ords as usize >> 16) + 1;
    let mut start = vec![0u32; buckets + 1];
    for &o in ords.iter() {
        start[(o >> 16) as usize + 1] += 1;
    }
    for i in 0..buckets {
        start[i + 1] += start[i];
    }
    parted.clear();
    parted.resize(ords.len(), 0);
    let mut next = start.clone();
    for &o in ords.iter() {
        let b = (o >> 16) as usize;
        parted[next[b] as usize] = o;
        next[b] += 1;
    }
    start
}

/// Sorts partitions `range` of `parted` into `dst` (which starts at
/// partition offset `base`): each partition, which stays in L1, by its low
/// byte into a scratch buffer, then by its second byte into place. No
/// comparisons and no data-dependent branches (a bitset scan of sparse
/// words mispredicts on nearly every word).
pub(super) fn radix_partitions(
    parted: &[u32],
    start: &[u32],
    range: std::ops::Range<usize>,
    base: usize,
    dst: &mut [u32],
) {
    let mut tmp: Vec<u32> = Vec::new();
    for b in range {
        let (lo, hi) = (start[b] as usize, start[b + 1] as usize);
        if lo == hi {
            continue;
        }
        let part = &parted[lo..hi];
        let mut c0 = [0u32; 257];
        let mut c1 = [0u32; 257];
        for &o in part {
            c0[(o & 255) as usize + 1] += 1;
            c1[((o >> 8) & 255) as usize + 1] += 1;
        }
        for i in 0..256 {
            c0[i + 1] += c0[i];
            c1[i + 1] += c1[i];
        }
        tmp.clear();
        tmp.resize(part.len(), 0);
        for &o in part {
            let d = (o & 255) as usize;
            tmp[c0[d] as usize] = o;
            c0[d] += 1;
        }
        let out = &mut dst[lo - base..hi - base];
        for &o in &tmp {
            let d = ((o >> 8) & 255) as usize;
            out[c1[d] as usize] = o;
            c1[d] += 1;
        }
    }
}

/// Sorts and deduplicates ordinals: [`partition_high`] then
/// [`radix_partitions`] for large sets, a comparison sort for small ones.
pub(super) fn sort_unique(ords: &mut Vec<u32>, n_ords: u32) {
    if ords.len() < 1 << 12 {
        ords.sort_unstable();
        ords.dedup();
        return;
    }
    with_parted(|parted| {
        let start = partition_high(ords, n_ords, parted);
        radix_partitions(parted, &start, 0..start.len() - 1, 0, ords);
    });
    ords.dedup();
}

pub(super) fn union_of(
    recs: &crate::index::Records,
    profiles: &[usize],
    limit: u32,
) -> RoaringBitmap {
    let mut u = RoaringBitmap::new();
    for &p in profiles {
        u |= &recs.profile_rows[p];
    }
    if limit < recs.n_ords {
        u.remove_range(limit..);
    }
    u
}
