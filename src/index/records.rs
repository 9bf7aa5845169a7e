//! Records: datasets, shards and record *ordinals*.
//!
//! Every registration of a record gets the next ordinal (a dense `u32`), so
//! per-record columns and the subject links are flat arrays, and "what the
//! ledger knew at `Seq` N" is simply "ordinals below the count at N, minus
//! versions replaced at or before N". Ordinals map back to `(shard, row)`
//! through runs: one entry per stretch of consecutive rows registered in
//! order, so sequential ingest costs a few bytes per shard, not per record.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::col::Col;
use crate::event::ContentHash;
use crate::ids::{DatasetId, RecordId, Seq, ShardId};
use crate::provenance::Profile;

const KEY_CONTEXT: &str = "optout 2026-11 record key index v1";

/// A 128-bit hash of an external record key, for the key index.
pub(crate) fn key_hash(key: &str) -> u128 {
    let mut h = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    h.update(key.as_bytes());
    let out = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&out.as_bytes()[..16]);
    u128::from_le_bytes(b)
}

/// A shard: its dataset, name, and which ordinal holds each row now.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Shard {
    pub(crate) dataset: DatasetId,
    pub(crate) name: String,
    /// The sequence number that first registered a row of this shard.
    pub(crate) first_seq: Seq,
    /// Current row → ordinal map as runs: `row_start -> (len, ord_start)`.
    #[serde(deserialize_with = "super::sorted::strict_btree")]
    runs: BTreeMap<u32, (u32, u32)>,
    /// The run being extended by sequential ingest, kept out of the map.
    tail: Option<(u32, u32, u32)>,
    /// One past the highest row ever registered.
    row_end: u32,
}

impl Shard {
    fn new(dataset: DatasetId, name: String, first_seq: Seq) -> Self {
        Shard {
            dataset,
            name,
            first_seq,
            runs: BTreeMap::new(),
            tail: None,
            row_end: 0,
        }
    }

    /// The ordinal currently holding `row`, if registered.
    pub(crate) fn current(&self, row: u32) -> Option<u32> {
        if let Some((start, len, ord)) = self.tail {
            if row >= start && row - start < len {
                return Some(ord + (row - start));
            }
        }
        let (&start, &(len, ord)) = self.runs.range(..=row).next_back()?;
        (row - start < len).then(|| ord + (row - start))
    }

    fn set(&mut self, row: u32, ord: u32) {
        if row >= self.row_end {
            // A new row: extend the tail run when it is contiguous.
            if let Some((start, len, o)) = &mut self.tail {
                if row == *start + *len && ord == *o + *len && row == self.row_end {
                    *len += 1;
                    self.row_end = row + 1;
                    return;
                }
            }
            if let Some((s, l, o)) = self.tail.take() {
                self.runs.insert(s, (l, o));
            }
            self.tail = Some((row, 1, ord));
            self.row_end = row + 1;
            return;
        }
        // An old row (a replacement) or a gap: split whatever run covers it.
        if let Some((s, l, o)) = self.tail.take() {
            self.runs.insert(s, (l, o));
        }
        super::ends::cut(&mut self.runs, row, row + 1);
        self.runs.insert(row, (1, ord));
    }

    /// How many rows at or past `end` are registered (and not gone).
    pub(crate) fn rows_from(&self, end: u32) -> u64 {
        let n = |s: u32, l: u32| u64::from((s + l).saturating_sub(s.max(end)));
        let tail = self.tail.map_or(0, |(s, l, _)| n(s, l));
        let first = self.runs.range(..end).next_back();
        let rest = self.runs.range(end..).map(|(&s, &(l, _))| n(s, l));
        tail + first.map_or(0, |(&s, &(l, _))| n(s, l)) + rest.sum::<u64>()
    }

    /// Takes every row at or past `end` out of the runs (shard ends, issue
    /// 14): the pieces taken, as `(row, len, ord)`, and the new row end.
    pub(super) fn cut_from(&mut self, end: u32) -> (Vec<(u32, u32, u32)>, u32) {
        if let Some((s, l, o)) = self.tail.take() {
            self.runs.insert(s, (l, o));
        }
        let pieces = super::ends::cut(&mut self.runs, end, u32::MAX);
        self.row_end = self.runs.last_key_value().map_or(0, |(s, (l, _))| s + l);
        (pieces, self.row_end)
    }
}

