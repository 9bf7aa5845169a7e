//! Subjects: the pseudonym table and the subject → records links.
//!
//! Links are stored as compressed sparse rows (CSR): per subject a range in
//! one flat array of record ordinals. That costs ~4 bytes per link plus 8
//! per subject, against 65-95 bytes per record for a roaring bitmap per
//! subject, and a gather is a contiguous read. New links go to `pending`;
//! [`Links::freeze`] folds them into a small `recent` CSR, which is merged
//! into `base` once it grows past a quarter of it, so incremental ingest
//! costs amortised O(links) and queries always see two slices per subject.

use super::col::Col;
use crate::ids::SubjectKey;

/// Pseudonym → dense subject index. Pseudonyms are keyed hashes, so their
/// first 8 bytes are already a uniform hash value.
///
/// The hash table is built on first use: an index loaded from a snapshot
/// answers evaluations (which never look a pseudonym up) without paying
/// for 10M inserts.
#[derive(Default, Clone)]
pub(crate) struct SubjectTable {
    /// Pseudonym bytes by subject index.
    keys: Col<[u8; 16]>,
    table: std::sync::OnceLock<hashbrown::HashTable<u32>>,
}

fn hash_of(k: &[u8; 16]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[..8]);
    u64::from_le_bytes(b)
}

/// The table over `keys`; a repeated key (only a damaged snapshot has
/// one) resolves to its first index.
fn build(keys: &[[u8; 16]]) -> hashbrown::HashTable<u32> {
    let mut t = hashbrown::HashTable::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let h = hash_of(k);
        if t.find(h, |&j| keys[j as usize] == *k).is_none() {
            t.insert_unique(h, i as u32, |&j| hash_of(&keys[j as usize]));
        }
    }
    t
}

impl SubjectTable {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn get(&self, k: &SubjectKey) -> Option<u32> {
        self.table
            .get_or_init(|| build(&self.keys))
            .find(hash_of(&k.0), |&i| self.keys[i as usize] == k.0)
            .copied()
    }

    /// The pseudonyms' bytes, by subject index.
    pub(crate) fn keys(&self) -> &[[u8; 16]] {
        &self.keys
    }

    pub(crate) fn intern(&mut self, k: SubjectKey) -> u32 {
        if let Some(i) = self.get(&k) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.to_mut().push(k.0);
        let keys = &self.keys;
        self.table
            .get_mut()
            .expect("built by get")
            .insert_unique(hash_of(&k.0), i, |&j| hash_of(&keys[j as usize]));
        i
    }

    /// Whether two keys are equal (a damaged snapshot): a sort of their
    /// 8-byte prefixes (≈ 0.16 s for 10M, against ≈ 0.45 s to build the
    /// table); only equal prefixes send it to an exact check.
    pub(crate) fn has_duplicates(keys: &[[u8; 16]]) -> bool {
        let mut p: Vec<u64> = keys.iter().map(hash_of).collect();
        p.sort_unstable();
        if !p.windows(2).any(|w| w[0] == w[1]) {
            return false;
        }
        drop(p);
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        !keys.iter().all(|k| seen.insert(*k))
    }

    pub(crate) fn from_keys(keys: Col<[u8; 16]>) -> Self {
        SubjectTable {
            keys,
            table: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.bytes() + self.table.get().map_or(0, |t| t.capacity() * 5)
    }
}

/// One compressed-sparse-row array: the targets of subject `s` are
/// `targets[offsets[s]..offsets[s + 1]]`. Subjects at or past
/// `offsets.len() - 1` have none.
#[derive(Default, Clone)]
pub(crate) struct Csr {
    pub(crate) offsets: Col<u64>,
    pub(crate) targets: Col<u32>,
}

impl Csr {
    pub(crate) fn get(&self, s: u32) -> &[u32] {
        let s = s as usize;
        if s + 1 >= self.offsets.len() {
            return &[];
        }
        &self.targets[self.offsets[s] as usize..self.offsets[s + 1] as usize]
    }

