//! The head cache (issue 19): evaluations kept for the queries a
//! long-lived process asks again and again (`optout serve`, Python's
//! `Ledger`), so a manifest at the head costs only building and sealing
//! its bitmaps.
//!
//! An entry is the [`Exclusions`] of one (policy, dataset scope, seq N),
//! valid for every valid time T in a window `[lo, hi)`: the result of an
//! evaluation is a step function of T whose steps are the times events
//! recorded at or before N take effect and the ends of their restrictions
//! (an event counts from its `at`; a restriction stops at its `until`).
//! So a window between two such boundaries holds one result, and a
//! manifest "now" keeps hitting as wall time moves on.
//!
//! When an entry is appended, the entries at the old head are carried to
//! the new one: unchanged where the entry provably cannot change them
//! (runs, records of datasets outside the scope, events for other
//! purposes, any event for times before its `at`), patched where its
//! effect is only adding the rows of one subject or one takedown
//! ([`super::patch`]), dropped otherwise. Entries at older seqs stay
//! valid as they are (later entries never change an evaluation at N).

use std::sync::Arc;

use super::patch::{delta, Delta};
use super::{evaluate, Exclusions, Query};
use crate::event::{Entry, EventKind};
use crate::ids::Seq;
use crate::index::Index;
use crate::policy::Policy;
use crate::time::Timestamp;

/// Entries kept by default (each holds one evaluation's bitmaps).
pub const DEFAULT_CAPACITY: usize = 4;

/// A half-open window of valid times `[lo, hi)`; `None` is unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    pub(super) lo: Option<Timestamp>,
    pub(super) hi: Option<Timestamp>,
}

impl Window {
    /// Every time.
    const ALL: Window = Window { lo: None, hi: None };

    /// Whether `t` lies in the window.
    pub(super) fn contains(&self, t: Timestamp) -> bool {
        self.lo.is_none_or(|lo| lo <= t) && self.hi.is_none_or(|hi| t < hi)
    }

    /// Narrows the window around `at` by the boundary `b` (a time at which
    /// the result may change: it holds from `b` on, or up to before `b`).
    pub(super) fn cut(&mut self, b: Timestamp, at: Timestamp) {
        if b <= at {
            self.lo = Some(self.lo.map_or(b, |lo| lo.max(b)));
        } else {
            self.hi = Some(self.hi.map_or(b, |hi| hi.min(b)));
        }
    }

    /// The window around `at` of an evaluation at `seq`: between the
    /// nearest boundaries of the events recorded at or before `seq`.
    fn around(index: &Index, seq: Seq, at: Timestamp) -> Window {
        let n = index.events.partition_point(|(s, _)| *s <= seq);
        let mut w = Window::ALL;
        for (_, e) in &index.events[..n] {
            w.cut(e.at, at);
            if let EventKind::Restriction { until: Some(u), .. } = &e.kind {
                w.cut(*u, at);
            }
        }
        w
    }
}

/// What the cache did, counted since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Queries answered from an entry.
    pub hits: u64,
    /// Queries evaluated (and then kept).
    pub misses: u64,
    /// Entries carried to a new head unchanged (the entry appended could
    /// not change them, or only at times after their window).
    pub carried: u64,
    /// Entries carried to a new head patched with the rows the entry adds.
    pub patched: u64,
    /// Entries left behind at their seq (the entry appended could change
    /// them in a way not patched).
    pub dropped: u64,
}

/// One kept evaluation.
#[derive(Clone)]
struct Cached {
    policy: Policy,
    /// The dataset scope, sorted and deduplicated (the evaluation only
    /// asks whether a dataset is in it).
    datasets: Vec<String>,
    seq: Seq,
    window: Window,
    /// The valid time of the query that last used it.
    last_at: Timestamp,
    ex: Arc<Exclusions>,
    used: u64,
}

impl Cached {
    fn answers(&self, q: &Query, datasets: &[String]) -> bool {
        self.seq == q.seq
            && self.window.contains(q.at)
            && self.policy == q.policy
            && self.datasets == datasets
    }
}

/// Evaluations kept per (policy, dataset scope, seq, window of valid
/// times), at most `capacity` of them, the least recently used dropped
/// first. Owned by a [`crate::Ledger`], which tells it of every entry
/// appended ([`HeadCache::appended`]); usable over a bare [`Index`] the
/// same way.
pub struct HeadCache {
    entries: Vec<Cached>,
    capacity: usize,
    tick: u64,
    stats: HeadStats,
}