/// Whether a decoded bitmap has no empty container. roaring's
/// `deserialize_from` accepts empty containers, which its own
/// `serialize_into` then cannot write (it computes `len - 1`). Walks the
/// non-empty containers with `rank`/`select` (a few steps per container, not
/// per value) and compares their number with the container count.
pub(crate) fn canonical_containers(b: &RoaringBitmap) -> bool {
    let n = b.statistics().n_containers as u64;
    let mut found = 0u64;
    let mut next = b.min();
    while let Some(v) = next {
        found += 1;
        let key = v >> 16;
        if key == 0xFFFF {
            break;
        }
        let end = (key + 1) << 16;
        next = u32::try_from(b.rank(end - 1))
            .ok()
            .and_then(|r| b.select(r));
    }
    found == n
}

/// Where a stretch of consecutive ordinals lives: `ord_start` holds
/// `(shard, row_start)`, `ord_start + i` holds `(shard, row_start + i)`,
/// up to the next run's `ord_start`.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) struct OrdRun {
    pub(crate) ord: u32,
    pub(crate) shard: u32,
    pub(crate) row: u32,
}

/// An ordinal list that is usually one element.
pub(crate) type Ords = Vec<u32>;

/// The record side of the index.
#[derive(Default, Clone, Serialize, Deserialize)]
pub(crate) struct Records {
    pub(crate) datasets: Vec<String>,
    #[serde(with = "super::sorted")]
    pub(crate) dataset_ids: HashMap<String, DatasetId>,
    pub(crate) shards: Vec<Shard>,
    #[serde(with = "super::sorted")]
    pub(crate) shard_ids: HashMap<(DatasetId, String), ShardId>,
    pub(crate) runs: Vec<OrdRun>,
    /// Number of ordinals handed out.
    pub(crate) n_ords: u32,
    /// `(seq, n_ords after the entry at seq)`, one per record batch.
    pub(crate) checkpoints: Vec<(Seq, u32)>,
    /// Replaced versions: `old ordinal -> seq that replaced it`.
    #[serde(with = "super::sorted")]
    pub(crate) superseded: HashMap<u32, Seq>,
    /// `new ordinal -> the ordinal it replaced`.
    #[serde(with = "super::sorted")]
    pub(crate) previous: HashMap<u32, u32>,
    /// Linked-subject count per ordinal; 255 means "see `nsubj_big`".
    /// Stored raw in snapshots.
    #[serde(skip)]
    pub(crate) nsubj: Col<u8>,
    #[serde(with = "super::sorted")]
    pub(crate) nsubj_big: HashMap<u32, u32>,
    /// Distinct profiles and, per profile, the ordinals that have it.
    pub(crate) profiles: Vec<Profile>,
    #[serde(skip)]
    pub(crate) profile_ids: HashMap<Profile, u32>,
    #[serde(deserialize_with = "super::sorted::canonical_bitmaps")]
    pub(crate) profile_rows: Vec<RoaringBitmap>,
    /// External key hash → ordinals; content hash → ordinals.
    #[serde(with = "super::sorted")]
    pub(crate) keys: HashMap<u128, Ords>,
    #[serde(with = "super::sorted")]
    pub(crate) hashes: HashMap<ContentHash, Ords>,
    /// Gone rows (shard ends, issue 14): stored in their own section.
    #[serde(skip)]
    pub(crate) ends: super::ends::Ends,
}

impl Records {
    pub(crate) fn rebuild_lookups(&mut self) {
        self.profile_ids = self
            .profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
    }

    /// A copy of everything but the per-ordinal columns (stored raw in snapshots).
    pub(crate) fn clone_without_columns(&self) -> Records {
        Records {
            datasets: self.datasets.clone(),
            dataset_ids: self.dataset_ids.clone(),
            shards: self.shards.clone(),
            shard_ids: self.shard_ids.clone(),
            runs: self.runs.clone(),
            n_ords: self.n_ords,
            checkpoints: self.checkpoints.clone(),
            superseded: self.superseded.clone(),
            previous: self.previous.clone(),
            nsubj: Col::default(),
            nsubj_big: self.nsubj_big.clone(),
            profiles: self.profiles.clone(),
            profile_ids: HashMap::new(),
            profile_rows: self.profile_rows.clone(),
            keys: self.keys.clone(),
            hashes: self.hashes.clone(),
            ends: Default::default(),
        }
    }

    pub(crate) fn dataset(&mut self, name: &str) -> DatasetId {
        if let Some(&d) = self.dataset_ids.get(name) {
            return d;
        }
        let d = DatasetId(self.datasets.len() as u32);
        self.datasets.push(name.to_string());
        self.dataset_ids.insert(name.to_string(), d);
        d
    }

    pub(crate) fn find_shard(&self, dataset: &str, shard: &str) -> Option<ShardId> {
        let d = *self.dataset_ids.get(dataset)?;
        self.shard_ids.get(&(d, shard.to_string())).copied()
    }

