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

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use crate::event::{EventKind, SignalTarget, TakedownTarget};
use crate::ids::{Purpose, RecordId, Seq, ShardId};
use crate::index::{key_hash, Index, DERIVED_BASIS};
use crate::policy::Policy;
use crate::status::{fold_into, ConsentStatus, ObjectionScope, SubjectStatus};
use crate::time::Timestamp;

mod derived;
mod gather;
mod rows;

pub use crate::reason::Reason;
use gather::*;
use rows::*;

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
    let recs = &index.records;
    if !index.lineage.is_empty() && !q.datasets.is_empty() {
        // Derived rows take their parents' reasons: evaluate every
        // dataset, then keep the scope.
        let wide = Query {
            datasets: Vec::new(),
            ..q.clone()
        };
        let mut ex = evaluate_split(index, &wide, workers);
        ex.shards.retain(|sh, _| {
            let d = recs.shards[sh.0 as usize].dataset;
            q.datasets.contains(&recs.datasets[d.0 as usize])
        });
        return ex;
    }
    let seq = q.seq;
    let limit = recs.limit_at(seq);
    let none_replaced = recs.superseded.is_empty();
    let vis = |o: u32| o < limit && (none_replaced || recs.visible(o, limit, seq));
    let policy = &q.policy;
    let purpose = q.purpose();

    // Profiles under the consent rule, and the ordinals that have them.
    // A derived row's own profile is under no policy rule: those reach it
    // through its parents.
    let own_rules = |i: &usize| recs.profiles[*i].basis != DERIVED_BASIS;
    let consent_profiles: Vec<usize> = (0..recs.profiles.len())
        .filter(own_rules)
        .filter(|&i| policy.needs_consent(&recs.profiles[i]))
        .collect();
    let consent_rows = union_of(recs, &consent_profiles, limit);
    // Records a consent withdrawal excludes: consent-basis ones, whatever the policy.
    let withdrawal_profiles: Vec<usize> = (0..recs.profiles.len())
        .filter(own_rules)
        .filter(|&i| policy.withdrawal_applies(&recs.profiles[i]))
        .collect();
    let withdrawal_rows = union_of(recs, &withdrawal_profiles, limit);
    // 1. Subjects with events. Pass A sweeps the events in log order (a
    //    sequential read), folding each subject at its first event by
    //    following its chain; pass B gathers the links of the subjects that
    //    matter in ascending subject order, so the reads of the link arrays
    //    sweep forward. Both are split over the available cores when there
    //    is enough work (chunks of the log; results are concatenated).
    let n_events = index.events.partition_point(|(s, _)| *s <= seq);
    let ctx = Gather {
        index,
        q,
        limit,
        none_replaced,
        consent_rows: &consent_rows,
        withdrawal_rows: &withdrawal_rows,
    };
    // Per chunk of the log, pass A (the status of each subject whose first
    // event is in the chunk; only those that can exclude something are
    // kept), then pass B (gather their links).
    // Consent-basis ordinals of subjects whose consent is valid or
    // withdrawn, once per (subject, record) link, land in `accounted`.
    let threads = workers
        .unwrap_or_else(|| auto_workers(index.subject_events.len()))
        .max(1);
    let parts: Vec<Gathered> = if threads == 1 {
        vec![ctx.gather(&ctx.statuses(0..n_events))]
    } else {
        std::thread::scope(|s| {
            let ctx = &ctx;
            let step = n_events.div_ceil(threads).max(1);
            let hs: Vec<_> = (0..n_events)
                .step_by(step)
                .map(|a| s.spawn(move || ctx.gather(&ctx.statuses(a..(a + step).min(n_events)))))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("gather worker"))
                .collect()
        })
    };
    let mut by_reason: [Vec<u32>; Reason::COUNT] = Default::default();
    let mut accounted: Vec<u32> = Vec::new();
    for mut part in parts {
        for (all, mine) in by_reason.iter_mut().zip(part.by_reason.iter_mut()) {
            if all.is_empty() {
                std::mem::swap(all, mine);
            } else {
                all.append(mine);
            }
        }
        accounted.append(&mut part.accounted);
    }

    // Versions replaced at or before N (usually none): never excluded
    // through the bitmap rules below.
    let replaced: RoaringBitmap = recs
        .superseded
        .iter()
        .filter(|(&o, &at)| o < limit && at <= seq)
        .map(|(&o, _)| o)
        .collect();
    // Reasons computed as whole bitmaps in ordinal space.
    let mut bitmap_reasons: [RoaringBitmap; Reason::COUNT] = Default::default();

    // 2. Consent: a consent-basis record is usable only when every linked
    //    subject is accounted for (valid or withdrawn). Count the accounted
    //    links per record (a sort of the consenting subjects' links, not a
    //    pass over every consent-basis record), then take the difference.
    if !consent_rows.is_empty() {
        accounted.sort_unstable();
        let mut complete = RoaringBitmap::new();
        for run in accounted.chunk_by(|a, b| a == b) {
            if run.len() as u32 >= recs.n_subjects(run[0]) {
                complete.push(run[0]);
            }
        }
        let mut missing = &consent_rows - &complete;
        missing -= &replaced;
        bitmap_reasons[Reason::ConsentMissing as usize] = missing;
    }

    // 3. Policy filters, as a union of profile bitmaps.
    let filtered: Vec<usize> = (0..recs.profiles.len())
        .filter(own_rules)
        .filter(|&i| policy.filters_out(&recs.profiles[i]))
        .collect();
    bitmap_reasons[Reason::Filtered as usize] = union_of(recs, &filtered, limit) - &replaced;

    // 4. Content events: source opt-outs, takedowns and web signals (a
    //    host like a source opt-out, a URL like a key takedown).
    let mut optout_profiles: Vec<usize> = Vec::new();
    let mut unparsable_profiles: Vec<usize> = Vec::new();
    // Explicit lifts of web signals in force at (N, T), by target: a
    // signal recorded before a lift and in effect at its time is void.
    let mut lifts: HashMap<&SignalTarget, Vec<(Seq, Timestamp)>> = HashMap::new();
    for &i in &index.content_events {
        let (s, e) = &index.events[i as usize];
        if let EventKind::SignalLifted {
            target, purposes, ..
        } = &e.kind
        {
            if *s <= seq && e.at <= q.at && purposes.applies_to(purpose) {
                lifts.entry(target).or_default().push((*s, e.at));
            }
        }
    }
    for &i in &index.content_events {
        let (s, e) = &index.events[i as usize];
        if *s > seq || e.at > q.at {
            continue;
        }
        match &e.kind {
            EventKind::SourceOptout {
                source, purposes, ..
            } if purposes.applies_to(purpose) => {
                optout_profiles.extend(
                    (0..recs.profiles.len()).filter(|&p| recs.profiles[p].from_source(source)),
                );
            }
            EventKind::Signal {
                target,
                purposes,
                unparsable,
                ..
            } if purposes.applies_to(purpose)
                && !lifts
                    .get(target)
                    .is_some_and(|l| l.iter().any(|&(ls, la)| ls > *s && la >= e.at)) =>
            {
                let (profiles, reason) = if *unparsable {
                    (&mut unparsable_profiles, Reason::SignalUnparsable)
                } else {
                    (&mut optout_profiles, Reason::SourceOptout)
                };
                match target {
                    SignalTarget::Source(source) => profiles.extend(
                        (0..recs.profiles.len()).filter(|&p| recs.profiles[p].from_source(source)),
                    ),
                    SignalTarget::Key(k) => {
                        if let Some(os) = recs.keys.get(&key_hash(k)) {
                            by_reason[reason as usize]
                                .extend(os.iter().copied().filter(|&o| vis(o)));
                        }
                    }
                }
            }
            EventKind::Takedown { target, .. } => {
                let out = &mut by_reason[Reason::Takedown as usize];
                match target {
                    TakedownTarget::Key(k) => {
                        if let Some(os) = recs.keys.get(&key_hash(k)) {
                            out.extend(os.iter().copied().filter(|&o| vis(o)));
                        }
                    }
                    TakedownTarget::ContentHash(h) => {
                        if let Some(os) = recs.hashes.get(h) {
                            out.extend(os.iter().copied().filter(|&o| vis(o)));
                        }
                    }
                    TakedownTarget::Record {
                        dataset,
                        shard,
                        row,
                    } => {
                        if let Some(sh) = recs.find_shard(dataset, shard) {
                            if let Some(o) = recs.version_at(sh, *row, seq) {
                                out.push(o);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    optout_profiles.sort_unstable();
    optout_profiles.dedup();
    bitmap_reasons[Reason::SourceOptout as usize] =
        union_of(recs, &optout_profiles, limit) - &replaced;
    unparsable_profiles.sort_unstable();
    unparsable_profiles.dedup();
    bitmap_reasons[Reason::SignalUnparsable as usize] =
        union_of(recs, &unparsable_profiles, limit) - &replaced;

    // 5. Ordinals → per-shard row bitmaps, within the dataset scope.
    let scope: Option<Vec<bool>> = (!q.datasets.is_empty()).then(|| {
        recs.datasets
            .iter()
            .map(|d| q.datasets.contains(d))
            .collect()
    });
    let in_scope = |sh: ShardId| {
        scope
            .as_ref()
            .is_none_or(|s| s[recs.shards[sh.0 as usize].dataset.0 as usize])
    };
    let mut shards: BTreeMap<ShardId, ShardExclusion> = BTreeMap::new();
    for (i, sh) in recs.shards.iter().enumerate() {
        let id = ShardId(i as u32);
        if sh.first_seq <= seq && in_scope(id) {
            shards.insert(id, ShardExclusion::default());
        }
    }
    count_registered(index, seq, limit, &mut shards);
    // Each reason as one ordinal bitmap, then per run of ordinals (one
    // stretch of consecutive rows of one shard) into that shard's rows:
    // a whole run at once when it is entirely excluded.
    let mut rows: Vec<u32> = Vec::new();
    for (r, ords) in by_reason.iter_mut().enumerate() {
        if bitmap_reasons[r].is_empty() {
            // Only gathered ordinals: sorted and mapped to rows, split
            // over the workers when there are many.
            let threads = workers.unwrap_or_else(|| auto_workers(ords.len())).max(1);
            for (sh, b) in gathered_rows(recs, ords, threads) {
                if let Some(e) = shards.get_mut(&sh) {
                    if e.reasons[r].is_empty() {
                        e.reasons[r] = b;
                    } else {
                        e.reasons[r] |= b;
                    }
                }
            }
            continue;
        }
        sort_unique(ords, recs.n_ords);
        let mut set = RoaringBitmap::from_sorted_iter(ords.iter().copied())
            .unwrap_or_else(|_| ords.iter().copied().collect());
        set |= &bitmap_reasons[r];
        for (i, run) in recs.runs.iter().enumerate() {
            let end = recs.runs.get(i + 1).map_or(recs.n_ords, |n| n.ord);
            let n = set.range_cardinality(run.ord..end);
            if n == 0 {
                continue;
            }
            let Some(e) = shards.get_mut(&ShardId(run.shard)) else {
                continue;
            };
            if n == (end - run.ord) as u64 {
                e.reasons[r].insert_range(run.row..run.row + (end - run.ord));
            } else {
                rows.clear();
                rows.extend(set.range(run.ord..end).map(|o| run.row + (o - run.ord)));
                add_rows(&mut e.reasons[r], &mut rows);
            }
        }
    }
    for e in shards.values_mut() {
        let mut all = RoaringBitmap::new();
        for b in &e.reasons {
            all |= b;
        }
        e.excluded = all;
    }
    if !index.lineage.is_empty() {
        derived::propagate(index, seq, &mut shards);
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
