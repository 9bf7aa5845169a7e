//! Shard ends (issue 14): rows gone from their shard, folded from
//! [`Entry::Ends`](crate::event::Entry::Ends) (docs/FORMAT.md, "Shard
//! ends"). A gone row's newest version is marked replaced at the entry's
//! seq (`Records::superseded`, so every reader that asks "visible at N"
//! skips it), leaves its shard's row → ordinal runs (so it is not
//! registered any more: registering it again is new, and needs no
//! `replace`) and is kept here, so the history before the entry still
//! finds it. Kept in the index snapshot as an optional section (magic
//! `OPTEND01`), present only when a shard ever ended.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Index, Records};
use crate::codec::{self, CodecError};
use crate::fingerprint::ShardEnds;
use crate::ids::{Seq, ShardId};

/// The first bytes of the snapshot section of shard ends.
pub(crate) const ENDS_MAGIC: &[u8; 8] = b"OPTEND01";

/// Rows as runs: `row_start -> (len, ord_start)`.
pub(crate) type RunMap = BTreeMap<u32, (u32, u32)>;

/// Removes rows `lo..hi` from `map` and returns the removed pieces as
/// `(row, len, ord)`, ascending.
pub(crate) fn cut(map: &mut RunMap, lo: u32, hi: u32) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    if lo >= hi {
        return out;
    }
    let mut split = |map: &mut RunMap, s: u32, l: u32, o: u32| {
        let end = s + l;
        let (a, b) = (s.max(lo), end.min(hi));
        if a >= b {
            return;
        }
        map.remove(&s);
        if s < a {
            map.insert(s, (a - s, o));
        }
        out.push((a, b - a, o + (a - s)));
        if b < end {
            map.insert(b, (end - b, o + (b - s)));
        }
    };
    if let Some((&s, &(l, o))) = map.range(..lo).next_back() {
        split(map, s, l, o);
    }
    let inside: Vec<(u32, (u32, u32))> = map.range(lo..hi).map(|(&s, &v)| (s, v)).collect();
    for (s, (l, o)) in inside {
        split(map, s, l, o);
    }
    out
}

/// Gone rows and the cuts that made them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ends {
    /// Per shard id: rows whose newest version is gone and that were not
    /// registered again.
    gone: BTreeMap<u32, RunMap>,
    /// `(seq, shard, one past the largest live row right after the
    /// cut)`, one per shard an entry ended, in log order.
    cuts: Vec<(Seq, u32, u32)>,
}

/// The snapshot form: `gone` as `(shard, row, len, ord)` ascending.
#[derive(Serialize, Deserialize)]
struct EndsSection {
    gone: Vec<(u32, u32, u32, u32)>,
    cuts: Vec<(Seq, u32, u32)>,
}

impl Ends {
    pub(crate) fn is_empty(&self) -> bool {
        self.cuts.is_empty()
    }

    /// The snapshot section: magic, then bincode.
    pub(crate) fn to_section(&self) -> Result<Vec<u8>, CodecError> {
        let gone = self
            .gone
            .iter()
            .flat_map(|(&sh, m)| m.iter().map(move |(&r, &(l, o))| (sh, r, l, o)))
            .collect();
        let mut out = ENDS_MAGIC.to_vec();
        out.extend_from_slice(&codec::encode_large(&EndsSection {
            gone,
            cuts: self.cuts.clone(),
        })?);
        Ok(out)
    }

    /// Reads [`Ends::to_section`] for `recs`; `None` if it is not such a
    /// section. Only the canonical form, consistent with `recs`: runs
    /// ascending, not overlapping, not empty, inside the ordinal and row
    /// spaces, of existing shards; cuts in log order, at most at `seq`.
    pub(crate) fn from_section(
        s: &[u8],
        recs: &Records,
        seq: Seq,
    ) -> Option<Result<Ends, CodecError>> {
        let body = s.strip_prefix(ENDS_MAGIC)?;
        Some(codec::decode_large::<EndsSection>(body).and_then(|f| {
            let bad = || CodecError::Invalid("index snapshot: inconsistent shard ends".into());
            let (ns, n) = (recs.shards.len() as u32, u64::from(recs.n_ords));
            let run_ok = |&(sh, r, l, o): &(u32, u32, u32, u32)| {
                sh < ns && l > 0 && u64::from(o) + u64::from(l) <= n && r.checked_add(l).is_some()
            };
            let ordered = f.gone.windows(2).all(|w| {
                let (a, b) = (w[0], w[1]);
                a.0 < b.0 || (a.0 == b.0 && u64::from(a.1) + u64::from(a.2) <= u64::from(b.1))
            });
            let cuts_ok = f
                .cuts
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
                && f.cuts.iter().all(|c| c.1 < ns && c.0 <= seq);
            if !(ordered && cuts_ok && f.gone.iter().all(run_ok)) {
                return Err(bad());
            }
            let mut e = Ends {
                cuts: f.cuts,
                ..Ends::default()
            };
            for (sh, r, l, o) in f.gone {
                e.gone.entry(sh).or_default().insert(r, (l, o));
            }
            Ok(e)
        }))
    }
}

