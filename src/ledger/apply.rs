//! Applying events: purposes checked against the declared ones, events
//! identical to recorded ones dropped (`unchanged`), and events that would
//! do nothing reported (or refused, when strict).

use std::collections::HashSet;

use super::*;
use crate::event::{EventKind, TakedownTarget};
use crate::ids::Purposes;

/// How [`Ledger::apply_with`] treats what it is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Declare the purposes the events name that are not declared yet (in
    /// the same atomic group), instead of refusing them.
    pub new_purpose: bool,
    /// Refuse the whole batch (nothing written) when an event would do
    /// nothing: its subject has no records, or its scope matches none.
    pub strict: bool,
}

/// What an apply did. Positions are 0-based indices into the batch given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplySummary {
    /// Events recorded.
    pub applied: u64,
    /// Events skipped because an identical one is recorded (or comes
    /// earlier in the batch): same type, subject, time, purposes, scope,
    /// reference and every other field.
    pub unchanged: u64,
    /// Purposes declared by this apply (with [`ApplyOptions::new_purpose`]).
    pub declared: Vec<String>,
    /// Recorded events whose subject has no records in the ledger (often
    /// a typo in the subject id).
    pub no_records: Vec<usize>,
    /// Recorded takedowns and scoped objections (categories or sources)
    /// that match no record of the ledger.
    pub unmatched: Vec<usize>,
    /// The ledger's head after the apply.
    pub seq: Seq,
}

/// The identity of an event: blake3 of its canonical encoding (lists
/// sorted), cut to 16 bytes.
pub(super) type EventDigest = [u8; 16];

const DIGEST_CONTEXT: &str = "optout 2026-12 event identity v1";

fn digest(e: &Event) -> Result<EventDigest> {
    let mut e = e.clone();
    if let EventKind::Objection {
        categories,
        sources,
        ..
    } = &mut e.kind
    {
        categories.sort_unstable();
        categories.dedup();
        sources.sort_unstable();
        sources.dedup();
    }
    let bytes = codec::encode(&Entry::Event(e)).map_err(|e| Error::Other(e.to_string()))?;
    let h = blake3::Hasher::new_derive_key(DIGEST_CONTEXT)
        .update(&bytes)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.as_bytes()[..16]);
    Ok(out)
}

impl<I: Io> Ledger<I> {
    /// Records events, all or nothing, with the default [`ApplyOptions`].
    /// Returns the head after them.
    pub fn apply(&mut self, events: Vec<Event>) -> Result<Seq> {
        Ok(self.apply_with(events, ApplyOptions::default())?.seq)
    }