    fn subjects(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Builds from `(subject, target)` pairs by a counting sort, keeping the
    /// pairs' order within each subject.
    pub(crate) fn build(n_subjects: usize, pairs: &[(u32, u32)]) -> Self {
        let mut offsets = vec![0u64; n_subjects + 1];
        for &(s, _) in pairs {
            offsets[s as usize + 1] += 1;
        }
        for i in 0..n_subjects {
            offsets[i + 1] += offsets[i];
        }
        let mut cursor: Vec<u64> = offsets[..n_subjects].to_vec();
        let mut targets = vec![0u32; pairs.len()];
        for &(s, t) in pairs {
            let c = &mut cursor[s as usize];
            targets[*c as usize] = t;
            *c += 1;
        }
        Csr {
            offsets: offsets.into(),
            targets: targets.into(),
        }
    }

    /// Concatenates per subject: `a`'s targets, then `b`'s.
    pub(crate) fn merge(a: &Csr, b: &Csr, n_subjects: usize) -> Self {
        let n = n_subjects.max(a.subjects()).max(b.subjects());
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(a.targets.len() + b.targets.len());
        offsets.push(0u64);
        for s in 0..n as u32 {
            targets.extend_from_slice(a.get(s));
            targets.extend_from_slice(b.get(s));
            offsets.push(targets.len() as u64);
        }
        Csr {
            offsets: offsets.into(),
            targets: targets.into(),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.offsets.bytes() + self.targets.bytes()
    }

    /// Drops trailing subjects without links (which [`Csr::get`] answers
    /// the same way whether listed or not), so the arrays depend only on
    /// the links and not on how many subjects existed when they were last
    /// merged: the canonical form a snapshot stores.
    pub(crate) fn trim(&mut self) {
        while self.offsets.len() >= 2
            && self.offsets[self.offsets.len() - 1] == self.offsets[self.offsets.len() - 2]
        {
            self.offsets.to_mut().pop();
        }
        if self.offsets.len() == 1 {
            self.offsets.to_mut().clear();
        }
    }

    /// Whether `offsets` are in the form [`Csr::trim`] leaves.
    pub(crate) fn is_trimmed(offsets: &[u64]) -> bool {
        match offsets.len() {
            0 => true,
            1 => false,
            n => offsets[n - 1] != offsets[n - 2],
        }
    }
}

/// Subject → record-ordinal links.
///
/// `base` is a CSR over all subjects; `recent` holds links added since,
/// as `(subject, ordinal)` pairs sorted by subject then ordinal, so a
/// freeze costs O(recent + new) rather than O(subjects). Once `recent`
/// outgrows a quarter of `base` it is merged into it (O(links + subjects)),
/// so the total cost of any sequence of freezes is amortised O(links).
#[derive(Default, Clone)]
pub(crate) struct Links {
    pub(crate) base: Csr,
    recent: Vec<(u32, u32)>,
    pending: Vec<(u32, u32)>,
}

/// `recent` is merged into `base` once it holds this many links, or a
/// quarter of `base`, whichever is more.
const RECENT_MIN: usize = 1 << 16;

impl Links {
    pub(crate) fn from_base(base: Csr) -> Self {
        Links {
            base,
            ..Default::default()
        }
    }

    pub(crate) fn push(&mut self, subject: u32, ordinal: u32) {
        self.pending.push((subject, ordinal));
    }

    pub(crate) fn reserve(&mut self, n: usize) {
        self.pending.reserve(n);
    }

    /// Makes pending links visible to [`Links::get`].
    pub(crate) fn freeze(&mut self, n_subjects: usize) {
        if self.pending.is_empty() {
            return;
        }
        let total = self.recent.len() + self.pending.len();
        if total >= (self.base.targets.len() / 4).max(RECENT_MIN) {
            let mut all = std::mem::take(&mut self.recent);
            all.append(&mut self.pending);
            // Ordinals only grow, and `recent` precedes `pending`: the
            // counting sort keeps each subject's ordinals ascending.
            let fresh = Csr::build(n_subjects, &all);
            self.base = Csr::merge(&self.base, &fresh, n_subjects);
            self.pending = Vec::new();
            return;
        }
        let mut p = std::mem::take(&mut self.pending);
        p.sort_unstable();
        let r = std::mem::take(&mut self.recent);
        let mut out = Vec::with_capacity(r.len() + p.len());
        let (mut i, mut j) = (0, 0);
        while i < r.len() && j < p.len() {
            if r[i] <= p[j] {
                out.push(r[i]);
                i += 1;
            } else {
                out.push(p[j]);
                j += 1;
            }
        }
        out.extend_from_slice(&r[i..]);
        out.extend_from_slice(&p[j..]);
        self.recent = out;
    }

    /// Merges everything into `base` (before a snapshot), in the canonical
    /// (trimmed) form: the same links give the same arrays whichever path
    /// of opens, snapshots and merges built them.
    pub(crate) fn compact(&mut self, n_subjects: usize) {
        self.pending.append(&mut self.recent);
        if !self.pending.is_empty() {
            let fresh = Csr::build(n_subjects, &self.pending);
            self.base = Csr::merge(&self.base, &fresh, n_subjects);
            self.pending = Vec::new();
        }
        self.base.trim();
    }

    /// The record ordinals of subject `s`, ascending: two slices (the
    /// second as pairs). Links not yet frozen are not included.
    pub(crate) fn get(&self, s: u32) -> (&[u32], &[(u32, u32)]) {
        let lo = self.recent.partition_point(|&(x, _)| x < s);
        let hi = lo + self.recent[lo..].partition_point(|&(x, _)| x == s);
        (self.base.get(s), &self.recent[lo..hi])
    }

    /// Starts loading subject `s`'s CSR offsets into cache.
    #[inline(always)]
    pub(crate) fn prefetch_offsets(&self, s: u32) {
        if let Some(o) = self.base.offsets.get(s as usize) {
            prefetch(o);
        }
    }

    /// Starts loading subject `s`'s CSR targets into cache (its offsets
    /// should already be cached).
    #[inline(always)]
    pub(crate) fn prefetch_targets(&self, s: u32) {
        if let Some(&o) = self.base.offsets.get(s as usize) {
            if let Some(t) = self.base.targets.get(o as usize) {
                prefetch(t);
            }
        }
    }

    /// Calls `f` for each ordinal of subject `s`, ascending.
    #[inline]
    pub(crate) fn for_each(&self, s: u32, mut f: impl FnMut(u32)) {
        let (a, b) = self.get(s);
        a.iter().for_each(|&o| f(o));
        b.iter().for_each(|&(_, o)| f(o));
    }

    pub(crate) fn len(&self) -> usize {
        self.base.targets.len() + self.recent.len() + self.pending.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.base.heap_bytes() + self.recent.capacity() * 8 + self.pending.capacity() * 8
    }
}

/// Hints the CPU to start loading `p` into cache (no effect elsewhere).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_build_and_merge_keep_order() {
        let a = Csr::build(3, &[(2, 10), (0, 1), (2, 11), (0, 2)]);
        assert_eq!(a.get(0), &[1, 2]);
        assert_eq!(a.get(1), &[] as &[u32]);
        assert_eq!(a.get(2), &[10, 11]);
        assert_eq!(a.get(7), &[] as &[u32]);
        let b = Csr::build(4, &[(3, 20), (0, 3)]);
        let m = Csr::merge(&a, &b, 4);
        assert_eq!(m.get(0), &[1, 2, 3]);
        assert_eq!(m.get(2), &[10, 11]);
        assert_eq!(m.get(3), &[20]);
    }

