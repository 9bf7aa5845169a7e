//! The index as bytes, for snapshots: a bincode section for the small,
//! irregular state, then raw little-endian arrays for the big columns
//! (subject pseudonyms, the link CSR, subject counts) so that loading a
//! 100M-record index is a few large copies, not 100M decode calls.

use serde::{Deserialize, Serialize};

use std::borrow::Cow;

use super::col::Col;
use super::lineage::LineageSmall;
use super::{Csr, Index, Lineage, Links, Records, SubjectTable};
use crate::codec::{self, CodecError};
use crate::event::{Declaration, Event, QuarantineAck, TrainingRun};
use crate::ids::Seq;
use crate::storage::{Sections, Snapshot};

/// `OPTIDX02`: the state gained the vocabulary declarations. A snapshot
/// with an older magic is not used (the log is replayed instead).
const MAGIC: &[u8; 8] = b"OPTIDX02";
/// The first bytes of section 0 of an index snapshot in sections.
const SECTIONS_MAGIC: &[u8; 8] = b"OPTIDX03";
/// The first bytes of section 5 (lineage), present only when rows are
/// derived: a snapshot without lineage keeps its five sections, so those
/// written before lineage existed load unchanged.
const LINEAGE_MAGIC: &[u8; 8] = b"OPTLIN01";

#[derive(Serialize, Deserialize)]
struct Small {
    records: Records,
    events: Vec<(Seq, Event)>,
    subject_events: Vec<(u32, Vec<u32>)>,
    content_events: Vec<u32>,
    runs: Vec<(Seq, TrainingRun)>,
    seq: Seq,
    key_fingerprint: Option<[u8; 32]>,
    quarantine_acks: Vec<(Seq, QuarantineAck)>,
    declarations: Vec<(Seq, Declaration)>,
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.b.len() - self.pos {
            return Err(CodecError::Invalid(format!(
                "index snapshot truncated at byte {} (needs {n})",
                self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    /// A length-prefixed array of `width`-byte items, checked against what is left.
    fn array(&mut self, width: usize) -> Result<&'a [u8], CodecError> {
        let n = self.u64()?;
        let bytes = n
            .checked_mul(width as u64)
            .filter(|&b| b <= (self.b.len() - self.pos) as u64)
            .ok_or_else(|| {
                CodecError::Invalid(format!("array of {n} items exceeds the snapshot"))
            })?;
        self.take(bytes as usize)
    }
}

impl Index {
    /// Encodes the whole index (compacting its links first).
    pub fn to_snapshot_bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        if !self.lineage.is_empty() {
            return Err(CodecError::Invalid(
                "an index with derived rows is written only in sections (format 3)".into(),
            ));
        }
        // Shard fingerprints (issue 14): sections only, as lineage.
        if !self.files.is_empty() {
            return Err(CodecError::Invalid(
                "an index with shard fingerprints is written only in sections (format 3)".into(),
            ));
        }
        if !self.records.ends.is_empty() {
            return Err(CodecError::Invalid(
                "an index with shard ends is written only in sections (format 3)".into(),
            ));
        }
        self.compact();
        let small = self.small_state();
        let small = codec::encode_large(&small)?;
        let keys = self.subjects.keys();
        let csr = &self.links.base;
        let nsubj = &self.records.nsubj;
        let mut out = Vec::with_capacity(
            64 + small.len()
                + keys.len() * 16
                + csr.offsets.len() * 8
                + csr.targets.len() * 4
                + nsubj.len(),
        );
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, small.len() as u64);
        out.extend_from_slice(&small);
        put_u64(&mut out, keys.len() as u64);
        for k in keys {
            out.extend_from_slice(k);
        }
        put_u64(&mut out, csr.offsets.len() as u64);
        for o in csr.offsets.iter() {
            out.extend_from_slice(&o.to_le_bytes());
        }
        put_u64(&mut out, csr.targets.len() as u64);
        for t in csr.targets.iter() {
            out.extend_from_slice(&t.to_le_bytes());
        }
        put_u64(&mut out, nsubj.len() as u64);
        out.extend_from_slice(nsubj);
        Ok(out)
    }

    /// Encodes the whole index (compacting its links first) as the five
    /// sections of a snapshot in format 3 (docs/FORMAT.md, "Index sections"):
    /// the small state (magic `OPTIDX03`, then bincode), then the pseudonyms
    /// (16 bytes each), the CSR offsets (`u64`), the CSR targets (`u32`)
    /// and the subject counts (`u8`), all little-endian and borrowed from
    /// the index where the target is little-endian.
    pub fn to_snapshot_sections(&mut self) -> Result<Vec<Cow<'_, [u8]>>, CodecError> {
        self.compact();
        let mut small = SECTIONS_MAGIC.to_vec();
        small.extend_from_slice(&codec::encode_large(&self.small_state())?);
        let csr = &self.links.base;
        let mut out = vec![
            Cow::Owned(small),
            Cow::Borrowed(bytemuck::cast_slice(self.subjects.keys())),
            le_bytes(&csr.offsets),
            le_bytes(&csr.targets),
            Cow::Borrowed(&self.records.nsubj),
        ];
        if !self.lineage.is_empty() {
            let mut lin = LINEAGE_MAGIC.to_vec();
            lin.extend_from_slice(&codec::encode_large(&self.lineage.small)?);
            out.push(Cow::Owned(lin));
            out.push(le_bytes(&self.lineage.offsets));
            out.push(le_bytes(&self.lineage.parents));
        }
        // Shard fingerprints (issue 14): one more section.
        if !self.files.is_empty() {
            out.push(Cow::Owned(self.files.to_section()?));
        }
        // Shard ends (issue 14): one more, last section.
        if !self.records.ends.is_empty() {
            out.push(Cow::Owned(self.records.ends.to_section()?));
        }
        Ok(out)
    }

