//! The transparency log: evidence about the ledger that others can check
//! without trusting the operator.
//!
//! * The Merkle tree: RFC 9162 (SHA-256) over
//!   the ledger's entries, leaf `seq - 1` = [`entry_leaf_hash`]`(seq, payload)`;
//!   [`Frontier`] keeps its right edge as entries are appended.
//! * Proofs: [`InclusionProof`] (an entry is in the tree of size N) and
//!   [`ConsistencyProof`] (the tree of size M is a prefix of the tree of
//!   size N), generated in O(log n) from any [`NodeSource`], verified from
//!   the proof alone.
//! * [`TreeStore`]: the tree kept on disk through [`Io`](crate::storage::Io)
//!   (tiles of `2^k` leaves, nodes above them stored, the log's entries the
//!   truth for what lies below), crash-safe, rebuilt from the log.
//! * With the `signing` feature: C2SP signed notes and checkpoints
//!   (`note`, `keys`, `checkpoint`: `Checkpoint`, `CheckpointVerifier`,
//!   key files), witness cosignatures, and self-contained `Receipt`s that
//!   a data subject can verify offline (`verify_receipt`).
//!
//! Formats: docs/FORMAT.md, "Transparency log".
//!
//! ```
//! use optout::tlog::{consistency_proof, entry_leaf_hash, inclusion_proof, root_of, Hash};
//!
//! let entries: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
//! let leaves: Vec<Hash> = entries.iter().enumerate()
//!     .map(|(i, e)| entry_leaf_hash(i as u64 + 1, e))
//!     .collect();
//! let (old, new) = (root_of(&leaves[..6]), root_of(&leaves));
//!
//! // Entry seq 4 is leaf 3 of the tree of 10.
//! let p = inclusion_proof(&mut &leaves[..], 3, 10)?;
//! p.verify(&entry_leaf_hash(4, &entries[3]), &new)?;
//! // The tree of 6 is a prefix of the tree of 10.
//! consistency_proof(&mut &leaves[..], 6, 10)?.verify(&old, &new)?;
//! # Ok::<(), optout::tlog::TlogError>(())
//! ```

#[cfg(feature = "signing")]
mod checkpoint;
mod error;
#[cfg(feature = "signing")]
mod keys;
mod merkle;
#[cfg(feature = "signing")]
mod note;
mod proof;
#[cfg(feature = "signing")]
mod receipt;
mod store;

#[cfg(feature = "signing")]
pub use checkpoint::{cosign, Checkpoint, CheckpointVerifier, VerifiedCheckpoint};
#[cfg(feature = "signing")]
pub use keys::{key_id, valid_name, KeyKind, SignerKey, VerifierKey};
#[cfg(feature = "signing")]
pub use note::{NoteError, NoteSignature, SignedNote, Verified, MAX_NOTE_BYTES, MAX_SIGNATURES};
#[cfg(feature = "signing")]
pub use receipt::{
    ledger_origin, verify_receipt, Later, Receipt, ReceiptError, VerifiedReceipt, RECEIPT_FORMAT,
    RECEIPT_VERSION,
};

pub use error::{ProofError, TlogError};
pub use merkle::{empty_root, entry_leaf_hash, leaf_hash, node_hash, root_of, Frontier, Hash};
pub use proof::{consistency_proof, inclusion_proof, ConsistencyProof, InclusionProof, NodeSource};
pub use store::{
    LeafSource, StoreOptions, StoreRecovery, TreeStore, DEFAULT_TILE_HEIGHT, MAX_TILE_HEIGHT,
    NODES_FILE, STORE_VERSION, SYNC_EVERY_TILES, TAIL_FILE,
};
