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
use crate::engine::{evaluate, HeadCache, Query};
use crate::error::{Error, LedgerError, Result};
use crate::event::{
    Entry, Event, LedgerInit, QuarantineAck, QuarantinedTail, RecordBatch, RowEntry, TrainingRun,
};
use crate::ids::{LedgerId, Purpose, RecordId, Seq, SubjectKey};
use crate::index::Index;
use crate::manifest::Manifest;
use crate::pin::PinnedHead;
use crate::policy::Policy;
use crate::provenance::Profile;
use crate::pseudonym::SubjectKeyer;
use crate::storage::quarantine::QuarantineFile;
use crate::storage::{ChainHash, Durability, FsIo, Io, Log, LogOptions, Recovery};
use crate::time::Timestamp;

// Shard fingerprints (issue 14): Parquet ingest that reads footers first.
#[cfg(feature = "parquet")]
mod files;
#[cfg(feature = "parquet")]
pub use files::{FilesError, TableIngest};
mod apply;
// Snapshots after large ingests (issue 19).
mod autosnap;
pub use autosnap::AUTO_SNAPSHOT_ROWS;
mod derive;
mod ingest;
mod lock;
mod open;
mod readback;
mod runs;
mod seal;
mod tlog;

pub use derive::{DeriveSummary, ExcludedDerived, ExcludedRecord};
#[cfg(feature = "signing")]
pub use tlog::{
    create_key_pair, init_signing_key, new_ledger_id, origin_of, verify_ledger_receipt,
    SignedCheckpoint, SigningKeyInit,
};
pub use tlog::{
    default_signing_key_path, default_signing_pub_path, divergence, entry_summary, CheckpointCheck,
    ORIGIN_PREFIX, TREE_DIR,
};
mod vocab;

pub use apply::{ApplyOptions, ApplySummary};
pub use vocab::{PurposeInfo, DEFAULT_PURPOSE};

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
    /// How long [`Ledger::open_opts`] waits for another writer to release
    /// the lock (default: not at all).
    pub wait: Option<std::time::Duration>,
    /// Write a snapshot at the end of an ingest once this many rows (a
    /// record or derived row each; any other entry counts one) were
    /// appended or replayed since the newest snapshot, and at least a
    /// tenth of the index's records (default: never; the CLI's `ingest`
    /// uses [`AUTO_SNAPSHOT_ROWS`]). See [`Ledger::set_auto_snapshot`].
    pub auto_snapshot: Option<u64>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            durability: Durability::Fsync,
            read_only: false,
            segment_size: 64 << 20,
            ledger_id: None,
            wait: None,
            auto_snapshot: None,
        }
    }
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
    /// Rows gone: registered rows at or past a shard's new end (a file
    /// replaced by a shorter one, a JSONL shard end line; issue 14).
    pub gone: u64,
    /// The seq of the snapshot written after the ingest, if one was
    /// ([`LedgerOptions::auto_snapshot`]).
    pub snapshot: Option<Seq>,
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
    /// The digests of the recorded events, built at the first apply.
    digests: Option<std::collections::HashSet<apply::EventDigest>>,
    /// Snapshots after large ingests (issue 19): src/ledger/autosnap.rs.
    auto: autosnap::Auto,
    /// Evaluations kept for the queries asked again (issue 19), told of
    /// every entry appended (src/engine/head.rs).
    head: std::sync::Mutex<HeadCache>,
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
    beside(ledger, ".key")
}

/// `LEDGER` + `suffix`, a file beside the ledger directory: `s.ledger/`
/// names the same directory as `s.ledger`, so a trailing slash is dropped
/// first (else the key would be looked for at `s.ledger/.key`).
pub(crate) fn beside(ledger: &Path, suffix: &str) -> PathBuf {
    let mut s = ledger.components().collect::<PathBuf>().into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl Ledger<FsIo> {
    /// Creates a ledger directory at `path`, pseudonymising with `keyer`.
    pub fn create(path: &Path, keyer: SubjectKeyer) -> Result<Self> {
        Self::open_waiting(path, Some(keyer), LedgerOptions::default(), true)
    }

    /// [`Ledger::create_with`] on the file system, with options (a chosen
    /// ledger id, durability): what `optout init` and Python `Ledger.init`
    /// call.
    pub fn create_opts(path: &Path, keyer: SubjectKeyer, opts: LedgerOptions) -> Result<Self> {
        Self::create_with(FsIo::new(), path, keyer, opts)
    }

    /// Whether a ledger (its log directory) already exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.join(crate::storage::LOG_DIR).exists()
    }

    /// Opens an existing ledger for writing. `keyer` is needed to ingest,
    /// apply events, or look subjects up by their external id.
    pub fn open(path: &Path, keyer: Option<SubjectKeyer>) -> Result<Self> {
        Self::open_opts(path, keyer, LedgerOptions::default())
    }

    /// [`Ledger::open`] with options: with `opts.wait`, waits that long for
    /// another writer to release the lock before failing with
    /// [`LedgerError::Locked`] (which names the holder's PID and since when).
    pub fn open_opts(
        path: &Path,
        keyer: Option<SubjectKeyer>,
        opts: LedgerOptions,
    ) -> Result<Self> {
        Self::open_waiting(path, keyer, opts, false)
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

    /// The ledger's random 16-byte id (displayed as 32 hex digits).
    pub fn ledger_id(&self) -> LedgerId {
        self.log.ledger_id()
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
            LedgerError::NeedsKey {
                default_key: default_key_path(&self.path),
            }
            .into()
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
            return Err(LedgerError::ReadOnly.into());
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
            return Err(LedgerError::EntryTooLarge {
                what,
                size: p.len() as u64,
                limit,
            }
            .into());
        }
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let range = self.log.append_group(&refs)?;
        let seqs = (range.first.0..).map(Seq);
        let applied = if prechecked {
            self.index
                .apply_all_prechecked(seqs.clone().zip(entries.iter()))
        } else {
            self.index.apply_all(seqs.clone().zip(entries.iter()))
        };
        // A poisoned lock (a panic while it was held) still holds a cache
        // that is consistent as of its last update: keep it up to date.
        let head = self
            .head
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match applied {
            Ok(()) => seqs
                .zip(entries.iter())
                .for_each(|(s, e)| head.appended(&self.index, s, e)),
            Err(e) => {
                head.clear();
                return Err(e);
            }
        }
        self.auto.since += entries.iter().map(autosnap::weight).sum::<u64>();
        Ok(range.last)
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
            return Err(LedgerError::ReadOnly.into());
        }
        let (seq, chain) = self.log.head();
        // Format 3: sections borrowed from the index, mapped in place by
        // the next open.
        let sections = self
            .index
            .to_snapshot_sections()
            .map_err(|e| Error::Other(e.to_string()))?;
        let refs: Vec<&[u8]> = sections.iter().map(|s| &s[..]).collect();
        let path = self.log.write_snapshot_sections(seq, chain, &refs)?;
        self.auto.since = 0;
        Ok(path)
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
