//! The subject report (GDPR Art. 15 access, Art. 20 portability): every
//! record the ledger links to a person, with its provenance, the events
//! they filed, the training runs that used their data, and where they stand
//! per purpose.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::engine::{evaluate, Reason};
use crate::error::Result;
use crate::event::EventKind;
use crate::ids::{Purpose, Purposes, Seq};
use crate::ledger::Ledger;
use crate::lineage::{affected, RunImpact};
use crate::policy::Policy;
use crate::render::event_json;
use crate::status::{fold, ConsentStatus};
use crate::storage::Io;
use crate::time::Timestamp;

/// Version of the report's JSON shape.
pub const REPORT_SCHEMA: u32 = 1;

/// One record about the subject.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRecord {
    /// Dataset name.
    pub dataset: String,
    /// Shard (data file) name.
    pub shard: String,
    /// Row position.
    pub row: u32,
    /// External key, if any.
    pub key: Option<String>,
    /// Content hash (hex), if any.
    pub content_hash: Option<String>,
    /// When it was collected.
    pub collected_at: String,
    /// Ledger sequence number that registered it.
    pub registered_seq: u64,
    /// Where it came from and on which basis.
    pub source: String,
    /// Legal basis.
    pub basis: String,
    /// Data categories.
    pub categories: Vec<String>,
    /// Visibility, if known.
    pub visibility: Option<String>,
    /// Jurisdiction, if known.
    pub jurisdiction: Option<String>,
    /// License, if known.
    pub license: Option<String>,
    /// Third party it was obtained from, if any.
    pub obtained_from: Option<String>,
    /// Other people linked to the same record (a count: their identities are theirs).
    pub other_subjects: u32,
}

/// A row of a derived dataset made from the subject's records (a packed
/// sequence holding one of their posts): its subjects are its ancestors'.
#[derive(Clone, Debug, Serialize)]
pub struct ReportDerived {
    /// Dataset name.
    pub dataset: String,
    /// Shard (data file) name.
    pub shard: String,
    /// Row position.
    pub row: u32,
    /// From the subject's record to this row (`dataset/shard#row` each).
    pub path: Vec<String>,
}

/// Where the subject stands for one purpose, now.
#[derive(Clone, Debug, Serialize)]
pub struct PurposeStatus {
    /// The purpose.
    pub purpose: String,
    /// An objection is in force.
    pub objection: bool,
    /// `valid`, `missing` or `withdrawn` (matters for records on a consent basis).
    pub consent: String,
    /// Erasure requested.
    pub erased: bool,
    /// Processing restricted.
    pub restricted: bool,
    /// Of the subject's records, how many the default policy excludes now.
    pub records_excluded: u64,
    /// And why (reason names with counts).
    pub reasons: Vec<(String, u64)>,
}

/// The Art. 15 / 20 report.
#[derive(Clone, Debug, Serialize)]
pub struct SubjectReport {
    /// Shape version of this JSON.
    pub schema_version: u32,
    /// The subject id as asked for.
    pub subject: String,
    /// The ledger's pseudonym for it (hex).
    pub pseudonym: String,
    /// Ledger id (hex).
    pub ledger_id: String,
    /// The ledger head the report reflects.
    pub seq: u64,
    /// The valid time the status is judged at.
    pub at: String,
    /// Records linked to the subject.
    pub records: Vec<ReportRecord>,
    /// Rows of derived datasets made from those records (omitted when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<ReportDerived>,
    /// Events the subject filed (or that were filed for them), in log order.
    pub events: Vec<serde_json::Value>,
    /// Training runs that used their records.
    pub runs: Vec<RunImpact>,
    /// Status per purpose (every purpose named in their events, and `ai-training`).
    pub status: Vec<PurposeStatus>,
}

impl SubjectReport {
    /// The seqs of the subject's events (their `"seq"` fields), whose
    /// receipts `Ledger::subject_receipts_at_head` gives.
    pub fn event_seqs(&self) -> Vec<Seq> {
        self.events
            .iter()
            .filter_map(|e| e.get("seq").and_then(|s| s.as_u64()))
            .map(Seq)
            .collect()
    }
}

