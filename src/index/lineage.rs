//! Lineage: which records each derived row was made from.
//!
//! Derived rows are records (ordinals) like any other; this adds, per
//! derived ordinal, its parents as a CSR of `u32`s: the parents of the
//! `i`-th derived ordinal (the `i`-th member of `derived`, which only
//! grows: derivations register new ordinals) are `parents[offsets[i]..
//! offsets[i+1]]`. A parent is the ordinal of the record it named when the link
//! was recorded, or, with [`PENDING`] set, an index into `slots`: a parent
//! resolved at query time (a key, a content hash, a record not registered
//! yet). Cost: 4 bytes per link, 4 per derived row, and a bitmap of the
//! derived ordinals (usually a few runs).

use std::collections::HashMap;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::col::Col;
use super::{key_hash, Records};
use crate::event::{ContentHash, ParentRef};
use crate::ids::{Seq, ShardId};

/// The bit that marks a parent as an index into [`Lineage::slots`].
pub(crate) const PENDING: u32 = 1 << 31;

/// A parent resolved when a question is asked, against the records known then.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Slot {
    /// A record not registered when the link was recorded.
    Record {
        dataset: String,
        shard: String,
        row: u32,
    },
    /// The records of the source datasets with this key (its [`key_hash`]).
    Key(u128),
    /// The records of the source datasets with this content hash.
    Hash(ContentHash),
}

/// A parent as compared for "the same parents again": by name, whatever
/// version of the named record was live when each link was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ParentKey {
    Record(ShardOrName, u32),
    Key(u128),
    Hash(ContentHash),
}

/// A shard by id when registered, else by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ShardOrName {
    Id(ShardId),
    Name(String, String),
}

/// The small, irregular part of the lineage (stored as bincode in snapshots).
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct LineageSmall {
    #[serde(deserialize_with = "super::sorted::canonical_bitmap_field")]
    pub(crate) derived: RoaringBitmap,
    /// Per slot: what it names, and its source set (index into `sources`).
    pub(crate) slots: Vec<(Slot, u32)>,
    /// Distinct source-dataset lists of derivations (sorted names).
    pub(crate) sources: Vec<Vec<String>>,
}

/// Lineage links of every derived ordinal.
#[derive(Clone, Default)]
pub(crate) struct Lineage {
    pub(crate) small: LineageSmall,
    /// `derived.len() + 1` offsets into `parents` (empty when no row is derived).
    pub(crate) offsets: Col<u32>,
    pub(crate) parents: Col<u32>,
    slot_ids: HashMap<(Slot, u32), u32>,
}

impl Lineage {
    /// Whether no row is derived (the manifest then does no lineage work).
    pub(crate) fn is_empty(&self) -> bool {
        self.small.derived.is_empty()
    }

    /// Number of links.
    pub(crate) fn len(&self) -> usize {
        self.parents.len()
    }