impl Default for HeadCache {
    fn default() -> Self {
        HeadCache::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for HeadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadCache")
            .field("entries", &self.entries.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The scope as the cache keys it.
fn scope(q: &Query) -> Vec<String> {
    let mut d = q.datasets.clone();
    d.sort();
    d.dedup();
    d
}

impl HeadCache {
    /// A cache of at most `capacity` evaluations (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        HeadCache {
            entries: Vec::new(),
            capacity,
            tick: 0,
            stats: HeadStats::default(),
        }
    }

    /// What the cache did so far.
    pub fn stats(&self) -> HeadStats {
        self.stats
    }

    /// Evaluations kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// [`evaluate`]`(index, q)`, from an entry when one answers `q`,
    /// else evaluated and kept. `index` must be the one the cache was
    /// told of every append to.
    pub fn evaluate(&mut self, index: &Index, q: &Query) -> Arc<Exclusions> {
        if let Some(ex) = self.get(q) {
            return ex;
        }
        let ex = Arc::new(evaluate(index, q));
        self.insert(index, q, ex.clone());
        ex
    }

    /// The kept evaluation answering `q`, if any (a hit).
    pub fn get(&mut self, q: &Query) -> Option<Arc<Exclusions>> {
        let datasets = scope(q);
        self.tick += 1;
        let tick = self.tick;
        match self.entries.iter_mut().find(|c| c.answers(q, &datasets)) {
            Some(c) => {
                c.used = tick;
                c.last_at = q.at;
                self.stats.hits += 1;
                Some(c.ex.clone())
            }
            None => None,
        }
    }

    /// Keeps `ex`, the evaluation of `q` over `index` (a miss), dropping
    /// the least recently used entry when full.
    pub fn insert(&mut self, index: &Index, q: &Query, ex: Arc<Exclusions>) {
        self.stats.misses += 1;
        if self.capacity == 0 || q.seq > index.seq() {
            return;
        }
        let datasets = scope(q);
        self.entries.retain(|c| !c.answers(q, &datasets));
        self.tick += 1;
        self.push(Cached {
            policy: q.policy.clone(),
            datasets,
            seq: q.seq,
            window: Window::around(index, q.seq, q.at),
            last_at: q.at,
            ex,
            used: self.tick,
        });
    }

    fn push(&mut self, c: Cached) {
        while self.entries.len() >= self.capacity.max(1) {
            let oldest = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].used)
                .expect("a full cache has entries");
            self.entries.swap_remove(oldest);
        }
        self.entries.push(c);
    }

    /// Tells the cache that `entry` was appended at `seq` and is already
    /// folded into `index` (call once per entry, in order). The entries
    /// at `seq - 1` are carried to `seq`, patched or left behind.
    pub fn appended(&mut self, index: &Index, seq: Seq, entry: &Entry) {
        let mut extra = Vec::new();
        for c in &mut self.entries {
            if c.seq.0 + 1 != seq.0 {
                continue;
            }
            match carry(index, seq, entry, c) {
                Carry::Same(w) => {
                    c.window = w;
                    c.seq = seq;
                    self.stats.carried += 1;
                }
                Carry::Split {
                    before,
                    after,
                    delta,
                } => {
                    c.seq = seq;
                    // Both parts are kept: the one the last query fell in
                    // as this entry, the other as a new one (sharing the
                    // bitmaps unless one is patched).
                    if let Some(b) = before {
                        let mut other = c.clone();
                        if b.contains(c.last_at) {
                            c.window = b;
                            std::mem::swap(c, &mut other);
                        } else {
                            other.window = b;
                            other.last_at = b.lo.unwrap_or(other.last_at);
                        }
                        extra.push(other);
                    }
                    // `c` is now the part from the event's time on.
                    c.window = after;
                    c.last_at = c.last_at.max(after.lo.unwrap_or(c.last_at));
                    match &delta {
                        Some(d) => {
                            d.apply(index, Arc::make_mut(&mut c.ex));
                            self.stats.patched += 1;
                        }
                        None => self.stats.carried += 1,
                    }
                }
                Carry::Drop => self.stats.dropped += 1,
            }
        }
        for p in extra {
            self.push(p);
        }
    }
}

/// What appending one entry does to an entry at the old head.
enum Carry {
    /// The same result over this window.
    Same(Window),
    /// The same result over `before` (the times before an event's, if
    /// any are in the window), the result patched with `delta` (`None`:
    /// the same) over `after` (the times from the event's on). An entry
    /// is never carried over a window in which an event starts counting
    /// or a restriction ends: the patches assume every status is
    /// constant over the window.
    Split {
        before: Option<Window>,
        after: Window,
        delta: Option<Delta>,
    },
    /// Nothing provable.
    Drop,
}

/// How entry `entry`, appended at `seq`, carries `c` (at `seq - 1`).
fn carry(index: &Index, seq: Seq, entry: &Entry, c: &Cached) -> Carry {
    match entry {
        Entry::Run(_) | Entry::QuarantineAck(_) | Entry::Files(_) => Carry::Same(c.window),
        // New rows in datasets outside a non-empty scope change nothing
        // in it, as long as no row is derived (derived rows take their
        // parents' reasons across datasets).
        Entry::Records(b)
            if !c.datasets.is_empty()
                && index.lineage.is_empty()
                && b.shards.iter().all(|g| !c.datasets.contains(&g.dataset)) =>
        {
            Carry::Same(c.window)
        }
        Entry::Event(e) => {
            let w = c.window;
            // An event changes nothing before its time: not within a
            // window that ends by then.
            if w.hi.is_some_and(|hi| e.at >= hi) {
                return Carry::Same(w);
            }
            let before = w.lo.is_none_or(|lo| lo < e.at).then_some(Window {
                hi: Some(e.at),
                ..w
            });
            let lo = w.lo.map_or(e.at, |lo| lo.max(e.at));
            let mut after = Window { lo: Some(lo), ..w };
            if let EventKind::Restriction { until: Some(u), .. } = &e.kind {
                after.cut(*u, lo);
            }
            let pos = index.events.partition_point(|(s, _)| *s < seq);
            match delta(index, seq, pos, &c.policy, lo) {
                Some(d) => Carry::Split {
                    before,
                    after,
                    delta: (!d.is_empty()).then_some(d),
                },
                // An event changes nothing before its time.
                None => before.map_or(Carry::Drop, Carry::Same),
            }
        }
        _ => Carry::Drop,
    }
}
