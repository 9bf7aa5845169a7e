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
use serde::{Deserialize, Serialize};

use crate::event::{EventKind, SignalTarget, TakedownTarget};
use crate::ids::{Purpose, RecordId, Seq, ShardId};
use crate::index::{key_hash, Index};
use crate::policy::Policy;
use crate::status::{fold_into, ConsentStatus, ObjectionScope, SubjectStatus};
use crate::time::Timestamp;

/// Why a record is excluded. A record may have several reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A linked subject objected (Art. 21), within the objection's scope.
    Objection = 0,
    /// The record's legal basis needs consent and a linked subject has none the policy accepts.
    ConsentMissing = 1,
    /// A linked subject withdrew consent (Art. 7(3)).
    ConsentWithdrawn = 2,
    /// A linked subject asked for erasure (Art. 17).
    Erasure = 3,
    /// Processing of a linked subject's data is restricted (Art. 18).
    Restriction = 4,
    /// The record, its key or its content was taken down.
    Takedown = 5,
    /// Its source (or the third party it came from) opted out (TDM reservation, robots, ...).
    SourceOptout = 6,
    /// The policy filters it out (category, visibility).
    Filtered = 7,
    /// A machine-readable opt-out signal of its source or URL was present
    /// but could not be parsed: reserved, failing closed.
    SignalUnparsable = 8,
}

impl Reason {
    /// Every reason, in code order.
    pub const ALL: [Reason; 9] = [
        Reason::Objection,
        Reason::ConsentMissing,
        Reason::ConsentWithdrawn,
        Reason::Erasure,
        Reason::Restriction,
        Reason::Takedown,
        Reason::SourceOptout,
        Reason::Filtered,
        Reason::SignalUnparsable,
    ];
    /// Number of reasons.
    pub const COUNT: usize = 9;

    /// The snake_case name used in JSON and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Objection => "objection",
            Reason::ConsentMissing => "consent_missing",
            Reason::ConsentWithdrawn => "consent_withdrawn",
            Reason::Erasure => "erasure",
            Reason::Restriction => "restriction",
            Reason::Takedown => "takedown",
            Reason::SourceOptout => "source_optout",
            Reason::Filtered => "filtered",
            Reason::SignalUnparsable => "signal_unparsable",
        }
    }

    /// The reason with this snake_case name.
    ///
    /// ```
    /// use optout::Reason;
    /// assert_eq!(Reason::from_name("consent_withdrawn"), Some(Reason::ConsentWithdrawn));
    /// assert_eq!(Reason::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The reason with this code.
    pub fn from_code(c: u8) -> Option<Reason> {
        Reason::ALL.get(c as usize).copied()
    }
}

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
    let seq = q.seq;
    let limit = recs.limit_at(seq);
    let none_replaced = recs.superseded.is_empty();
    let vis = |o: u32| o < limit && (none_replaced || recs.visible(o, limit, seq));
    let policy = &q.policy;
    let purpose = q.purpose();

    // Profiles under the consent rule, and the ordinals that have them.
    let consent_profiles: Vec<usize> = (0..recs.profiles.len())
        .filter(|&i| policy.needs_consent(&recs.profiles[i]))
        .collect();
    let consent_rows = union_of(recs, &consent_profiles, limit);
    // Records a consent withdrawal excludes: consent-basis ones, whatever the policy.
    let withdrawal_profiles: Vec<usize> = (0..recs.profiles.len())
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

/// What the gather of one evaluation reads (shared by its workers).
struct Gather<'a> {
    index: &'a Index,
    q: &'a Query,
    limit: u32,
    none_replaced: bool,
    consent_rows: &'a RoaringBitmap,
    withdrawal_rows: &'a RoaringBitmap,
}

/// What the gather needs of a subject's status (no allocation unless an
/// objection is scoped).
struct Status {
    erased: bool,
    restricted: bool,
    consent: ConsentStatus,
    objection: Objection,
}

/// A subject's active objections, as the gather uses them.
enum Objection {
    None,
    /// At least one objection reaches every record.
    Total,
    /// Only these scopes.
    Scoped(Vec<ObjectionScope>),
}

/// One worker's gathered ordinals.
#[derive(Default)]
struct Gathered {
    by_reason: [Vec<u32>; Reason::COUNT],
    accounted: Vec<u32>,
}

