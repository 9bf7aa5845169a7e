//! The in-memory index: everything the ledger knows, laid out so an
//! exclusion manifest is a gather over a few objecting subjects plus bitmap
//! algebra over provenance profiles.
//!
//! The index is a pure function of the log: [`Index::apply`] folds one
//! entry at its sequence number. It never holds raw subject ids.

mod check;
mod col;
mod derivation;
// Shard ends (issue 14).
mod ends;
// Shard fingerprints (issue 14).
mod files;
mod lineage;
mod read;
mod records;
mod snapshot;
mod sorted;
mod subjects;

use std::collections::HashMap;

#[cfg(any(test, feature = "testing"))]
pub(crate) use derivation::derived_profile;
pub use derivation::DERIVED_BASIS;
pub(crate) use lineage::{input_key, Lineage, ParentKey, PENDING};
pub(crate) use records::{key_hash, Records};
pub(crate) use subjects::{Csr, Links, SubjectTable};

use crate::error::{Error, Result};
use crate::event::{Declaration, Entry, Event, QuarantineAck, RecordBatch, TrainingRun};
use crate::ids::{Purpose, Purposes, RecordId, Seq, SubjectKey};

/// Sizes of the index, for progress and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Record registrations (versions), including replaced ones.
    pub records: u64,
    /// Record → subject links.
    pub links: u64,
    /// Distinct subjects (pseudonyms) seen in records or events.
    pub subjects: u64,
    /// Shards (data files).
    pub shards: u64,
    /// Datasets.
    pub datasets: u64,
    /// Distinct provenance profiles.
    pub profiles: u64,
    /// Events.
    pub events: u64,
    /// Training runs.
    pub runs: u64,
    /// Approximate heap bytes held by the subject links (CSR).
    pub link_bytes: u64,
    /// Approximate heap bytes held by the whole index.
    pub heap_bytes: u64,
    /// Derived rows (records registered by a derivation).
    pub derived: u64,
    /// Lineage links (derived row → parent).
    pub lineage_links: u64,
    /// Approximate heap bytes held by the lineage links.
    pub lineage_bytes: u64,
}

/// Purposes interned per index (bits 0..63 of an event's mask).
pub(crate) const PURPOSE_BITS: usize = 63;
/// The mask bit for "a purpose beyond the table, or all purposes".
const OTHER_PURPOSE: u64 = 1 << 63;

/// One event's place among its subject's events.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventLink {
    /// The subject, or [`EventLink::NONE`] for a content event.
    pub(crate) sid: u32,
    /// The position of the subject's next event, or [`EventLink::NONE`].
    pub(crate) next: u32,
    /// The subject's first event.
    pub(crate) first: bool,
}

impl EventLink {
    /// No subject / no next event.
    pub(crate) const NONE: u32 = u32::MAX;
    const CONTENT: EventLink = EventLink {
        sid: Self::NONE,
        next: Self::NONE,
        first: false,
    };
}

/// A precomputed purpose for [`Index::applies`].
pub(crate) struct PurposeTest {
    bit: u64,
    purpose: Purpose,
}

/// Everything the ledger knows, folded from the log.
#[derive(Default, Clone)]
pub struct Index {
    pub(crate) records: Records,
    pub(crate) subjects: SubjectTable,
    pub(crate) links: Links,
    /// Derived rows and their parents.
    pub(crate) lineage: Lineage,
    // Shard fingerprints (issue 14): src/index/files.rs.
    /// The newest fingerprint per (dataset, shard).
    pub(crate) files: files::FileIndex,
    /// All events with the sequence number that recorded them, in log order.
    pub(crate) events: Vec<(Seq, Event)>,
    /// Subject index → positions in `events`.
    pub(crate) subject_events: HashMap<u32, Vec<u32>>,
    /// Purpose names seen in events, interned (at most [`PURPOSE_BITS`]);
    /// derived from `events`, never stored.
    pub(crate) purposes: Vec<Purpose>,
    /// Per event (parallel to `events`): bit `i` set when it applies to
    /// `purposes[i]`; bit 63 when it names a purpose beyond the table (or
    /// applies to all), so the name must be compared. Derived, never stored.
    pub(crate) event_purposes: Vec<u64>,
    /// Per event (parallel to `events`): its subject and the position of
    /// the subject's next event, so a sweep in log order visits each
    /// subject's events without a lookup. Derived, never stored.
    pub(crate) event_chain: Vec<EventLink>,
    /// Positions in `events` of takedowns and source opt-outs.
    pub(crate) content_events: Vec<u32>,
    pub(crate) runs: Vec<(Seq, TrainingRun)>,
    /// Quarantined torn tails acknowledged, with the seq that recorded it.
    pub(crate) quarantine_acks: Vec<(Seq, QuarantineAck)>,
    /// Vocabulary declarations (purposes, bases), with the seq that recorded each.
    pub(crate) declarations: Vec<(Seq, Declaration)>,
    /// The sequence number of the last applied entry.
    pub(crate) seq: Seq,
    /// From the ledger's [`Entry::Init`].
    pub(crate) key_fingerprint: Option<[u8; 32]>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number of the last entry applied.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Sizes.
    pub fn stats(&self) -> IndexStats {
        let link_bytes = (self.links.heap_bytes()) as u64;
        let lineage_bytes = self.lineage.heap_bytes() as u64;
        IndexStats {
            records: self.records.n_ords as u64,
            links: self.links.len() as u64,
            subjects: self.subjects.len() as u64,
            shards: self.records.shards.len() as u64,
            datasets: self.records.datasets.len() as u64,
            profiles: self.records.profiles.len() as u64,
            events: self.events.len() as u64,
            runs: self.runs.len() as u64,
            link_bytes,
            heap_bytes: link_bytes
                + lineage_bytes
                + self.subjects.heap_bytes() as u64
                + self.records.heap_bytes() as u64,
            derived: self.lineage.small.derived.len(),
            lineage_links: self.lineage.len() as u64,
            lineage_bytes,
        }
    }

