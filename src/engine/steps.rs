//! The steps of [`super::evaluate_split`], one function each, in the order
//! it calls them. They share an [`Eval`]: the query, the index and what
//! follows from N (the ordinal limit, whether any version was replaced).
//! Every step works in ordinal space except the last ([`Eval::shard_rows`]),
//! which turns the gathered ordinals and the reason bitmaps into per-shard
//! row bitmaps.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use super::gather::{count_registered, Gather, Gathered};
use super::rows::{add_rows, gathered_rows, sort_unique, union_of};
use super::{auto_workers, evaluate_split, Exclusions, Query, Reason, ShardExclusion};
use crate::event::{EventKind, SignalTarget, TakedownTarget};
use crate::ids::{Seq, ShardId};
use crate::index::{key_hash, Index, DERIVED_BASIS};
use crate::time::Timestamp;

/// Ordinals gathered per reason (unsorted, may repeat).
pub(super) type ByReason = [Vec<u32>; Reason::COUNT];

/// A query scoped to some datasets of a ledger with derived rows: derived
/// rows take their parents' reasons, so every dataset is evaluated, then
/// the scope kept.
pub(super) fn scoped_after_lineage(index: &Index, q: &Query, workers: Option<usize>) -> Exclusions {
    let recs = &index.records;
    let wide = Query {
        datasets: Vec::new(),
        ..q.clone()
    };
    let mut ex = evaluate_split(index, &wide, workers);
    ex.shards.retain(|sh, _| {
        let d = recs.shards[sh.0 as usize].dataset;
        q.datasets.contains(&recs.datasets[d.0 as usize])
    });
    ex
}

/// One evaluation: the query over the index, and what N fixes.
pub(super) struct Eval<'a> {
    index: &'a Index,
    q: &'a Query,
    workers: Option<usize>,
    /// Ordinals below this were registered at or before N.
    limit: u32,
    /// No version was ever replaced (the common case: visibility is `< limit`).
    none_replaced: bool,
}

impl<'a> Eval<'a> {
    /// The evaluation of `q` over `index`, its work split over `workers`.
    pub(super) fn new(index: &'a Index, q: &'a Query, workers: Option<usize>) -> Self {
        let recs = &index.records;
        Eval {
            index,
            q,
            workers,
            limit: recs.limit_at(q.seq),
            none_replaced: recs.superseded.is_empty(),
        }
    }

    /// Whether ordinal `o` is a version the ledger knew, and still had, at N.
    fn visible(&self, o: u32) -> bool {
        let recs = &self.index.records;
        o < self.limit && (self.none_replaced || recs.visible(o, self.limit, self.q.seq))
    }

    /// The profiles (by index) matching `rule`, leaving out the derived
    /// rows' own profile: no policy rule applies to it (they reach a
    /// derived row through its parents).
    fn profiles_where(&self, rule: impl Fn(&crate::provenance::Profile) -> bool) -> Vec<usize> {
        let recs = &self.index.records;
        (0..recs.profiles.len())
            .filter(|&i| recs.profiles[i].basis != DERIVED_BASIS)
            .filter(|&i| rule(&recs.profiles[i]))
            .collect()
    }

    /// Step 0: the ordinals under the policy's consent rule, and those a
    /// consent withdrawal excludes (consent-basis ones, whatever the policy).
    pub(super) fn rule_rows(&self) -> (RoaringBitmap, RoaringBitmap) {
        let (recs, policy) = (&self.index.records, &self.q.policy);
        let consent = self.profiles_where(|p| policy.needs_consent(p));
        let withdrawal = self.profiles_where(|p| policy.withdrawal_applies(p));
        (
            union_of(recs, &consent, self.limit),
            union_of(recs, &withdrawal, self.limit),
        )
    }

