//! `verify`: walk every frame, the whole chain and every snapshot, and report
//! what is wrong with file, byte offset and seq.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::head::DurableHead;
use super::io::Io;
use super::log::{Log, QUARANTINE_DIR, SNAP_DIR};
use super::options::LogOptions;
use super::snapshot;
use super::types::{ChainHash, Seq, SnapshotKey};

/// What kind of problem a [`Finding`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// The log is damaged before its tail (or unreadable by this version):
    /// it cannot be trusted past this point.
    Corrupt,
    /// The last segment ends in a torn tail that no read-write open has cut
    /// off yet (a crash, or damage/truncation of the final frames).
    TornTail,
    /// A tail cut off by an earlier recovery, kept in `quarantine/`.
    Quarantined,
    /// A snapshot file is damaged or does not match the log.
    Snapshot,
    /// Not damage (a note): bytes after the last acknowledged commit (a
    /// write in progress, or the torn tail of a crash that the next writer
    /// cuts), a snapshot that cannot be authenticated (no key, or an older
    /// format) or that was written or removed while `verify` ran, or a
    /// ledger without a durable head file (written by an older build).
    Note,
}

impl FindingKind {
    /// The kind's name in JSON and in Python (`corrupt`, `torn_tail`,
    /// `quarantined`, `snapshot`, `note`): one spelling for every front door.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Corrupt => "corrupt",
            FindingKind::TornTail => "torn_tail",
            FindingKind::Quarantined => "quarantined",
            FindingKind::Snapshot => "snapshot",
            FindingKind::Note => "note",
        }
    }
}

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// The file concerned.
    pub file: PathBuf,
    /// Byte offset in `file` where the problem starts.
    pub offset: u64,
    /// The sequence number concerned, if known.
    pub seq: Option<Seq>,
    /// What is wrong, in words.
    pub what: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FindingKind::Corrupt => "corrupt",
            FindingKind::TornTail => "torn tail",
            FindingKind::Quarantined => "quarantined",
            FindingKind::Snapshot => "bad snapshot",
            FindingKind::Note => "note",
        };
        write!(f, "{kind}: {} at byte {}", self.file.display(), self.offset)?;
        if let Some(s) = self.seq {
            write!(f, " (seq {s})")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// The result of [`verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The verified head (`None` if the log is corrupt before its end).
    pub head: Option<(Seq, ChainHash)>,
    /// Segment files verified.
    pub segments: u64,
    /// Snapshots that verified and match the log.
    pub snapshots_ok: u64,
    /// Problems, the first log damage first.
    pub findings: Vec<Finding>,
    /// Observations that are not damage ([`FindingKind::Note`]).
    pub notes: Vec<Finding>,
    /// What the durable head file said, if there is one.
    pub durable: Option<DurableHead>,
}

impl VerifyReport {
    /// No findings (notes are not findings).
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first finding of kind [`FindingKind::Corrupt`].
    pub fn first_damage(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.kind == FindingKind::Corrupt)
    }

    /// Process exit code for a command-line tool: 0 if clean, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.is_clean())
    }
}

fn finding_from(kind: FindingKind, e: StorageError, fallback: &Path) -> Result<Finding> {
    Ok(match e {
        StorageError::Corrupt {
            file,
            offset,
            seq,
            what,
        } => Finding {
            kind,
            file,
            offset,
            seq,
            what,
        },
        StorageError::UnsupportedVersion { file, version } => Finding {
            kind,
            file,
            offset: 8,
            seq: None,
            what: format!("unsupported format version {version}"),
        },
        StorageError::SnapshotMismatch { file, seq, what } => Finding {
            kind,
            file,
            offset: 32,
            seq: Some(seq),
            what,
        },
        StorageError::Io { .. } => return Err(e),
        other => Finding {
            kind,
            file: fallback.to_path_buf(),
            offset: 0,
            seq: None,
            what: other.to_string(),
        },
    })
}

/// Verifies the ledger at `root` without modifying anything (no lock
/// taken), without a snapshot key: snapshots are checked against the log but
/// not authenticated (see [`verify_keyed`]).
pub fn verify<I: Io>(io: &I, root: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_keyed(io, root, None)
}

fn note(file: PathBuf, offset: u64, seq: Option<Seq>, what: String) -> Finding {
    Finding {
        kind: FindingKind::Note,
        file,
        offset,
        seq,
        what,
    }
}

