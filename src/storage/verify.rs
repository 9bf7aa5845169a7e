//! `verify`: walk every frame, the whole chain and every snapshot, and report
//! what is wrong with file, byte offset and seq.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::io::Io;
use super::log::{Log, QUARANTINE_DIR, SNAP_DIR};
use super::options::LogOptions;
use super::snapshot;
use super::types::{ChainHash, Seq};

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
}

impl VerifyReport {
    /// No findings at all.
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

/// Verifies the ledger at `root` without modifying anything (no lock taken).
///
/// Returns `Err` only if the ledger cannot be read at all (missing, I/O
/// error); damage is reported as [`Finding`]s.
pub fn verify<I: Io>(io: &I, root: impl AsRef<Path>) -> Result<VerifyReport> {
    let root = root.as_ref();
    let mut report = VerifyReport::default();
    let log = match Log::open(io, root, LogOptions::new().read_only(true)) {
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
        if let Some(t) = log.recovery() {
            report.findings.push(Finding {
                kind: FindingKind::TornTail,
                file: t.segment.clone(),
                offset: t.truncated_at,
                seq: Some(Seq(log.head().0 .0 + 1)),
                what: format!(
                    "{} bytes after the last committed frame ({:?})",
                    t.bytes, t.reason
                ),
            });
        }
        for (name_seq, path) in snapshot::list(io, &root.join(SNAP_DIR))? {
            let r = snapshot::read(io, &path, name_seq, &log.ledger)
                .and_then(|s| log.check_pin(&path, s.seq, &s.chain_head));
            match r {
                Ok(()) => report.snapshots_ok += 1,
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