    /// Step 1: subjects with events. Pass A sweeps the events at or before
    /// N in log order (a sequential read), folding each subject at its
    /// first event by following its chain (only statuses that can exclude
    /// something are kept); pass B gathers the links of those subjects in
    /// ascending subject order, so the reads of the link arrays sweep
    /// forward. Both run per chunk of the log, split over the cores when
    /// there is enough work; the parts are concatenated. Returns the
    /// ordinals per reason and, once per (subject, record) link, the
    /// consent-basis ordinals of subjects whose consent is valid or
    /// withdrawn (`accounted`, for step 2).
    pub(super) fn gather_subjects(
        &self,
        consent_rows: &RoaringBitmap,
        withdrawal_rows: &RoaringBitmap,
    ) -> (ByReason, Vec<u32>) {
        let index = self.index;
        let n_events = index.events.partition_point(|(s, _)| *s <= self.q.seq);
        let ctx = Gather {
            index,
            q: self.q,
            limit: self.limit,
            none_replaced: self.none_replaced,
            consent_rows,
            withdrawal_rows,
        };
        let threads = self
            .workers
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
                    .map(|a| {
                        s.spawn(move || ctx.gather(&ctx.statuses(a..(a + step).min(n_events))))
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("gather worker"))
                    .collect()
            })
        };
        let mut by_reason: ByReason = Default::default();
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
        (by_reason, accounted)
    }

    /// Versions replaced at or before N (usually none): never excluded
    /// through the bitmap rules of steps 2 to 4.
    pub(super) fn replaced(&self) -> RoaringBitmap {
        let (limit, seq) = (self.limit, self.q.seq);
        self.index
            .records
            .superseded
            .iter()
            .filter(|(&o, &at)| o < limit && at <= seq)
            .map(|(&o, _)| o)
            .collect()
    }

    /// Step 2, consent: a consent-basis record is usable only when every
    /// linked subject is accounted for (valid or withdrawn). Counts the
    /// accounted links per record (a sort of the consenting subjects'
    /// links, not a pass over every consent-basis record) and returns the
    /// consent-basis ordinals minus the complete ones (`consent_missing`).
    pub(super) fn consent_missing(
        &self,
        consent_rows: &RoaringBitmap,
        mut accounted: Vec<u32>,
        replaced: &RoaringBitmap,
    ) -> RoaringBitmap {
        if consent_rows.is_empty() {
            return RoaringBitmap::new();
        }
        let recs = &self.index.records;
        accounted.sort_unstable();
        let mut complete = RoaringBitmap::new();
        for run in accounted.chunk_by(|a, b| a == b) {
            if run.len() as u32 >= recs.n_subjects(run[0]) {
                complete.push(run[0]);
            }
        }
        let mut missing = consent_rows - &complete;
        missing -= replaced;
        missing
    }

    /// Step 3: the ordinals the policy filters out, a union of profile bitmaps.
    pub(super) fn filtered(&self, replaced: &RoaringBitmap) -> RoaringBitmap {
        let policy = &self.q.policy;
        let filtered = self.profiles_where(|p| policy.filters_out(p));
        union_of(&self.index.records, &filtered, self.limit) - replaced
    }

    /// The explicit lifts of web signals in force at (N, T), by target: a
    /// signal recorded before a lift and in effect at its time is void.
    fn signal_lifts(&self) -> HashMap<&'a SignalTarget, Vec<(Seq, Timestamp)>> {
        let (index, q) = (self.index, self.q);
        let mut lifts: HashMap<&SignalTarget, Vec<(Seq, Timestamp)>> = HashMap::new();
        for &i in &index.content_events {
            let (s, e) = &index.events[i as usize];
            if let EventKind::SignalLifted {
                target, purposes, ..
            } = &e.kind
            {
                if *s <= q.seq && e.at <= q.at && purposes.applies_to(q.purpose()) {
                    lifts.entry(target).or_default().push((*s, e.at));
                }
            }
        }
        lifts
    }

    /// Step 4, content events in force at (N, T): a source opt-out or a
    /// web signal on a host selects the profiles from that source (a union
    /// of profile bitmaps into `bitmaps`: `source_optout`, or
    /// `signal_unparsable` for a signal that could not be read); a signal
    /// on a URL and a takedown by key or content hash select the visible
    /// versions of the matching records, a takedown of a record its
    /// version live at N (ordinals pushed into `by_reason`).
    pub(super) fn content(
        &self,
        by_reason: &mut ByReason,
        bitmaps: &mut [RoaringBitmap; Reason::COUNT],
        replaced: &RoaringBitmap,
    ) {
        let (index, q) = (self.index, self.q);
        let (recs, seq, purpose) = (&index.records, q.seq, q.purpose());
        let from_source = |source: &str| -> Vec<usize> {
            (0..recs.profiles.len())
                .filter(|&p| recs.profiles[p].from_source(source))
                .collect()
        };
        let mut optout_profiles: Vec<usize> = Vec::new();
        let mut unparsable_profiles: Vec<usize> = Vec::new();
        let lifts = self.signal_lifts();
        for &i in &index.content_events {
            let (s, e) = &index.events[i as usize];
            if *s > seq || e.at > q.at {
                continue;
            }
            match &e.kind {
                EventKind::SourceOptout {
                    source, purposes, ..
                } if purposes.applies_to(purpose) => {
                    optout_profiles.extend(from_source(source));
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
                        SignalTarget::Source(source) => profiles.extend(from_source(source)),
                        SignalTarget::Key(k) => {
                            if let Some(os) = recs.keys.get(&key_hash(k)) {
                                by_reason[reason as usize]
                                    .extend(os.iter().copied().filter(|&o| self.visible(o)));
                            }
                        }
                    }
                }
                EventKind::Takedown { target, .. } => {
                    let out = &mut by_reason[Reason::Takedown as usize];
                    match target {
                        TakedownTarget::Key(k) => {
                            if let Some(os) = recs.keys.get(&key_hash(k)) {
                                out.extend(os.iter().copied().filter(|&o| self.visible(o)));
                            }
                        }
                        TakedownTarget::ContentHash(h) => {
                            if let Some(os) = recs.hashes.get(h) {
                                out.extend(os.iter().copied().filter(|&o| self.visible(o)));
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
        for (reason, mut profiles) in [
            (Reason::SourceOptout, optout_profiles),
            (Reason::SignalUnparsable, unparsable_profiles),
        ] {
            profiles.sort_unstable();
            profiles.dedup();
            bitmaps[reason as usize] = union_of(recs, &profiles, self.limit) - replaced;
        }
    }

    /// The shards known at N within the dataset scope, each with nothing
    /// excluded yet and its registered row count.
    fn scoped_shards(&self) -> BTreeMap<ShardId, ShardExclusion> {
        let (recs, q) = (&self.index.records, self.q);
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
            if sh.first_seq <= q.seq && in_scope(id) {
                shards.insert(id, ShardExclusion::default());
            }
        }
        count_registered(self.index, q.seq, self.limit, &mut shards);
        shards
    }

    /// Step 5, ordinals to per-shard row bitmaps, within the dataset scope:
    /// per reason, a reason with only gathered ordinals is sorted and
    /// mapped to rows (split over the workers when there are many); one
    /// with a bitmap part becomes one ordinal bitmap, then goes run by run
    /// (a run: consecutive rows of one shard), a whole run at once when it
    /// is entirely excluded. Each shard's `excluded` is the union of its
    /// reasons.
    pub(super) fn shard_rows(
        &self,
        by_reason: &mut ByReason,
        bitmaps: &[RoaringBitmap; Reason::COUNT],
    ) -> BTreeMap<ShardId, ShardExclusion> {
        let recs = &self.index.records;
        let mut shards = self.scoped_shards();
        let mut rows: Vec<u32> = Vec::new();
        for (r, ords) in by_reason.iter_mut().enumerate() {
            if bitmaps[r].is_empty() {
                let threads = self
                    .workers
                    .unwrap_or_else(|| auto_workers(ords.len()))
                    .max(1);
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
            set |= &bitmaps[r];
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
        shards
    }
}
