//! Folding a [`Derivation`]: its checks (parents exist and come from the
//! source datasets, no row twice, no cycle) and its application (derived
//! rows become records of the derived dataset, their parents lineage links).

use std::collections::{HashMap, HashSet};

use super::lineage::{Slot, PENDING};
use super::Index;
use crate::error::{DeriveError, Result};
use crate::event::{Derivation, ParentRef};
use crate::ids::Seq;
use crate::provenance::Profile;

/// The legal-basis name of a derived row's own profile. Not a basis a
/// record can be registered with, so no policy rule names it: the consent
/// requirement and the policy filters reach a derived row only through
/// its parents.
pub const DERIVED_BASIS: &str = "derived";

/// The profile every derived row is registered with.
pub(crate) fn derived_profile() -> Profile {
    Profile {
        source: String::new(),
        basis: DERIVED_BASIS.to_string(),
        categories: Vec::new(),
        visibility: None,
        jurisdiction: None,
        license: None,
        obtained_from: None,
    }
}

/// A node of the lineage graph during the cycle check.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Node {
    /// A row of the derivation being checked (shard group, row index).
    New(usize, usize),
    /// A derived ordinal already in the index (its position in the lineage).
    Old(usize),
}

impl Index {
    /// Checks a derivation against the current state; see [`Derivation`].
    pub(crate) fn check_derivation(&self, d: &Derivation) -> Result<()> {
        let recs = &self.records;
        let err = |g: usize, r: usize, field: String, what: String| DeriveError {
            dataset: d.dataset.clone(),
            shard: d.shards[g].shard.clone(),
            row: d.shards[g].rows[r].row,
            field,
            what,
        };
        let mut batch: HashMap<(&str, u32), (usize, usize)> = HashMap::new();
        for (gi, g) in d.shards.iter().enumerate() {
            for (ri, r) in g.rows.iter().enumerate() {
                if r.row == u32::MAX {
                    return Err(
                        err(gi, ri, "row".into(), "4294967295 is out of range".into()).into(),
                    );
                }
                if batch.insert((&g.shard, r.row), (gi, ri)).is_some() {
                    return Err(err(
                        gi,
                        ri,
                        "row".into(),
                        "is registered twice in this derivation".into(),
                    )
                    .into());
                }
                let existing = recs
                    .find_shard(&d.dataset, &g.shard)
                    .and_then(|s| recs.shards[s.0 as usize].current(r.row));
                if let Some(o) = existing {
                    let what = if self.lineage.child(o).is_some() {
                        "is already derived, from different parents"
                    } else {
                        "is already registered as a record"
                    };
                    return Err(err(gi, ri, "row".into(), what.into()).into());
                }
                if r.parents.is_empty() {
                    return Err(err(
                        gi,
                        ri,
                        "parents".into(),
                        "a derived row needs at least one parent".into(),
                    )
                    .into());
                }
            }
        }
        let is_source = |ds: &str| d.sources.iter().any(|s| s == ds);
        let at_head = |o: &u32| recs.visible(*o, recs.n_ords, self.seq);
        for (gi, g) in d.shards.iter().enumerate() {
            for (ri, r) in g.rows.iter().enumerate() {
                for (pi, p) in r.parents.iter().enumerate() {
                    let (field, found) = match p {
                        ParentRef::Record {
                            dataset,
                            shard,
                            row,
                        } => {
                            if !is_source(dataset) {
                                return Err(err(
                                    gi,
                                    ri,
                                    format!("parents[{pi}].dataset"),
                                    format!(
                                        "dataset {dataset:?} is not a source of this derivation"
                                    ),
                                )
                                .into());
                            }
                            let registered = recs
                                .find_shard(dataset, shard)
                                .and_then(|s| recs.shards[s.0 as usize].current(*row))
                                .is_some();
                            let in_batch = *dataset == d.dataset
                                && batch.contains_key(&(shard.as_str(), *row));
                            ("", registered || in_batch)
                        }
                        ParentRef::Key(k) => (
                            ".key",
                            recs.keys.get(&super::key_hash(k)).is_some_and(|os| {
                                os.iter()
                                    .filter(|o| at_head(o))
                                    .any(|&o| is_source(self.dataset_of(o)))
                            }),
                        ),
                        ParentRef::ContentHash(h) => (
                            ".content_hash",
                            recs.hashes.get(h).is_some_and(|os| {
                                os.iter()
                                    .filter(|o| at_head(o))
                                    .any(|&o| is_source(self.dataset_of(o)))
                            }),
                        ),
                    };
                    if !found && !d.allow_missing {
                        return Err(err(
                            gi,
                            ri,
                            format!("parents[{pi}]{field}"),
                            "matches no record of the source datasets".into(),
                        )
                        .into());
                    }
                }
            }
        }
        self.check_acyclic(d, &batch).map_err(|(gi, ri)| {
            err(
                gi,
                ri,
                "parents".into(),
                "the row would be its own ancestor (a cycle)".into(),
            )
            .into()
        })
    }

