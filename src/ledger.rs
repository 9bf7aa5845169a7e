//! The ledger: a directory holding the hash-chained log of everything
//! recorded, and snapshots of the index folded from it.
//!
//! Writes are all-or-nothing per call: input is validated against the
//! current state first, then written as one atomic group (one fsync with
//! the default [`Durability::Fsync`]), then folded into the index. A call
//! returns only once its entries are durable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::codec;
use crate::engine::{evaluate, Query};
use crate::error::{Error, Result};
use crate::event::{
    Entry, Event, LedgerInit, QuarantineAck, QuarantinedTail, RecordBatch, RowEntry, TrainingRun,
};
use crate::ids::{Purpose, RecordId, Seq, SubjectKey};
use crate::index::Index;
use crate::manifest::Manifest;
use crate::pin::PinnedHead;
use crate::policy::Policy;
use crate::provenance::Profile;
use crate::pseudonym::SubjectKeyer;
use crate::storage::quarantine::QuarantineFile;
use crate::storage::{ChainHash, Durability, FsIo, Io, Log, LogOptions, Recovery};
use crate::time::Timestamp;

/// Entry format version written by this build.
pub const ENTRY_FORMAT: u32 = 1;

/// Rows per log frame when a record batch is split for writing.
const ROWS_PER_FRAME: usize = 50_000;
/// Estimated encoded bytes per log frame (well below the 64 MiB frame limit).
const BYTES_PER_FRAME: usize = 16 << 20;
/// Frames per atomic group (bounds the memory of one write).
const FRAMES_PER_GROUP: usize = 64;
/// Take a snapshot when opening replayed more entries than this.
const SNAPSHOT_AFTER_REPLAY: u64 = 20_000;

/// How to open a ledger.
#[derive(Clone, Debug)]
pub struct LedgerOptions {
    /// When appended entries become durable (default: before each call returns).
    pub durability: Durability,
    /// Open without the writer lock and never write (default false).
    pub read_only: bool,
    /// Log segment size in bytes (default 64 MiB).
    pub segment_size: u64,
    /// The id a new ledger gets (default: random). For reproducible tests.
    pub ledger_id: Option<[u8; 16]>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            durability: Durability::Fsync,
            read_only: false,
            segment_size: 64 << 20,
            ledger_id: None,
        }
    }
}

/// The record frame last read back from the log, and where its rows are
/// (per `(dataset, shard)`: row -> (group, index)), for comparing a
/// re-registration with what is stored.
#[derive(Default)]
struct FrameCache {
    seq: Option<Seq>,
    batch: RecordBatch,
    rows: HashMap<(String, String), HashMap<u32, (usize, usize)>>,
}

/// What an ingest did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Records registered (new or replacing).
    pub registered: u64,
    /// Records skipped because they were already registered identically.
    pub unchanged: u64,
    /// Record → subject links added.
    pub links: u64,
    /// The last sequence number written (the ledger's head).
    pub seq: Seq,
}

/// A ledger directory, open.
pub struct Ledger<I: Io = FsIo> {
    log: Log<I>,
    index: Index,
    keyer: Option<SubjectKeyer>,
    path: PathBuf,
    read_only: bool,
    snapshot_note: Option<String>,
    notes: Vec<String>,
}

impl<I: Io> std::fmt::Debug for Ledger<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("seq", &self.index.seq())
            .finish()
    }
}

