//! A naive reference evaluator: the exclusion rules written per record, for
//! clarity rather than speed. It is the test oracle the bitmap engine is
//! checked against (proptests, fuzzing); it shares no code with it beyond
//! the data types and the [`Policy`] predicates.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::{Exclusions, Query, Reason};
use crate::event::{
    ConsentMethod, ContentHash, Entry, Event, EventKind, ParentRef, SignalTarget, TakedownTarget,
};
use crate::ids::{Seq, SubjectKey};
use crate::index::Index;
use crate::policy::Policy;
use crate::provenance::Profile;
use crate::time::Timestamp;

/// `(dataset, shard, row)`.
pub type RecordName = (String, String, u32);

/// What an evaluation says, by names rather than internal ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Excluded records and their reasons.
    pub excluded: BTreeMap<RecordName, BTreeSet<Reason>>,
    /// Shards known at N within the scope, with how many rows were registered.
    pub shards: BTreeMap<(String, String), u64>,
}

struct Version {
    subjects: Vec<SubjectKey>,
    profile: Profile,
    key: Option<String>,
    hash: Option<ContentHash>,
    /// For a derived row: its parents and the derivation's source datasets.
    parents: Option<(Vec<ParentRef>, Vec<String>)>,
}

/// Whether a signal recorded at `seq`, in effect from `at`, is lifted by a
/// later-recorded `signal_lifted` for the same target in effect by then.
fn lifted(
    events: &[(Seq, &Event)],
    seq: Seq,
    at: Timestamp,
    target: &SignalTarget,
    q: &Query,
) -> bool {
    events.iter().any(|(s, e)| match &e.kind {
        EventKind::SignalLifted {
            target: t,
            purposes,
            ..
        } => t == target && *s > seq && e.at >= at && purposes.applies_to(q.purpose()),
        _ => false,
    })
}