    /// Gives back the slack of the link columns (before snapshots and
    /// measurements: a growing `Vec` holds up to twice its length).
    pub(crate) fn shrink(&mut self) {
        if let Col::Owned(v) = &mut self.offsets {
            v.shrink_to_fit();
        }
        if let Col::Owned(v) = &mut self.parents {
            v.shrink_to_fit();
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.offsets.bytes() + self.parents.bytes() + self.small.derived.serialized_size()
    }

    /// The position of derived ordinal `o` among the derived ones.
    pub(crate) fn child(&self, o: u32) -> Option<usize> {
        self.small
            .derived
            .contains(o)
            .then(|| self.small.derived.rank(o) as usize - 1)
    }

    /// The stored parents of the `i`-th derived ordinal.
    pub(crate) fn parents_of(&self, i: usize) -> &[u32] {
        &self.parents[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The source set of the derivation that recorded a slot.
    pub(crate) fn slot(&self, p: u32) -> (&Slot, &[String]) {
        let (s, src) = &self.small.slots[(p & !PENDING) as usize];
        (s, &self.small.sources[*src as usize])
    }

    /// Interns a source set.
    pub(crate) fn source_set(&mut self, sources: &[String]) -> u32 {
        match self.small.sources.iter().position(|s| s == sources) {
            Some(i) => i as u32,
            None => {
                self.small.sources.push(sources.to_vec());
                self.small.sources.len() as u32 - 1
            }
        }
    }

    /// Appends derived ordinal `o` (greater than every one before) with its parents.
    pub(crate) fn push(&mut self, o: u32, parents: &[u32]) {
        let pushed = self.small.derived.push(o);
        debug_assert!(pushed, "derived ordinals ascend");
        let off = self.offsets.to_mut();
        if off.is_empty() {
            off.push(0);
        }
        self.parents.to_mut().extend_from_slice(parents);
        off.push(self.parents.len() as u32);
    }

    /// The stored form of `p` for a derivation over `sources` (its set
    /// `src`): the ordinal live now for a registered record, else a slot.
    pub(crate) fn encode(&mut self, recs: &Records, p: &ParentRef, src: u32) -> u32 {
        let slot = match p {
            ParentRef::Record {
                dataset,
                shard,
                row,
            } => {
                if let Some(o) = recs
                    .find_shard(dataset, shard)
                    .and_then(|s| recs.shards[s.0 as usize].current(*row))
                {
                    return o;
                }
                Slot::Record {
                    dataset: dataset.clone(),
                    shard: shard.clone(),
                    row: *row,
                }
            }
            ParentRef::Key(k) => Slot::Key(key_hash(k)),
            ParentRef::ContentHash(h) => Slot::Hash(*h),
        };
        let next = self.small.slots.len() as u32;
        let id = *self.slot_ids.entry((slot.clone(), src)).or_insert(next);
        if id == next {
            self.small.slots.push((slot, src));
        }
        id | PENDING
    }

    /// A lineage decoded from a snapshot, or `None` when it is empty (an
    /// empty lineage is not written: canonical) or inconsistent with
    /// `recs` (damage).
    pub(crate) fn from_parts(
        small: LineageSmall,
        offsets: Col<u32>,
        parents: Col<u32>,
        recs: &Records,
    ) -> Option<Lineage> {
        let slot_ids = small
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let l = Lineage {
            small,
            offsets,
            parents,
            slot_ids,
        };
        (!l.is_empty() && l.is_consistent(recs)).then_some(l)
    }

    /// Whether a decoded lineage is consistent with `recs`.
    fn is_consistent(&self, recs: &Records) -> bool {
        let n = self.small.derived.len() as usize;
        let off = &self.offsets;
        let offsets_ok = if n == 0 {
            off.is_empty() && self.parents.is_empty()
        } else {
            off.len() == n + 1
                && off[0] == 0
                && off.windows(2).all(|w| w[0] <= w[1])
                && off[n] as usize == self.parents.len()
        };
        let nslots = self.small.slots.len() as u32;
        offsets_ok
            && self.small.derived.max().is_none_or(|m| m < recs.n_ords)
            && self.parents.iter().all(|&p| {
                if p & PENDING != 0 {
                    p & !PENDING < nslots
                } else {
                    p < recs.n_ords
                }
            })
            && self
                .small
                .slots
                .iter()
                .all(|(_, s)| (*s as usize) < self.small.sources.len())
    }

    /// A stored parent as compared for "the same parents again".
    pub(crate) fn key_of(&self, recs: &Records, p: u32) -> ParentKey {
        if p & PENDING == 0 {
            let id = recs.record_of(p);
            return ParentKey::Record(ShardOrName::Id(id.shard()), id.row());
        }
        match self.slot(p).0 {
            Slot::Record {
                dataset,
                shard,
                row,
            } => ParentKey::Record(shard_key(recs, dataset, shard), *row),
            Slot::Key(k) => ParentKey::Key(*k),
            Slot::Hash(h) => ParentKey::Hash(*h),
        }
    }

    /// The ordinals parent `p` stands for at `seq` (records known then),
    /// appended to `out`.
    pub(crate) fn resolve(&self, recs: &Records, p: u32, seq: Seq, out: &mut Vec<u32>) {
        if p & PENDING == 0 {
            if recs.superseded.is_empty() {
                out.push(p);
            } else {
                let id = recs.record_of(p);
                out.extend(recs.version_at(id.shard(), id.row(), seq));
            }
            return;
        }
        let limit = recs.limit_at(seq);
        let (slot, sources) = self.slot(p);
        let ords = match slot {
            Slot::Record {
                dataset,
                shard,
                row,
            } => {
                if let Some(s) = recs.find_shard(dataset, shard) {
                    out.extend(recs.version_at(s, *row, seq));
                }
                return;
            }
            Slot::Key(k) => recs.keys.get(k),
            Slot::Hash(h) => recs.hashes.get(h),
        };
        let in_sources = |o: u32| {
            let sh = recs.record_of(o).shard();
            let d = recs.shards[sh.0 as usize].dataset;
            sources.iter().any(|s| *s == recs.datasets[d.0 as usize])
        };
        if let Some(os) = ords {
            out.extend(
                os.iter()
                    .copied()
                    .filter(|&o| recs.visible(o, limit, seq) && in_sources(o)),
            );
        }
    }
}

/// [`ParentKey`]'s shard for a name.
pub(crate) fn shard_key(recs: &Records, dataset: &str, shard: &str) -> ShardOrName {
    match recs.find_shard(dataset, shard) {
        Some(s) => ShardOrName::Id(s),
        None => ShardOrName::Name(dataset.to_string(), shard.to_string()),
    }
}

/// [`ParentKey`] of an input parent.
pub(crate) fn input_key(recs: &Records, p: &ParentRef) -> ParentKey {
    match p {
        ParentRef::Record {
            dataset,
            shard,
            row,
        } => ParentKey::Record(shard_key(recs, dataset, shard), *row),
        ParentRef::Key(k) => ParentKey::Key(key_hash(k)),
        ParentRef::ContentHash(h) => ParentKey::Hash(*h),
    }
}

impl super::Index {
    /// The derived rows known at `seq` that descend from `subject`'s
    /// records, each with its path: the subject's record first, then each
    /// derived row down to it. A derived row's subjects are its ancestors'.
    pub fn subject_derived(
        &self,
        subject: &crate::ids::SubjectKey,
        seq: Seq,
    ) -> Vec<(crate::ids::RecordId, Vec<crate::ids::RecordId>)> {
        let (recs, lin) = (&self.records, &self.lineage);
        let Some(sid) = self.subjects.get(subject) else {
            return Vec::new();
        };
        if lin.is_empty() {
            return Vec::new();
        }
        let limit = recs.limit_at(seq);
        let mut own = std::collections::HashSet::new();
        self.links.for_each(sid, |o| {
            if recs.visible(o, limit, seq) {
                own.insert(o);
            }
        });
        // Until nothing changes: a derived row is reached through a parent
        // that is the subject's record or a reached derived row (one pass
        // per level of derivation).
        let mut via: HashMap<u32, u32> = HashMap::new();
        let mut parents = Vec::new();
        loop {
            let mut changed = false;
            for (i, o) in lin.small.derived.iter().enumerate() {
                if o >= limit || via.contains_key(&o) || !recs.visible(o, limit, seq) {
                    continue;
                }
                parents.clear();
                for &p in lin.parents_of(i) {
                    lin.resolve(recs, p, seq, &mut parents);
                }
                if let Some(&p) = parents
                    .iter()
                    .find(|p| own.contains(p) || via.contains_key(p))
                {
                    via.insert(o, p);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut out: Vec<_> = via
            .keys()
            .map(|&o| {
                let mut path = vec![o];
                let mut at = o;
                while let Some(&p) = via.get(&at) {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                (
                    recs.record_of(o),
                    path.into_iter().map(|x| recs.record_of(x)).collect(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl super::Index {
    /// The parents of `id` as known at `seq` (each resolved to the records
    /// it stood for then), or `None` when `id` is not a derived row then.
    pub fn parents_at(
        &self,
        id: crate::ids::RecordId,
        seq: Seq,
    ) -> Option<Vec<crate::ids::RecordId>> {
        let recs = &self.records;
        let o = recs.version_at(id.shard(), id.row(), seq)?;
        let i = self.lineage.child(o)?;
        let mut ords = Vec::new();
        for &p in self.lineage.parents_of(i) {
            self.lineage.resolve(recs, p, seq, &mut ords);
        }
        ords.sort_unstable();
        ords.dedup();
        Some(ords.into_iter().map(|o| recs.record_of(o)).collect())
    }
}