    /// The index of [`Index::to_snapshot_sections`], its large columns
    /// viewed in place in `s` (on a little-endian target; copied and
    /// decoded on another), every length, alignment and invariant checked
    /// as [`Index::from_snapshot_bytes`] does, except that pseudonyms are
    /// not checked for repeats (a sort of all of them, ≈ 0.16 s at 10M):
    /// the sections were authenticated, and the writer interned them.
    pub fn from_snapshot_sections(s: &Sections) -> Result<Index, CodecError> {
        let bad = |m: &str| CodecError::Invalid(format!("index snapshot sections: {m}"));
        // Lineage (three sections) after the first five, then the optional
        // shard fingerprints and shard ends (issue 14), each by its magic.
        let lineage = s.len() >= 8 && s.get(5).starts_with(LINEAGE_MAGIC);
        let s_len = if lineage { 8 } else { 5 };
        if s.len() < s_len {
            return Err(bad("not five (or eight) sections"));
        }
        let mut extra = (s_len..s.len()).map(|i| s.get(i)).peekable();
        let files = match extra.peek() {
            Some(x) if x.starts_with(super::files::FILES_MAGIC) => {
                let x = extra.next().unwrap_or_default();
                super::files::FileIndex::from_section(x).transpose()?
            }
            _ => None,
        };
        let ends = extra.next();
        if extra.next().is_some() {
            return Err(bad("sections after the shard ends"));
        }
        let small = s
            .get(0)
            .strip_prefix(SECTIONS_MAGIC)
            .ok_or_else(|| bad("bad magic"))?;
        let small: Small = codec::decode_large(small)?;
        let view = |i: usize| s.shared(i).ok_or_else(|| bad("missing section"));
        let (b, r) = view(1)?;
        let keys = Col::shared(b, r).ok_or_else(|| bad("pseudonyms are not 16-byte values"))?;
        let offsets = le_col::<u64>(s, 2).ok_or_else(|| bad("offsets misaligned"))?;
        let targets = le_col::<u32>(s, 3).ok_or_else(|| bad("targets misaligned"))?;
        let (b, r) = view(4)?;
        let nsubj = Col::shared(b, r).ok_or_else(|| bad("subject counts out of range"))?;
        let mut index = Index::assemble(small, keys, offsets, targets, nsubj, false)?;
        if let Some(f) = files {
            index.files = f;
        }
        if let Some(e) = ends {
            index.records.ends =
                super::ends::Ends::from_section(e, &index.records, index.seq)
                    .ok_or_else(|| bad("bad shard fingerprints or shard ends magic"))??;
        }
        if s_len == 8 {
            let lin = s
                .get(5)
                .strip_prefix(LINEAGE_MAGIC)
                .ok_or_else(|| bad("bad lineage magic"))?;
            let small: LineageSmall = codec::decode_large(lin)?;
            let offsets = le_col::<u32>(s, 6).ok_or_else(|| bad("lineage offsets misaligned"))?;
            let parents = le_col::<u32>(s, 7).ok_or_else(|| bad("lineage parents misaligned"))?;
            index.lineage = Lineage::from_parts(small, offsets, parents, &index.records)
                .ok_or_else(|| bad("inconsistent lineage"))?;
        }
        Ok(index)
    }

