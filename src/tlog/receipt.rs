//! Receipts: self-contained JSON evidence that one ledger entry is in the
//! log, checkable offline with nothing but the log's public key.
//!
//! A receipt carries the entry's frame payload (so its leaf hash is
//! recomputed, never trusted), a pseudonymised summary of it (produced
//! and checked against the payload by the ledger layer), the signed
//! checkpoint it is included in and the inclusion proof. Given a later
//! checkpoint and a consistency proof, the verifier also checks that the
//! entry is still in the log: a rewritten or rolled-back log cannot give
//! that proof.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, CheckpointVerifier};
pub use super::error::ReceiptError;
use super::error::TlogError;
use super::merkle::{entry_leaf_hash, Hash};
use super::proof::{ConsistencyProof, InclusionProof};

/// The value of a receipt's `format` field.
pub const RECEIPT_FORMAT: &str = "optout-receipt";
/// The receipt format version this build writes and reads.
pub const RECEIPT_VERSION: u32 = 1;

/// A receipt (docs/FORMAT.md, "Receipts"). Fields are public so a DSR
/// portal can show them; [`verify_receipt`] is what makes them evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// [`RECEIPT_VERSION`].
    pub version: u32,
    /// The ledger's id (32 hex digits); the checkpoint's origin ends in it.
    pub ledger_id: String,
    /// The log's origin (the checkpoint's first line).
    pub origin: String,
    /// The entry's ledger sequence number.
    pub seq: u64,
    /// Its leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// `SHA-256(0x00 || seq_le64 || entry)`.
    pub leaf_hash: Hash,
    /// The entry's frame payload, base64.
    pub entry: String,
    /// What the entry says, pseudonymised (checked by the ledger layer).
    pub summary: serde_json::Value,
    /// The signed checkpoint note the entry is included in.
    pub checkpoint: String,
    /// The entry's audit path in that checkpoint's tree, bottom up.
    pub inclusion_proof: Vec<Hash>,
}

/// The origin of a ledger's log: `<prefix>/<ledger id as 32 hex digits>`.
pub fn ledger_origin(prefix: &str, ledger_id: &[u8; 16]) -> String {
    let hex: String = ledger_id.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/{hex}", prefix.trim_end_matches('/'))
}

fn inconsistent(field: &'static str, what: impl Into<String>) -> ReceiptError {
    ReceiptError::Inconsistent {
        field,
        what: what.into(),
    }
}

impl Receipt {
    /// The receipt of the entry at `seq` with frame payload `entry`, in
    /// the signed `checkpoint` note, with its inclusion `proof`.
    pub fn new(
        ledger_id: &[u8; 16],
        seq: u64,
        entry: &[u8],
        summary: serde_json::Value,
        checkpoint: String,
        proof: InclusionProof,
    ) -> Result<Receipt, TlogError> {
        let note = super::note::SignedNote::parse(checkpoint.as_bytes())?;
        let cp = Checkpoint::from_text(note.text())?;
        if seq == 0 || proof.leaf_index != seq - 1 || proof.tree_size != cp.size {
            return Err(inconsistent(
                "inclusion_proof",
                format!(
                    "a proof of leaf {} in a tree of {} for seq {seq} in a checkpoint of size {}",
                    proof.leaf_index, proof.tree_size, cp.size
                ),
            )
            .into());
        }
        let r = Receipt {
            format: RECEIPT_FORMAT.into(),
            version: RECEIPT_VERSION,
            ledger_id: ledger_id.iter().map(|b| format!("{b:02x}")).collect(),
            origin: cp.origin,
            seq,
            leaf_index: seq - 1,
            leaf_hash: entry_leaf_hash(seq, entry),
            entry: STANDARD.encode(entry),
            summary,
            checkpoint,
            inclusion_proof: proof.hashes,
        };
        Ok(r)
    }

