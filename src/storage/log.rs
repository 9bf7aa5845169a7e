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

/// What the durable head file says about the log a scan found.
enum HeadCheck {
    /// No head file, and nothing says there should be one (a ledger
    /// written before it existed, or one being created).
    Missing,
    /// The head file and its generation; the log holds at least up to it
    /// (its chain value at the head's seq is still to be checked).
    Found(u64, DurableHead),
}

/// Checks a scan against the durable head: every acknowledged frame must
/// be there. A log ending before the durable head (a damaged, zeroed or
/// truncated frame, a deleted segment) is [`StorageError::Corrupt`], never
/// a torn tail: the torn tail of a crash only ever holds bytes after it.
fn check_head(
    log_dir: &Path,
    scan: &Scan,
    stored: Option<(u64, LedgerId, DurableHead)>,
    head_path: &Path,
) -> Result<HeadCheck> {
    let Some((generation, id, d)) = stored else {
        if scan.head.0 > 0 && scan.segments.iter().any(|s| s.version >= 2) {
            return Err(StorageError::corrupt(
                head_path,
                0,
                None,
                format!(
                    "the durable head file is missing, but the log (seq {}) was written by a build that keeps it: \
                     it was deleted, and acknowledged entries after seq {} may be gone",
                    scan.head, scan.head
                ),
            ));
        }
        return Ok(HeadCheck::Missing);
    };
    if scan.ledger.is_some_and(|l| l != id) {
        return Err(StorageError::corrupt(
            head_path,
            16,
            None,
            "the durable head belongs to another ledger",
        ));
    }
    if d.seq <= scan.head {
        return Ok(HeadCheck::Found(generation, d));
    }
    // Acknowledged entries are missing: say where.
    let first_lost = Seq(scan.head.0 + 1);
    let seg = segment::path(log_dir, d.segment);
    let lost = if first_lost == d.seq {
        format!("seq {first_lost} was")
    } else {
        format!("seqs {first_lost} to {} were", d.seq)
    };
    let acked = format!(
        "{lost} acknowledged (the durable head: up to byte {} of segment {})",
        d.end, d.segment
    );
    let err = match (scan.segments.iter().find(|s| s.number == d.segment), &scan.tail) {
        (None, _) => StorageError::corrupt(
            &seg,
            0,
            Some(first_lost),
            format!("{acked}, but the segment is missing or cut: the log was truncated or rolled back"),
        ),
        (Some(_), Some(t)) if t.segment == seg => StorageError::corrupt(
            &seg,
            t.truncated_at,
            Some(first_lost),
            format!(
                "{acked}, but their frames are damaged here ({:?}, {} bytes to the end): acknowledged data, not a torn tail",
                t.reason, t.bytes
            ),
        ),
        (Some(s), _) => StorageError::corrupt(
            &seg,
            s.end,
            Some(first_lost),
            format!("{acked}, but the segment ends here: it was truncated or replaced"),
        ),
    };
    Err(err)
}

