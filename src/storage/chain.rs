//! The blake3 hash chain over frames, and the per-purpose keys.
//!
//! The keys are derived from the (non-secret) ledger id, so the chain proves
//! integrity and ordering against accidents and against splicing between
//! ledgers, not against someone who rewrites the whole log: that is caught by
//! pinning `(Seq, ChainHash)` heads elsewhere (manifests, consumers).

use super::types::{ChainHash, LedgerId, Seq};

/// `blake3::derive_key` context of the event-chain key.
pub const CHAIN_CONTEXT: &str = "optout 2026-11 event chain v1";
/// `blake3::derive_key` context of the snapshot digest key of snapshot
/// format 1, keyed by the public ledger id. Such snapshots are never
/// trusted any more (anyone can re-seal one); format 2 snapshots carry a
/// MAC under a key derived from the subject key instead.
pub const SNAPSHOT_CONTEXT: &str = "optout 2026-11 snapshot v1";

/// The key of the event chain of ledger `id`.
pub(crate) fn chain_key(id: &LedgerId) -> [u8; 32] {
    blake3::derive_key(CHAIN_CONTEXT, id.as_bytes())
}

/// `chain_0`: the keyed hash of the ledger id alone.
pub(crate) fn genesis(key: &[u8; 32], id: &LedgerId) -> ChainHash {
    ChainHash(*blake3::keyed_hash(key, id.as_bytes()).as_bytes())
}

/// `chain_i = keyed_hash(key, chain_{i-1} || seq_le64 || flags_le32 || len_le32 || payload)`.
pub(crate) fn step(
    key: &[u8; 32],
    prev: &ChainHash,
    seq: Seq,
    flags: u32,
    payload: &[u8],
) -> ChainHash {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&prev.0);
    h.update(&seq.0.to_le_bytes());
    h.update(&flags.to_le_bytes());
    // Payload length is bounded by MAX_PAYLOAD (< 2^32) before this is called.
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    ChainHash(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_depends_on_every_input() {
        let id = LedgerId([7; 16]);
        let k = chain_key(&id);
        let g = genesis(&k, &id);
        let a = step(&k, &g, Seq(1), 1, b"x");
        assert_ne!(a, step(&k, &g, Seq(2), 1, b"x"));
        assert_ne!(a, step(&k, &g, Seq(1), 0, b"x"));
        assert_ne!(a, step(&k, &g, Seq(1), 1, b"y"));
        assert_ne!(a, step(&k, &a, Seq(1), 1, b"x"));
        let other = LedgerId([8; 16]);
        assert_ne!(a, step(&chain_key(&other), &g, Seq(1), 1, b"x"));
        assert_ne!(
            chain_key(&id),
            blake3::derive_key(SNAPSHOT_CONTEXT, id.as_bytes())
        );
    }
}