    /// Parses a receipt's JSON (strictly: unknown fields are refused).
    pub fn from_json(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        // The version first, so a newer receipt is "unsupported", not "malformed".
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(RECEIPT_FORMAT) {
            return Err(ReceiptError::Malformed(format!(
                "`format` is not {RECEIPT_FORMAT:?}"
            )));
        }
        match v.get("version").and_then(|x| x.as_u64()) {
            Some(1) => {}
            Some(n) => {
                return Err(ReceiptError::UnsupportedVersion(
                    n.min(u32::MAX.into()) as u32
                ))
            }
            None => return Err(ReceiptError::Malformed("no `version`".into())),
        }
        serde_json::from_value(v).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// The receipt as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// A later checkpoint the receipt's entry must still be in.
#[derive(Clone, Copy, Debug)]
pub struct Later<'a> {
    /// The later signed checkpoint note.
    pub checkpoint: &'a [u8],
    /// The consistency proof from the receipt's tree size to the later one.
    pub proof: &'a ConsistencyProof,
}

/// What a verified receipt proves.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedReceipt {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's frame payload (decode it to check `summary`).
    pub entry: Vec<u8>,
    /// The checkpoint the entry is included in.
    pub checkpoint: Checkpoint,
    /// The later checkpoint that still includes it, if one was given.
    pub later: Option<Checkpoint>,
    /// Witnesses that cosigned the receipt's checkpoint.
    pub cosigned_by: Vec<(String, u64)>,
}

/// Verifies a receipt offline: the checkpoint's signatures (and any
/// witnesses `verifier` requires), the origin against the ledger id, the
/// leaf hash recomputed from the entry, the inclusion proof, and, given
/// `later`, that the later checkpoint (same key and origin) extends the
/// receipt's. The summary is not judged here: it is the ledger layer's to
/// compare with the decoded [`VerifiedReceipt::entry`].
pub fn verify_receipt(
    receipt: &Receipt,
    verifier: &CheckpointVerifier,
    later: Option<Later<'_>>,
) -> Result<VerifiedReceipt, ReceiptError> {
    if receipt.format != RECEIPT_FORMAT {
        return Err(ReceiptError::Malformed("wrong `format`".into()));
    }
    if receipt.version != RECEIPT_VERSION {
        return Err(ReceiptError::UnsupportedVersion(receipt.version));
    }
    let want = verifier
        .expected_origin()
        .unwrap_or(&receipt.origin)
        .to_owned();
    let verifier = verifier.clone().origin(want);
    let checked = verifier
        .verify(receipt.checkpoint.as_bytes())
        .map_err(|source| ReceiptError::Checkpoint {
            which: "receipt",
            source,
        })?;
    let cp = checked.checkpoint;
    if cp.origin != receipt.origin {
        return Err(inconsistent("origin", "differs from the checkpoint's"));
    }
    let id_hex = receipt.origin.rsplit('/').next().unwrap_or("");
    if receipt.ledger_id.len() != 32 || id_hex != receipt.ledger_id {
        return Err(inconsistent(
            "ledger_id",
            "the origin does not end in /<ledger id>",
        ));
    }
    if receipt.seq == 0 || receipt.leaf_index != receipt.seq - 1 {
        return Err(inconsistent("leaf_index", "is not seq - 1"));
    }
    let entry = STANDARD
        .decode(&receipt.entry)
        .map_err(|_| inconsistent("entry", "is not canonical base64"))?;
    let leaf = entry_leaf_hash(receipt.seq, &entry);
    if leaf != receipt.leaf_hash {
        return Err(inconsistent("leaf_hash", "is not the hash of `entry`"));
    }
    InclusionProof {
        leaf_index: receipt.leaf_index,
        tree_size: cp.size,
        hashes: receipt.inclusion_proof.clone(),
    }
    .verify(&leaf, &cp.root)
    .map_err(ReceiptError::NotIncluded)?;
    let later = match later {
        None => None,
        Some(l) => {
            let lcp = verifier
                .verify(l.checkpoint)
                .map_err(|source| ReceiptError::Checkpoint {
                    which: "later",
                    source,
                })?
                .checkpoint;
            let not_extended = |source| ReceiptError::NotExtended {
                old: cp.size,
                new: lcp.size,
                source,
            };
            if l.proof.old_size != cp.size || l.proof.new_size != lcp.size {
                return Err(inconsistent(
                    "consistency proof",
                    format!(
                        "is from size {} to {}, the checkpoints are of {} and {}",
                        l.proof.old_size, l.proof.new_size, cp.size, lcp.size
                    ),
                ));
            }
            l.proof.verify(&cp.root, &lcp.root).map_err(not_extended)?;
            Some(lcp)
        }
    };
    Ok(VerifiedReceipt {
        seq: receipt.seq,
        entry,
        checkpoint: cp,
        later,
        cosigned_by: checked.cosigned_by,
    })
}