/// The default place of a ledger's subject key: `LEDGER.key` beside the directory.
pub fn default_key_path(ledger: &Path) -> PathBuf {
    let mut s = ledger.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

impl Ledger<FsIo> {
    /// Creates a ledger directory at `path`, pseudonymising with `keyer`.
    pub fn create(path: &Path, keyer: SubjectKeyer) -> Result<Self> {
        Self::create_with(FsIo::new(), path, keyer, LedgerOptions::default())
    }

    /// Opens an existing ledger for writing. `keyer` is needed to ingest,
    /// apply events, or look subjects up by their external id.
    pub fn open(path: &Path, keyer: Option<SubjectKeyer>) -> Result<Self> {
        Self::open_with(FsIo::new(), path, keyer, LedgerOptions::default())
    }

    /// Opens an existing ledger read-only (no lock, no writes).
    pub fn open_read_only(path: &Path, keyer: Option<SubjectKeyer>) -> Result<Self> {
        let opts = LedgerOptions {
            read_only: true,
            ..Default::default()
        };
        Self::open_with(FsIo::new(), path, keyer, opts)
    }
}

impl<I: Io> Ledger<I> {
    fn log_options(opts: &LedgerOptions, create: bool, keyer: Option<&SubjectKeyer>) -> LogOptions {
        let mut o = LogOptions::new()
            .create(create)
            .read_only(opts.read_only)
            .durability(opts.durability)
            .segment_size(opts.segment_size);
        if let Some(k) = keyer {
            o = o.snapshot_key(k.snapshot_key());
        }
        match opts.ledger_id {
            Some(id) => o.ledger_id(crate::storage::LedgerId::from_bytes(id)),
            None => o,
        }
    }

    /// Creates a ledger on any [`Io`] (the in-memory one in tests).
    pub fn create_with(
        io: I,
        path: &Path,
        keyer: SubjectKeyer,
        opts: LedgerOptions,
    ) -> Result<Self> {
        let log = Log::open(io, path, Self::log_options(&opts, true, Some(&keyer)))?;
        if log.head().0 != Seq(0) {
            return Err(Error::Invalid(format!(
                "{}: a ledger already exists here",
                path.display()
            )));
        }
        let mut l = Ledger {
            log,
            index: Index::new(),
            keyer: Some(keyer.clone()),
            path: path.to_path_buf(),
            read_only: false,
            snapshot_note: None,
            notes: Vec::new(),
        };
        l.append(vec![Entry::Init(LedgerInit {
            format: ENTRY_FORMAT,
            key_fingerprint: keyer.fingerprint(),
        })])?;
        l.log.sync()?;
        Ok(l)
    }

    /// Opens a ledger on any [`Io`]: loads the newest valid snapshot and
    /// replays the log after it, verifying every frame and the chain.
    pub fn open_with(
        io: I,
        path: &Path,
        keyer: Option<SubjectKeyer>,
        opts: LedgerOptions,
    ) -> Result<Self> {
        let log = Log::open(io, path, Self::log_options(&opts, false, keyer.as_ref()))?;
        let mut notes = open_notes(&log);
        let load = log.latest_valid_snapshot()?;
        for r in &load.rejected {
            notes.push(format!(
                "{}: snapshot not used ({}); replayed the log instead",
                r.path.display(),
                r.error
            ));
        }
        // A snapshot is a cache: one that does not decode (written by another
        // version, say) is skipped and the log replayed from the start.
        let mut snapshot_note = None;
        let mut index = match load.snapshot {
            // Decoding from the owned payload hands it back to the
            // allocator section by section (a lower peak on large indexes).
            Some(s) => match Index::from_snapshot_vec(s.payload) {
                Ok(ix) if ix.seq() == s.seq => ix,
                Ok(_) => {
                    snapshot_note = Some(format!(
                        "{}: snapshot state is not at its seq; replayed the log",
                        s.path.display()
                    ));
                    Index::new()
                }
                Err(e) => {
                    snapshot_note = Some(format!(
                        "{}: snapshot does not decode ({e}); replayed the log",
                        s.path.display()
                    ));
                    Index::new()
                }
            },
            None => Index::new(),
        };
        notes.extend(snapshot_note.clone());
        let from = Seq(index.seq().0 + 1);
        let mut replayed = 0u64;
        log.replay(from, |seq, payload| -> Result<()> {
            let entry: Entry = codec::decode(payload).map_err(|e| {
                Error::Other(format!(
                    "{}: log entry at seq {seq} does not decode: {e}",
                    path.display()
                ))
            })?;
            index.apply_unfrozen(seq, &entry)?;
            replayed += 1;
            Ok(())
        })?;
        index.freeze();
        if let (Some(k), Some(fp)) = (&keyer, index.key_fingerprint()) {
            if k.fingerprint() != fp {
                return Err(Error::Invalid(format!(
                    "{}: the subject key given is not the key this ledger was created with",
                    path.display()
                )));
            }
        }
        let mut l = Ledger {
            log,
            index,
            keyer,
            path: path.to_path_buf(),
            read_only: opts.read_only,
            snapshot_note,
            notes,
        };
        if !l.read_only && replayed > SNAPSHOT_AFTER_REPLAY && l.keyer.is_some() {
            l.snapshot()?;
        }
        Ok(l)
    }

    /// The ledger directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index (read access to everything the ledger knows).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The sequence number and chain hash of the last entry.
    pub fn head(&self) -> (Seq, ChainHash) {
        self.log.head()
    }

    /// The ledger's random 16-byte id.
    pub fn ledger_id(&self) -> [u8; 16] {
        *self.log.ledger_id().as_bytes()
    }

    /// What recovery did when the ledger was opened (a torn tail cut off), if anything.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.log.recovery()
    }

    /// Why the newest snapshot was not used at open, if it was not.
    pub fn snapshot_note(&self) -> Option<&str> {
        self.snapshot_note.as_deref()
    }

    /// Everything opening the ledger did or decided that its user should
    /// know, one sentence each: a torn tail quarantined and cut (bytes,
    /// offset, where it went), a durable head file created for a ledger
    /// written by an older build, snapshots not used (cannot be
    /// authenticated, damaged, ...) and the log replayed instead. Nothing
    /// is done silently: the CLI prints these on stderr and in its JSON.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The chain hash after the entry at `seq` (pin it to detect rewrites).
    pub fn chain_at(&self, seq: Seq) -> Result<ChainHash> {
        Ok(self.log.chain_at(seq)?)
    }

    fn keyer(&self) -> Result<&SubjectKeyer> {
        self.keyer.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "this needs the subject key: pass --key-file (default {})",
                default_key_path(&self.path).display()
            ))
        })
    }

    /// The pseudonym of an external subject id (needs the key).
    pub fn pseudonym(&self, subject: &str) -> Result<SubjectKey> {
        Ok(self.keyer()?.pseudonym(subject))
    }

    /// Appends entries as one atomic group and folds them into the index.
    fn append(&mut self, entries: Vec<Entry>) -> Result<Seq> {
        self.append_checked(entries, false)
    }

    /// [`Ledger::append`]; `prechecked` says the entries were just validated
    /// against the current index, so folding them need not check again.
    fn append_checked(&mut self, entries: Vec<Entry>, prechecked: bool) -> Result<Seq> {
        if self.read_only {
            return Err(Error::Invalid("the ledger is open read-only".into()));
        }
        let payloads: Vec<Vec<u8>> = entries
            .iter()
            .map(codec::encode)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Other(e.to_string()))?;
        // Name what is too large (the storage layer sees only bytes).
        let limit = u64::from(crate::storage::MAX_PAYLOAD);
        if let Some((i, p)) = payloads
            .iter()
            .enumerate()
            .find(|(_, p)| p.len() as u64 > limit)
        {
            let what = match &entries[i] {
                Entry::Records(b) => format!(
                    "a frame of {} records (from {}/{})",
                    b.len(),
                    b.shards.first().map_or("?", |g| g.dataset.as_str()),
                    b.shards.first().map_or("?", |g| g.shard.as_str())
                ),
                Entry::Event(_) => format!("event {} of this batch", i + 1),
                Entry::Run(r) => format!("training run {:?}", r.name),
                _ => "an entry".to_string(),
            };
            return Err(Error::Invalid(format!(
                "{what} encodes to {} bytes, over the {limit}-byte limit of one log entry; nothing was written",
                p.len()
            )));
        }
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let range = self.log.append_group(&refs)?;
        let seqs = (range.first.0..).map(Seq);
        if prechecked {
            self.index.apply_all_prechecked(seqs.zip(entries.iter()))?;
        } else {
            self.index.apply_all(seqs.zip(entries.iter()))?;
        }
        Ok(range.last)
    }

    /// Registers records. Rows already registered with identical content
    /// are skipped (so re-running an ingest is harmless); a row registered
    /// with different content is an error unless it has `replace` set.
    /// Nothing is written unless the whole batch is valid.
    pub fn ingest(&mut self, batch: RecordBatch) -> Result<IngestSummary> {
        self.keyer()?;
        // Duplicates inside the batch first: dropping "unchanged" rows must
        // not hide a second, conflicting registration of the same row.
        Index::new().check_records(&batch)?;
        let (batch, unchanged) = self.drop_unchanged(batch)?;
        let mut summary = IngestSummary {
            unchanged,
            seq: self.index.seq(),
            ..Default::default()
        };
        if batch.is_empty() {
            return Ok(summary);
        }
        self.index.check_records(&batch)?;
        summary.registered = batch.len() as u64;
        summary.links = batch
            .shards
            .iter()
            .flat_map(|g| &g.rows)
            .map(|r| r.subjects.len() as u64)
            .sum();
        let mut frames: Vec<Entry> = split(batch).into_iter().map(Entry::Records).collect();
        while !frames.is_empty() {
            let rest = frames.split_off(frames.len().min(FRAMES_PER_GROUP));
            summary.seq = self.append_checked(std::mem::replace(&mut frames, rest), true)?;
        }
        Ok(summary)
    }

    /// Splits off rows that are already registered with identical content;
    /// errors on rows registered with different content and no `replace`.
    fn drop_unchanged(&self, mut batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        let mut cache = FrameCache::default();
        let mut unchanged = 0u64;
        let profiles = batch.profiles.clone();
        for g in &mut batch.shards {
            let Some(shard) = self.index.records.find_shard(&g.dataset, &g.shard) else {
                continue;
            };
            let mut keep = Vec::with_capacity(g.rows.len());
            for r in std::mem::take(&mut g.rows) {
                let existing = self.index.records.shards[shard.0 as usize].current(r.row);
                match existing {
                    Some(ord) if !r.replace => {
                        let (old, old_profile) =
                            self.stored_row(&mut cache, ord, &g.dataset, &g.shard, r.row)?;
                        let same = old.subjects == r.subjects
                            && *old_profile == profiles[r.profile as usize]
                            && old.collected_at == r.collected_at
                            && old.key == r.key
                            && old.content_hash == r.content_hash;
                        if same {
                            unchanged += 1;
                        } else {
                            return Err(Error::RecordConflict {
                                dataset: g.dataset.clone(),
                                shard: g.shard.clone(),
                                row: r.row,
                                twice_in_batch: false,
                                what: "is already registered with different content; set \"replace\": true to replace it",
                            });
                        }
                    }
                    _ => keep.push(r),
                }
            }
            g.rows = keep;
        }
        batch.shards.retain(|g| !g.rows.is_empty());
        Ok((batch, unchanged))
    }

    /// The stored registration of ordinal `ord` (read back from the log).
    fn stored_row<'c>(
        &self,
        cache: &'c mut FrameCache,
        ord: u32,
        dataset: &str,
        shard: &str,
        row: u32,
    ) -> Result<(&'c RowEntry, &'c Profile)> {
        let recs = &self.index.records;
        let i = recs.checkpoints.partition_point(|(_, end)| *end <= ord);
        let seq = recs.checkpoints.get(i).map(|c| c.0).ok_or_else(|| {
            Error::Other(format!("record ordinal {ord} has no registering entry"))
        })?;
        if cache.seq != Some(seq) {
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                Error::Other(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            let Entry::Records(b) = entry else {
                return Err(Error::Other(format!(
                    "log entry at seq {seq} is not a record batch"
                )));
            };
            *cache = FrameCache {
                seq: Some(seq),
                batch: b,
                rows: HashMap::new(),
            };
        }
        let FrameCache { batch: b, rows, .. } = cache;
        // Where each row of (dataset, shard) is in the frame, built once per
        // shard and frame (a frame holds up to 50,000 rows: a search per row
        // made a re-ingest quadratic). The last registration of the row in
        // that batch is the live one.
        let at = rows
            .entry((dataset.to_string(), shard.to_string()))
            .or_insert_with(|| {
                let mut m = HashMap::new();
                for (gi, g) in b.shards.iter().enumerate() {
                    if g.dataset == dataset && g.shard == shard {
                        for (ri, r) in g.rows.iter().enumerate() {
                            m.insert(r.row, (gi, ri));
                        }
                    }
                }
                m
            })
            .get(&row)
            .copied();
        at.map(|(gi, ri)| {
            let r = &b.shards[gi].rows[ri];
            (r, &b.profiles[r.profile as usize])
        })
        .ok_or_else(|| {
            Error::Other(format!(
                "record {dataset}/{shard}#{row} not found at seq {seq}"
            ))
        })
    }

    /// The registration of a record as the ledger knew it at `seq`:
    /// the row, its profile and the sequence number that registered it.
    pub fn record_details(
        &self,
        id: RecordId,
        seq: Seq,
    ) -> Result<Option<(RowEntry, Profile, Seq)>> {
        let recs = &self.index.records;
        let Some(ord) = recs.version_at(id.shard(), id.row(), seq) else {
            return Ok(None);
        };
        let (d, s) = self.index.names_of(id).unwrap_or(("?", "?"));
        let i = recs.checkpoints.partition_point(|(_, end)| *end <= ord);
        let reg = recs.checkpoints.get(i).map(|c| c.0).unwrap_or_default();
        let mut cache = FrameCache::default();
        let (row, profile) = self.stored_row(&mut cache, ord, d, s, id.row())?;
        Ok(Some((row.clone(), profile.clone(), reg)))
    }

    /// Every external record key (URL, `__key__`) registered so far, read
    /// back from the log (the index keeps only their hashes). Keys of
    /// replaced registrations are included.
    pub fn record_keys(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut last = None;
        for &(seq, _) in &self.index.records.checkpoints {
            if last == Some(seq) {
                continue;
            }
            last = Some(seq);
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                Error::Other(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            if let Entry::Records(b) = entry {
                out.extend(
                    b.shards
                        .iter()
                        .flat_map(|g| &g.rows)
                        .filter_map(|r| r.key.clone()),
                );
            }
        }
        Ok(out)
    }

    /// Records events, all or nothing. Returns the head after them.
    pub fn apply(&mut self, events: Vec<Event>) -> Result<Seq> {
        self.keyer()?;
        if events.is_empty() {
            return Ok(self.index.seq());
        }
        self.append(events.into_iter().map(Entry::Event).collect())
    }

    /// Registers a training run that used `manifest`, which must come from
    /// this ledger's history (its pinned chain head is checked).
    pub fn register_run(
        &mut self,
        name: &str,
        model: &str,
        manifest: &Manifest,
        started_at: Timestamp,
    ) -> Result<Seq> {
        self.verify_manifest(manifest)?;
        if name.trim().is_empty() || model.trim().is_empty() {
            return Err(Error::Invalid(
                "a run needs a non-empty name and model".into(),
            ));
        }
        let h = &manifest.header;
        let run = TrainingRun {
            name: name.to_string(),
            model: model.to_string(),
            started_at,
            purpose: Purpose::new(&h.purpose).map_err(Error::Invalid)?,
            manifest_digest: manifest.digest_hex(),
            manifest_seq: Seq(h.seq),
            manifest_at: Timestamp(h.at_ns),
            datasets: h.datasets.clone(),
            policy: h.policy.clone(),
        };
        self.index.check(&Entry::Run(run.clone()))?;
        self.append(vec![Entry::Run(run)])
    }

    /// A query for `purpose` at the head and the given valid time, with the
    /// default policy unless one is given.
    pub fn query(&self, policy: Option<Policy>, purpose: &str, at: Timestamp) -> Result<Query> {
        let purpose = Purpose::new(purpose).map_err(Error::Invalid)?;
        let policy = match policy {
            Some(p) if p.purpose != purpose => {
                return Err(Error::Invalid(format!(
                    "the policy is for purpose {}, not {purpose}",
                    p.purpose
                )))
            }
            Some(p) => p,
            None => Policy::default_for(purpose),
        };
        Ok(Query {
            policy,
            seq: self.index.seq(),
            at,
            datasets: Vec::new(),
        })
    }

    /// Computes the exclusion manifest for `q`.
    pub fn manifest(&self, q: &Query) -> Result<Manifest> {
        if q.seq > self.index.seq() {
            return Err(Error::Invalid(format!(
                "--at-seq {} is past the ledger's head {}",
                q.seq,
                self.index.seq()
            )));
        }
        for d in &q.datasets {
            if !self.index.records.dataset_ids.contains_key(d) {
                return Err(Error::Invalid(format!("unknown dataset {d:?}")));
            }
        }
        let chain = self.log.chain_at(q.seq)?;
        let ex = evaluate(&self.index, q);
        Ok(Manifest::build(
            &self.index,
            q,
            &ex,
            self.ledger_id(),
            *chain.as_bytes(),
        ))
    }

    /// Checks that `m` is exactly what this ledger computes at the seq N,
    /// valid time T, policy and dataset scope it claims: same ledger id,
    /// the chain head it pins is this log's chain at N (a manifest from a
    /// forked, rewritten or rolled-back ledger fails), and its bytes equal
    /// a recomputation. The seal is a public hash, so anyone can re-seal an
    /// edited manifest (an older one with a newer head written in, rows
    /// dropped): only the recomputation catches that. `check --ledger`,
    /// `runs add` and Python's `Ledger.verify_manifest` all call this.
    pub fn verify_manifest(&self, m: &Manifest) -> Result<()> {
        let h = &m.header;
        let id: String = self
            .ledger_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mismatch = |what: String| Err(Error::ManifestMismatch(what));
        if h.ledger_id != id {
            return mismatch(format!(
                "the manifest is from ledger {}, not this one ({id})",
                h.ledger_id
            ));
        }
        if Seq(h.seq) > self.index.seq() {
            return mismatch(format!(
                "the manifest pins seq {} but this ledger ends at {}: it was rolled back or truncated",
                h.seq,
                self.index.seq()
            ));
        }
        let chain = self.log.chain_at(Seq(h.seq))?;
        if chain.to_hex() != h.chain_head {
            return mismatch(format!(
                "the manifest pins chain head {} at seq {}, but this ledger has {}: its history was rewritten",
                h.chain_head,
                h.seq,
                chain.to_hex()
            ));
        }
        let q = Query {
            policy: h.policy.clone(),
            seq: Seq(h.seq),
            at: Timestamp(h.at_ns),
            datasets: h.datasets.clone(),
        };
        let mut again = self.manifest(&q)?;
        if m.version < again.version {
            // An older format re-encodes to its own bytes (FORMAT.md, Manifests).
            again.version = m.version;
            again
                .header
                .counts
                .truncate(crate::manifest::reasons_in(m.version).unwrap_or(0));
        }
        if again.to_bytes() != m.to_bytes() {
            return mismatch(format!(
                "the manifest differs from what this ledger computes at its seq {}, time {}, policy and scope \
                 (digest {} here, {} in the file): it was altered and re-sealed, or made by another optout version",
                h.seq,
                h.at,
                &again.digest_hex()[..16],
                &m.digest_hex()[..16]
            ));
        }
        Ok(())
    }

    /// The external keys (URL, `__key__`) of the rows `m` excludes, as
    /// registered at or before its seq N, after [`Ledger::verify_manifest`]:
    /// `(dataset, shard, row) → key`, for `check` (`{"key"}` lines) and
    /// `export --ledger`. The last registration of a row at or before N is
    /// the one the manifest judged.
    pub fn excluded_keys(&self, m: &Manifest) -> Result<HashMap<(String, String, u32), String>> {
        self.verify_manifest(m)?;
        let n = Seq(m.header.seq);
        let mut keys: HashMap<(String, String, u32), Option<String>> = HashMap::new();
        let mut last = None;
        for &(seq, _) in &self.index.records.checkpoints {
            if seq > n || last == Some(seq) {
                continue;
            }
            last = Some(seq);
            let entry: Entry = codec::decode(&self.log.read(seq)?).map_err(|e| {
                Error::Other(format!("log entry at seq {seq} does not decode: {e}"))
            })?;
            let Entry::Records(b) = entry else { continue };
            for g in b.shards {
                let Some(sh) = m.shard(&g.dataset, &g.shard) else {
                    continue;
                };
                for r in g.rows {
                    if sh.excluded.contains(r.row) {
                        keys.insert((g.dataset.clone(), g.shard.clone(), r.row), r.key);
                    }
                }
            }
        }
        Ok(keys
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    /// Checks that this ledger extends the pinned head: the same ledger,
    /// at least its seq, and the same chain value there
    /// ([`Error::HeadMismatch`] otherwise: rolled back, forked, rewritten).
    pub fn check_extends(&self, pin: &PinnedHead) -> Result<()> {
        pin.check(self.ledger_id(), self.index.seq(), |s| {
            Ok(self.log.chain_at(s)?)
        })
        .map_err(Error::HeadMismatch)
    }

    /// Checks that `m` comes from a log that extends `pin` (`check
    /// --expect-head`): what its header shows
    /// ([`PinnedHead::check_manifest_header`]), this ledger extending the
    /// pin, and the manifest being exactly what this ledger computes
    /// ([`Ledger::verify_manifest`]).
    pub fn check_pinned_manifest(&self, pin: &PinnedHead, m: &Manifest) -> Result<()> {
        pin.check_manifest_header(m, true)?;
        self.check_extends(pin)?;
        self.verify_manifest(m)
    }

    /// The files in `quarantine/` (torn tails cut by recoveries), each
    /// with the seq of the entry that acknowledged it, if one did.
    pub fn quarantine(&self) -> Result<Vec<(QuarantineFile, Option<Seq>)>> {
        let files = crate::storage::quarantine::list(self.log.io(), &self.path)?;
        Ok(files
            .into_iter()
            .map(|f| {
                let acked = acknowledged_at(self.index.quarantine_acks(), &f);
                (f, acked)
            })
            .collect())
    }

    /// Records in the log that the quarantined torn tails not yet
    /// acknowledged were looked at (`note`: why, e.g. a ticket), so
    /// `verify` stops reporting exactly these files. Returns the seq of
    /// the entry, or `None` when there was nothing to acknowledge.
    pub fn acknowledge_quarantine(&mut self, note: Option<String>) -> Result<Option<Seq>> {
        let files: Vec<QuarantinedTail> = self
            .quarantine()?
            .into_iter()
            .filter(|(_, acked)| acked.is_none())
            .map(|(f, _)| QuarantinedTail {
                name: f.name,
                bytes: f.bytes,
                blake3: f.blake3,
            })
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        let seq = self.append(vec![Entry::QuarantineAck(QuarantineAck { files, note })])?;
        Ok(Some(seq))
    }

    /// Writes a snapshot of the index at the head, so the next open
    /// replays only what comes after it.
    pub fn snapshot(&mut self) -> Result<PathBuf> {
        if self.read_only {
            return Err(Error::Invalid("the ledger is open read-only".into()));
        }
        let (seq, chain) = self.log.head();
        let bytes = self
            .index
            .to_snapshot_bytes()
            .map_err(|e| Error::Other(e.to_string()))?;
        Ok(self.log.write_snapshot(seq, chain, &bytes)?)
    }

    /// Makes everything appended so far durable (only needed with [`Durability::Buffered`]).
    pub fn sync(&mut self) -> Result<()> {
        Ok(self.log.sync()?)
    }
}

/// The seq of the acknowledgement that names exactly `f` (name, length, hash).
pub(crate) fn acknowledged_at(acks: &[(Seq, QuarantineAck)], f: &QuarantineFile) -> Option<Seq> {
    acks.iter()
        .find(|(_, a)| {
            a.files
                .iter()
                .any(|t| t.name == f.name && t.bytes == f.bytes && t.blake3 == f.blake3)
        })
        .map(|(s, _)| *s)
}

/// What opening `log` did that must be reported (see [`Ledger::notes`]).
fn open_notes<I: Io>(log: &Log<I>) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(t) = log.recovery() {
        let what = match (&t.quarantine, t.segment_removed) {
            (Some(q), true) => format!(
                "removed the segment (its header was torn) after copying its {} bytes to {}",
                t.bytes,
                q.display()
            ),
            (Some(q), false) => format!(
                "cut {} bytes at byte {} after moving them to {}",
                t.bytes,
                t.truncated_at,
                q.display()
            ),
            (None, _) => format!(
                "{} bytes at byte {} are ignored (read-only: nothing was changed)",
                t.bytes, t.truncated_at
            ),
        };
        notes.push(format!(
            "{}: torn tail after the last acknowledged commit ({:?}, {} uncommitted frame(s)): {what}",
            t.segment.display(),
            t.reason,
            t.frames_dropped
        ));
    }
    if log.head_created() {
        let (seq, chain) = log.head();
        notes.push(format!(
            "{}: created the durable head file (a ledger written by an older optout) at seq {seq}, chain {chain}",
            log.root().join(crate::storage::HEAD_FILE).display()
        ));
    }
    notes
}

/// Estimated encoded bytes of a row (its profile not included).
fn row_bytes(r: &RowEntry) -> usize {
    64 + 16 * r.subjects.len() + r.key.as_ref().map_or(0, |k| k.len())
}

/// Estimated encoded bytes of a profile.
fn profile_bytes(p: &Profile) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 8);
    64 + p.source.len()
        + p.basis.len()
        + p.categories.iter().map(|c| c.len() + 8).sum::<usize>()
        + opt(&p.jurisdiction)
        + opt(&p.license)
        + opt(&p.obtained_from)
}

