//! Derive: rows of a derived dataset registered with their parents, all
//! or nothing (rows already derived from the same parents are unchanged).

use std::collections::HashSet;

use serde::Serialize;

use super::*;
use crate::engine::{Exclusions, Reason};
use crate::error::DeriveError;
use crate::event::Derivation;
use crate::index::ParentKey;

/// What a derivation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeriveSummary {
    /// Derived rows registered.
    pub registered: u64,
    /// Rows skipped: already derived from the same parents.
    pub unchanged: u64,
    /// Lineage links added.
    pub links: u64,
    /// The last sequence number written (the ledger's head).
    pub seq: Seq,
}

/// A record named with the reasons it is excluded for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExcludedRecord {
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Row.
    pub row: u32,
    /// Why it is excluded.
    pub reasons: Vec<Reason>,
}

/// An excluded derived row and its excluded parents, so a re-packer can
/// rebuild the row without them instead of dropping it whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExcludedDerived {
    /// The derived row and its reasons (its own and its ancestors').
    #[serde(flatten)]
    pub record: ExcludedRecord,
    /// Its parents that are excluded, and why (empty: excluded for a reason of its own).
    pub parents: Vec<ExcludedRecord>,
}

fn excluded_record(index: &Index, ex: &Exclusions, id: RecordId) -> Option<ExcludedRecord> {
    let s = ex.shards.get(&id.shard())?;
    if !s.excluded.contains(id.row()) {
        return None;
    }
    let (d, sh) = index.names_of(id)?;
    Some(ExcludedRecord {
        dataset: d.to_string(),
        shard: sh.to_string(),
        row: id.row(),
        reasons: Reason::ALL
            .iter()
            .copied()
            .filter(|r| s.reasons[*r as usize].contains(id.row()))
            .collect(),
    })
}

impl<I: Io> Ledger<I> {
    /// Per excluded derived row of `m` (which must come from this ledger),
    /// its parents excluded by the same rules at the same seq and time,
    /// with their reasons (`export --to jsonl --parents`).
    pub fn excluded_parents(&self, m: &Manifest) -> Result<Vec<ExcludedDerived>> {
        self.verify_manifest(m)?;
        let h = &m.header;
        let seq = h.seq;
        let q = Query {
            policy: h.policy.clone(),
            seq,
            at: Timestamp(h.at_ns),
            datasets: Vec::new(),
        };
        let ex = evaluate(&self.index, &q);
        let recs = &self.index.records;
        let mut out = Vec::new();
        for s in &m.shards {
            let Some(sh) = recs.find_shard(&s.dataset, &s.shard) else {
                continue;
            };
            for row in s.excluded.iter() {
                let id = RecordId::new(sh, row);
                let Some(parents) = self.index.parents_at(id, seq) else {
                    continue;
                };
                let Some(record) = excluded_record(&self.index, &ex, id) else {
                    continue;
                };
                out.push(ExcludedDerived {
                    record,
                    parents: parents
                        .into_iter()
                        .filter_map(|p| excluded_record(&self.index, &ex, p))
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Registers the rows of a derived dataset with their parents as one
    /// entry. A row already derived from the same parents (compared by
    /// name, in any order) is unchanged; every other problem (a parent
    /// that matches no record unless `allow_missing`, a parent outside the
    /// source datasets, a row twice, a row already registered, a cycle) is
    /// an error and nothing is written.
    pub fn derive(&mut self, mut d: Derivation) -> Result<DeriveSummary> {
        d.sources.sort();
        d.sources.dedup();
        let unchanged = self.drop_unchanged_derived(&mut d)?;
        let mut summary = DeriveSummary {
            unchanged,
            seq: self.index.seq(),
            ..Default::default()
        };
        if d.is_empty() {
            return Ok(summary);
        }
        summary.registered = d.len() as u64;
        summary.links = d.links() as u64;
        let entry = Entry::Derive(d);
        self.index.check(&entry)?;
        summary.seq = self.append_checked(vec![entry], true)?;
        Ok(summary)
    }

    /// Drops rows already derived from the same parents; errors on a row
    /// twice in the derivation (before dropping, so an unchanged copy
    /// cannot hide a conflicting one).
    fn drop_unchanged_derived(&self, d: &mut Derivation) -> Result<u64> {
        let recs = &self.index.records;
        let lin = &self.index.lineage;
        let mut seen: HashSet<(&str, u32)> = HashSet::new();
        for g in &d.shards {
            for r in &g.rows {
                if !seen.insert((&g.shard, r.row)) {
                    return Err(DeriveError {
                        dataset: d.dataset.clone(),
                        shard: g.shard.clone(),
                        row: r.row,
                        field: "row".into(),
                        what: "is registered twice in this derivation".into(),
                    }
                    .into());
                }
            }
        }
        let mut unchanged = 0;
        for g in &mut d.shards {
            let Some(shard) = recs.find_shard(&d.dataset, &g.shard) else {
                continue;
            };
            g.rows.retain(|r| {
                let same = recs.shards[shard.0 as usize]
                    .current(r.row)
                    .and_then(|o| lin.child(o))
                    .is_some_and(|i| {
                        let mut old: Vec<ParentKey> = lin
                            .parents_of(i)
                            .iter()
                            .map(|&p| lin.key_of(recs, p))
                            .collect();
                        let mut new: Vec<ParentKey> = r
                            .parents
                            .iter()
                            .map(|p| crate::index::input_key(recs, p))
                            .collect();
                        old.sort_unstable();
                        old.dedup();
                        new.sort_unstable();
                        new.dedup();
                        old == new
                    });
                unchanged += same as u64;
                !same
            });
        }
        d.shards.retain(|g| !g.rows.is_empty());
        Ok(unchanged)
    }
}
