//! Creating and opening a ledger: the log options, the first entry,
//! replay from the newest usable snapshot, and what opening must report.

use super::*;

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
            Some(id) => o.ledger_id(LedgerId::from_bytes(id)),
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
            return Err(LedgerError::Exists {
                path: path.to_path_buf(),
            }
            .into());
        }
        let mut l = Ledger {
            log,
            index: Index::new(),
            keyer: Some(keyer.clone()),
            path: path.to_path_buf(),
            read_only: false,
            snapshot_note: None,
            notes: Vec::new(),
            digests: None,
            auto: autosnap::Auto {
                since: 0,
                after: opts.auto_snapshot,
            },
            head: Default::default(),
        };
        // A new ledger knows one purpose, ai-training, declared by its
        // init (no entry: see `Ledger::purposes`).
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
            // Format 3: the large columns are used in place in the mapped
            // file. Format 2: decoding from the owned payload hands it back
            // to the allocator section by section (a lower peak).
            Some(s) => match (s.seq, s.path.clone(), Index::from_snapshot(s)) {
                (seq, _, Ok(ix)) if ix.seq() == seq => ix,
                (_, path, Ok(_)) => {
                    snapshot_note = Some(format!(
                        "{}: snapshot state is not at its seq; replayed the log",
                        path.display()
                    ));
                    Index::new()
                }
                (_, path, Err(e)) => {
                    snapshot_note = Some(format!(
                        "{}: snapshot does not decode ({e}); replayed the log",
                        path.display()
                    ));
                    Index::new()
                }
            },
            None => Index::new(),
        };
        notes.extend(snapshot_note.clone());
        let from = Seq(index.seq().0 + 1);
        let mut replayed = 0u64;
        let mut since = 0u64;
        log.replay(from, |seq, payload| -> Result<()> {
            let entry: Entry = codec::decode(payload).map_err(|e| {
                LedgerError::Damaged(format!(
                    "{}: log entry at seq {seq} does not decode: {e}",
                    path.display()
                ))
            })?;
            index.apply_unfrozen(seq, &entry)?;
            replayed += 1;
            since += autosnap::weight(&entry);
            Ok(())
        })?;
        index.freeze();
        if let (Some(k), Some(fp)) = (&keyer, index.key_fingerprint()) {
            if k.fingerprint() != fp {
                return Err(LedgerError::KeyMismatch {
                    path: path.to_path_buf(),
                }
                .into());
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
            digests: None,
            auto: autosnap::Auto {
                since,
                after: opts.auto_snapshot,
            },
            head: Default::default(),
        };
        if !l.read_only && replayed > SNAPSHOT_AFTER_REPLAY && l.keyer.is_some() {
            l.snapshot()?;
        }
        Ok(l)
    }
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