/// Builds the report for external subject id `subject` at valid time `at`.
pub fn subject_report<I: Io>(
    ledger: &Ledger<I>,
    subject: &str,
    at: Timestamp,
) -> Result<SubjectReport> {
    let key = ledger.pseudonym(subject)?;
    let index = ledger.index();
    let seq = index.seq();
    let ids = index.subject_records(&key, seq);
    let mut records = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some((row, p, reg)) = ledger.record_details(*id, seq)? else {
            continue;
        };
        let (d, s) = index.names_of(*id).unwrap_or(("?", "?"));
        records.push(ReportRecord {
            dataset: d.to_string(),
            shard: s.to_string(),
            row: id.row(),
            key: row.key,
            content_hash: row.content_hash.map(|h| h.to_hex()),
            collected_at: row.collected_at.to_rfc3339(),
            registered_seq: reg.0,
            source: p.source,
            basis: p.basis,
            categories: p.categories,
            visibility: p.visibility.map(|v| v.as_str().to_string()),
            jurisdiction: p.jurisdiction,
            license: p.license,
            obtained_from: p.obtained_from,
            other_subjects: (row.subjects.len() as u32).saturating_sub(1),
        });
    }
    let derived = index
        .subject_derived(&key, seq)
        .into_iter()
        .map(|(id, path)| {
            let (d, s) = index.names_of(id).unwrap_or(("?", "?"));
            ReportDerived {
                dataset: d.to_string(),
                shard: s.to_string(),
                row: id.row(),
                path: path
                    .into_iter()
                    .map(|x| crate::lineage::record_name(index, x))
                    .collect(),
            }
        })
        .collect();
    let evs = index.subject_events(&key);
    let mut purposes: BTreeSet<String> = BTreeSet::from([Purpose::AI_TRAINING.to_string()]);
    for (_, e) in &evs {
        let ps = match &e.kind {
            EventKind::Objection { purposes, .. }
            | EventKind::ObjectionWithdrawn { purposes, .. }
            | EventKind::Consent { purposes, .. }
            | EventKind::ConsentWithdrawn { purposes, .. } => Some(purposes),
            _ => None,
        };
        if let Some(Purposes::Some(list)) = ps {
            purposes.extend(list.iter().map(|p| p.to_string()));
        }
    }
    let mut status = Vec::new();
    for name in purposes {
        let Ok(purpose) = Purpose::new(&name) else {
            continue;
        };
        let policy = Policy::default_for(purpose.clone());
        let st = fold(
            evs.iter().map(|(s, e)| (*s, *e)),
            &purpose,
            &policy,
            seq,
            at,
        );
        let q = crate::engine::Query {
            policy,
            seq,
            at,
            datasets: vec![],
        };
        let ex = evaluate(index, &q);
        let mut counts = [0u64; Reason::COUNT];
        let mut excluded = 0;
        for id in &ids {
            if let Some(sh) = ex.shards.get(&id.shard()) {
                if sh.excluded.contains(id.row()) {
                    excluded += 1;
                    for r in Reason::ALL {
                        if sh.reasons[r as usize].contains(id.row()) {
                            counts[r as usize] += 1;
                        }
                    }
                }
            }
        }
        status.push(PurposeStatus {
            purpose: name,
            objection: !st.objections.is_empty(),
            consent: match st.consent {
                ConsentStatus::Valid => "valid",
                ConsentStatus::Missing => "missing",
                ConsentStatus::Withdrawn => "withdrawn",
            }
            .to_string(),
            erased: st.erased,
            restricted: st.restricted,
            records_excluded: excluded,
            reasons: Reason::ALL
                .iter()
                .filter(|r| counts[**r as usize] > 0)
                .map(|r| (r.name().to_string(), counts[*r as usize]))
                .collect(),
        });
    }
    Ok(SubjectReport {
        schema_version: REPORT_SCHEMA,
        subject: subject.to_string(),
        pseudonym: key.to_hex(),
        ledger_id: ledger.ledger_id().to_string(),
        seq: seq.0,
        at: at.to_rfc3339(),
        records,
        derived,
        events: evs.iter().map(|(s, e)| event_json(*s, e)).collect(),
        runs: affected(index, &key, seq, at),
        status,
    })
}