    /// Folds one log entry recorded at `seq` (which must be greater than
    /// [`Index::seq`]). On error nothing has changed.
    pub fn apply(&mut self, seq: Seq, entry: &Entry) -> Result<()> {
        self.apply_unfrozen(seq, entry)?;
        self.freeze();
        Ok(())
    }

    /// Folds many entries, in order, making their links queryable once at
    /// the end (much cheaper than [`Index::apply`] one by one). Stops at the
    /// first error; entries before it stay applied.
    pub fn apply_all<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (Seq, &'a Entry)>,
    ) -> Result<()> {
        let r = entries
            .into_iter()
            .try_for_each(|(s, e)| self.apply_unfrozen(s, e));
        self.freeze();
        r
    }

    /// [`Index::apply_all`] for entries the caller has just checked against
    /// this very state (the ledger validates a whole batch, then applies it).
    pub(crate) fn apply_all_prechecked<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (Seq, &'a Entry)>,
    ) -> Result<()> {
        let r = entries.into_iter().try_for_each(|(s, e)| {
            if s <= self.seq {
                return Err(Error::Invalid(format!(
                    "entry at seq {s} does not follow seq {}",
                    self.seq
                )));
            }
            self.apply_entry(s, e);
            Ok(())
        });
        self.freeze();
        r
    }

    /// Makes links added by [`Index::apply_unfrozen`] visible to queries.
    pub(crate) fn freeze(&mut self) {
        self.links.freeze(self.subjects.len());
    }

    /// [`Index::apply`] without making new links queryable: call
    /// [`Index::freeze`] before the next query.
    pub(crate) fn apply_unfrozen(&mut self, seq: Seq, entry: &Entry) -> Result<()> {
        if seq <= self.seq {
            return Err(Error::Invalid(format!(
                "entry at seq {seq} does not follow seq {}",
                self.seq
            )));
        }
        self.check(entry)?;
        self.apply_entry(seq, entry);
        Ok(())
    }

    fn apply_entry(&mut self, seq: Seq, entry: &Entry) {
        self.forget_written(entry);
        match entry {
            Entry::Records(b) => self.apply_records(seq, b),
            Entry::Derive(d) => self.apply_derivation(seq, d),
            Entry::Event(e) => self.apply_event(seq, e.clone()),
            Entry::Run(r) => self.runs.push((seq, r.clone())),
            Entry::Init(i) => self.key_fingerprint = Some(i.key_fingerprint),
            Entry::QuarantineAck(a) => self.quarantine_acks.push((seq, a.clone())),
            Entry::Declare(d) => self.declarations.push((seq, d.clone())),
            Entry::Files(f) => self.apply_files(f),
            Entry::Ends(e) => self.apply_ends(seq, e),
            Entry::Reserved8(r) => match *r {},
        }
        self.seq = seq;
    }