    /// The index as a snapshot in sections, read back in place
    /// ([`Index::to_snapshot_sections`], [`Sections::copy_of`],
    /// [`Index::from_snapshot_sections`]): the round trip of a format 3
    /// snapshot without a file.
    pub fn sections_round_trip(&mut self) -> Result<Index, CodecError> {
        let owned = self.to_snapshot_sections()?;
        let refs: Vec<&[u8]> = owned.iter().map(|s| &s[..]).collect();
        Index::from_snapshot_sections(&Sections::copy_of(&refs))
    }

    /// Whether this index encodes as the payload of `snap` (in its own
    /// format: sections, or bytes), byte for byte.
    pub fn encodes_as(&mut self, snap: &Snapshot) -> Result<bool, CodecError> {
        Ok(match &snap.sections {
            Some(s) => {
                let mine = self.to_snapshot_sections()?;
                mine.len() == s.len() && mine.iter().enumerate().all(|(i, m)| **m == *s.get(i))
            }
            None => self.to_snapshot_bytes()? == snap.payload,
        })
    }

    /// Decodes the payload of an authenticated snapshot, in its format.
    pub fn from_snapshot(snap: Snapshot) -> Result<Index, CodecError> {
        match &snap.sections {
            Some(s) => Index::from_snapshot_sections(s),
            None => Index::from_snapshot_vec(snap.payload),
        }
    }

    fn small_state(&self) -> Small {
        Small {
            records: self.records.clone_without_columns(),
            events: self.events.clone(),
            subject_events: {
                let mut v: Vec<(u32, Vec<u32>)> = self
                    .subject_events
                    .iter()
                    .map(|(k, v)| (*k, v.clone()))
                    .collect();
                v.sort_unstable_by_key(|(k, _)| *k);
                v
            },
            content_events: self.content_events.clone(),
            runs: self.runs.clone(),
            seq: self.seq,
            key_fingerprint: self.key_fingerprint,
            quarantine_acks: self.quarantine_acks.clone(),
            declarations: self.declarations.clone(),
        }
    }

    /// Decodes an index written by [`Index::to_snapshot_bytes`], checking
    /// every length against the input and the structure's invariants.
    pub fn from_snapshot_bytes(b: &[u8]) -> Result<Index, CodecError> {
        let [small, keys, offsets, targets, nsubj] = sections(b)?;
        Index::assemble(
            codec::decode_large(&b[small])?,
            keys_of(&b[keys]).into(),
            u64s_of(&b[offsets]).into(),
            u32s_of(&b[targets]).into(),
            b[nsubj].to_vec().into(),
            true,
        )
    }

    /// [`Index::from_snapshot_bytes`] on an owned buffer, which it gives
    /// back to the allocator section by section (from the end) as each is
    /// decoded: the peak is the buffer plus its largest section, not the
    /// buffer plus the whole index.
    pub fn from_snapshot_vec(mut b: Vec<u8>) -> Result<Index, CodecError> {
        let [small, keys, offsets, targets, nsubj] = sections(&b)?;
        fn release(b: &mut Vec<u8>, from: usize) {
            b.truncate(from);
            b.shrink_to_fit();
        }
        let nsubj_v = b[nsubj.clone()].to_vec();
        release(&mut b, nsubj.start);
        let targets_v = u32s_of(&b[targets.clone()]);
        release(&mut b, targets.start);
        let offsets_v = u64s_of(&b[offsets.clone()]);
        release(&mut b, offsets.start);
        let keys_v = keys_of(&b[keys.clone()]);
        release(&mut b, keys.start);
        let small: Small = codec::decode_large(&b[small])?;
        drop(b);
        Index::assemble(
            small,
            keys_v.into(),
            offsets_v.into(),
            targets_v.into(),
            nsubj_v.into(),
            true,
        )
    }

