//! Derived rows: a derived row is excluded for every reason any of its
//! ancestors (transitively) is, as well as for its own (takedowns of the
//! derived row itself). Parents are resolved against the records known at
//! N, so a link, and a parent, recorded after N do not count at N.
//!
//! Cost: the per-shard exclusions are first laid out in ordinal space as
//! dense bitsets (one of every excluded ordinal, one per reason present;
//! `n_ords / 8` bytes each, built in O(runs + excluded rows)), so that a
//! plain parent (an ordinal that is neither a slot nor derived, nor
//! replaced) costs one bit probe; reasons are gathered only for the derived
//! rows with an excluded parent, and slots, derived parents (chains) and
//! replaced versions take the general depth-first path. Contiguous derived
//! ordinals (one derivation: the usual layout) are counted as a range, not
//! iterated from the bitmap (most of the scan's time at W-D).

use super::*;
use crate::index::{Records, PENDING};

/// A reason set as bits (`1 << Reason as usize`).
type Mask = u16;
const ON_PATH: u32 = 1 << 30;
const DONE: u32 = 1 << 31;

/// A fixed-size bitset over ordinals.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: u32) -> Bits {
        Bits(vec![0; (n as usize).div_ceil(64)])
    }
    #[inline]
    fn get(&self, o: u32) -> bool {
        self.0
            .get((o >> 6) as usize)
            .is_some_and(|w| w >> (o & 63) & 1 != 0)
    }
    #[inline]
    fn set(&mut self, o: u32) {
        self.0[(o >> 6) as usize] |= 1 << (o & 63);
    }
}

/// The exclusions known before the lineage step, by ordinal.
struct Own {
    /// Every ordinal whose row is excluded.
    any: Bits,
    /// Per reason present: its ordinals.
    reasons: Vec<(u32, Bits)>,
}

impl Own {
    /// Lays out `shards` in ordinal space: every ordinal of an excluded
    /// row, replaced versions included (they hold their replacement's row).
    fn build(recs: &Records, shards: &BTreeMap<ShardId, ShardExclusion>) -> Own {
        let n = recs.n_ords;
        let mut any = Bits::new(n);
        let mut reasons: Vec<(u32, Bits)> = Vec::new();
        for (i, run) in recs.runs.iter().enumerate() {
            let end = recs.runs.get(i + 1).map_or(n, |r| r.ord);
            let Some(e) = shards.get(&ShardId(run.shard)) else {
                continue;
            };
            let rows = run.row..run.row + (end - run.ord);
            if e.excluded.range_cardinality(rows.clone()) == 0 {
                continue;
            }
            for row in e.excluded.range(rows.clone()) {
                any.set(run.ord + (row - run.row));
            }
            for (r, b) in e.reasons.iter().enumerate() {
                if b.range_cardinality(rows.clone()) == 0 {
                    continue;
                }
                let k = match reasons.iter().position(|(x, _)| *x == r as u32) {
                    Some(k) => k,
                    None => {
                        reasons.push((r as u32, Bits::new(n)));
                        reasons.len() - 1
                    }
                };
                for row in b.range(rows.clone()) {
                    reasons[k].1.set(run.ord + (row - run.row));
                }
            }
        }
        Own { any, reasons }
    }

    /// The reasons of ordinal `o`'s row.
    #[inline]
    fn mask(&self, o: u32) -> Mask {
        if !self.any.get(o) {
            return 0;
        }
        self.reasons
            .iter()
            .filter(|(_, b)| b.get(o))
            .fold(0, |m, (r, _)| m | 1 << r)
    }
}

