//! Opening a [`Log`]: the scan of every segment (or the anchored scan
//! after a trusted snapshot), the check against the durable head, torn-tail
//! recovery, and making the survivors durable.

use super::*;

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
                crate::storage::snapshot::trusted_anchor(&io, &root.join(SNAP_DIR), &id, key, d.seq)
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
            crate::storage::snapshot::remove_temp_files(&log.io, &log.root.join(SNAP_DIR))?;
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
}