impl Records {
    /// Ends `shard` at `end` at `seq`: every live row at or past it is gone.
    pub(crate) fn end_shard(&mut self, shard: ShardId, end: u32, seq: Seq) {
        let (pieces, row_end) = self.shards[shard.0 as usize].cut_from(end);
        if pieces.is_empty() {
            return;
        }
        let gone = self.ends.gone.entry(shard.0).or_default();
        for (r, l, o) in pieces {
            for x in o..o + l {
                self.superseded.insert(x, seq);
            }
            gone.insert(r, (l, o));
        }
        self.ends.cuts.push((seq, shard.0, row_end));
    }

    /// The gone version of `(shard, row)`, if the row is gone.
    pub(crate) fn gone_row(&self, shard: ShardId, row: u32) -> Option<u32> {
        let m = self.ends.gone.get(&shard.0)?;
        let (&s, &(l, o)) = m.range(..=row).next_back()?;
        (row - s < l).then(|| o + (row - s))
    }

    /// Takes `(shard, row)` out of the gone rows (it is registered again),
    /// returning its gone version.
    pub(crate) fn take_gone(&mut self, shard: ShardId, row: u32) -> Option<u32> {
        if self.ends.gone.is_empty() {
            return None;
        }
        let m = self.ends.gone.get_mut(&shard.0)?;
        let o = cut(m, row, row + 1).first().map(|p| p.2);
        if m.is_empty() {
            self.ends.gone.remove(&shard.0);
        }
        o
    }

    /// Corrects [`Records::row_ends_at`]'s `out` for shards that ended at
    /// or before `seq`: after its newest cut (at `S`, leaving end `E`) a
    /// shard's rows are those live right after (all below `E`) and those
    /// registered after `S`, so its row end is `E` or more, by the
    /// ordinals registered after `S` alone.
    pub(crate) fn cut_row_ends(&self, seq: Seq, out: &mut HashMap<u32, u64>) {
        let mut latest: HashMap<u32, (u32, u32)> = HashMap::new();
        for &(s, sh, e) in self.ends.cuts.iter().take_while(|c| c.0 <= seq) {
            latest.insert(sh, (self.limit_at(s), e));
        }
        let Some(lo) = latest.values().map(|v| v.0).min() else {
            return;
        };
        let limit = self.limit_at(seq);
        let mut fixed: HashMap<u32, u64> = latest
            .iter()
            .map(|(&sh, &(_, e))| (sh, u64::from(e)))
            .collect();
        let first = self.runs.partition_point(|r| r.ord <= lo).saturating_sub(1);
        for (i, r) in self.runs.iter().enumerate().skip(first) {
            if r.ord >= limit {
                break;
            }
            let Some(&(after, _)) = latest.get(&r.shard) else {
                continue;
            };
            let end = self
                .runs
                .get(i + 1)
                .map_or(self.n_ords, |n| n.ord)
                .min(limit);
            if end > after.max(r.ord) {
                let e = fixed.entry(r.shard).or_default();
                *e = (*e).max(u64::from(r.row) + u64::from(end - r.ord));
            }
        }
        for (sh, v) in fixed {
            if v == 0 {
                out.remove(&sh);
            } else {
                out.insert(sh, v);
            }
        }
    }
}

impl Index {
    /// Folds an [`Entry::Ends`](crate::event::Entry::Ends): each shard's
    /// rows at or past its end are gone, and its fingerprint is forgotten
    /// (its rows changed).
    pub(crate) fn apply_ends(&mut self, seq: Seq, e: &ShardEnds) {
        for x in &e.shards {
            self.files.forget(&x.dataset, &x.shard);
            if let Some(s) = self.records.find_shard(&x.dataset, &x.shard) {
                self.records.end_shard(s, x.end, seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::canonical_containers;
    use super::*;
    use roaring::RoaringBitmap;

    #[test]
    fn canonical_containers_on_real_bitmaps() {
        let mut b: RoaringBitmap = (0..10)
            .chain(70_000..70_010)
            .chain(5_000_000..5_100_000)
            .collect();
        assert!(canonical_containers(&b));
        b.insert(u32::MAX);
        assert!(canonical_containers(&b));
        assert!(canonical_containers(&RoaringBitmap::new()));
    }

    #[test]
    fn cut_takes_exactly_the_rows_asked() {
        let mut m: RunMap = [(0, (10, 100)), (20, (5, 200))].into_iter().collect();
        assert_eq!(cut(&mut m, 5, 22), vec![(5, 5, 105), (20, 2, 200)]);
        let left: Vec<_> = m.iter().map(|(&s, &v)| (s, v)).collect();
        assert_eq!(left, vec![(0, (5, 100)), (22, (3, 202))]);
        assert_eq!(cut(&mut m, 7, 9), vec![]);
        assert_eq!(cut(&mut m, 23, 24), vec![(23, 1, 203)]);
        assert_eq!(cut(&mut m, 0, u32::MAX).len(), 3);
        assert!(m.is_empty());
    }
}