/// Adds to each derived row visible at `seq` its ancestors' reasons, in
/// `shards` (which must hold every shard known at `seq`, whatever the scope).
pub(super) fn propagate(index: &Index, seq: Seq, shards: &mut BTreeMap<ShardId, ShardExclusion>) {
    const { assert!(Reason::COUNT <= 16) };
    let (recs, lin) = (&index.records, &index.lineage);
    let limit = recs.limit_at(seq);
    let own = Own::build(recs, shards);
    let mut derived = Bits::new(recs.n_ords);
    for o in ords(&lin.small.derived, 0) {
        derived.set(o);
    }
    let child = |o: u32| {
        derived
            .get(o)
            .then(|| lin.small.derived.rank(o) as usize - 1)
    };
    // `stop`: the ordinals a plain link must look at again: excluded,
    // derived, or replaced by `seq` (a parent stored as an ordinal stands
    // for itself at `seq` otherwise: it was live when linked, and a derived
    // row is visible only from its link's seq on). One probe per link.
    let mut stop = Bits(own.any.0.clone());
    for (w, d) in stop.0.iter_mut().zip(&derived.0) {
        *w |= d;
    }
    for (&o, &s) in &recs.superseded {
        if s <= seq {
            stop.set(o);
        }
    }
    let n = lin.small.derived.len() as usize;
    // Per derived row: its reasons (low bits) and the search state.
    let mut state: Vec<u32> = vec![0; n];
    let mut changed: Vec<(u32, Mask)> = Vec::new();
    // The plain rows first (parents all plain ordinals), on up to two
    // threads over halves of the derived rows; the others stay 0.
    let threads = if n >= 1 << 16 { 2 } else { 1 };
    let per = n.div_ceil(threads);
    let plain_rows = |start: usize, state: &mut [u32]| -> Vec<(u32, Mask)> {
        let mut out = Vec::new();
        for ((k, o), st) in ords(&lin.small.derived, start as u32)
            .enumerate()
            .zip(state)
        {
            let i = start + k;
            if o >= limit || !recs.visible(o, limit, seq) {
                continue;
            }
            let ps = lin.parents_of(i);
            let (mut pend, mut hit) = (0, false);
            for &p in ps {
                pend |= p;
                hit |= stop.get(p & !PENDING);
            }
            if pend & PENDING != 0 {
                continue;
            }
            let mut m = own.mask(o);
            if hit {
                if ps.iter().any(|&p| derived.get(p) || replaced(recs, p, seq)) {
                    continue;
                }
                m = ps.iter().fold(m, |m, &p| m | own.mask(p));
            }
            *st = DONE | m as u32;
            if m != 0 {
                out.push((o, m));
            }
        }
        out
    };
    std::thread::scope(|sc| {
        let handles: Vec<_> = state
            .chunks_mut(per.max(1))
            .enumerate()
            .map(|(t, chunk)| sc.spawn(move || plain_rows(t * per, chunk)))
            .collect();
        for h in handles {
            changed.extend(h.join().expect("lineage worker"));
        }
    });
    let mut resolved = Vec::new();
    let mut stack: Vec<(usize, u32, Vec<u32>)> = Vec::new();
    for (i, o) in ords(&lin.small.derived, 0).enumerate() {
        if o >= limit || state[i] & DONE != 0 || !recs.visible(o, limit, seq) {
            continue;
        }
        // Depth first over derived parents; each row's reasons are final
        // before any child reads them.
        let mut push = |i: usize, o: u32, state: &mut Vec<u32>| {
            resolved.clear();
            for &p in lin.parents_of(i) {
                lin.resolve(recs, p, seq, &mut resolved);
            }
            state[i] = ON_PATH | own.mask(o) as u32;
            (i, o, resolved.clone())
        };
        stack.push(push(i, o, &mut state));
        while let Some((ci, _, ps)) = stack.last_mut() {
            let ci = *ci;
            match ps.pop() {
                Some(p) => match child(p) {
                    // A derived parent not folded yet: fold it first. (On
                    // the path: a cycle, which derive refuses; it adds nothing.)
                    Some(j) if state[j] & (DONE | ON_PATH) == 0 => {
                        let next = push(j, p, &mut state);
                        stack.push(next);
                    }
                    Some(j) => state[ci] |= state[j] & 0xFFFF,
                    None => state[ci] |= own.mask(p) as u32,
                },
                None => {
                    let (ci, co, _) = stack.pop().expect("non-empty");
                    state[ci] = (state[ci] & !ON_PATH) | DONE;
                    let m = (state[ci] & 0xFFFF) as Mask;
                    if m != 0 {
                        changed.push((co, m));
                    }
                    if let Some((pi, _, _)) = stack.last() {
                        state[*pi] |= m as u32;
                    }
                }
            }
        }
    }
    apply(recs, shards, &mut changed);
}

/// Whether ordinal `p` was replaced by `seq`.
fn replaced(recs: &Records, p: u32, seq: Seq) -> bool {
    !recs.superseded.is_empty() && recs.superseded.get(&p).is_some_and(|&s| s <= seq)
}

/// Adds the derived rows' reasons to their shards, one pass over the
/// ordinal runs and one bitmap union per shard stretch and reason.
fn apply(
    recs: &Records,
    shards: &mut BTreeMap<ShardId, ShardExclusion>,
    changed: &mut [(u32, Mask)],
) {
    if !changed.is_sorted_by_key(|c| c.0) {
        changed.sort_unstable_by_key(|c| c.0);
    }
    let mut rest = &changed[..];
    let mut rows: Vec<(u32, Mask)> = Vec::new();
    for (i, run) in recs.runs.iter().enumerate() {
        let Some(&(first, _)) = rest.first() else {
            break;
        };
        let end = recs.runs.get(i + 1).map_or(recs.n_ords, |r| r.ord);
        if first >= end {
            continue;
        }
        let k = rest.partition_point(|c| c.0 < end);
        let (here, tail) = rest.split_at(k);
        rest = tail;
        let Some(e) = shards.get_mut(&ShardId(run.shard)) else {
            continue;
        };
        rows.clear();
        rows.extend(here.iter().map(|&(o, m)| (run.row + (o - run.ord), m)));
        let all = RoaringBitmap::from_sorted_iter(rows.iter().map(|r| r.0)).expect("ascending");
        let present = rows.iter().fold(0, |a, r| a | r.1);
        for (r, b) in e.reasons.iter_mut().enumerate() {
            if present & 1 << r != 0 {
                let these = rows.iter().filter(|x| x.1 & 1 << r != 0).map(|x| x.0);
                *b |= RoaringBitmap::from_sorted_iter(these).expect("ascending");
            }
        }
        e.excluded |= all;
    }
}

/// The derived ordinals from the `start`-th on: a plain range when they
/// are contiguous (one derivation over a ledger: the usual layout), which
/// costs no bitmap iteration, else the bitmap's own.
fn ords(derived: &RoaringBitmap, start: u32) -> Box<dyn Iterator<Item = u32> + '_> {
    match (derived.min(), derived.max()) {
        (Some(a), Some(b)) if u64::from(b - a) + 1 == derived.len() => {
            Box::new(a.saturating_add(start).min(b + 1)..b + 1)
        }
        _ => match derived.select(start) {
            Some(first) => Box::new(derived.range(first..)),
            None => Box::new(std::iter::empty()),
        },
    }
}