impl<I: Io> Log<I> {
    /// Opens (and, with [`LogOptions::create`], creates) the ledger at `root`,
    /// verifying every segment, frame and chain link; with a snapshot key and
    /// an authenticated format 3 snapshot, only segment headers before the
    /// segment holding its seq, and every frame from there on
    /// (docs/FORMAT.md, "Anchored open"; `verify` still reads everything).
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
        let head_path = head::path(&root);
        let no_ledger = || StorageError::NoLedger { path: root.clone() };
        let (mut dir_lock, mut file_lock) = (None, None);
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
            // The directory itself is the lock that cannot be deleted from
            // under its holder; `LOCK` is still taken for older builds.
            dir_lock = Some(
                io.try_lock(&root)
                    .map_err(io_err("lock", &root))?
                    .ok_or_else(|| StorageError::Locked { path: root.clone() })?,
            );
            let lock_path = root.join(LOCK_FILE);
            refuse_symlink(&io, &lock_path)?;
            file_lock = Some(
                io.try_lock(&lock_path)
                    .map_err(io_err("lock", &lock_path))?
                    .ok_or(StorageError::Locked { path: lock_path })?,
            );
            if !opts.create && !exists(&io, &log_dir)? {
                return Err(no_ledger());
            }
            for d in [LOG_DIR, SNAP_DIR, QUARANTINE_DIR] {
                let p = root.join(d);
                refuse_symlink(&io, &p)?;
                io.create_dir(&p).map_err(io_err("create dir", &p))?;
            }
            io.sync_dir(&root).map_err(io_err("sync dir", &root))?;
        }
        for d in [LOG_DIR, SNAP_DIR, QUARANTINE_DIR] {
            refuse_symlink(&io, &root.join(d))?;
        }

        // The durable head is read before the log: a writer fsyncs frames
        // before it writes the head that covers them, so whatever head is
        // read here, the frames up to it are already in the files.
        let stored = head::read(&io, &root)?;
        // An authenticated snapshot at or before the durable head vouches
        // for the log up to its seq: only what follows is read frame by frame.
        let anchor = match (stored, opts.snapshot_key.as_ref()) {
            (Some((_, id, d)), Some(key)) => {
                super::snapshot::trusted_anchor(&io, &root.join(SNAP_DIR), &id, key, d.seq)
            }
            _ => None,
        };
        let mut scan = recovery::scan(&io, &log_dir, anchor)?;
        if scan.ledger.is_none() {
            if let Some((_, _, d)) = stored.filter(|s| s.2.seq.0 > 0) {
                return Err(StorageError::corrupt(
                    segment::path(&log_dir, 1),
                    0,
                    Some(Seq(1)),
                    format!(
                        "the log is empty, but the durable head says seq {} was acknowledged",
                        d.seq
                    ),
                ));
            }
        }
        let checked = check_head(&log_dir, &scan, stored, &head_path)?;
        if let Some(tail) = scan.tail.as_mut().filter(|_| !opts.read_only) {
            quarantine::quarantine_tail(&io, &root.join(QUARANTINE_DIR), tail)?;
        }
        let ledger = match scan.ledger.or(stored.map(|s| s.1)) {
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
        let opened_head = match &checked {
            HeadCheck::Found(_, d) => Some(*d),
            HeadCheck::Missing => None,
        };
        let mut log = Log {
            io,
            root,
            opts,
            ledger,
            key,
            segments: scan.segments,
            offsets: scan.offsets,
            offsets_base: scan.base,
            head: scan.head,
            chain: scan.chain,
            durable_head: scan.head,
            buffer: Vec::new(),
            buffer_head: (scan.head, scan.chain),
            poisoned: false,
            recovery: scan.tail,
            opened_head,
            head_created: false,
            head_file: None,
            dir_lock,
            _file_lock: file_lock,
        };
        if let Some(d) = opened_head {
            // The log reaches the durable head's seq: it must be the same
            // history there (a segment replaced by a fork is not).
            let c = log.chain_at(d.seq)?;
            if c != d.chain {
                let at = match d.seq.0 {
                    0 => (segment::path(&log_dir, 1), 0),
                    _ => (log.segment_of(d.seq).path.clone(), log.offset(d.seq)?),
                };
                return Err(StorageError::corrupt(
                    at.0,
                    at.1,
                    Some(d.seq),
                    "the chain value differs from the durable head's: the log was replaced (a fork) or rewritten",
                ));
            }
        }
        if !log.opts.read_only {
            super::snapshot::remove_temp_files(&log.io, &log.root.join(SNAP_DIR))?;
            head::remove_temp(&log.io, &log.root)?;
            match log.segments.last() {
                None => log.start_segment(1)?,
                Some(last) => {
                    // What we verified may be only in the page cache (e.g. a
                    // previous handle's fsync failed): make it durable before
                    // anything is appended after it (and before the head
                    // file says it was acknowledged).
                    let p = last.path.clone();
                    log.io.sync_file(&p).map_err(io_err("sync", &p))?;
                    log.io
                        .sync_dir(&log_dir)
                        .map_err(io_err("sync dir", &log_dir))?;
                }
            }
            let now = log.position((log.head, log.chain));
            match checked {
                HeadCheck::Missing => {
                    log.head_file = Some(head::create(&log.io, &log.root, &log.ledger, &now)?);
                    log.head_created = true;
                }
                HeadCheck::Found(generation, d) => {
                    log.head_file = Some(HeadFile {
                        path: head_path,
                        generation,
                    });
                    if d != now {
                        log.write_head(now)?;
                    }
                }
            }
        }
        Ok(log)
    }

    /// `(seq, chain)` placed at the end of the written part of the active
    /// segment: what the head file says once everything written is synced.
    fn position(&self, (seq, chain): (Seq, ChainHash)) -> DurableHead {
        let (segment, end) = self
            .segments
            .last()
            .map_or((1, segment::HEADER_LEN), |s| (s.number, s.end));
        DurableHead {
            seq,
            chain,
            segment,
            end,
        }
    }

    /// Writes `h` into the head file's next slot and fdatasyncs it (the
    /// file never changes length). Any failure poisons the handle.
    fn write_head(&mut self, h: DurableHead) -> Result<()> {
        let Some(f) = &self.head_file else {
            return Ok(());
        };
        let (offset, bytes) = f.next_slot(&self.ledger, &h);
        let path = f.path.clone();
        let r = self.io.write_at(&path, offset, &bytes);
        self.step("write", &path, r)?;
        let r = self.io.sync_data(&path);
        self.step("sync", &path, r)?;
        if let Some(f) = &mut self.head_file {
            f.generation += 1;
        }
        Ok(())
    }

    /// Refuses (and poisons the handle) if the ledger directory is no
    /// longer the one this handle locked, e.g. it was moved away and
    /// another ledger created at its path: writes by path would go there.
    pub(super) fn check_root(&mut self) -> Result<()> {
        let Some(lock) = &self.dir_lock else {
            return Ok(());
        };
        let r = self.io.lock_is_current(lock, &self.root);
        if !self.step("stat", &self.root.clone(), r)? {
            self.poisoned = true;
            return Err(StorageError::Replaced {
                path: self.root.clone(),
                what: "the ledger directory was moved, removed or replaced under this writer"
                    .into(),
            });
        }
        Ok(())
    }

    /// Refuses (and poisons the handle) unless `path` is still the file
    /// this handle wrote, `expect_len` bytes long (when given): a segment
    /// or head file replaced, or written by another process, is never
    /// written over or acknowledged.
    fn check_file(&mut self, path: &Path, expect_len: Option<u64>) -> Result<()> {
        let r = self.io.is_current(path);
        let same = self.step("stat", path, r)?;
        let len_ok = match expect_len {
            None => true,
            Some(n) => {
                let r = self.io.file_len(path);
                self.step("stat", path, r)? == n
            }
        };
        if !same || !len_ok {
            self.poisoned = true;
            return Err(StorageError::Replaced {
                path: path.to_path_buf(),
                what: if same {
                    "the file changed length under this writer (another process wrote to the log)"
                        .into()
                } else {
                    "the file was removed or replaced under this writer".into()
                },
            });
        }
        Ok(())
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
        let last = Seq(first.0 + payloads.len() as u64 - 1);
        self.buffer_head = (last, chain_v);
        if self.opts.durability == Durability::Fsync || self.buffer.len() >= self.opts.buffer_limit
        {
            self.flush()?;
        }
        // Acknowledge.
        self.offsets.extend(rel.into_iter().map(|r| base + r));
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

    /// Writes the buffer to the active segment with one write and one
    /// fsync, then the head file (one write, one fdatasync): only then is
    /// anything in the buffer acknowledged. First checks that the directory,
    /// the segment and the head file are still the ones this handle owns.
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
        self.check_root()?;
        self.check_file(&path, Some(end))?;
        if let Some(hp) = self.head_file.as_ref().map(|f| f.path.clone()) {
            self.check_file(&hp, None)?;
        }
        let r = self.io.write_at(&path, end, &self.buffer);
        self.step("write", &path, r)?;
        let r = self.io.sync_file(&path);
        self.step("sync", &path, r)?;
        let n = self.buffer.len() as u64;
        if let Some(active) = self.segments.last_mut() {
            active.end += n;
        }
        self.buffer.clear();
        let h = self.position(self.buffer_head);
        self.write_head(h)?;
        // Still ours after the writes: only then acknowledge them.
        self.check_root()
    }

    /// Creates segment `number` (starting after `head`) durably: file,
    /// header, fsync, directory fsync. Only then may frames in it be
    /// acknowledged.
    fn start_segment(&mut self, number: u64) -> Result<()> {
        self.check_root()?;
        let log_dir = self.root.join(LOG_DIR);
        let path = segment::path(&log_dir, number);
        if let Some(prev) = self.segments.last() {
            self.io.release(&prev.path);
        }
        let header = SegmentHeader {
            version: segment::LOG_VERSION,
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
            version: header.version,
            path,
            first_seq: header.first_seq,
            end: segment::HEADER_LEN,
            lazy_offsets: None,
        });
        Ok(())
    }
}