/// Evaluates `q` over a log, record by record.
pub fn evaluate(entries: &[(Seq, Entry)], q: &Query) -> Verdict {
    let in_scope = |d: &str| q.datasets.is_empty() || q.datasets.iter().any(|x| x == d);
    let mut records: BTreeMap<RecordName, Version> = BTreeMap::new();
    let mut out = Verdict::default();
    let mut events: Vec<(Seq, &Event)> = Vec::new();
    for (s, e) in entries {
        if *s > q.seq {
            continue;
        }
        match e {
            Entry::Records(b) => {
                for g in &b.shards {
                    if in_scope(&g.dataset) {
                        out.shards
                            .entry((g.dataset.clone(), g.shard.clone()))
                            .or_insert(0);
                    }
                    for r in &g.rows {
                        let mut subjects = r.subjects.clone();
                        subjects.sort();
                        subjects.dedup();
                        records.insert(
                            (g.dataset.clone(), g.shard.clone(), r.row),
                            Version {
                                subjects,
                                profile: b.profiles[r.profile as usize].clone(),
                                key: r.key.clone(),
                                hash: r.content_hash,
                                parents: None,
                            },
                        );
                    }
                }
            }
            Entry::Derive(d) => {
                for g in &d.shards {
                    if in_scope(&d.dataset) {
                        out.shards
                            .entry((d.dataset.clone(), g.shard.clone()))
                            .or_insert(0);
                    }
                    for r in &g.rows {
                        records.insert(
                            (d.dataset.clone(), g.shard.clone(), r.row),
                            Version {
                                subjects: Vec::new(),
                                profile: crate::index::derived_profile(),
                                key: None,
                                hash: None,
                                parents: Some((r.parents.clone(), d.sources.clone())),
                            },
                        );
                    }
                }
            }
            Entry::Event(ev) if ev.at <= q.at => events.push((*s, ev)),
            _ => {}
        }
    }
    events.sort_by_key(|(s, e)| (e.at, *s));

    let mut own: BTreeMap<&RecordName, BTreeSet<Reason>> = BTreeMap::new();
    for (name, v) in &records {
        if in_scope(&name.0) {
            *out.shards
                .entry((name.0.clone(), name.1.clone()))
                .or_insert(0) += 1;
        }
        let mut reasons = BTreeSet::new();
        for subject in &v.subjects {
            let mine: Vec<&Event> = events
                .iter()
                .filter(|(_, e)| e.subject() == Some(*subject))
                .map(|(_, e)| *e)
                .collect();
            if mine
                .iter()
                .any(|e| matches!(e.kind, EventKind::Erasure { .. }))
            {
                reasons.insert(Reason::Erasure);
            }
            if mine.iter().any(|e| match e.kind {
                EventKind::Restriction { until, .. } => until.is_none_or(|u| q.at < u),
                _ => false,
            }) {
                reasons.insert(Reason::Restriction);
            }
            if objects(&mine, q, &v.profile) {
                reasons.insert(Reason::Objection);
            }
            let c = consent(&mine, q);
            if matches!(c, Consent::Withdrawn) && q.policy.withdrawal_applies(&v.profile) {
                reasons.insert(Reason::ConsentWithdrawn);
            }
            if q.policy.needs_consent(&v.profile) && matches!(c, Consent::Missing) {
                reasons.insert(Reason::ConsentMissing);
            }
        }
        // A derived row is under no policy rule of its own.
        let derived = v.parents.is_some();
        if !derived && v.subjects.is_empty() && q.policy.needs_consent(&v.profile) {
            reasons.insert(Reason::ConsentMissing);
        }
        if !derived && q.policy.filters_out(&v.profile) {
            reasons.insert(Reason::Filtered);
        }
        for (s, e) in &events {
            match &e.kind {
                EventKind::SourceOptout {
                    source, purposes, ..
                } if purposes.applies_to(q.purpose()) && v.profile.from_source(source) => {
                    reasons.insert(Reason::SourceOptout);
                }
                EventKind::Signal {
                    target,
                    purposes,
                    unparsable,
                    ..
                } if purposes.applies_to(q.purpose()) && !lifted(&events, *s, e.at, target, q) => {
                    let hit = match target {
                        SignalTarget::Source(s) => v.profile.from_source(s),
                        SignalTarget::Key(k) => v.key.as_ref() == Some(k),
                    };
                    if hit {
                        reasons.insert(if *unparsable {
                            Reason::SignalUnparsable
                        } else {
                            Reason::SourceOptout
                        });
                    }
                }
                EventKind::Takedown { target, .. } => {
                    let hit = match target {
                        TakedownTarget::Key(k) => v.key.as_ref() == Some(k),
                        TakedownTarget::ContentHash(h) => v.hash.as_ref() == Some(h),
                        TakedownTarget::Record {
                            dataset,
                            shard,
                            row,
                        } => (dataset, shard, row) == (&name.0, &name.1, &name.2),
                    };
                    if hit {
                        reasons.insert(Reason::Takedown);
                    }
                }
                _ => {}
            }
        }
        own.insert(name, reasons);
    }
    // A derived row: its own reasons and every ancestor's.
    let mut memo: BTreeMap<&RecordName, BTreeSet<Reason>> = BTreeMap::new();
    for name in records.keys() {
        let r = with_ancestors(name, &records, &own, &mut memo, &mut BTreeSet::new());
        if in_scope(&name.0) && !r.is_empty() {
            out.excluded.insert(name.clone(), r);
        }
    }
    out
}

/// The reasons of `name` and of everything it was derived from.
fn with_ancestors<'a>(
    name: &'a RecordName,
    records: &'a BTreeMap<RecordName, Version>,
    own: &BTreeMap<&'a RecordName, BTreeSet<Reason>>,
    memo: &mut BTreeMap<&'a RecordName, BTreeSet<Reason>>,
    path: &mut BTreeSet<&'a RecordName>,
) -> BTreeSet<Reason> {
    if let Some(r) = memo.get(name) {
        return r.clone();
    }
    let mut out = own.get(name).cloned().unwrap_or_default();
    let Some((parents, sources)) = records.get(name).and_then(|v| v.parents.as_ref()) else {
        return out;
    };
    if !path.insert(name) {
        return BTreeSet::new();
    }
    for p in parents {
        for (pn, pv) in records.range::<RecordName, _>(..) {
            let hit = match p {
                ParentRef::Record {
                    dataset,
                    shard,
                    row,
                } => (dataset, shard, row) == (&pn.0, &pn.1, &pn.2),
                ParentRef::Key(k) => sources.contains(&pn.0) && pv.key.as_ref() == Some(k),
                ParentRef::ContentHash(h) => sources.contains(&pn.0) && pv.hash.as_ref() == Some(h),
            };
            if hit {
                out.extend(with_ancestors(pn, records, own, memo, path));
            }
        }
    }
    path.remove(name);
    memo.insert(name, out.clone());
    out
}