impl Gather<'_> {
    /// The statuses that can exclude something of the subjects whose
    /// first event is at a position in `range`, ascending by subject.
    fn statuses(&self, range: std::ops::Range<usize>) -> Vec<(u32, Status)> {
        let index = self.index;
        let (q, policy) = (self.q, &self.q.policy);
        let purpose = index.purpose_test(q.purpose());
        let mut scratch = Vec::new();
        let mut st = SubjectStatus::clean();
        let mut todo = Vec::new();
        for pos in range {
            let link = index.event_chain[pos];
            if !link.first {
                continue;
            }
            // The subject's events: this one, then along its chain (bounded
            // by the number of events, whatever a damaged chain says).
            let mut at = pos as u32;
            let evs = std::iter::from_fn(|| {
                let i = at;
                let (s, e) = index.events.get(i as usize)?;
                at = index.event_chain[i as usize].next;
                Some((*s, e, index.applies(&purpose, i)))
            })
            .take(index.events.len());
            let sid = link.sid;
            fold_into(&mut st, &mut scratch, evs, policy, q.seq, q.at);
            let consent_matters = (!self.consent_rows.is_empty()
                && st.consent != ConsentStatus::Missing)
                || (st.consent == ConsentStatus::Withdrawn && !self.withdrawal_rows.is_empty());
            if st.erased || st.restricted || !st.objections.is_empty() || consent_matters {
                let objection = if st.objections.is_empty() {
                    Objection::None
                } else if st.objections.iter().any(|o| o.is_total()) {
                    Objection::Total
                } else {
                    Objection::Scoped(st.objections.clone())
                };
                todo.push((
                    sid,
                    Status {
                        erased: st.erased,
                        restricted: st.restricted,
                        consent: st.consent,
                        objection,
                    },
                ));
            }
        }
        todo.sort_unstable_by_key(|(s, _)| *s);
        todo
    }

    /// The ordinals `todo`'s subjects exclude, per reason, prefetching
    /// ahead (offsets first, then the targets they point at).
    fn gather(&self, todo: &[(u32, Status)]) -> Gathered {
        let index = self.index;
        let recs = &index.records;
        let (limit, seq) = (self.limit, self.q.seq);
        let none_replaced = self.none_replaced;
        let vis = |o: u32| o < limit && (none_replaced || recs.visible(o, limit, seq));
        let mut out = Gathered::default();
        let by_reason = &mut out.by_reason;
        let accounted = &mut out.accounted;
        for k in 0..todo.len() {
            if let Some((s, _)) = todo.get(k + 16) {
                index.links.prefetch_offsets(*s);
            }
            if let Some((s, _)) = todo.get(k + 8) {
                index.links.prefetch_targets(*s);
            }
            let (sid, st) = &todo[k];
            let counts = !self.consent_rows.is_empty() && st.consent != ConsentStatus::Missing;
            let withdrawn =
                st.consent == ConsentStatus::Withdrawn && !self.withdrawal_rows.is_empty();
            index.links.for_each(*sid, |o| {
                if !vis(o) {
                    return;
                }
                if st.erased {
                    by_reason[Reason::Erasure as usize].push(o);
                }
                if st.restricted {
                    by_reason[Reason::Restriction as usize].push(o);
                }
                match &st.objection {
                    Objection::None => {}
                    Objection::Total => by_reason[Reason::Objection as usize].push(o),
                    Objection::Scoped(scopes) => {
                        if let Some(p) = recs.profile_of(o) {
                            let prof = &recs.profiles[p as usize];
                            if scopes.iter().any(|s| s.covers(prof)) {
                                by_reason[Reason::Objection as usize].push(o);
                            }
                        }
                    }
                }
                if counts && self.consent_rows.contains(o) {
                    accounted.push(o);
                }
                if withdrawn && self.withdrawal_rows.contains(o) {
                    by_reason[Reason::ConsentWithdrawn as usize].push(o);
                }
            });
        }
        out
    }
}

fn count_registered(
    index: &Index,
    seq: Seq,
    limit: u32,
    shards: &mut BTreeMap<ShardId, ShardExclusion>,
) {
    let recs = &index.records;
    for (i, r) in recs.runs.iter().enumerate() {
        if r.ord >= limit {
            break;
        }
        let end = recs
            .runs
            .get(i + 1)
            .map_or(recs.n_ords, |n| n.ord)
            .min(limit);
        if let Some(e) = shards.get_mut(&ShardId(r.shard)) {
            e.registered += (end - r.ord) as u64;
        }
    }
    for (&o, &s) in &recs.superseded {
        if o < limit && s <= seq {
            if let Some(e) = shards.get_mut(&recs.record_of(o).shard()) {
                e.registered -= 1;
            }
        }
    }
}

/// Adds `rows` (any order) to `b`, sorting only when needed.
fn add_rows(b: &mut RoaringBitmap, rows: &mut Vec<u32>) {
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
fn shard_rows(recs: &crate::index::Records, ords: &[u32]) -> Vec<(ShardId, RoaringBitmap)> {
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
fn gathered_rows(
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
    let (parted, start) = partition_high(ords, recs.n_ords);
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
        radix_partitions(&parted, &start, cuts[t]..cuts[t + 1], base, dst);
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
fn dedup_sorted(v: &mut [u32]) -> usize {
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

/// Partitions ordinals by their high 16 bits (a counting sort: two
/// sequential passes): the partitioned copy, and where partition `b`
/// starts (`start[b]..start[b + 1]`).
fn partition_high(ords: &[u32], n_ords: u32) -> (Vec<u32>, Vec<u32>) {
    let buckets = (n_ords as usize >> 16) + 1;
    let mut start = vec![0u32; buckets + 1];
    for &o in ords.iter() {
        start[(o >> 16) as usize + 1] += 1;
    }
    for i in 0..buckets {
        start[i + 1] += start[i];
    }
    let mut parted = vec![0u32; ords.len()];
    let mut next = start.clone();
    for &o in ords.iter() {
        let b = (o >> 16) as usize;
        parted[next[b] as usize] = o;
        next[b] += 1;
    }
    (parted, start)
}

/// Sorts partitions `range` of `parted` into `dst` (which starts at
/// partition offset `base`): each partition, which stays in L1, by its low
/// byte into a scratch buffer, then by its second byte into place. No
/// comparisons and no data-dependent branches (a bitset scan of sparse
/// words mispredicts on nearly every word).
fn radix_partitions(
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
fn sort_unique(ords: &mut Vec<u32>, n_ords: u32) {
    if ords.len() < 1 << 12 {
        ords.sort_unstable();
        ords.dedup();
        return;
    }
    let (parted, start) = partition_high(ords, n_ords);
    radix_partitions(&parted, &start, 0..start.len() - 1, 0, ords);
    ords.dedup();
}

fn union_of(recs: &crate::index::Records, profiles: &[usize], limit: u32) -> RoaringBitmap {
    let mut u = RoaringBitmap::new();
    for &p in profiles {
        u |= &recs.profile_rows[p];
    }
    if limit < recs.n_ords {
        u.remove_range(limit..);
    }
    u
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
