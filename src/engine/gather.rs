//! The gather: per subject with events, its status at (N, T), and the
//! ordinals of its linked records under each reason that applies.

use super::*;

/// What the gather of one evaluation reads (shared by its workers).
pub(super) struct Gather<'a> {
    pub(super) index: &'a Index,
    pub(super) q: &'a Query,
    pub(super) limit: u32,
    pub(super) none_replaced: bool,
    pub(super) consent_rows: &'a RoaringBitmap,
    pub(super) withdrawal_rows: &'a RoaringBitmap,
}

/// What the gather needs of a subject's status (no allocation unless an
/// objection is scoped).
pub(super) struct Status {
    pub(super) erased: bool,
    pub(super) restricted: bool,
    pub(super) consent: ConsentStatus,
    pub(super) objection: Objection,
}

/// A subject's active objections, as the gather uses them.
pub(super) enum Objection {
    None,
    /// At least one objection reaches every record.
    Total,
    /// Only these scopes.
    Scoped(Vec<ObjectionScope>),
}

/// One worker's gathered ordinals.
#[derive(Default)]
pub(super) struct Gathered {
    pub(super) by_reason: [Vec<u32>; Reason::COUNT],
    pub(super) accounted: Vec<u32>,
}

impl Gather<'_> {
    /// The statuses that can exclude something of the subjects whose
    /// first event is at a position in `range`, ascending by subject.
    pub(super) fn statuses(&self, range: std::ops::Range<usize>) -> Vec<(u32, Status)> {
        let index = self.index;
        let (q, policy) = (self.q, &self.q.policy);
        let purpose = index.purpose_test(q.purpose());
        let mut scratch = Vec::new();
        let mut st = SubjectStatus::clean();
        let mut todo = Vec::new();
        for pos in range {
            let link = index.event_chain[pos];
            if !link.first {
                continue;
            }
            // The subject's events: this one, then along its chain (bounded
            // by the number of events, whatever a damaged chain says).
            let mut at = pos as u32;
            let evs = std::iter::from_fn(|| {
                let i = at;
                let (s, e) = index.events.get(i as usize)?;
                at = index.event_chain[i as usize].next;
                Some((*s, e, index.applies(&purpose, i)))
            })
            .take(index.events.len());
            let sid = link.sid;
            fold_into(&mut st, &mut scratch, evs, policy, q.seq, q.at);
            let consent_matters = (!self.consent_rows.is_empty()
                && st.consent != ConsentStatus::Missing)
                || (st.consent == ConsentStatus::Withdrawn && !self.withdrawal_rows.is_empty());
            if st.erased || st.restricted || !st.objections.is_empty() || consent_matters {
                let objection = if st.objections.is_empty() {
                    Objection::None
                } else if st.objections.iter().any(|o| o.is_total()) {
                    Objection::Total
                } else {
                    Objection::Scoped(st.objections.clone())
                };
                todo.push((
                    sid,
                    Status {
                        erased: st.erased,
                        restricted: st.restricted,
                        consent: st.consent,
                        objection,
                    },
                ));
            }
        }
        todo.sort_unstable_by_key(|(s, _)| *s);
        todo
    }

    /// The ordinals `todo`'s subjects exclude, per reason, prefetching
    /// ahead (offsets first, then the targets they point at).
    pub(super) fn gather(&self, todo: &[(u32, Status)]) -> Gathered {
        let index = self.index;
        let recs = &index.records;
        let (limit, seq) = (self.limit, self.q.seq);
        let none_replaced = self.none_replaced;
        let vis = |o: u32| o < limit && (none_replaced || recs.visible(o, limit, seq));
        let mut out = Gathered::default();
        let by_reason = &mut out.by_reason;
        let accounted = &mut out.accounted;
        for k in 0..todo.len() {
            if let Some((s, _)) = todo.get(k + 16) {
                index.links.prefetch_offsets(*s);
            }
            if let Some((s, _)) = todo.get(k + 8) {
                index.links.prefetch_targets(*s);
            }
            let (sid, st) = &todo[k];
            let counts = !self.consent_rows.is_empty() && st.consent != ConsentStatus::Missing;
            let withdrawn =
                st.consent == ConsentStatus::Withdrawn && !self.withdrawal_rows.is_empty();
            index.links.for_each(*sid, |o| {
                if !vis(o) {
                    return;
                }
                if st.erased {
                    by_reason[Reason::Erasure as usize].push(o);
                }
                if st.restricted {
                    by_reason[Reason::Restriction as usize].push(o);
                }
                match &st.objection {
                    Objection::None => {}
                    Objection::Total => by_reason[Reason::Objection as usize].push(o),
                    Objection::Scoped(scopes) => {
                        if let Some(p) = recs.profile_of(o) {
                            let prof = &recs.profiles[p as usize];
                            if scopes.iter().any(|s| s.covers(prof)) {
                                by_reason[Reason::Objection as usize].push(o);
                            }
                        }
                    }
                }
                if counts && self.consent_rows.contains(o) {
                    accounted.push(o);
                }
                if withdrawn && self.withdrawal_rows.contains(o) {
                    by_reason[Reason::ConsentWithdrawn as usize].push(o);
                }
            });
        }
        out
    }
}

pub(super) fn count_registered(
    index: &Index,
    seq: Seq,
    limit: u32,
    shards: &mut BTreeMap<ShardId, ShardExclusion>,
) {
    let recs = &index.records;
    for (i, r) in recs.runs.iter().enumerate() {
        if r.ord >= limit {
            break;
        }
        let end = recs
            .runs
            .get(i + 1)
            .map_or(recs.n_ords, |n| n.ord)
            .min(limit);
        if let Some(e) = shards.get_mut(&ShardId(r.shard)) {
            e.registered += (end - r.ord) as u64;
        }
    }
    for (&o, &s) in &recs.superseded {
        if o < limit && s <= seq {
            if let Some(e) = shards.get_mut(&recs.record_of(o).shard()) {
                e.registered -= 1;
            }
        }
    }
}