    pub(crate) fn shard(&mut self, dataset: &str, name: &str, seq: Seq) -> ShardId {
        let d = self.dataset(dataset);
        if let Some(&s) = self.shard_ids.get(&(d, name.to_string())) {
            return s;
        }
        let s = ShardId(self.shards.len() as u32);
        self.shards.push(Shard::new(d, name.to_string(), seq));
        self.shard_ids.insert((d, name.to_string()), s);
        s
    }

    pub(crate) fn profile(&mut self, p: &Profile) -> u32 {
        if let Some(&i) = self.profile_ids.get(p) {
            return i;
        }
        let i = self.profiles.len() as u32;
        self.profiles.push(p.clone());
        self.profile_ids.insert(p.clone(), i);
        self.profile_rows.push(RoaringBitmap::new());
        i
    }

    /// Registers the next ordinal for `(shard, row)`; returns it and the
    /// ordinal it replaces, if any.
    pub(crate) fn push(
        &mut self,
        shard: ShardId,
        row: u32,
        profile: u32,
        n_subjects: usize,
        seq: Seq,
    ) -> (u32, Option<u32>) {
        let ord = self.n_ords;
        self.n_ords += 1;
        let extend = self.runs.last().is_some_and(|r| {
            r.shard == shard.0 && ord - r.ord == row.wrapping_sub(r.row) && row >= r.row
        });
        if !extend {
            self.runs.push(OrdRun {
                ord,
                shard: shard.0,
                row,
            });
        }
        let sh = &mut self.shards[shard.0 as usize];
        let old = sh.current(row);
        sh.set(row, ord);
        if let Some(o) = old {
            self.superseded.insert(o, seq);
            self.previous.insert(ord, o);
        } else if let Some(o) = self.take_gone(shard, row) {
            // A gone row registered again: its gone version stays replaced
            // at the seq that ended it.
            self.previous.insert(ord, o);
        }
        self.profile_rows[profile as usize].push(ord);
        if n_subjects >= 255 {
            self.nsubj.to_mut().push(255);
            self.nsubj_big.insert(ord, n_subjects as u32);
        } else {
            self.nsubj.to_mut().push(n_subjects as u8);
        }
        (ord, old)
    }

    pub(crate) fn n_subjects(&self, ord: u32) -> u32 {
        match self.nsubj[ord as usize] {
            255 => self.nsubj_big.get(&ord).copied().unwrap_or(255),
            n => n as u32,
        }
    }

    /// Number of ordinals the ledger knew at `seq`.
    pub(crate) fn limit_at(&self, seq: Seq) -> u32 {
        let i = self.checkpoints.partition_point(|(s, _)| *s <= seq);
        if i == 0 {
            0
        } else {
            self.checkpoints[i - 1].1
        }
    }

    /// Per shard id, one past the largest row registered at `seq` (rows
    /// may be sparse, so this is not the count of rows): the row end a
    /// manifest at `seq` records. Shards with no row yet are absent.
    pub(crate) fn row_ends_at(&self, seq: Seq) -> HashMap<u32, u64> {
        let limit = self.limit_at(seq);
        let mut out: HashMap<u32, u64> = HashMap::new();
        for (i, r) in self.runs.iter().enumerate() {
            if r.ord >= limit {
                break;
            }
            let end = self
                .runs
                .get(i + 1)
                .map_or(self.n_ords, |n| n.ord)
                .min(limit);
            // A superseded version has the row of its replacement, so the
            // largest row over all ordinals below the limit is the largest
            // live one.
            let row_end = u64::from(r.row) + u64::from(end - r.ord);
            let e = out.entry(r.shard).or_default();
            *e = (*e).max(row_end);
        }
        self.cut_row_ends(seq, &mut out);
        out
    }

    /// Whether ordinal `o` was the live version of its record at `seq`.
    pub(crate) fn visible(&self, o: u32, limit: u32, seq: Seq) -> bool {
        o < limit && self.superseded.get(&o).is_none_or(|&s| s > seq)
    }

    /// The record an ordinal holds.
    pub(crate) fn record_of(&self, o: u32) -> RecordId {
        let i = self.runs.partition_point(|r| r.ord <= o) - 1;
        let r = self.runs[i];
        RecordId::new(ShardId(r.shard), r.row + (o - r.ord))
    }

