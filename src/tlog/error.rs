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
    Note(#[from] NoteError),
    /// A receipt was malformed or did not verify.
    #[cfg(feature = "signing")]
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
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

/// Why a signed note, a checkpoint or a key was refused.
#[cfg(feature = "signing")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note's bytes are not a signed note; `line` is 1-based.
    #[error("malformed signed note at line {line}: {what}")]
    Malformed {
        /// The line at fault.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The note is larger than [`MAX_NOTE_BYTES`].
    #[error("signed note is {len} bytes, limit is {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No signature by a known key: the note must be ignored.
    #[error("no signature by a known key (signatures by: {})", names.join(", "))]
    NoKnownSignature {
        /// The key names the note's signatures claim.
        names: Vec<String>,
    },
    /// A signature by a known key (name and id match) does not verify.
    #[error("signature by {name} (key id {key_id:08x}) does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// The note text is not a checkpoint; `line` is 1-based.
    #[error("malformed checkpoint at line {line}: {what}")]
    Checkpoint {
        /// The line at fault.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The checkpoint is of another log.
    #[error("checkpoint is of origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin asked for.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
    /// Witnesses signed, but not the log's key.
    #[error("no valid signature by the log's key {name}")]
    MissingLogSignature {
        /// The log key's name.
        name: String,
    },
    /// Fewer witness cosignatures than required.
    #[error("{verified} of the required {threshold} witness cosignatures (missing: {})", missing.join(", "))]
    MissingCosignatures {
        /// Cosignatures required.
        threshold: usize,
        /// Cosignatures that verified.
        verified: usize,
        /// Names of the configured witnesses that did not cosign.
        missing: Vec<String>,
    },
    /// A key in text form, or a key file, is malformed.
    #[error("{}{what}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Key {
        /// The key file, if the key came from one.
        path: Option<PathBuf>,
        /// What is wrong.
        what: String,
    },
    /// Reading or writing a key file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why a receipt was refused.
#[cfg(feature = "signing")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Not a receipt (bad JSON, wrong `format`, missing or unknown fields).
    #[error("not an optout receipt: {0}")]
    Malformed(String),
    /// A receipt format version this build does not know.
    #[error("unsupported receipt version {0}")]
    UnsupportedVersion(u32),
    /// A field contradicts another (named) one.
    #[error("receipt field `{field}`: {what}")]
    Inconsistent {
        /// The field at fault.
        field: &'static str,
        /// How.
        what: String,
    },
    /// A checkpoint (the receipt's or the later one) did not verify.
    #[error("{which} checkpoint: {source}")]
    Checkpoint {
        /// `"receipt"` or `"later"`.
        which: &'static str,
        /// Why.
        source: NoteError,
    },
    /// The inclusion proof does not put the entry in the checkpoint's tree.
    #[error("the entry is not in the checkpoint's tree: {0}")]
    NotIncluded(ProofError),
    /// The later checkpoint does not extend the receipt's: the log was
    /// rewritten, forked or rolled back since the receipt was issued.
    #[error(
        "the later checkpoint (size {new}) does not extend the receipt's (size {old}): {source}"
    )]
    NotExtended {
        /// The receipt's tree size.
        old: u64,
        /// The later tree size.
        new: u64,
        /// Why the consistency proof failed.
        source: ProofError,
    },
}
