//! Identifiers of the storage layer: sequence numbers, chain hashes, ledger ids.

use std::fmt;

use crate::ids::hex;

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

/// The hash-chain value after a frame: a keyed blake3 hash over the previous
/// chain value and the frame (see `docs/FORMAT.md`, "Event log segments").
///
/// Pinning `(Seq, ChainHash)` pins the whole log prefix up to that seq.
/// Deliberately no `Deref` to bytes: it is compared, printed and stored whole.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub(crate) [u8; 32]);

impl ChainHash {
    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a chain hash from bytes taken from [`ChainHash::as_bytes`].
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }

    /// Lower-case hexadecimal form (64 characters).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A ledger's random 128-bit identity, fixed at creation and written into
/// every segment and snapshot header. It keys the hash chain, so frames and
/// segments cannot be spliced between ledgers without breaking the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LedgerId(pub(crate) [u8; 16]);

impl LedgerId {
    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Rebuilds an id from bytes (e.g. a fixed id for reproducible fixtures).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        LedgerId(bytes)
    }

    /// A fresh random id from the operating system's generator.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(LedgerId(b))
    }

    /// Lower-case hexadecimal form (32 characters).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerId({})", self.to_hex())
    }
}

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
