//! Receipts: issued from a tree store, verified offline; a later
//! checkpoint of a rewritten, forked or rolled-back log stops them
//! verifying; tampered receipts are refused.
#![cfg(feature = "signing")]

use optout::storage::MemIo;
use optout::tlog::{
    entry_leaf_hash, ledger_origin, verify_receipt, Checkpoint, CheckpointVerifier,
    ConsistencyProof, Hash, KeyKind, Later, Receipt, ReceiptError, SignerKey, StoreOptions,
    TreeStore,
};

const ID: [u8; 16] = [0xab; 16];

fn payloads(n: u64, rewrite: Option<u64>) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|seq| {
            let mut p = format!("entry {seq}").into_bytes();
            if Some(seq) == rewrite {
                p.extend_from_slice(b" (rewritten)");
            }
            p
        })
        .collect()
}

fn leaves(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries
        .iter()
        .enumerate()
        .map(|(i, p)| entry_leaf_hash(i as u64 + 1, p))
        .collect()
}

/// The operator's side: a tree store over the entries and the log's key.
struct Log {
    store: TreeStore<MemIo>,
    leaves: Vec<Hash>,
    entries: Vec<Vec<u8>>,
    key: SignerKey,
}

impl Log {
    fn new(entries: Vec<Vec<u8>>) -> Log {
        let leaves = leaves(&entries);
        let opts = StoreOptions {
            tile_height: 3,
            log_id: ID,
        };
        let n = leaves.len() as u64;
        let (store, _) = TreeStore::open(MemIo::new(), "/t", opts, n, &mut &leaves[..]).unwrap();
        let key = SignerKey::from_seed(
            &ledger_origin("optout.example", &ID),
            KeyKind::Ed25519,
            [5; 32],
        )
        .unwrap();
        Log {
            store,
            leaves,
            entries,
            key,
        }
    }

    fn checkpoint(&mut self, size: u64) -> String {
        let root = self.store.root_at(size, &mut &self.leaves[..]).unwrap();
        Checkpoint::new(self.key.name(), size, root)
            .sign(&self.key)
            .unwrap()
    }

    fn receipt(&mut self, seq: u64, size: u64) -> Receipt {
        let proof = self
            .store
            .inclusion_proof(seq - 1, size, &mut &self.leaves[..])
            .unwrap();
        let summary =
            serde_json::json!({"type": "objection", "subject": "7af08b522dad9f79d1332ef98a749983"});
        let cp = self.checkpoint(size);
        Receipt::new(
            &ID,
            seq,
            &self.entries[seq as usize - 1],
            summary,
            cp,
            proof,
        )
        .unwrap()
    }

    fn consistency(&mut self, old: u64, new: u64) -> ConsistencyProof {
        self.store
            .consistency_proof(old, new, &mut &self.leaves[..])
            .unwrap()
    }
}

fn verifier() -> CheckpointVerifier {
    let key = SignerKey::from_seed(
        &ledger_origin("optout.example", &ID),
        KeyKind::Ed25519,
        [5; 32],
    )
    .unwrap();
    CheckpointVerifier::new(key.verifier())
}

#[test]
fn a_receipt_verifies_offline_and_against_a_later_checkpoint() {
    let mut log = Log::new(payloads(100, None));
    let r = log.receipt(42, 60);
    assert_eq!(r.leaf_index, 41);
    assert_eq!(r.origin, format!("optout.example/{}", "ab".repeat(16)));
    let json = r.to_json();
    let back = Receipt::from_json(json.as_bytes()).unwrap();
    assert_eq!(back, r);
    let ok = verify_receipt(&back, &verifier(), None).unwrap();
    assert_eq!((ok.seq, ok.checkpoint.size), (42, 60));
    assert_eq!(ok.entry, b"entry 42");

    let later = log.checkpoint(100);
    let proof = log.consistency(60, 100);
    let l = Later {
        checkpoint: later.as_bytes(),
        proof: &proof,
    };
    let ok = verify_receipt(&r, &verifier(), Some(l)).unwrap();
    assert_eq!(ok.later.unwrap().size, 100);
    // The receipt's own checkpoint as "later" (size 60 -> 60) also holds.
    let same = log.checkpoint(60);
    let p = log.consistency(60, 60);
    let l = Later {
        checkpoint: same.as_bytes(),
        proof: &p,
    };
    assert!(verify_receipt(&r, &verifier(), Some(l)).is_ok());
}

/// The later checkpoint of `other`, a different history, with its own
/// consistency proof from 60.
fn later_of(mut other: Log, size: u64) -> (String, ConsistencyProof) {
    let cp = other.checkpoint(size);
    let p = other.consistency(60.min(size), size);
    (cp, p)
}

