//! Comparing manifests (`diff`) and checking what a training job read (`check`).

use roaring::RoaringBitmap;

use super::{Manifest, ManifestShard, RowPastEnd};
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
            row_end: None,
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
    /// Position of the used record in the input (0-based).
    pub index: usize,
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Row.
    pub row: u32,
    /// Why it is excluded.
    pub reasons: Vec<Reason>,
}

/// A shard a training job read that the manifest does not cover (unknown to
/// the ledger at the manifest's seq, or outside its datasets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownShard {
    /// Position of the first used record of this shard in the input (0-based).
    pub index: usize,
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
}

/// What [`check`] found: the excluded records a job read, the shards the
/// manifest does not cover and the rows past their shard's end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Used records the manifest excludes, in input order.
    pub hits: Vec<CheckHit>,
    /// Shards the manifest does not cover, each once, in order of first use.
    pub unknown_shards: Vec<UnknownShard>,
    /// Used records in those shards.
    pub unknown_rows: u64,
    /// Used rows past their shard's end in the manifest (the ledger knew
    /// no such row at its seq), in input order.
    pub past_end: Vec<RowPastEnd>,
}

impl CheckReport {
    /// Whether the check found something: an excluded record, or (failing
    /// closed, unless `allow_uncovered`) a record the manifest does not
    /// cover: of a shard it does not list or past its shard's end. Such a
    /// record is usually a naming or numbering mismatch (a path prefix,
    /// another dataset, rows counted differently) and proves nothing.
    pub fn found(&self, allow_uncovered: bool) -> bool {
        !self.hits.is_empty()
            || ((self.unknown_rows > 0 || !self.past_end.is_empty()) && !allow_uncovered)
    }
}

/// Checks the `used` records (in input order) against the manifest: which
/// it excludes, which lie in shards it does not cover and which are past
/// their shard's end. The one copy of the rule; the CLI's `optout check`
/// and Python's `Manifest.check` call it.
pub fn check<'a>(
    m: &Manifest,
    used: impl IntoIterator<Item = (&'a str, &'a str, u32)>,
) -> CheckReport {
    let mut r = CheckReport::default();
    for (index, (d, s, row)) in used.into_iter().enumerate() {
        let Some(sh) = m.shard(d, s) else {
            r.unknown_rows += 1;
            if !r
                .unknown_shards
                .iter()
                .any(|u| u.dataset == d && u.shard == s)
            {
                r.unknown_shards.push(UnknownShard {
                    index,
                    dataset: d.to_string(),
                    shard: s.to_string(),
                });
            }
            continue;
        };
        if u64::from(row) >= sh.end() {
            r.past_end.push(sh.row_past_end(index, row.into()));
            continue;
        }
        if sh.excluded.contains(row) {
            r.hits.push(CheckHit {
                index,
                dataset: d.to_string(),
                shard: s.to_string(),
                row,
                reasons: sh.reasons_of(row),
            });
        }
    }
    r
}