/// Verifies the ledger at `root` without modifying anything (no lock taken),
/// up to its last acknowledged commit: with a durable head file, bytes after
/// it are a write in progress (or a crash's torn tail) and only noted, so
/// `verify` run beside a healthy writer reports nothing. Snapshots are
/// authenticated with `key` when given.
///
/// Returns `Err` only if the ledger cannot be read at all (missing, I/O
/// error); damage is reported as [`Finding`]s.
pub fn verify_keyed<I: Io>(
    io: &I,
    root: impl AsRef<Path>,
    key: Option<&SnapshotKey>,
) -> Result<VerifyReport> {
    let root = root.as_ref();
    let mut report = VerifyReport::default();
    let open = || Log::open(io, root, LogOptions::new().read_only(true));
    let log = match open() {
        Ok(log) => Some(log),
        Err(e @ (StorageError::Io { .. } | StorageError::NoLedger { .. })) => return Err(e),
        Err(e) => {
            report
                .findings
                .push(finding_from(FindingKind::Corrupt, e, root)?);
            None
        }
    };
    if let Some(log) = &log {
        report.head = Some(log.head());
        report.segments = log.segments.len() as u64;
        report.durable = log.opened_head();
        if log.opened_head().is_none() {
            report.notes.push(note(
                root.join(super::HEAD_FILE),
                0,
                None,
                "no durable head file (a ledger written by an older optout): a cut at the end of the log \
                 cannot be told from a torn tail until a writer of this version opens it"
                    .into(),
            ));
        }
        if let Some(t) = log.recovery() {
            let f = Finding {
                kind: FindingKind::TornTail,
                file: t.segment.clone(),
                offset: t.truncated_at,
                seq: Some(Seq(log.head().0 .0 + 1)),
                what: format!(
                    "{} bytes after the last committed frame ({:?})",
                    t.bytes, t.reason
                ),
            };
            // With a durable head, the open proved that the tail lies after
            // every acknowledged commit: never damage.
            if log.opened_head().is_some() {
                report.notes.push(Finding {
                    kind: FindingKind::Note,
                    what: format!(
                        "{} bytes after the last acknowledged commit ({:?}): a write in progress, \
                         or the torn tail of a crash, which the next writer moves to quarantine/",
                        t.bytes, t.reason
                    ),
                    ..f
                });
            } else {
                report.findings.push(f);
            }
        }
        let mut newer: Option<Log<&I>> = None;
        for (name_seq, path) in snapshot::list(io, &root.join(SNAP_DIR))? {
            let r = snapshot::read(
                io,
                &path,
                name_seq,
                &log.ledger,
                key,
                true,
                snapshot::Check::All,
            );
            let s = match r {
                Ok(s) => s,
                Err(StorageError::Io { ref source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    report.notes.push(note(
                        path,
                        0,
                        Some(name_seq),
                        "removed while verify ran (a writer pruned it)".into(),
                    ));
                    continue;
                }
                Err(StorageError::SnapshotUnauthenticated { file, what }) => {
                    report.notes.push(note(
                        file,
                        8,
                        Some(name_seq),
                        format!("not used by opens: {what}"),
                    ));
                    continue;
                }
                Err(e) => {
                    report
                        .findings
                        .push(finding_from(FindingKind::Snapshot, e, &path)?);
                    continue;
                }
            };
            let mut pin = log.check_pin(&path, s.seq, &s.chain_head);
            if pin.is_err() && s.seq > log.head().0 {
                // Written after the scan by a writer running beside us:
                // check it against the log as it is now.
                if newer.is_none() {
                    newer = open().ok();
                }
                if let Some(n) = &newer {
                    pin = n.check_pin(&path, s.seq, &s.chain_head);
                }
            }
            match pin {
                Ok(()) => {
                    report.snapshots_ok += 1;
                    if !s.authenticated {
                        report.notes.push(note(
                            path,
                            0,
                            Some(s.seq),
                            "not authenticated (no subject key given): checked against the log only".into(),
                        ));
                    }
                }
                Err(e) => report
                    .findings
                    .push(finding_from(FindingKind::Snapshot, e, &path)?),
            }
        }
    }
    let qdir = root.join(QUARANTINE_DIR);
    if io
        .exists(&qdir)
        .map_err(|e| StorageError::io("stat", &qdir, e))?
    {
        if let Err(e) = super::io::refuse_symlink(io, &qdir) {
            report.findings.push(Finding {
                kind: FindingKind::Corrupt,
                file: qdir.clone(),
                offset: 0,
                seq: None,
                what: e.to_string(),
            });
            return Ok(report);
        }
        let mut names = io
            .list_dir(&qdir)
            .map_err(|e| StorageError::io("list", &qdir, e))?;
        names.sort();
        for name in names {
            let file = qdir.join(&name);
            let bytes = io
                .file_len(&file)
                .map_err(|e| StorageError::io("stat", &file, e))?;
            report.findings.push(Finding {
                kind: FindingKind::Quarantined,
                file,
                offset: 0,
                seq: None,
                what: format!("{bytes} bytes cut from a torn tail by an earlier recovery"),
            });
        }
    }
    Ok(report)
}