/// Active objections are those after the last withdrawal, in `(at, seq)` order.
fn objects(mine: &[&Event], q: &Query, p: &Profile) -> bool {
    let purpose = q.purpose();
    let last_withdrawal = mine.iter().rposition(|e| {
        matches!(&e.kind, EventKind::ObjectionWithdrawn { purposes, .. } if purposes.applies_to(purpose))
    });
    let start = last_withdrawal.map_or(0, |i| i + 1);
    mine[start..].iter().any(|e| match &e.kind {
        EventKind::Objection {
            purposes,
            categories,
            sources,
            ..
        } => {
            purposes.applies_to(purpose)
                && (categories.is_empty() || categories.iter().any(|c| p.categories.contains(c)))
                && (sources.is_empty() || sources.iter().any(|s| p.from_source(s)))
        }
        _ => false,
    })
}

enum Consent {
    Valid,
    Missing,
    Withdrawn,
}

fn consent(mine: &[&Event], q: &Query) -> Consent {
    let purpose = q.purpose();
    let policy: &Policy = &q.policy;
    // Only events about consent for this purpose, in order.
    let cs: Vec<&EventKind> =
        mine.iter()
            .map(|e| &e.kind)
            .filter(|k| match k {
                EventKind::Consent { purposes, .. }
                | EventKind::ConsentWithdrawn { purposes, .. } => purposes.applies_to(purpose),
                _ => false,
            })
            .collect();
    let is_own = |k: &EventKind| matches!(k, EventKind::Consent { method, .. } if *method != ConsentMethod::Delegated);
    let is_wd = |k: &EventKind| matches!(k, EventKind::ConsentWithdrawn { .. });
    let is_own_confirmed = |k: &EventKind| {
        is_own(k)
            && matches!(
                k,
                EventKind::Consent {
                    confirmed: true,
                    ..
                }
            )
    };
    let last_wd = cs.iter().rposition(|k| is_wd(k));
    // The subject's own last word: their last own consent or withdrawal.
    let last_own = cs.iter().rposition(|k| is_own(k) || is_wd(k));
    let own_valid = last_own.is_some_and(|i| match cs[i] {
        EventKind::Consent {
            method, confirmed, ..
        } => *confirmed && (*method == ConsentMethod::DoubleOptIn || !policy.require_double_opt_in),
        _ => false,
    });
    // A delegated consent counts if it came after the last withdrawal and
    // the subject was not in a withdrawn state when it was given (an own
    // consent came between the withdrawal and it). The latest such one decides.
    let from = last_wd.map_or(0, |i| i + 1);
    let delegated = cs[from..]
        .iter()
        .enumerate()
        .filter(|(j, k)| {
            matches!(
                k,
                EventKind::Consent {
                    method: ConsentMethod::Delegated,
                    ..
                }
            ) && (last_wd.is_none() || cs[from..from + j].iter().any(|x| is_own_confirmed(x)))
        })
        .map(|(_, k)| {
            matches!(
                k,
                EventKind::Consent {
                    confirmed: true,
                    ..
                }
            )
        })
        .next_back();
    let delegated_valid =
        delegated == Some(true) && policy.accept_delegated_consent && !policy.require_double_opt_in;
    if own_valid || delegated_valid {
        Consent::Valid
    } else if last_wd.is_some_and(|w| !cs[w + 1..].iter().any(|x| is_own_confirmed(x))) {
        // Withdrawn, and no confirmed consent of their own since.
        Consent::Withdrawn
    } else {
        Consent::Missing
    }
}

/// The engine's result in the reference's terms, for comparison.
pub fn from_engine(index: &Index, ex: &Exclusions) -> Verdict {
    let mut out = Verdict::default();
    for (&sh, e) in &ex.shards {
        let shard = &index.records.shards[sh.0 as usize];
        let ds = index.records.datasets[shard.dataset.0 as usize].clone();
        out.shards
            .insert((ds.clone(), shard.name.clone()), e.registered);
        for row in e.excluded.iter() {
            let set: BTreeSet<Reason> = Reason::ALL
                .iter()
                .copied()
                .filter(|r| e.reasons[*r as usize].contains(row))
                .collect();
            out.excluded
                .insert((ds.clone(), shard.name.clone(), row), set);
        }
    }
    out
}
