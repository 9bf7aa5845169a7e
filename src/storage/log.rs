//! [`Log`]: opening (with recovery), appending atomic groups, rotation, sync.
//!
//! Invariants of a writable handle:
//! * `segments.last()` is the active segment; `end` of every segment is the
//!   number of bytes written *and fsynced* to it; the active segment's file
//!   is exactly `end` bytes long.
//! * `buffer` holds encoded frames (whole groups) that logically follow
//!   `end` of the active segment and are not yet written ([`Durability::Buffered`]).
//! * `offsets[s - 1]` is the offset of seq `s` in its segment, for every
//!   `s <= head`; `chain` is the chain value after `head`.
//! * Once `poisoned` is set no method touches the disk again.

use std::path::{Path, PathBuf};

use super::chain;
use super::error::{Result, StorageError};
use super::frame::{self, FLAG_COMMIT};
use super::fs::FsIo;
use super::io::{Io, IoLock};
use super::options::{Durability, LogOptions};
use super::quarantine;
use super::recovery::{self, Recovery, SegmentMeta};
use super::segment::{self, SegmentHeader};
use super::types::{ChainHash, LedgerId, Seq, SeqRange};

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
    pub(super) head: Seq,
    pub(super) chain: ChainHash,
    pub(super) durable_head: Seq,
    pub(super) buffer: Vec<u8>,
    pub(super) poisoned: bool,
    pub(super) recovery: Option<Recovery>,
    _lock: Option<IoLock>,
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
    /// Opens (and, with [`LogOptions::create`], creates) the ledger at `root`,
    /// verifying every segment, frame and chain link.
    ///
    /// A read-write open takes the lock `root/LOCK` ([`StorageError::Locked`]
    /// if another writer holds it), moves a torn tail of the last segment to
    /// `root/quarantine/` and cuts it off (see [`Log::recovery`]), and makes
    /// the surviving log durable before returning. Damage anywhere else is
    /// [`StorageError::Corrupt`]. A read-only open verifies the same way but
    /// takes no lock and writes nothing.
    pub fn open(io: I, root: impl AsRef<Path>, opts: LogOptions) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let log_dir = root.join(LOG_DIR);
        let no_ledger = || StorageError::NoLedger { path: root.clone() };
        let mut lock = None;
        if opts.read_only {
            if !exists(&io, &log_dir)? {
                return Err(no_ledger());
            }
        } else {
            if !exists(&io, &root)? {
                if !opts.create {
                    return Err(no_ledger());
                }
                io.create_dir(&root).map_err(io_err("create dir", &root))?;
            }
            // Unconditionally: an earlier open may have created `root` and
            // failed before this sync, leaving its entry not yet durable.
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                io.sync_dir(parent).map_err(io_err("sync dir", parent))?;
            }
            let lock_path = root.join(LOCK_FILE);
            lock = Some(
                io.try_lock(&lock_path)
                    .map_err(io_err("lock", &lock_path))?
                    .ok_or(StorageError::Locked { path: lock_path })?,
            );
            if !opts.create && !exists(&io, &log_dir)? {
                return Err(no_ledger());
            }
            for d in [LOG_DIR, SNAP_DIR, QUARANTINE_DIR] {
                let p = root.join(d);
                io.create_dir(&p).map_err(io_err("create dir", &p))?;
            }
            io.sync_dir(&root).map_err(io_err("sync dir", &root))?;
        }

        let mut scan = recovery::scan(&io, &log_dir)?;
        if let Some(tail) = scan.tail.as_mut().filter(|_| !opts.read_only) {
            quarantine::quarantine_tail(&io, &root.join(QUARANTINE_DIR), tail)?;
        }
        let ledger = match scan.ledger {
            Some(id) => id,
            None if opts.read_only || !opts.create => return Err(no_ledger()),
            None => match opts.ledger_id {
                Some(id) => id,
                None => LedgerId::random().map_err(|e| {
                    StorageError::io("random", &root, std::io::Error::other(e.to_string()))
                })?,
            },
        };
        let key = chain::chain_key(&ledger);
        if scan.segments.is_empty() {
            scan.chain = chain::genesis(&key, &ledger);
        }
        let mut log = Log {
            io,
            root,
            opts,
            ledger,
            key,
            segments: scan.segments,
            offsets: scan.offsets,
            head: scan.head,
            chain: scan.chain,
            durable_head: scan.head,
            buffer: Vec::new(),
            poisoned: false,
            recovery: scan.tail,
            _lock: lock,
        };
        if !log.opts.read_only {
            super::snapshot::remove_temp_files(&log.io, &log.root.join(SNAP_DIR))?;
            match log.segments.last() {
                None => log.start_segment(1)?,
                Some(last) => {
                    // What we verified may be only in the page cache (e.g. a
                    // previous handle's fsync failed): make it durable before
                    // anything is appended after it.
                    let p = last.path.clone();
                    log.io.sync_file(&p).map_err(io_err("sync", &p))?;
                    log.io
                        .sync_dir(&log_dir)
                        .map_err(io_err("sync dir", &log_dir))?;
                }
            }
        }
        Ok(log)
    }

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

    /// The ledger directory.
    pub fn root(&self) -> &Path {
        &self.root
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

    /// Appends `payloads` as one atomic group with consecutive sequence
    /// numbers; after a crash either all of them are in the log or none.
    ///
    /// Returns when the group is durable ([`Durability::Fsync`]) or buffered
    /// ([`Durability::Buffered`]). Any I/O failure poisons the handle: the
    /// group is not acknowledged, and every later call returns
    /// [`StorageError::Poisoned`] until the log is reopened.
    pub fn append_group(&mut self, payloads: &[&[u8]]) -> Result<SeqRange> {
        self.check_writable()?;
        if payloads.is_empty() {
            return Err(StorageError::EmptyGroup);
        }
        let mut total = 0usize;
        for p in payloads {
            if p.len() > self.opts.max_payload as usize {
                return Err(StorageError::TooLarge {
                    what: "payload",
                    len: p.len() as u64,
                    max: u64::from(self.opts.max_payload),
                });
            }
            total = total.saturating_add(p.len() + frame::OVERHEAD);
        }
        let first = Seq(self.head.0 + 1);
        let mut group = Vec::with_capacity(total);
        let mut rel = Vec::with_capacity(payloads.len());
        let mut chain_v = self.chain;
        for (i, p) in payloads.iter().enumerate() {
            let seq = Seq(first.0 + i as u64);
            let flags = if i + 1 == payloads.len() {
                FLAG_COMMIT
            } else {
                0
            };
            chain_v = chain::step(&self.key, &chain_v, seq, flags, p);
            rel.push(group.len() as u64);
            frame::encode(&mut group, seq, flags, p, &chain_v);
        }

        // A group never spans segments: rotate first if it would overflow a
        // segment that already holds frames.
        let used = self.active_end() + self.buffer.len() as u64;
        if used > segment::HEADER_LEN && used + group.len() as u64 > self.opts.segment_size {
            self.flush()?;
            self.durable_head = self.head;
            let next = self.segments.last().map_or(1, |s| s.number + 1);
            self.start_segment(next)?;
        }
        let base = self.active_end() + self.buffer.len() as u64;
        if self.buffer.is_empty() && self.opts.durability == Durability::Fsync {
            self.buffer = group;
        } else {
            self.buffer.extend_from_slice(&group);
        }
        if self.opts.durability == Durability::Fsync || self.buffer.len() >= self.opts.buffer_limit
        {
            self.flush()?;
        }
        // Acknowledge.
        self.offsets.extend(rel.into_iter().map(|r| base + r));
        let last = Seq(first.0 + payloads.len() as u64 - 1);
        self.head = last;
        self.chain = chain_v;
        if self.buffer.is_empty() {
            self.durable_head = last;
        }
        Ok(SeqRange { first, last })
    }

    /// Makes every appended group durable (writes and fsyncs the buffer).
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        self.durable_head = self.head;
        Ok(())
    }

    pub(super) fn active_end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end)
    }

    /// Writes the buffer to the active segment with one write and one fsync.
    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(active) = self.segments.last() else {
            return Err(StorageError::NoLedger {
                path: self.root.clone(),
            });
        };
        let (path, end) = (active.path.clone(), active.end);
        let r = self.io.write_at(&path, end, &self.buffer);
        self.step("write", &path, r)?;
        let r = self.io.sync_file(&path);
        self.step("sync", &path, r)?;
        let n = self.buffer.len() as u64;
        if let Some(active) = self.segments.last_mut() {
            active.end += n;
        }
        self.buffer.clear();
        Ok(())
    }

    /// Creates segment `number` (starting after `head`) durably: file,
    /// header, fsync, directory fsync. Only then may frames in it be
    /// acknowledged.
    fn start_segment(&mut self, number: u64) -> Result<()> {
        let log_dir = self.root.join(LOG_DIR);
        let path = segment::path(&log_dir, number);
        if let Some(prev) = self.segments.last() {
            self.io.release(&prev.path);
        }
        let header = SegmentHeader {
            ledger: self.ledger,
            number,
            first_seq: Seq(self.head.0 + 1),
            prev_chain: self.chain,
        };
        let r = self.io.create_file(&path);
        self.step("create", &path, r)?;
        let r = self.io.write_at(&path, 0, &header.encode());
        self.step("write", &path, r)?;
        let r = self.io.sync_file(&path);
        self.step("sync", &path, r)?;
        let r = self.io.sync_dir(&log_dir);
        self.step("sync dir", &log_dir, r)?;
        self.segments.push(SegmentMeta {
            number,
            path,
            first_seq: header.first_seq,
            end: segment::HEADER_LEN,
        });
        Ok(())
    }
}
