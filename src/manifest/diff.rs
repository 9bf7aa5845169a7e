//! Comparing manifests (`diff`) and checking what a training job read (`check`).

use roaring::RoaringBitmap;

use super::{Manifest, ManifestShard};
use crate::engine::Reason;

/// What changed in one shard between two manifests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardDiff {
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Rows excluded in the new manifest but not in the old.
    pub newly_excluded: RoaringBitmap,
    /// Rows excluded in the old manifest but usable in the new.
    pub re_included: RoaringBitmap,
    /// Per reason: rows that gained it.
    pub reason_added: [RoaringBitmap; Reason::COUNT],
    /// Per reason: rows that lost it.
    pub reason_removed: [RoaringBitmap; Reason::COUNT],
}

impl ShardDiff {
    fn is_empty(&self) -> bool {
        self.newly_excluded.is_empty()
            && self.re_included.is_empty()
            && self.reason_added.iter().all(|b| b.is_empty())
            && self.reason_removed.iter().all(|b| b.is_empty())
    }
}

/// What changed between two manifests, shard by shard (only shards that changed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManifestDiff {
    /// Changed shards, sorted by `(dataset, shard)`.
    pub shards: Vec<ShardDiff>,
}

impl ManifestDiff {
    /// Compares `old` with `new`.
    ///
    /// ```
    /// # use optout::manifest::{ManifestDiff, Manifest};
    /// // See tests/manifest.rs for a full example with real manifests.
    /// ```
    pub fn between(old: &Manifest, new: &Manifest) -> ManifestDiff {
        let empty = ManifestShard {
            dataset: String::new(),
            shard: String::new(),
            registered: 0,
            excluded: RoaringBitmap::new(),
            reasons: Default::default(),
        };
        let mut names: Vec<(&str, &str)> = old
            .shards
            .iter()
            .chain(&new.shards)
            .map(|s| (s.dataset.as_str(), s.shard.as_str()))
            .collect();
        names.sort();
        names.dedup();
        let mut shards = Vec::new();
        for (d, s) in names {
            let o = old.shard(d, s).unwrap_or(&empty);
            let n = new.shard(d, s).unwrap_or(&empty);
            let mut sd = ShardDiff {
                dataset: d.to_string(),
                shard: s.to_string(),
                newly_excluded: &n.excluded - &o.excluded,
                re_included: &o.excluded - &n.excluded,
                ..Default::default()
            };
            for r in 0..Reason::COUNT {
                sd.reason_added[r] = &n.reasons[r] - &o.reasons[r];
                sd.reason_removed[r] = &o.reasons[r] - &n.reasons[r];
            }
            if !sd.is_empty() {
                shards.push(sd);
            }
        }
        ManifestDiff { shards }
    }

    /// Total rows newly excluded.
    pub fn newly_excluded(&self) -> u64 {
        self.shards.iter().map(|s| s.newly_excluded.len()).sum()
    }

    /// Total rows re-included.
    pub fn re_included(&self) -> u64 {
        self.shards.iter().map(|s| s.re_included.len()).sum()
    }

    /// Per reason: `(rows that gained it, rows that lost it)`.
    pub fn per_reason(&self) -> [(u64, u64); Reason::COUNT] {
        let mut out = [(0, 0); Reason::COUNT];
        for s in &self.shards {
            for (r, o) in out.iter_mut().enumerate() {
                o.0 += s.reason_added[r].len();
                o.1 += s.reason_removed[r].len();
            }
        }
        out
    }
}

/// A record a training job read although the manifest excludes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckHit {
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Row.
    pub row: u32,
    /// Why it is excluded.
    pub reasons: Vec<Reason>,
}

/// Which of the `used` records the manifest excludes, in input order.
pub fn check<'a>(
    m: &Manifest,
    used: impl IntoIterator<Item = (&'a str, &'a str, u32)>,
) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    for (d, s, row) in used {
        if let Some(sh) = m.shard(d, s) {
            if sh.excluded.contains(row) {
                hits.push(CheckHit {
                    dataset: d.to_string(),
                    shard: s.to_string(),
                    row,
                    reasons: sh.reasons_of(row),
                });
            }
        }
    }
    hits
}