    fn apply_records(&mut self, seq: Seq, b: &RecordBatch) {
        let profile_ids: Vec<u32> = b.profiles.iter().map(|p| self.records.profile(p)).collect();
        self.links.reserve(
            b.shards
                .iter()
                .flat_map(|g| &g.rows)
                .map(|r| r.subjects.len())
                .sum(),
        );
        for g in &b.shards {
            let shard = self.records.shard(&g.dataset, &g.shard, seq);
            for r in &g.rows {
                let mut subjects = r.subjects.clone();
                subjects.sort_unstable();
                subjects.dedup();
                let (ord, _) = self.records.push(
                    shard,
                    r.row,
                    profile_ids[r.profile as usize],
                    subjects.len(),
                    seq,
                );
                for s in &subjects {
                    let sid = self.subjects.intern(*s);
                    self.links.push(sid, ord);
                }
                if let Some(k) = &r.key {
                    self.records.keys.entry(key_hash(k)).or_default().push(ord);
                }
                if let Some(h) = r.content_hash {
                    self.records.hashes.entry(h).or_default().push(ord);
                }
            }
        }
        self.records.checkpoints.push((seq, self.records.n_ords));
    }

    fn apply_event(&mut self, seq: Seq, e: Event) {
        let pos = self.events.len() as u32;
        let mask = self.purpose_mask(&e);
        self.event_purposes.push(mask);
        match e.subject() {
            Some(s) => {
                let sid = self.subjects.intern(s);
                let mine = self.subject_events.entry(sid).or_default();
                if let Some(&last) = mine.last() {
                    self.event_chain[last as usize].next = pos;
                }
                self.event_chain.push(EventLink {
                    sid,
                    next: EventLink::NONE,
                    first: mine.is_empty(),
                });
                mine.push(pos);
            }
            None => {
                self.event_chain.push(EventLink::CONTENT);
                self.content_events.push(pos);
            }
        }
        self.events.push((seq, e));
    }

    /// Interns `e`'s purposes and returns its mask (see `event_purposes`).
    fn purpose_mask(&mut self, e: &Event) -> u64 {
        match e.kind.purposes() {
            None => 0,
            Some(Purposes::All) => u64::MAX,
            Some(Purposes::Some(list)) => list.iter().fold(0, |m, p| {
                let i = match self.purposes.iter().position(|q| q == p) {
                    Some(i) => i,
                    None if self.purposes.len() < PURPOSE_BITS => {
                        self.purposes.push(p.clone());
                        self.purposes.len() - 1
                    }
                    None => return m | OTHER_PURPOSE,
                };
                m | 1 << i
            }),
        }
    }

    /// Rebuilds the derived purpose masks from `events` (after a load).
    pub(crate) fn rebuild_purpose_masks(&mut self) {
        self.purposes.clear();
        let events = std::mem::take(&mut self.events);
        self.event_purposes = events.iter().map(|(_, e)| self.purpose_mask(e)).collect();
        self.events = events;
    }

    /// Rebuilds the derived event chain from `subject_events` (after a
    /// load). False when the lists are not ascending, or share a position
    /// (damage: the chain would loop).
    pub(crate) fn rebuild_event_chain(&mut self) -> bool {
        let n = self.events.len();
        let mut chain = vec![EventLink::CONTENT; n];
        let mut taken = vec![false; n];
        for (&sid, positions) in &self.subject_events {
            if positions.is_empty() || positions.windows(2).any(|w| w[0] >= w[1]) {
                return false;
            }
            for (i, &p) in positions.iter().enumerate() {
                let Some(t) = taken.get_mut(p as usize) else {
                    return false;
                };
                if std::mem::replace(t, true) {
                    return false;
                }
                chain[p as usize] = EventLink {
                    sid,
                    next: positions.get(i + 1).copied().unwrap_or(EventLink::NONE),
                    first: i == 0,
                };
            }
        }
        self.event_chain = chain;
        true
    }

    /// A test of "event `pos` applies to purpose `p`" that compares names
    /// only for purposes beyond the interned table.
    pub(crate) fn purpose_test(&self, p: &Purpose) -> PurposeTest {
        PurposeTest {
            bit: self
                .purposes
                .iter()
                .position(|q| q == p)
                .map_or(OTHER_PURPOSE, |i| 1 << i),
            purpose: p.clone(),
        }
    }

    /// Whether event `pos` applies to the purpose of `t`.
    #[inline]
    pub(crate) fn applies(&self, t: &PurposeTest, pos: u32) -> bool {
        let m = self.event_purposes[pos as usize];
        if m & t.bit == 0 {
            return false;
        }
        // An interned purpose's bit is exact; the overflow bit needs the name.
        t.bit != OTHER_PURPOSE
            || self.events[pos as usize]
                .1
                .kind
                .purposes()
                .is_some_and(|ps| ps.applies_to(&t.purpose))
    }
}
