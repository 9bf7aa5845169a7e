//! The exclusion computation: which records must not be used for a purpose,
//! and why, as the ledger stood at `Seq` N and valid time T.
//!
//! Cost grows with the excluded links, not the dataset: subjects without
//! events are never visited; provenance rules (consent missing, filters,
//! source opt-outs) are unions and differences of per-profile bitmaps in
//! ordinal space; the per-record work is over gathered links (objecting,
//! erased, restricted, withdrawn and consenting subjects) and over the
//! excluded rows as they are turned into per-shard bitmaps (whole runs of
//! rows at once where a run is entirely excluded).

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::ids::{Purpose, RecordId, Seq, ShardId};
use crate::index::Index;
use crate::policy::Policy;
use crate::status::{fold_into, ConsentStatus, ObjectionScope, SubjectStatus};
use crate::time::Timestamp;

mod derived;
mod gather;
mod head;
mod patch;
mod rows;
mod steps;

pub use head::{HeadCache, HeadStats};

pub use crate::reason::Reason;

/// What to compute: for which purpose, under which policy, at which point
/// of both clocks, over which datasets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The rules (the purpose is the policy's).
    pub policy: Policy,
    /// Only entries recorded at or before this sequence number count.
    pub seq: Seq,
    /// Only events that took effect at or before this time count.
    pub at: Timestamp,
    /// Datasets to cover; empty means all.
    pub datasets: Vec<String>,
}

impl Query {
    /// The purpose evaluated.
    pub fn purpose(&self) -> &Purpose {
        &self.policy.purpose
    }
}

/// The excluded rows of one shard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardExclusion {
    /// Rows excluded for any reason.
    pub excluded: RoaringBitmap,
    /// Rows excluded per reason, indexed by `Reason as usize`.
    pub reasons: [RoaringBitmap; Reason::COUNT],
    /// Rows of this shard the ledger knew at N.
    pub registered: u64,
}

/// The result of an evaluation: per shard, the excluded rows and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Exclusions {
    /// Every shard known at N within the scope, by id (including shards with nothing excluded).
    pub shards: BTreeMap<ShardId, ShardExclusion>,
}

impl Exclusions {
    /// Number of excluded records.
    pub fn excluded(&self) -> u64 {
        self.shards.values().map(|s| s.excluded.len()).sum()
    }
    /// Number of excluded records per reason.
    pub fn counts(&self) -> [u64; Reason::COUNT] {
        let mut c = [0u64; Reason::COUNT];
        for s in self.shards.values() {
            for (i, b) in s.reasons.iter().enumerate() {
                c[i] += b.len();
            }
        }
        c
    }
    /// Whether `id` is excluded.
    pub fn contains(&self, id: RecordId) -> bool {
        self.shards
            .get(&id.shard())
            .is_some_and(|s| s.excluded.contains(id.row()))
    }
}

/// Computes the exclusions for `q` over `index`.
pub fn evaluate(index: &Index, q: &Query) -> Exclusions {
    evaluate_split(index, q, None)
}

/// [`evaluate`] with the gather split over exactly `workers` threads
/// (`None`: as many as the work and the machine warrant). For tests of
/// the split; the result never depends on it.
#[doc(hidden)]
pub fn evaluate_split(index: &Index, q: &Query, workers: Option<usize>) -> Exclusions {
    if !index.lineage.is_empty() && !q.datasets.is_empty() {
        return steps::scoped_after_lineage(index, q, workers);
    }
    let ev = steps::Eval::new(index, q, workers);
    // Step 0: the ordinals under the consent rule and under a withdrawal.
    let (consent_rows, withdrawal_rows) = ev.rule_rows();
    // Step 1: subjects with events, their links gathered per reason.
    let (mut by_reason, accounted) = ev.gather_subjects(&consent_rows, &withdrawal_rows);
    let replaced = ev.replaced();
    let mut bitmap_reasons: [RoaringBitmap; Reason::COUNT] = Default::default();
    // Step 2: consent-basis records not every linked subject consented to.
    bitmap_reasons[Reason::ConsentMissing as usize] =
        ev.consent_missing(&consent_rows, accounted, &replaced);
    // Step 3: the policy filters.
    bitmap_reasons[Reason::Filtered as usize] = ev.filtered(&replaced);
    // Step 4: content events (source opt-outs, web signals, takedowns).
    ev.content(&mut by_reason, &mut bitmap_reasons, &replaced);
    // Step 5: ordinals to per-shard row bitmaps, within the scope.
    let mut shards = ev.shard_rows(&mut by_reason, &bitmap_reasons);
    // Step 6: derived rows take their parents' reasons.
    if !index.lineage.is_empty() {
        derived::propagate(index, q.seq, &mut shards);
    }
    Exclusions { shards }
}

/// Worker threads for `n` independent subjects: one unless there is
/// enough work to pay for a thread (tens of microseconds).
fn auto_workers(n: usize) -> usize {
    const PER_WORKER: usize = 16_384;
    if n < 2 * PER_WORKER {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n / PER_WORKER)
        .clamp(1, 8)
}

#[cfg(test)]
mod tests {
    use super::rows::*;
    use super::*;

    /// Per shard, the union of the bitmaps (shards may come in stretches).
    fn merged(v: Vec<(ShardId, RoaringBitmap)>) -> BTreeMap<ShardId, RoaringBitmap> {
        let mut m: BTreeMap<ShardId, RoaringBitmap> = BTreeMap::new();
        for (s, b) in v {
            *m.entry(s).or_default() |= b;
        }
        m
    }

    #[test]
    fn gathered_rows_on_any_number_of_workers_equals_a_sort() {
        use crate::event::{Entry, RecordBatch};
        use crate::workload::{shard_batch, Layout, Spec};
        let spec = Spec {
            shards: 12,
            rows: 9_000,
            subjects: 5_000,
            objecting_per_10k: 0,
            layout: Layout::Uniform,
        };
        // Shards registered in interleaved stretches of rows.
        let mut index = Index::new();
        let mut seq = 0;
        for half in 0..3 {
            for s in 0..spec.shards {
                let mut b: RecordBatch = shard_batch(&spec, s);
                b.shards[0].rows.retain(|r| r.row % 3 == half);
                seq += 1;
                index.apply(Seq(seq), &Entry::Records(b)).unwrap();
            }
        }
        let recs = &index.records;
        assert!(recs.runs.len() > 3 * spec.shards as usize);
        let mut x = 99u64;
        for n in [5_000usize, 60_000, 300_000] {
            let ords: Vec<u32> = (0..n)
                .map(|_| {
                    x = crate::workload::splitmix64(x);
                    (x % recs.n_ords as u64) as u32
                })
                .collect();
            let mut want = ords.clone();
            sort_unique(&mut want, recs.n_ords);
            let want = merged(shard_rows(recs, &want));
            assert!(!want.is_empty());
            for threads in [1, 2, 3, 7, 64] {
                let mut o = ords.clone();
                let got = merged(gathered_rows(recs, &mut o, threads));
                assert_eq!(got, want, "{n} ordinals on {threads} workers");
            }
        }
    }

    #[test]
    fn sort_unique_bucket_path_equals_a_sort() {
        // Large enough to take the partition-and-radix path, with
        // duplicates, over a range that is not a multiple of 2^16.
        let n = (1u32 << 20) + 12_345;
        let mut x = 12345u64;
        let mut ords: Vec<u32> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % n as u64) as u32
            })
            .collect();
        let mut want = ords.clone();
        want.sort_unstable();
        want.dedup();
        sort_unique(&mut ords, n);
        assert_eq!(ords, want);
    }
}
