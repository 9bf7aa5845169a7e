//! Identifiers of the storage layer: sequence numbers, chain hashes, ledger ids.

/// A ledger sequence number.
///
/// Every frame appended to the log gets the next sequence number, starting at
/// 1 and consecutive across all segments. `Seq(0)` is the empty log (before
/// the first frame). A state "at `Seq` N" reflects every frame at or before N.
pub use crate::ids::Seq;

/// An inclusive range of sequence numbers `first..=last` (never empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqRange {
    /// The first sequence number of the range.
    pub first: Seq,
    /// The last sequence number of the range (`>= first`).
    pub last: Seq,
}

impl SeqRange {
    /// How many sequence numbers the range holds.
    pub fn len(&self) -> u64 {
        self.last.0 - self.first.0 + 1
    }

    /// Always false: a range holds at least one sequence number.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `seq` lies in the range.
    pub fn contains(&self, seq: Seq) -> bool {
        self.first <= seq && seq <= self.last
    }
}

/// The chain hash and the ledger id live in `ids.rs` (the manifest header
/// and the front doors name them too); the storage layer re-exports them.
pub use crate::ids::{ChainHash, LedgerId};

/// The secret that authenticates snapshots (32 bytes), derived from the
/// subject key (`SubjectKeyer::snapshot_key`), never stored in the ledger
/// directory. Deliberately no `Debug` of its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    /// A key from 32 secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        SnapshotKey(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotKey(..)")
    }
}
