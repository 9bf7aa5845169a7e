//! `verify`: the whole ledger checked from its bytes up.
//!
//! 1. the storage layer walks every segment, frame and chain link and every
//!    snapshot (file, byte offset and seq of the first damage);
//! 2. every entry is decoded and folded into a fresh index from seq 1, so an
//!    entry that is well-framed but meaningless is found too;
//! 3. the newest valid snapshot is compared byte for byte with the index
//!    replayed up to its seq (snapshot encodings are deterministic).

use std::path::Path;

use crate::codec;
use crate::error::Result;
use crate::event::Entry;
use crate::ids::Seq;
use crate::index::Index;
use crate::pin::PinnedHead;
use crate::pseudonym::SubjectKeyer;
use crate::storage::{self, Finding, FindingKind, FsIo, Io, Log, LogOptions, VerifyReport};

/// What `verify` found.
#[derive(Debug)]
pub struct LedgerVerify {
    /// The storage-level walk (frames, chain, snapshots, quarantined tails).
    pub storage: VerifyReport,
    /// Entries decoded and folded from seq 1.
    pub entries: u64,
    /// The snapshot compared against a replay, if there was a valid one.
    pub snapshot_checked: Option<Seq>,
    /// Problems above the storage layer (undecodable entries, a snapshot
    /// that differs from the replay), with the seq involved.
    pub problems: Vec<String>,
}

impl LedgerVerify {
    /// Whether nothing at all was found.
    pub fn is_clean(&self) -> bool {
        self.storage.is_clean() && self.problems.is_empty()
    }
}

/// Verifies the ledger at `path` without modifying it (no lock taken),
/// without the subject key (snapshots are compared with a replay of the
/// log, but not authenticated).
pub fn verify_ledger(path: &Path) -> Result<LedgerVerify> {
    verify_ledger_with(&FsIo::new(), path, None, None)
}

/// [`verify_ledger_with`] on the file system: snapshots authenticated with
/// `keyer` when given, the ledger required to extend `expect` when given.
pub fn verify_ledger_keyed(
    path: &Path,
    keyer: Option<&SubjectKeyer>,
    expect: Option<&PinnedHead>,
) -> Result<LedgerVerify> {
    verify_ledger_with(&FsIo::new(), path, keyer, expect)
}

/// [`verify_ledger`] on any [`Io`], authenticating snapshots with `keyer`'s
/// snapshot key when given, and requiring the ledger to extend `expect`
/// when given (a problem otherwise). Only up to the last acknowledged
/// commit: bytes a writer running beside it has not acknowledged yet are
/// noted, not damage. Quarantined torn tails acknowledged in the log
/// (`Ledger::acknowledge_quarantine`) are notes, not findings.
pub fn verify_ledger_with<I: Io>(
    io: &I,
    path: &Path,
    keyer: Option<&SubjectKeyer>,
    expect: Option<&PinnedHead>,
) -> Result<LedgerVerify> {
    let key = keyer.map(SubjectKeyer::snapshot_key);
    let report = storage::verify_keyed(io, path, key.as_ref())?;
    let mut out = LedgerVerify {
        storage: report,
        entries: 0,
        snapshot_checked: None,
        problems: Vec::new(),
    };
    if out.storage.first_damage().is_some() {
        // The log itself is damaged: replaying it would only repeat that.
        return Ok(out);
    }
    let mut opts = LogOptions::new().create(false).read_only(true);
    if let Some(k) = key {
        opts = opts.snapshot_key(k);
    }
    let log = Log::open(io, path, opts)?;
    // Authenticated with the key when there is one; without, the newest
    // snapshot is still compared with the replay (never trusted).
    let snap = log.latest_snapshot_to_compare()?.snapshot;
    let snap_seq = snap.as_ref().map(|s| s.seq);
    let mut index = Index::new();
    let mut problems = Vec::new();
    let mut entries = 0u64;
    let r = log.replay(Seq(1), |seq, payload| -> Result<()> {
        match codec::decode::<Entry>(payload) {
            Ok(e) => {
                if let Err(err) = index.apply_unfrozen(seq, &e) {
                    problems.push(format!("seq {seq}: entry does not apply: {err}"));
                }
            }
            Err(err) => problems.push(format!("seq {seq}: entry does not decode: {err}")),
        }
        entries += 1;
        if Some(seq) == snap_seq {
            if let Some(s) = &snap {
                index.freeze();
                let same = index
                    .encodes_as(s)
                    .map_err(|e| crate::Error::Other(e.to_string()))?;
                if !same {
                    problems.push(format!(
                        "{}: snapshot at seq {seq} differs from a replay of the log",
                        s.path.display()
                    ));
                }
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        problems.push(format!("replay failed: {e}"));
    }
    if let Some(pin) = expect {
        let (head, _) = log.head();
        if let Err(e) = pin.check(log.ledger_id(), head, |s| Ok(log.chain_at(s)?)) {
            problems.push(format!("pinned head (--expect-head): {e}"));
        }
    }
    // Quarantined tails the log acknowledges (same name, length, hash).
    let acked: Vec<(std::path::PathBuf, Seq)> = storage::quarantine::list(io, path)?
        .into_iter()
        .filter_map(|f| {
            crate::ledger::acknowledged_at(index.quarantine_acks(), &f).map(|s| (f.path, s))
        })
        .collect();
    let findings = std::mem::take(&mut out.storage.findings);
    for f in findings {
        match acked.iter().find(|(p, _)| *p == f.file) {
            Some((_, s)) if f.kind == FindingKind::Quarantined => out.storage.notes.push(Finding {
                kind: FindingKind::Note,
                what: format!("{} (acknowledged at seq {s})", f.what),
                ..f
            }),
            _ => out.storage.findings.push(f),
        }
    }
    out.entries = entries;
    out.snapshot_checked = snap_seq;
    out.problems = problems;
    Ok(out)
}
