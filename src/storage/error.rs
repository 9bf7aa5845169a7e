//! Errors of the storage layer.
//!
//! Every error that points at bytes on disk carries the file and the byte
//! offset (from the start of that file), and the sequence number when one is
//! known, so a report can say exactly where the damage is.

use std::path::PathBuf;

use super::types::Seq;

/// Result type of the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// An error from the durable log, snapshots or their I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The file or directory the operation was applied to.
        path: PathBuf,
        /// The operation, e.g. `"write"`, `"sync"`, `"rename"`.
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Bytes on disk are damaged or inconsistent (bad checksum, broken hash
    /// chain, missing/duplicated/reordered segment or frame, ...).
    ///
    /// This is never returned for a torn *tail* of the last segment, which
    /// recovery cuts off and reports instead (see `Recovery`).
    #[error("corrupt ledger: {file} at byte {offset}{}: {what}", fmt_seq(*.seq))]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset from the start of `file` where the damage starts.
        offset: u64,
        /// The sequence number of the damaged (or expected) frame, if known.
        seq: Option<Seq>,
        /// What is wrong, in words.
        what: String,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("{file}: unsupported format version {version}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version number found in its header.
        version: u32,
    },

    /// Another writer holds the ledger's lock file.
    #[error("ledger is locked by another writer: {path}")]
    Locked {
        /// The lock file (`LEDGER/LOCK`).
        path: PathBuf,
    },

    /// An earlier write or fsync failed; the handle refuses all further
    /// operations because the state on disk is unknown. Reopen the log:
    /// recovery establishes what is durable.
    #[error("log handle is poisoned by an earlier I/O failure; reopen the ledger")]
    Poisoned,

    /// The handle was opened read-only.
    #[error("log handle is read-only")]
    ReadOnly,

    /// A length exceeds its limit (checked before any allocation).
    #[error("{what} is {len} bytes, limit is {max}")]
    TooLarge {
        /// What was too large, e.g. `"payload"`.
        what: &'static str,
        /// Its length in bytes.
        len: u64,
        /// The limit in bytes.
        max: u64,
    },

    /// A sequence number beyond the log's head (or 0 where 0 has no frame).
    #[error("seq {seq} is out of range (head is {head})")]
    SeqOutOfRange {
        /// The requested sequence number.
        seq: Seq,
        /// The log's head sequence number.
        head: Seq,
    },

    /// An atomic group must hold at least one payload.
    #[error("an append group must hold at least one payload")]
    EmptyGroup,

    /// There is no ledger at this path (and creation was not requested).
    #[error("no ledger at {path}")]
    NoLedger {
        /// The ledger directory.
        path: PathBuf,
    },

    /// A part of the ledger directory (`log/`, `snap/`, `quarantine/`,
    /// `HEAD`, `LOCK`, a segment or a snapshot) is a symbolic link: it
    /// would lead reads and writes outside the ledger, so it is refused.
    #[error("{path} is a symbolic link: the parts of a ledger directory must be inside it")]
    Symlink {
        /// The link.
        path: PathBuf,
    },

    /// The ledger directory, its lock or a file this writer writes was
    /// moved, removed or replaced while the handle was open (or another
    /// process wrote to the log): nothing more is written or
    /// acknowledged; the handle is poisoned.
    #[error("{path}: {what}; nothing more is written through this handle (reopen the ledger)")]
    Replaced {
        /// The directory or file concerned.
        path: PathBuf,
        /// What changed.
        what: String,
    },

    /// A snapshot that cannot be authenticated: written by an older build
    /// (format 1), or no snapshot key was given. It is not used.
    #[error("snapshot {file} is not used: {what}")]
    SnapshotUnauthenticated {
        /// The snapshot file.
        file: PathBuf,
        /// Why it cannot be authenticated.
        what: String,
    },

    /// Writing a snapshot needs the snapshot key (derived from the subject
    /// key), which the log was opened without.
    #[error(
        "writing a snapshot needs the ledger's subject key (snapshots are authenticated with it)"
    )]
    NoSnapshotKey,

    /// A snapshot's `(seq, chain head)` does not match the log.
    #[error("snapshot {file} at seq {seq} does not match the log: {what}")]
    SnapshotMismatch {
        /// The snapshot file (or the one being written).
        file: PathBuf,
        /// The snapshot's sequence number.
        seq: Seq,
        /// What differs.
        what: String,
    },
}

fn fmt_seq(seq: Option<Seq>) -> String {
    match seq {
        Some(s) => format!(" (seq {s})"),
        None => String::new(),
    }
}

impl StorageError {
    /// Builds an [`StorageError::Io`] from an I/O error.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Builds a [`StorageError::Corrupt`].
    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        seq: Option<Seq>,
        what: impl Into<String>,
    ) -> Self {
        StorageError::Corrupt {
            file: file.into(),
            offset,
            seq,
            what: what.into(),
        }
    }
}