#[test]
fn a_rewritten_forked_or_rolled_back_log_fails_the_later_check() {
    let mut log = Log::new(payloads(100, None));
    let r = log.receipt(42, 60);
    let cases = [
        (
            "the entry itself rewritten",
            Log::new(payloads(100, Some(42))),
            100,
        ),
        (
            "an earlier entry rewritten",
            Log::new(payloads(100, Some(3))),
            100,
        ),
        (
            "forked at the receipt's checkpoint",
            Log::new(payloads(100, Some(60))),
            100,
        ),
        (
            "rolled back below the receipt",
            Log::new(payloads(100, None)),
            50,
        ),
    ];
    for (what, other, size) in cases {
        let (cp, proof) = later_of(other, size);
        let l = Later {
            checkpoint: cp.as_bytes(),
            proof: &proof,
        };
        let e = verify_receipt(&r, &verifier(), Some(l)).unwrap_err();
        assert!(
            matches!(
                e,
                ReceiptError::NotExtended { .. } | ReceiptError::Inconsistent { .. }
            ),
            "{what}: {e}"
        );
    }
    // Control: a history that differs only after the receipt's checkpoint
    // is an extension of it, and the receipt still holds.
    let (cp, proof) = later_of(Log::new(payloads(100, Some(61))), 100);
    let l = Later {
        checkpoint: cp.as_bytes(),
        proof: &proof,
    };
    assert!(verify_receipt(&r, &verifier(), Some(l)).is_ok());
    // A genuine later checkpoint with the proof of another pair of sizes.
    let later = log.checkpoint(100);
    let wrong = log.consistency(59, 100);
    let l = Later {
        checkpoint: later.as_bytes(),
        proof: &wrong,
    };
    assert!(matches!(
        verify_receipt(&r, &verifier(), Some(l)),
        Err(ReceiptError::Inconsistent { .. })
    ));
    // A later checkpoint signed by another key.
    let mut stranger = Log::new(payloads(100, None));
    stranger.key = SignerKey::from_seed(stranger.key.name(), KeyKind::Ed25519, [6; 32]).unwrap();
    let (cp, proof) = later_of(stranger, 100);
    let l = Later {
        checkpoint: cp.as_bytes(),
        proof: &proof,
    };
    assert!(matches!(
        verify_receipt(&r, &verifier(), Some(l)),
        Err(ReceiptError::Checkpoint { which: "later", .. })
    ));
}

#[test]
fn tampered_receipts_are_refused() {
    let mut log = Log::new(payloads(100, None));
    let r = log.receipt(42, 60);
    let v = verifier();
    let refuse = |r: &Receipt| verify_receipt(r, &v, None).unwrap_err();

    let mut t = r.clone();
    t.entry = base64_of(b"entry 43");
    assert!(matches!(
        refuse(&t),
        ReceiptError::Inconsistent {
            field: "leaf_hash",
            ..
        }
    ));
    // Entry and leaf hash changed together: the proof does not hold.
    t.leaf_hash = entry_leaf_hash(42, b"entry 43");
    assert!(matches!(refuse(&t), ReceiptError::NotIncluded(_)));
    // Another seq for the same entry.
    let mut t = r.clone();
    t.seq = 43;
    t.leaf_index = 42;
    t.leaf_hash = entry_leaf_hash(43, b"entry 42");
    assert!(matches!(refuse(&t), ReceiptError::NotIncluded(_)));
    let mut t = r.clone();
    t.leaf_index = 40;
    assert!(matches!(refuse(&t), ReceiptError::Inconsistent { .. }));
    // The proof of another leaf.
    let mut t = r.clone();
    t.inclusion_proof = log.receipt(41, 60).inclusion_proof;
    assert!(matches!(refuse(&t), ReceiptError::NotIncluded(_)));
    // A ledger id that is not the origin's.
    let mut t = r.clone();
    t.ledger_id = "cd".repeat(16);
    assert!(matches!(
        refuse(&t),
        ReceiptError::Inconsistent {
            field: "ledger_id",
            ..
        }
    ));
    // The checkpoint's size changed.
    let mut t = r.clone();
    t.checkpoint = t.checkpoint.replacen("\n60\n", "\n61\n", 1);
    assert!(matches!(
        refuse(&t),
        ReceiptError::Checkpoint {
            which: "receipt",
            ..
        }
    ));
    // A receipt of another ledger under our key's verifier.
    let mut other = Log::new(payloads(100, None));
    other.key = SignerKey::from_seed(
        &ledger_origin("optout.example", &[1; 16]),
        KeyKind::Ed25519,
        [5; 32],
    )
    .unwrap();
    let theirs = other.receipt(42, 60);
    assert!(matches!(refuse(&theirs), ReceiptError::Checkpoint { .. }));
    // The verifier pinned to our origin refuses a receipt claiming another.
    let pinned = verifier().origin(r.origin.clone());
    let mut t = r.clone();
    t.origin = "elsewhere/abab".into();
    assert!(verify_receipt(&t, &pinned, None).is_err());

    // JSON: unknown fields, another format, a newer version.
    let mut j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    j["extra"] = 1.into();
    assert!(matches!(
        Receipt::from_json(j.to_string().as_bytes()),
        Err(ReceiptError::Malformed(_))
    ));
    let mut j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    j["version"] = 2.into();
    assert!(matches!(
        Receipt::from_json(j.to_string().as_bytes()),
        Err(ReceiptError::UnsupportedVersion(2))
    ));
    j["format"] = "something".into();
    assert!(matches!(
        Receipt::from_json(j.to_string().as_bytes()),
        Err(ReceiptError::Malformed(_))
    ));
    // A receipt cannot be built with a proof of another leaf or size.
    let proof = log
        .store
        .inclusion_proof(40, 60, &mut &log.leaves[..])
        .unwrap();
    let cp = log.checkpoint(60);
    assert!(Receipt::new(&ID, 42, b"entry 42", serde_json::Value::Null, cp, proof).is_err());
}

fn base64_of(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