    fn assemble(
        small: Small,
        keys: Col<[u8; 16]>,
        offsets: Col<u64>,
        targets: Col<u32>,
        nsubj: Col<u8>,
        check_repeats: bool,
    ) -> Result<Index, CodecError> {
        let bad = |m: &str| CodecError::Invalid(format!("index snapshot: {m}"));
        let mut records = small.records;
        records.nsubj = nsubj;
        records.rebuild_lookups();
        // Invariants the engine relies on; a violation means damage.
        let n = records.n_ords;
        if !records.is_consistent()
            || records.nsubj.len() != n as usize
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&l| l != targets.len() as u64)
            || offsets.first().is_some_and(|&f| f != 0)
            || targets.iter().copied().max().is_some_and(|t| t >= n)
            || offsets.len() > keys.len() + 1
            // Canonical: no trailing subjects without links (Links::compact).
            || !Csr::is_trimmed(&offsets)
            || records.runs.first().is_some_and(|r| r.ord != 0)
            || records.runs.windows(2).any(|w| w[0].ord >= w[1].ord)
            || records
                .runs
                .iter()
                .any(|r| r.shard as usize >= records.shards.len())
            || records.profile_rows.len() != records.profiles.len()
            || records.checkpoints.iter().any(|(_, c)| *c > n)
            || small.events.iter().any(|(s, _)| *s > small.seq)
            // One event per entry, in log order: the evaluation finds the
            // events at or before N by a binary search.
            || small.events.windows(2).any(|w| w[0].0 >= w[1].0)
            || small.quarantine_acks.iter().any(|(s, _)| *s > small.seq)
            || small.quarantine_acks.windows(2).any(|w| w[0].0 >= w[1].0)
            || small.declarations.iter().any(|(s, _)| *s > small.seq)
            || small.declarations.windows(2).any(|w| w[0].0 >= w[1].0)
        {
            return Err(bad("inconsistent structure"));
        }
        // Keys must be distinct: the table interns them, and a duplicate
        // would leave the links of its second copy unreachable by key.
        let n_keys = keys.len();
        if check_repeats && SubjectTable::has_duplicates(&keys) {
            return Err(bad("duplicate subject keys"));
        }
        let subjects = SubjectTable::from_keys(keys);
        let n_events = small.events.len() as u32;
        if small
            .subject_events
            .iter()
            .any(|(s, v)| *s as usize >= n_keys || v.iter().any(|&i| i >= n_events))
            || small.content_events.iter().any(|&i| i >= n_events)
            // Written sorted by subject, one list each: a repeated subject
            // would lose one of its lists when collected into the map.
            || small.subject_events.windows(2).any(|w| w[0].0 >= w[1].0)
        {
            return Err(bad("event positions out of range"));
        }
        let mut index = Index {
            records,
            subjects,
            links: Links::from_base(Csr { offsets, targets }),
            lineage: Lineage::default(),
            files: Default::default(),
            events: small.events,
            subject_events: small.subject_events.into_iter().collect(),
            purposes: Vec::new(),
            event_purposes: Vec::new(),
            event_chain: Vec::new(),
            content_events: small.content_events,
            runs: small.runs,
            quarantine_acks: small.quarantine_acks,
            declarations: small.declarations,
            seq: small.seq,
            key_fingerprint: small.key_fingerprint,
        };
        index.rebuild_purpose_masks();
        if !index.rebuild_event_chain() {
            return Err(bad("subject event lists overlap or are out of order"));
        }
        Ok(index)
    }
}

/// The five sections of an index snapshot (small state, keys, CSR offsets,
/// CSR targets, subject counts), each length checked against the input.
fn sections(b: &[u8]) -> Result<[std::ops::Range<usize>; 5], CodecError> {
    if b.len() < 8 || &b[..8] != MAGIC {
        return Err(CodecError::Invalid("index snapshot: bad magic".into()));
    }
    let mut r = Reader { b, pos: 8 };
    let mut out: [std::ops::Range<usize>; 5] = Default::default();
    for (slot, width) in out.iter_mut().zip([1, 16, 8, 4, 1]) {
        let a = r.array(width)?;
        *slot = r.pos - a.len()..r.pos;
    }
    if r.pos != b.len() {
        return Err(CodecError::Invalid("index snapshot: trailing bytes".into()));
    }
    Ok(out)
}

fn keys_of(b: &[u8]) -> Vec<[u8; 16]> {
    b.chunks_exact(16)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            a
        })
        .collect()
}

/// The bytes of little-endian values: borrowed on a little-endian target.
fn le_bytes<T: bytemuck::Pod + ToLe>(v: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        Cow::Owned(v.iter().flat_map(|x| x.le()).collect())
    }
}

/// Section `i` of `s` as little-endian values: a view on a little-endian
/// target, a decoded copy on another. `None` when misaligned or ragged.
fn le_col<T: bytemuck::Pod + ToLe>(s: &Sections, i: usize) -> Option<Col<T>> {
    let (bytes, range) = s.shared(i)?;
    if cfg!(target_endian = "little") {
        return Col::shared(bytes, range);
    }
    let b = s.get(i);
    b.len()
        .is_multiple_of(std::mem::size_of::<T>())
        .then(|| T::from_le_slice(b).into())
}

/// Fixed-width integers stored little-endian.
trait ToLe: Sized {
    fn le(&self) -> Vec<u8>;
    fn from_le_slice(b: &[u8]) -> Vec<Self>;
}

impl ToLe for u64 {
    fn le(&self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
    fn from_le_slice(b: &[u8]) -> Vec<Self> {
        u64s_of(b)
    }
}

impl ToLe for u32 {
    fn le(&self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
    fn from_le_slice(b: &[u8]) -> Vec<Self> {
        u32s_of(b)
    }
}

fn u64s_of(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

fn u32s_of(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests;