    #[test]
    fn links_freeze_and_compact() {
        let mut l = Links::default();
        for o in 0..100u32 {
            l.push(o % 7, o);
            if o % 13 == 0 {
                l.freeze(7);
            }
        }
        l.freeze(7);
        let mut got = Vec::new();
        l.for_each(3, |o| got.push(o));
        let want: Vec<u32> = (0..100).filter(|o| o % 7 == 3).collect();
        assert_eq!(got, want);
        l.compact(7);
        assert!(l.recent.is_empty());
        assert_eq!(l.get(3).0, &want[..]);
    }

    #[test]
    fn links_merge_into_base_past_the_threshold() {
        let mut l = Links::default();
        let n = RECENT_MIN as u32 * 3;
        for o in 0..n {
            l.push(o % 101, o);
            if o % 5000 == 0 {
                l.freeze(101);
            }
        }
        l.freeze(101);
        assert!(!l.base.targets.is_empty(), "the merge into base happened");
        for s in [0u32, 7, 100] {
            let mut got = Vec::new();
            l.for_each(s, |o| got.push(o));
            let want: Vec<u32> = (0..n).filter(|o| o % 101 == s).collect();
            assert_eq!(got, want, "subject {s}");
        }
    }

    #[test]
    fn compact_is_canonical_whatever_the_subject_count_at_the_last_merge() {
        // Links merged while 3 subjects existed, then 5 more subjects
        // without links: the same arrays as links merged with 8.
        let mut a = Links::default();
        a.push(1, 0);
        a.push(2, 1);
        a.compact(3);
        a.compact(8);
        let mut b = Links::default();
        b.push(1, 0);
        b.push(2, 1);
        b.compact(8);
        assert_eq!(a.base.offsets, b.base.offsets);
        assert_eq!(a.base.offsets, vec![0, 0, 1, 2]);
        assert!(Csr::is_trimmed(&a.base.offsets));
        let mut empty = Links::default();
        empty.compact(4);
        assert!(empty.base.offsets.is_empty());
        assert!(!Csr::is_trimmed(&[0, 1, 1]) && !Csr::is_trimmed(&[0]));
    }

    #[test]
    fn subject_table_interns() {
        let mut t = SubjectTable::default();
        let a = SubjectKey([1; 16]);
        let b = SubjectKey([2; 16]);
        assert_eq!(t.intern(a), 0);
        assert_eq!(t.intern(b), 1);
        assert_eq!(t.intern(a), 0);
        assert_eq!(t.get(&b), Some(1));
        assert_eq!(t.get(&SubjectKey([3; 16])), None);
    }
}