    fn dataset_of(&self, o: u32) -> &str {
        let recs = &self.records;
        let sh = recs.record_of(o).shard();
        &recs.datasets[recs.shards[sh.0 as usize].dataset.0 as usize]
    }

    /// The derived nodes `n` names as parents (records that are not derived are leaves).
    fn parent_nodes(
        &self,
        d: &Derivation,
        batch: &HashMap<(&str, u32), (usize, usize)>,
        n: Node,
    ) -> Vec<Node> {
        let recs = &self.records;
        let by_name = |ds: &str, shard: &str, row: u32| -> Option<Node> {
            if ds == d.dataset {
                if let Some(&(g, r)) = batch.get(&(shard, row)) {
                    return Some(Node::New(g, r));
                }
            }
            let o = recs
                .find_shard(ds, shard)
                .and_then(|s| recs.shards[s.0 as usize].current(row))?;
            self.lineage.child(o).map(Node::Old)
        };
        match n {
            Node::New(g, r) => d.shards[g].rows[r]
                .parents
                .iter()
                .filter_map(|p| match p {
                    ParentRef::Record {
                        dataset,
                        shard,
                        row,
                    } => by_name(dataset, shard, *row),
                    _ => None,
                })
                .collect(),
            Node::Old(i) => self
                .lineage
                .parents_of(i)
                .iter()
                .filter_map(|&p| {
                    if p & PENDING == 0 {
                        return self.lineage.child(p).map(Node::Old);
                    }
                    match self.lineage.slot(p).0 {
                        Slot::Record {
                            dataset,
                            shard,
                            row,
                        } => by_name(dataset, shard, *row),
                        _ => None,
                    }
                })
                .collect(),
        }
    }

    /// `Err((group, row))` of a new row on a cycle. Every cycle the
    /// derivation would close passes through one of its rows, so a
    /// depth-first search from them (each node visited once) finds it.
    fn check_acyclic(
        &self,
        d: &Derivation,
        batch: &HashMap<(&str, u32), (usize, usize)>,
    ) -> std::result::Result<(), (usize, usize)> {
        let mut done: HashSet<Node> = HashSet::new();
        let mut on_path: HashSet<Node> = HashSet::new();
        for (gi, g) in d.shards.iter().enumerate() {
            for ri in 0..g.rows.len() {
                let start = Node::New(gi, ri);
                if done.contains(&start) {
                    continue;
                }
                let mut stack = vec![(start, self.parent_nodes(d, batch, start))];
                on_path.insert(start);
                while let Some((n, next)) = stack.last_mut() {
                    match next.pop() {
                        Some(p) if on_path.contains(&p) => return Err((gi, ri)),
                        Some(p) if done.contains(&p) => {}
                        Some(p) => {
                            on_path.insert(p);
                            let ps = self.parent_nodes(d, batch, p);
                            stack.push((p, ps));
                        }
                        None => {
                            let n = *n;
                            on_path.remove(&n);
                            done.insert(n);
                            stack.pop();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Registers the rows of `d` as records of its dataset and their links.
    pub(crate) fn apply_derivation(&mut self, seq: Seq, d: &Derivation) {
        let profile = self.records.profile(&derived_profile());
        let src = self.lineage.source_set(&d.sources);
        let mut parents = Vec::new();
        for g in &d.shards {
            let shard = self.records.shard(&d.dataset, &g.shard, seq);
            for r in &g.rows {
                let (ord, _) = self.records.push(shard, r.row, profile, 0, seq);
                parents.clear();
                for p in &r.parents {
                    parents.push(self.lineage.encode(&self.records, p, src));
                }
                self.lineage.push(ord, &parents);
            }
        }
        self.records.checkpoints.push((seq, self.records.n_ords));
    }
}

#[cfg(any(test, feature = "testing"))]
impl Index {
    /// Benchmarks (W-D): registers `rows` derived rows in `shards` shards of
    /// `dataset`, each with 1-20 parents drawn from the ordinals already
    /// registered, at one new seq, exactly as [`Index::apply_derivation`]
    /// stores them but without building a [`Derivation`] of 100M names.
    #[doc(hidden)]
    pub fn derive_synthetic(&mut self, dataset: &str, shards: u32, rows: u32, seed: u64) {
        let seq = Seq(self.seq.0 + 1);
        let n = self.records.n_ords as u64;
        let profile = self.records.profile(&derived_profile());
        let mut x = seed;
        let mut parents = Vec::with_capacity(20);
        for s in 0..shards {
            let shard = self.records.shard(dataset, &format!("packed-{s:05}"), seq);
            for row in 0..rows {
                let (ord, _) = self.records.push(shard, row, profile, 0, seq);
                x = crate::workload::splitmix64(x);
                parents.clear();
                for _ in 0..1 + x % 20 {
                    x = crate::workload::splitmix64(x);
                    parents.push((x % n) as u32);
                }
                self.lineage.push(ord, &parents);
            }
        }
        self.records.checkpoints.push((seq, self.records.n_ords));
        self.seq = seq;
    }
}
