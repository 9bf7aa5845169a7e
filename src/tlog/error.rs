//! Errors of the transparency log, one enum per family, all converting into
//! [`TlogError`].

use std::path::PathBuf;

/// Why a Merkle proof did not verify (RFC 9162 §2.1.3.2, §2.1.4.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The old size is larger than the new one: not an extension.
    #[error("a tree of size {old} cannot be extended to size {new}")]
    NotAnExtension {
        /// The older tree's size.
        old: u64,
        /// The newer tree's size.
        new: u64,
    },
    /// The proof has more or fewer hashes than the sizes imply.
    #[error("the proof has the wrong number of hashes ({got})")]
    WrongLength {
        /// The number of hashes in the proof.
        got: usize,
    },
    /// The proof recomputes a different root: the leaf is not in the tree,
    /// or the trees are not one the extension of the other.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
}

/// An error of the tree store or of a proof request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlogError {
    /// A proof did not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A request names a leaf or a tree size the tree does not have.
    #[error("{what} {value} is out of range (the tree has {size} leaves)")]
    OutOfRange {
        /// What was requested, e.g. `"leaf index"`.
        what: &'static str,
        /// The requested value.
        value: u64,
        /// The tree's size.
        size: u64,
    },
    /// An I/O call on a tree store file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operation, e.g. `"write"`.
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored node failed its checksum when read (the store is a cache of
    /// the log: rebuild it).
    #[error("corrupt tree store: {} at byte {offset}: {what}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A tree store file of a newer format: left untouched.
    #[error("{}: unsupported tree store format version {version}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found.
        version: u32,
    },
    /// An earlier write or fsync of the store failed; reopen it.
    #[error("tree store handle is poisoned by an earlier I/O failure; reopen it")]
    Poisoned,
    /// The leaf source could not supply the leaves the tree needs.
    #[error("leaf source: {0}")]
    Leaves(String),
    /// Reading leaves from the ledger's log failed.
    #[error(transparent)]
    Log(#[from] crate::storage::StorageError),
    /// Leaves read back from the log do not hash to the stored tree: the
    /// log or the store changed since the store was written.
    #[error("tile {tile} (leaves {first}..{end}) does not match the stored tree")]
    TileMismatch {
        /// The tile index.
        tile: u64,
        /// Its first leaf index.
        first: u64,
        /// One past its last leaf index.
        end: u64,
    },
    /// A signed note, checkpoint or key was malformed, or did not verify.
    #[cfg(feature = "signing")]
    #[error(transparent)]
    Note(#[from] super::note::NoteError),
    /// A receipt was malformed or did not verify.
    #[cfg(feature = "signing")]
    #[error(transparent)]
    Receipt(#[from] super::receipt::ReceiptError),
}

impl TlogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TlogError::Io {
            path: path.into(),
            op,
            source,
        }
    }
}