    /// Records events, all or nothing: every purpose they name must be
    /// declared (or `opts.new_purpose` declares it); events identical to a
    /// recorded one are skipped; events that would do nothing are
    /// reported, or refuse the batch when `opts.strict`.
    pub fn apply_with(&mut self, events: Vec<Event>, opts: ApplyOptions) -> Result<ApplySummary> {
        self.keyer()?;
        let known = self.declared_names();
        let mut declare: Vec<String> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let Some(Purposes::Some(list)) = e.kind.purposes() else {
                continue;
            };
            for p in list {
                if known.contains(p.as_str()) || declare.iter().any(|d| d == p.as_str()) {
                    continue;
                }
                if !opts.new_purpose {
                    self.check_purpose(p, Some(i))?;
                }
                declare.push(p.to_string());
            }
        }
        let digests = self.classify(&events)?;
        let mut keep = Vec::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        let mut summary = ApplySummary::default();
        for (i, (e, d)) in events.into_iter().zip(digests).enumerate() {
            let Some(d) = d else {
                summary.unchanged += 1;
                continue;
            };
            fresh.push(d);
            match self.matches_nothing(&e) {
                Some(NoEffect::NoRecords) => summary.no_records.push(i),
                Some(NoEffect::Unmatched) => summary.unmatched.push(i),
                None => {}
            }
            keep.push(e);
        }
        if opts.strict && (!summary.no_records.is_empty() || !summary.unmatched.is_empty()) {
            return Err(LedgerError::WouldDoNothing {
                no_records: summary.no_records,
                unmatched: summary.unmatched,
            }
            .into());
        }
        summary.applied = keep.len() as u64;
        summary.seq = self.index.seq();
        if keep.is_empty() && declare.is_empty() {
            return Ok(summary);
        }
        let names: Vec<(&str, Option<&str>)> = declare.iter().map(|p| (p.as_str(), None)).collect();
        let mut entries = if declare.is_empty() {
            Vec::new()
        } else {
            self.declare_entries(&names)
        };
        entries.extend(keep.into_iter().map(Entry::Event));
        summary.seq = self.append(entries)?;
        summary.declared = declare;
        if let Some(s) = self.digests.as_mut() {
            s.extend(fresh);
        }
        Ok(summary)
    }

    /// For each event, whether it is identical to a recorded event or to
    /// one earlier in `events` (an apply skips it as `unchanged`). The
    /// service uses it to know, before a group commit, the seqs it lands at.
    pub fn unchanged_events(&mut self, events: &[Event]) -> Result<Vec<bool>> {
        Ok(self.classify(events)?.iter().map(Option::is_none).collect())
    }

    /// Each event's digest, or `None` when it is unchanged (see
    /// [`Ledger::unchanged_events`]). One hash lookup per event.
    fn classify(&mut self, events: &[Event]) -> Result<Vec<Option<EventDigest>>> {
        self.event_digests()?;
        let recorded = self.digests.as_ref();
        let mut batch: HashSet<EventDigest> = HashSet::with_capacity(events.len());
        events
            .iter()
            .map(|e| {
                let d = digest(e)?;
                let seen = recorded.is_some_and(|s| s.contains(&d));
                Ok((!seen && batch.insert(d)).then_some(d))
            })
            .collect()
    }

    /// The digests of every recorded event, built once per open (one pass
    /// over the events), then kept up to date by [`Ledger::apply_with`].
    fn event_digests(&mut self) -> Result<()> {
        if self.digests.is_none() {
            let mut set = HashSet::with_capacity(self.index.events().len());
            for (_, e) in self.index.events() {
                set.insert(digest(e)?);
            }
            self.digests = Some(set);
        }
        Ok(())
    }

    /// Why `e` would do nothing in this ledger, if it would.
    fn matches_nothing(&self, e: &Event) -> Option<NoEffect> {
        let recs = &self.index.records;
        if let Some(s) = e.subject() {
            let (base, recent) = match self.index.subjects.get(&s) {
                Some(sid) => self.index.links.get(sid),
                None => (&[][..], &[][..]),
            };
            if base.is_empty() && recent.is_empty() {
                return Some(NoEffect::NoRecords);
            }
            let mut ords = base.iter().copied().chain(recent.iter().map(|&(_, o)| o));
            if let EventKind::Objection {
                categories,
                sources,
                ..
            } = &e.kind
            {
                if categories.is_empty() && sources.is_empty() {
                    return None;
                }
                let hit = ords.any(|o| {
                    recs.profile_of(o).is_some_and(|p| {
                        let p = &recs.profiles[p as usize];
                        (categories.is_empty() || p.has_any_category(categories))
                            && (sources.is_empty() || sources.iter().any(|s| p.from_source(s)))
                    })
                });
                return (!hit).then_some(NoEffect::Unmatched);
            }
            return None;
        }
        let EventKind::Takedown { target, .. } = &e.kind else {
            return None;
        };
        let hit = match target {
            TakedownTarget::Record {
                dataset,
                shard,
                row,
            } => recs
                .find_shard(dataset, shard)
                .is_some_and(|s| recs.shards[s.0 as usize].current(*row).is_some()),
            TakedownTarget::Key(k) => recs.keys.contains_key(&crate::index::key_hash(k)),
            TakedownTarget::ContentHash(h) => recs.hashes.contains_key(h),
        };
        (!hit).then_some(NoEffect::Unmatched)
    }
}

enum NoEffect {
    NoRecords,
    Unmatched,
}