/// Splits a batch into frames of at most [`ROWS_PER_FRAME`] rows and about
/// [`BYTES_PER_FRAME`] estimated bytes, profiles counted: each frame
/// carries only the profiles its own rows use (renumbered), so a batch of
/// many large, distinct profiles cannot make a frame past the 64 MiB limit.
fn split(batch: RecordBatch) -> Vec<RecordBatch> {
    let total: usize = batch
        .shards
        .iter()
        .flat_map(|g| &g.rows)
        .map(row_bytes)
        .sum::<usize>()
        + batch.profiles.iter().map(profile_bytes).sum::<usize>();
    if batch.len() <= ROWS_PER_FRAME && total <= BYTES_PER_FRAME {
        return vec![batch];
    }
    let sizes: Vec<usize> = batch.profiles.iter().map(profile_bytes).collect();
    let mut out = Vec::new();
    let mut cur = RecordBatch::default();
    let mut remap: HashMap<u32, u32> = HashMap::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for g in batch.shards {
        let mut rows = Vec::new();
        for mut r in g.rows {
            let cost = |remap: &HashMap<u32, u32>, r: &RowEntry| {
                row_bytes(r)
                    + if remap.contains_key(&r.profile) {
                        0
                    } else {
                        sizes[r.profile as usize]
                    }
            };
            if n > 0 && (n == ROWS_PER_FRAME || bytes + cost(&remap, &r) > BYTES_PER_FRAME) {
                // Close the frame; this row starts the next one.
                if !rows.is_empty() {
                    cur.shards.push(crate::event::ShardRecords {
                        dataset: g.dataset.clone(),
                        shard: g.shard.clone(),
                        rows: std::mem::take(&mut rows),
                    });
                }
                out.push(std::mem::take(&mut cur));
                remap.clear();
                (n, bytes) = (0, 0);
            }
            bytes += cost(&remap, &r);
            let next = cur.profiles.len() as u32;
            let id = *remap.entry(r.profile).or_insert_with(|| {
                cur.profiles
                    .push(batch.profiles[r.profile as usize].clone());
                next
            });
            r.profile = id;
            rows.push(r);
            n += 1;
        }
        if !rows.is_empty() {
            cur.shards.push(crate::event::ShardRecords {
                dataset: g.dataset,
                shard: g.shard,
                rows,
            });
        }
    }
    if n > 0 {
        out.push(cur);
    }
    out
}