    /// The live version of `(shard, row)` at `seq`, if any.
    pub(crate) fn version_at(&self, shard: ShardId, row: u32, seq: Seq) -> Option<u32> {
        let limit = self.limit_at(seq);
        let sh = self.shards.get(shard.0 as usize)?;
        let mut o = sh.current(row).or_else(|| self.gone_row(shard, row))?;
        loop {
            if self.visible(o, limit, seq) {
                return Some(o);
            }
            o = *self.previous.get(&o)?;
        }
    }

    /// The profile of ordinal `o`.
    pub(crate) fn profile_of(&self, o: u32) -> Option<u32> {
        self.profile_rows
            .iter()
            .position(|b| b.contains(o))
            .map(|i| i as u32)
    }

    /// Calls `f(ordinal, record)` for ascending, deduplicated `ords`.
    pub(crate) fn for_each_record(&self, ords: &[u32], mut f: impl FnMut(u32, RecordId)) {
        // Runs start at ordinal 0 and cover every ordinal handed out.
        if self.runs.is_empty() {
            return;
        }
        let mut i = 0usize;
        for &o in ords {
            while i + 1 < self.runs.len() && self.runs[i + 1].ord <= o {
                i += 1;
            }
            let r = self.runs[i];
            f(o, RecordId::new(ShardId(r.shard), r.row + (o - r.ord)));
        }
    }

    /// Whether every cross-reference of a decoded structure is in range:
    /// shards name existing datasets, maps name existing shards and
    /// ordinals, row runs stay inside the ordinal space and the row space.
    /// A snapshot that fails this is damage, never used.
    pub(crate) fn is_consistent(&self) -> bool {
        let n = self.n_ords as u64;
        let nd = self.datasets.len() as u32;
        let ns = self.shards.len() as u32;
        let run_ok = |row: u32, len: u32, ord: u32| {
            (ord as u64 + len as u64) <= n && (row as u64 + len as u64) <= u32::MAX as u64
        };
        let shards_ok = self.shards.iter().all(|sh| {
            sh.dataset.0 < nd
                && sh.runs.iter().all(|(&r, &(l, o))| run_ok(r, l, o))
                && sh.tail.is_none_or(|(r, l, o)| run_ok(r, l, o))
        });
        let ord_runs_ok = self.runs.iter().enumerate().all(|(i, r)| {
            let end = self.runs.get(i + 1).map_or(self.n_ords, |x| x.ord);
            r.shard < ns && end >= r.ord && run_ok(r.row, end - r.ord, r.ord)
        });
        let below = |o: &u32| (*o as u64) < n;
        shards_ok
            && ord_runs_ok
            // The name lookups are the inverse of the vectors: a lookup
            // pointing at another dataset's (or shard's) id would scope a
            // manifest to the wrong records.
            && self.dataset_ids.len() == self.datasets.len()
            && self
                .dataset_ids
                .iter()
                .all(|(name, d)| self.datasets.get(d.0 as usize) == Some(name))
            && self.shard_ids.len() == self.shards.len()
            && self.shard_ids.iter().all(|((d, name), s)| {
                self.shards
                    .get(s.0 as usize)
                    .is_some_and(|sh| sh.dataset == *d && sh.name == *name)
            })
            && self.superseded.keys().all(below)
            && self.previous.iter().all(|(a, b)| below(a) && below(b))
            && self.nsubj_big.keys().all(below)
            && self.keys.values().flatten().all(below)
            && self.hashes.values().flatten().all(below)
            && self
                .profile_rows
                .iter()
                .all(|b| b.max().is_none_or(|m| below(&m)))
            && self.profile_rows.iter().all(canonical_containers)
            && self
                .checkpoints
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            && self.checkpoints.last().is_none_or(|c| c.1 == self.n_ords)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.nsubj.bytes()
            + self.runs.capacity() * 12
            + self
                .profile_rows
                .iter()
                .map(|b| b.serialized_size())
                .sum::<usize>()
            + self.keys.len() * 48
            + self.hashes.len() * 64
            + (self.superseded.len() + self.previous.len()) * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_runs_track_replacements() {
        let mut s = Shard::new(DatasetId(0), "a".into(), Seq(1));
        for r in 0..10 {
            s.set(r, 100 + r);
        }
        assert_eq!(s.current(5), Some(105));
        s.set(5, 200);
        assert_eq!(s.current(4), Some(104));
        assert_eq!(s.current(5), Some(200));
        assert_eq!(s.current(6), Some(106));
        assert_eq!(s.current(10), None);
        s.set(20, 300);
        s.set(21, 301);
        assert_eq!(s.current(15), None);
        assert_eq!(s.current(21), Some(301));
        s.set(0, 400);
        assert_eq!(s.current(0), Some(400));
        assert_eq!(s.current(1), Some(101));
    }
}
