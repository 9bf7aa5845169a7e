//! What one appended event does to a kept evaluation ([`super::head`]),
//! where that is provably only adding rows: the rows of one subject
//! whose status at (N, T) gains an erasure, a restriction or objections
//! and changes in nothing else, or the records one takedown removes.
//! Anything else (a consent given or withdrawn, an objection withdrawn,
//! a source opt-out or signal for the purpose, derived rows) is not
//! patched: the caller keeps the evaluation only for the times before
//! the event, or drops it.
//!
//! Each test here is the engine's own (the gather's fold and purpose
//! test, the content step's takedown targets), applied to one event.

use super::{Exclusions, Reason};
use crate::event::{EventKind, TakedownTarget};
use crate::ids::Seq;
use crate::index::{key_hash, Index};
use crate::policy::Policy;
use crate::status::{fold_into, SubjectStatus};
use crate::time::Timestamp;

/// Ordinals to add, per reason.
#[derive(Debug, Default)]
pub(super) struct Delta {
    add: Vec<(Reason, Vec<u32>)>,
}

impl Delta {
    /// Whether it adds nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.add.iter().all(|(_, o)| o.is_empty())
    }

    /// Adds the rows to `ex` (those of shards outside its scope are not
    /// in it and are skipped, as the engine's last step skips them).
    pub(super) fn apply(&self, index: &Index, ex: &mut Exclusions) {
        let recs = &index.records;
        for (reason, ords) in &self.add {
            for &o in ords {
                let id = recs.record_of(o);
                if let Some(e) = ex.shards.get_mut(&id.shard()) {
                    e.reasons[*reason as usize].insert(id.row());
                    e.excluded.insert(id.row());
                }
            }
        }
    }
}

/// A subject's status at (`seq`, `at`) for `policy`, as the gather folds it.
fn status(index: &Index, sid: u32, policy: &Policy, seq: Seq, at: Timestamp) -> SubjectStatus {
    let test = index.purpose_test(&policy.purpose);
    let mut st = SubjectStatus::clean();
    let positions = index.subject_events.get(&sid).map_or(&[][..], |p| &p[..]);
    let evs = positions.iter().filter_map(|&i| {
        let (s, e) = index.events.get(i as usize)?;
        Some((*s, e, index.applies(&test, i)))
    });
    fold_into(&mut st, &mut Vec::new(), evs, policy, seq, at);
    st
}

/// The rows the event at position `pos` (recorded at `seq`) adds to an
/// evaluation for `policy` at `seq - 1` and any valid time of a window
/// starting at `at` (at or after the event's time, with no boundary of
/// an event at or before `seq` inside it): `None` when that is not
/// provably only adding rows, or adding rows that derived rows would
/// inherit.
pub(super) fn delta(
    index: &Index,
    seq: Seq,
    pos: usize,
    policy: &Policy,
    at: Timestamp,
) -> Option<Delta> {
    let (s, e) = index.events.get(pos)?;
    if *s != seq || seq.0 == 0 {
        return None;
    }
    let recs = &index.records;
    let limit = recs.limit_at(seq);
    let none_replaced = recs.superseded.is_empty();
    let vis = |o: u32| o < limit && (none_replaced || recs.visible(o, limit, seq));
    let applies = e.kind.purposes().map(|p| p.applies_to(&policy.purpose));
    let mut d = Delta::default();
    match &e.kind {
        EventKind::Objection { .. }
        | EventKind::ObjectionWithdrawn { .. }
        | EventKind::Consent { .. }
        | EventKind::ConsentWithdrawn { .. }
        | EventKind::Erasure { .. }
        | EventKind::Restriction { .. } => {
            let sid = index.event_chain.get(pos)?.sid;
            let old = status(index, sid, policy, Seq(seq.0 - 1), at);
            let new = status(index, sid, policy, seq, at);
            if old == new {
                return Some(d);
            }
            if old.consent != new.consent
                || (old.erased && !new.erased)
                || (old.restricted && !new.restricted)
                || !old.objections.iter().all(|o| new.objections.contains(o))
            {
                return None;
            }
            let total = new.objections.iter().any(|o| o.is_total());
            let objects = new.objections != old.objections;
            let (mut erased, mut restricted, mut objected) = (Vec::new(), Vec::new(), Vec::new());
            index.links.for_each(sid, |o| {
                if !vis(o) {
                    return;
                }
                if new.erased && !old.erased {
                    erased.push(o);
                }
                if new.restricted && !old.restricted {
                    restricted.push(o);
                }
                if objects {
                    let covered = total
                        || recs.profile_of(o).is_some_and(|p| {
                            let prof = &recs.profiles[p as usize];
                            new.objections.iter().any(|s| s.covers(prof))
                        });
                    if covered {
                        objected.push(o);
                    }
                }
            });
            d.add = vec![
                (Reason::Erasure, erased),
                (Reason::Restriction, restricted),
                (Reason::Objection, objected),
            ];
        }
        EventKind::Takedown { target, .. } => {
            let mut out = Vec::new();
            match target {
                TakedownTarget::Key(k) => {
                    if let Some(os) = recs.keys.get(&key_hash(k)) {
                        out.extend(os.iter().copied().filter(|&o| vis(o)));
                    }
                }
                TakedownTarget::ContentHash(h) => {
                    if let Some(os) = recs.hashes.get(h) {
                        out.extend(os.iter().copied().filter(|&o| vis(o)));
                    }
                }
                TakedownTarget::Record {
                    dataset,
                    shard,
                    row,
                } => {
                    if let Some(sh) = recs.find_shard(dataset, shard) {
                        if let Some(o) = recs.version_at(sh, *row, seq) {
                            out.push(o);
                        }
                    }
                }
            }
            d.add = vec![(Reason::Takedown, out)];
        }
        // Source opt-outs, signals and their lifts for other purposes.
        EventKind::SourceOptout { .. }
        | EventKind::Signal { .. }
        | EventKind::SignalLifted { .. }
            if applies == Some(false) =>
        {
            return Some(d);
        }
        _ => return None,
    }
    if !d.is_empty() && !index.lineage.is_empty() {
        return None;
    }
    Some(d)
}
