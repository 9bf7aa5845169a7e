//! Training runs and the models a subject's data reached.
//!
//! A run records the manifest it trained on (purpose, policy, `Seq` N,
//! valid time T, datasets), so what it used can be recomputed exactly: the
//! subject's records the ledger knew at N, minus what that manifest excluded.
//! Each used record is then classified:
//!
//! * **violation**: an exclusion (objection, erasure, withdrawal, ...) had
//!   been recorded before the run was registered and had taken effect when
//!   it started, yet the record was used: the manifest was stale or skipped;
//! * **after**: the exclusion came after the run: honouring it now means a
//!   retrain or unlearning decision for that model;
//! * **used**: the record was used and nothing excludes it even now.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::engine::{evaluate, Query, Reason};
use crate::event::TrainingRun;
use crate::ids::{RecordId, Seq, SubjectKey};
use crate::index::Index;
use crate::time::Timestamp;

/// How a run's use of one record stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// Used although an exclusion was recorded before the run.
    Violation,
    /// Used; an exclusion arrived after the run.
    After,
    /// Used, and still usable.
    Used,
}

/// One record of the subject that a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsedRecord {
    /// Dataset name.
    pub dataset: String,
    /// Shard name.
    pub shard: String,
    /// Row.
    pub row: u32,
    /// How the use stands.
    pub status: Use,
    /// The reasons that exclude it now (for `violation`: already at the run).
    pub reasons: Vec<Reason>,
    /// For a derived row: how the subject's data reached it, from the
    /// subject's own record to this row (`dataset/shard#row` each); empty
    /// for the subject's own records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// One training run that used the subject's records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunImpact {
    /// The run's name.
    pub run: String,
    /// The model trained.
    pub model: String,
    /// The purpose.
    pub purpose: String,
    /// When training started (RFC 3339).
    pub started_at: String,
    /// The sequence number that registered the run.
    pub seq: u64,
    /// The manifest it trained on (hex digest).
    pub manifest_digest: String,
    /// The worst status among the records: violation, then after, then used.
    pub status: Use,
    /// The subject's records it used.
    pub records: Vec<UsedRecord>,
}

impl RunImpact {
    /// The worst status among the records: violation, then after, then used.
    pub fn status(&self) -> Use {
        self.status
    }
}

/// `dataset/shard#row`.
pub(crate) fn record_name(index: &Index, id: RecordId) -> String {
    let (d, s) = index.names_of(id).unwrap_or(("?", "?"));
    format!("{d}/{s}#{}", id.row())
}

fn query_of(run: &TrainingRun, seq: Seq, at: Timestamp) -> Query {
    Query {
        policy: run.policy.clone(),
        seq,
        at,
        datasets: run.datasets.clone(),
    }
}

/// The runs that used `subject`'s records, judged as the ledger stands at
/// `now_seq` and valid time `now`.
pub fn affected(
    index: &Index,
    subject: &SubjectKey,
    now_seq: Seq,
    now: Timestamp,
) -> Vec<RunImpact> {
    let mut out = Vec::new();
    for (run_seq, run) in index.runs() {
        if *run_seq > now_seq {
            continue;
        }
        let in_scope = |id: RecordId| {
            run.datasets.is_empty()
                || index
                    .names_of(id)
                    .is_some_and(|(d, _)| run.datasets.iter().any(|x| x == d))
        };
        // The subject's records and the rows derived from them (whose
        // subjects are their ancestors'), as known at the manifest's seq.
        let derived = index.subject_derived(subject, run.manifest_seq);
        let mut known: Vec<RecordId> = index
            .subject_records(subject, run.manifest_seq)
            .into_iter()
            .chain(derived.iter().map(|(id, _)| *id))
            .filter(|&id| in_scope(id))
            .collect();
        known.sort();
        known.dedup();
        let path_of = |id: RecordId| -> Vec<String> {
            derived
                .iter()
                .find(|(d, _)| *d == id)
                .map(|(_, p)| p.iter().map(|&x| record_name(index, x)).collect())
                .unwrap_or_default()
        };
        if known.is_empty() {
            continue;
        }
        let trained = evaluate(index, &query_of(run, run.manifest_seq, run.manifest_at));
        let used: Vec<RecordId> = known
            .into_iter()
            .filter(|&id| !trained.contains(id))
            .collect();
        if used.is_empty() {
            continue;
        }
        // What the ledger knew just before the run was registered, at its start.
        let before = evaluate(index, &query_of(run, Seq(run_seq.0 - 1), run.started_at));
        let current = evaluate(index, &query_of(run, now_seq, now));
        let reasons = |ex: &crate::engine::Exclusions, id: RecordId| -> Vec<Reason> {
            ex.shards
                .get(&id.shard())
                .map(|s| {
                    Reason::ALL
                        .iter()
                        .copied()
                        .filter(|r| s.reasons[*r as usize].contains(id.row()))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default()
        };
        let records: Vec<UsedRecord> = used
            .into_iter()
            .map(|id| {
                let (d, s) = index.names_of(id).unwrap_or(("?", "?"));
                let (status, why) = if before.contains(id) {
                    (Use::Violation, reasons(&before, id))
                } else if current.contains(id) {
                    (Use::After, reasons(&current, id))
                } else {
                    (Use::Used, Vec::new())
                };
                UsedRecord {
                    dataset: d.to_string(),
                    shard: s.to_string(),
                    row: id.row(),
                    status,
                    reasons: why,
                    path: path_of(id),
                }
            })
            .collect();
        out.push(RunImpact {
            run: run.name.clone(),
            model: run.model.clone(),
            purpose: run.purpose.to_string(),
            started_at: run.started_at.to_rfc3339(),
            seq: run_seq.0,
            manifest_digest: run.manifest_digest.clone(),
            status: records.iter().map(|r| r.status).min().unwrap_or(Use::Used),
            records,
        });
    }
    out
}
