//! [`Log`]: opening (with recovery), appending atomic groups, rotation, sync.
//!
//! Invariants of a writable handle:
//! * `segments.last()` is the active segment; `end` of every segment is the
//!   number of bytes written *and fsynced* to it; the active segment's file
//!   is exactly `end` bytes long.
//! * `buffer` holds encoded frames (whole groups) that logically follow
//!   `end` of the active segment and are not yet written ([`Durability::Buffered`]).
//! * `offsets[s - 1 - offsets_base]` is the offset of seq `s` in its
//!   segment, for every `offsets_base < s <= head`; seqs up to
//!   `offsets_base` lie in segments an anchored open did not read, whose
//!   offsets are found on first use; `chain` is the chain value after `head`.
//! * Once `poisoned` is set no method touches the disk again.
//! * `head_file` (read-write handles) is `LEDGER/HEAD`: the log up to what
//!   it says was acknowledged and must never be lost. Each write of it
//!   (one slot, fdatasync'ed) follows the fsync of the frames it covers and
//!   precedes their acknowledgement; `durable_head` is its seq.

use std::path::{Path, PathBuf};

use super::chain;
use super::error::{Result, StorageError};
use super::frame::{self, FLAG_COMMIT};
use super::fs::FsIo;
use super::head::{self, DurableHead, HeadFile};
use super::io::{refuse_symlink, Io, IoLock};
use super::options::{Durability, LogOptions};
use super::quarantine;
use super::recovery::{self, Recovery, Scan, SegmentMeta};
use super::segment::{self, SegmentHeader};
use super::types::{ChainHash, LedgerId, Seq, SeqRange};

mod append;
mod open;

/// Sub-directory of the ledger holding log segments.
pub const LOG_DIR: &str = "log";
/// Sub-directory of the ledger holding snapshots.
pub const SNAP_DIR: &str = "snap";
/// Sub-directory of the ledger holding torn tails cut off by recovery.
pub const QUARANTINE_DIR: &str = "quarantine";
/// The writer's lock file in the ledger directory.
pub const LOCK_FILE: &str = "LOCK";

/// The hash-chained, segmented, crash-safe log of opaque payloads.
///
/// ```
/// use optout::storage::{Log, LogOptions, MemIo, Seq};
///
/// let io = MemIo::new();
/// let mut log = Log::open(io.clone(), "/ledger", LogOptions::new())?;
/// let r = log.append_group(&[b"first", b"second"])?;
/// assert_eq!((r.first, r.last), (Seq(1), Seq(2)));
/// assert_eq!(log.read(Seq(2))?, b"second");
/// let head = log.head();
/// drop(log);
///
/// let log = Log::open(io, "/ledger", LogOptions::new())?;
/// assert_eq!(log.head(), head);
/// # Ok::<(), optout::storage::StorageError>(())
/// ```
pub struct Log<I: Io = FsIo> {
    pub(super) io: I,
    pub(super) root: PathBuf,
    pub(super) opts: LogOptions,
    pub(super) ledger: LedgerId,
    pub(super) key: [u8; 32],
    pub(super) segments: Vec<SegmentMeta>,
    pub(super) offsets: Vec<u64>,
    pub(super) offsets_base: u64,
    pub(super) head: Seq,
    pub(super) chain: ChainHash,
    pub(super) durable_head: Seq,
    pub(super) buffer: Vec<u8>,
    /// The head after the groups in `buffer` (`head` until they are flushed).
    buffer_head: (Seq, ChainHash),
    pub(super) poisoned: bool,
    pub(super) recovery: Option<Recovery>,
    /// What `LEDGER/HEAD` said when the log was opened (`None`: no head
    /// file, a ledger written before it existed).
    opened_head: Option<DurableHead>,
    /// Whether this open created the head file (an older ledger's first
    /// read-write open by this build).
    head_created: bool,
    /// Read-write handles: the head file and the generation last written.
    head_file: Option<HeadFile>,
    /// Read-write handles: the lock on the ledger directory itself, then
    /// on `LOCK` (which builds before the directory lock take).
    dir_lock: Option<IoLock>,
    _file_lock: Option<IoLock>,
}

impl<I: Io> std::fmt::Debug for Log<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("root", &self.root)
            .field("head", &self.head)
            .field("segments", &self.segments.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

fn exists<I: Io>(io: &I, p: &Path) -> Result<bool> {
    io.exists(p).map_err(io_err("stat", p))
}

impl<I: Io> Log<I> {
    /// The last appended sequence number and the chain value after it
    /// (`Seq(0)` and the genesis value for an empty log). In
    /// [`Durability::Buffered`] mode this includes groups not yet synced.
    /// On a poisoned handle it is the last head acknowledged before the
    /// failure; only a reopen tells what is durable.
    pub fn head(&self) -> (Seq, ChainHash) {
        (self.head, self.chain)
    }

    /// The last sequence number known to be durable.
    pub fn durable_head(&self) -> Seq {
        self.durable_head
    }

    /// The ledger's id.
    pub fn ledger_id(&self) -> LedgerId {
        self.ledger
    }

    /// The [`Io`] the log reads and writes through.
    pub fn io(&self) -> &I {
        &self.io
    }

    /// The ledger directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the durable head file (`LEDGER/HEAD`) said when the log was
    /// opened; `None` if there was none (a ledger written before it; a
    /// read-write open creates it, see [`Log::head_created`]).
    pub fn opened_head(&self) -> Option<DurableHead> {
        self.opened_head
    }

    /// Whether this (read-write) open created the durable head file,
    /// because the ledger was written by a build before it.
    pub fn head_created(&self) -> bool {
        self.head_created
    }

    /// The torn tail this open found (and, if read-write, quarantined and cut).
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Whether an I/O failure has poisoned this handle.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    pub(super) fn check_readable(&self) -> Result<()> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        Ok(())
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        self.check_readable()?;
        if self.opts.read_only {
            return Err(StorageError::ReadOnly);
        }
        Ok(())
    }

    /// Runs a mutating I/O step; any failure poisons the handle.
    pub(super) fn step<T>(
        &mut self,
        op: &'static str,
        path: &Path,
        r: std::io::Result<T>,
    ) -> Result<T> {
        r.map_err(|e| {
            self.poisoned = true;
            StorageError::io(op, path, e)
        })
    }
}
