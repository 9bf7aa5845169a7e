//! The ledger's transparency log: the Merkle tree of its entries kept in
//! `LEDGER/tree/`, caught up from the log lazily (when a checkpoint, a
//! proof or a receipt is asked for, never on an append), signed
//! checkpoints of it, checks of a ledger against a checkpoint, and
//! receipts. The CLI, the Python binding and the service call these; the
//! rules live here once. Formats: docs/FORMAT.md, "Transparency log".

use std::path::{Path, PathBuf};

use super::{beside, Ledger};
use crate::error::{Error, LedgerError, Result};
use crate::event::Entry;
use crate::ids::Seq;
use crate::storage::{Io, Log};
use crate::tlog::{
    entry_leaf_hash, ConsistencyProof, Frontier, Hash, InclusionProof, StoreOptions, TlogError,
    TreeStore,
};

/// The tree store's directory inside the ledger directory.
pub const TREE_DIR: &str = "tree";
/// The prefix of a ledger log's origin: `optout/<ledger id hex>`.
pub const ORIGIN_PREFIX: &str = "optout";

/// The default place of a ledger's checkpoint signing key:
/// `LEDGER.signing.key` beside the directory (never inside it).
pub fn default_signing_key_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".signing.key")
}

/// The default place of the signing key's public key (the vkey that
/// auditors, witnesses and receipt holders verify with): `LEDGER.signing.pub`.
pub fn default_signing_pub_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".signing.pub")
}

/// How a ledger stands against a checkpoint (see [`Ledger::check_checkpoints`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointCheck {
    /// The ledger's first `size` entries hash to the checkpoint's root: the
    /// ledger extends it (its head is at or past `size`).
    Extends {
        /// The checkpoint's tree size (= seq).
        size: u64,
    },
    /// The ledger ends before the checkpoint's size: truncated or rolled
    /// back; seq `head + 1` is the first entry the checkpoint covers that
    /// is missing.
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// The ledger's head.
        head: u64,
    },
    /// The ledger's first `size` entries do not hash to the checkpoint's
    /// root: an entry at or before seq `size` was rewritten or the history
    /// forked there.
    Diverged {
        /// The checkpoint's size.
        size: u64,
        /// The root the ledger's entries give at that size.
        ledger_root: Hash,
    },
}

/// The tree store's anchor file inside `LEDGER/tree/`.
const ANCHOR_FILE: &str = "anchor";
/// `"OOTLOGA\0"`, size (u64 LE), chain value (32), crc32 of the 48 bytes before.
const ANCHOR_MAGIC: &[u8; 8] = b"OOTLOGA\0";
const ANCHOR_LEN: usize = 52;

fn read_anchor<I: Io>(io: &I, path: &Path) -> Option<(u64, crate::storage::ChainHash)> {
    if io.file_len(path).ok()? != ANCHOR_LEN as u64 {
        return None;
    }
    let mut b = [0u8; ANCHOR_LEN];
    io.read_at(path, 0, &mut b).ok()?;
    let crc = u32::from_le_bytes(b[48..].try_into().ok()?);
    if &b[..8] != ANCHOR_MAGIC || crc32fast::hash(&b[..48]) != crc {
        return None;
    }
    let size = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let chain: [u8; 32] = b[16..48].try_into().ok()?;
    Some((size, crate::storage::ChainHash::from_bytes(chain)))
}

/// Writes the anchor (a new file renamed over the old, then the directory
/// fsynced): the store's files are already durable up to `size`.
fn write_anchor<I: Io>(
    io: &I,
    dir: &Path,
    size: u64,
    chain: &crate::storage::ChainHash,
) -> std::result::Result<(), TlogError> {
    let mut b = Vec::with_capacity(ANCHOR_LEN);
    b.extend_from_slice(ANCHOR_MAGIC);
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(chain.as_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("anchor.tmp");
    let path = dir.join(ANCHOR_FILE);
    let e = |op| move |err| TlogError::io(op, dir.join(ANCHOR_FILE), err);
    io.create_file(&tmp).map_err(e("create"))?;
    io.write_at(&tmp, 0, &b).map_err(e("write"))?;
    io.sync_file(&tmp).map_err(e("fsync"))?;
    io.rename(&tmp, &path).map_err(e("rename"))?;
    io.sync_dir(dir).map_err(e("fsync directory"))?;
    Ok(())
}

/// Stops a replay early, or carries its error.
enum Replay {
    Done,
    Failed(crate::storage::StorageError),
}

impl From<crate::storage::StorageError> for Replay {
    fn from(e: crate::storage::StorageError) -> Self {
        Replay::Failed(e)
    }
}

impl<I: Io> Ledger<I> {
    /// Opens the tree store in `LEDGER/tree/`, catches it up with the log
    /// (a sequential read of the entries it lacks), makes it durable, and
    /// runs `f` on it. The store is a cache of the log, repaired or rebuilt
    /// from it on open, so a crash at any point costs only recomputation.
    ///
    /// The store is trusted only up to its anchor (`tree/anchor`: a size
    /// and the log's chain value there, written after each catch-up):
    /// whatever it holds beyond that size, or all of it when the log's chain
    /// there differs (a `tree/` of another history of this ledger id, a
    /// log restored beside a newer tree), is recomputed from the log.
    fn with_tree<T>(
        &self,
        f: impl FnOnce(&mut TreeStore<&I>, &Log<I>) -> std::result::Result<T, TlogError>,
    ) -> Result<T> {
        if self.read_only {
            return Err(LedgerError::ReadOnly.into());
        }
        let dir = self.path.join(TREE_DIR);
        let log = &self.log;
        let io = log.io();
        let durable = log.durable_head().0;
        let anchor_path = dir.join(ANCHOR_FILE);
        let trusted = match read_anchor(io, &anchor_path) {
            Some((size, chain)) if size <= durable && log.chain_at(Seq(size))? == chain => size,
            _ => 0,
        };
        let mut src = log;
        let (mut store, _) = TreeStore::open(
            io,
            &dir,
            StoreOptions::new(*self.ledger_id().as_bytes()),
            trusted,
            &mut src,
        )?;
        store.extend_from_log(log)?;
        store.sync()?;
        if durable != trusted {
            write_anchor(io, &dir, durable, &log.chain_at(Seq(durable))?)?;
        }
        Ok(f(&mut store, log)?)
    }

    /// The tree's size (= the head seq) and root, the tree caught up first.
    pub fn tree_head(&self) -> Result<(u64, Hash)> {
        self.with_tree(|t, _| Ok((t.size(), t.root())))
    }

    /// The root of the tree of the first `size` entries (`size` at most the head).
    pub fn tree_root_at(&self, size: u64) -> Result<Hash> {
        self.with_tree(|t, mut log| t.root_at(size, &mut log))
    }

    /// The proof that the entry at `seq` is in the tree of `size` entries
    /// (`size` at most the head).
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<InclusionProof> {
        if seq.0 == 0 || seq.0 > size {
            return Err(seq_error(seq, size));
        }
        self.with_tree(|t, mut log| t.inclusion_proof(seq.0 - 1, size, &mut log))
    }

    /// The proof that the tree of `old` entries is a prefix of the tree of
    /// `new` entries (`old <= new <= head`).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof> {
        if old > new {
            return Err(Error::Invalid(format!(
                "a consistency proof goes from a smaller tree to a larger one, not from {old} to {new}"
            )));
        }
        self.with_tree(|t, mut log| t.consistency_proof(old, new, &mut log))
    }

    /// The roots of the tree at each of `sizes`, recomputed from the log's
    /// entries (one sequential read from seq 1, never from the tree store:
    /// a check must not trust the cache it checks). Sizes past the head
    /// give `None`. Works on a read-only ledger.
    pub fn roots_from_log(&self, sizes: &[u64]) -> Result<Vec<Option<Hash>>> {
        let head = self.head().0 .0;
        let mut out: Vec<Option<Hash>> = vec![None; sizes.len()];
        let mut frontier = Frontier::new();
        let set = |frontier: &Frontier, out: &mut Vec<Option<Hash>>| {
            for (i, s) in sizes.iter().enumerate() {
                if *s == frontier.size() {
                    out[i] = Some(frontier.root());
                }
            }
        };
        set(&frontier, &mut out);
        let last = sizes.iter().copied().filter(|s| *s <= head).max();
        if let Some(last) = last.filter(|l| *l > 0) {
            let r = self.log.replay(Seq(1), |seq, payload| {
                frontier.push(entry_leaf_hash(seq.0, payload), |_, _, _| {});
                set(&frontier, &mut out);
                if seq.0 >= last {
                    return Err(Replay::Done);
                }
                Ok(())
            });
            match r {
                Ok(()) | Err(Replay::Done) => {}
                Err(Replay::Failed(e)) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

impl<I: Io> Ledger<I> {
    /// Checks the ledger against checkpoints (already verified, see
    /// `verify_checkpoint_note`): the root of its first `size` entries,
    /// recomputed from the log in one sequential read, against each.
    pub fn check_checkpoints(&self, checkpoints: &[(u64, Hash)]) -> Result<Vec<CheckpointCheck>> {
        let head = self.head().0 .0;
        let sizes: Vec<u64> = checkpoints.iter().map(|c| c.0).collect();
        let roots = self.roots_from_log(&sizes)?;
        Ok(checkpoints
            .iter()
            .zip(roots)
            .map(|(&(size, root), ours)| match ours {
                None => CheckpointCheck::Truncated { size, head },
                Some(r) if r == root => CheckpointCheck::Extends { size },
                Some(ledger_root) => CheckpointCheck::Diverged { size, ledger_root },
            })
            .collect())
    }
}

/// Where history diverges, given the checks of several checkpoints: the
/// seqs `(after, at_or_before)` such that the ledger agrees with what was
/// checkpointed up to seq `after` and differs at some seq in
/// `after + 1 ..= at_or_before`. `None` when the ledger extends every
/// checkpoint. A root alone does not say which entry differs: more
/// checkpoints narrow the range; a truncation names the first missing seq.
pub fn divergence(checks: &[CheckpointCheck]) -> Option<(u64, u64)> {
    let good = checks
        .iter()
        .filter_map(|c| match c {
            CheckpointCheck::Extends { size } => Some(*size),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let bad = checks
        .iter()
        .filter_map(|c| match c {
            CheckpointCheck::Extends { .. } => None,
            CheckpointCheck::Diverged { size, .. } => Some(*size),
            CheckpointCheck::Truncated { size, head } => Some((*head + 1).max(good + 1).min(*size)),
        })
        .min()?;
    // A checkpoint the ledger extends at or past a bad one cannot be (the
    // ledger would then agree on the prefix): `after` is bounded below it.
    Some((good.min(bad - 1), bad))
}

fn seq_error(seq: Seq, size: u64) -> Error {
    Error::Invalid(format!(
        "seq {seq} is not in a tree of {size} entries (seq 1..={size})"
    ))
}

/// What a ledger entry says, pseudonymised: the JSON a receipt carries as
/// its `summary`, and what [`verify_ledger_receipt`] recomputes from the
/// receipt's entry. Subject ids never appear: entries hold only pseudonyms.
pub fn entry_summary(seq: Seq, entry: &Entry) -> serde_json::Value {
    match entry {
        Entry::Event(e) => crate::render::event_json(seq, e),
        Entry::Run(r) => {
            let mut v = crate::render::run_json(seq, r);
            v["type"] = "training_run".into();
            v
        }
        Entry::Init(_) => serde_json::json!({"seq": seq.0, "type": "init"}),
        Entry::Records(b) => {
            serde_json::json!({"seq": seq.0, "type": "records", "records": b.len()})
        }
        Entry::QuarantineAck(a) => {
            serde_json::json!({"seq": seq.0, "type": "quarantine_ack", "files": a.files.len()})
        }
        Entry::Declare(d) => serde_json::json!({
            "seq": seq.0,
            "type": "declare",
            "vocabulary": d.vocabulary,
            "name": d.name,
        }),
        Entry::Derive(d) => serde_json::json!({
            "seq": seq.0,
            "type": "derive",
            "dataset": d.dataset,
            "rows": d.len(),
            "links": d.links(),
        }),
    }
}

#[cfg(feature = "signing")]
mod signing {
    use super::*;
    use crate::tlog::{
        verify_receipt, Checkpoint, CheckpointVerifier, Later, Receipt, ReceiptError, SignerKey,
        VerifiedReceipt, VerifierKey,
    };

    /// The origin of the log of the ledger with id `ledger_id`
    /// (`optout/<ledger id hex>`): the first line of its checkpoints and
    /// the name of the signing key `init` creates.
    pub fn origin_of(ledger_id: &[u8; 16]) -> String {
        crate::tlog::ledger_origin(ORIGIN_PREFIX, ledger_id)
    }

    /// Creates a key pair: the secret key at `key` (mode 0600) and its
    /// public key (vkey) at `public`, both new files (an existing one is an
    /// error); nothing is left behind on failure. `kind`: a log's
    /// checkpoint signing key (Ed25519) or a witness's cosigning key.
    pub fn create_key_pair(
        key: &Path,
        public: &Path,
        name: &str,
        kind: crate::tlog::KeyKind,
    ) -> Result<SignerKey> {
        let k = SignerKey::create_file(key, name, kind).map_err(TlogError::from)?;
        if let Err(e) = k.verifier().write_file(public) {
            let _ = std::fs::remove_file(key);
            return Err(TlogError::from(e).into());
        }
        Ok(k)
    }

    /// A fresh random ledger id (the signing key is named after the log's
    /// origin, so the id is chosen before the ledger exists).
    pub fn new_ledger_id() -> Result<[u8; 16]> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::Other(format!("no OS randomness: {e}")))?;
        Ok(id)
    }

    /// The signing key a new ledger uses, as [`init_signing_key`] found or
    /// made it.
    #[derive(Debug)]
    pub struct SigningKeyInit {
        /// The secret key's file.
        pub key: PathBuf,
        /// The public key's file (`LEDGER.signing.pub`).
        pub public: PathBuf,
        /// The key pair was created (else an existing key was named).
        pub created: bool,
        /// The public key file was written.
        pub public_created: bool,
        /// The key.
        pub signer: SignerKey,
    }

    impl SigningKeyInit {
        /// Removes the files it created (when creating the ledger failed).
        pub fn undo(&self) {
            if self.created {
                let _ = std::fs::remove_file(&self.key);
            }
            if self.public_created {
                let _ = std::fs::remove_file(&self.public);
            }
        }
    }

    /// The checkpoint signing key for a new ledger at `ledger` with id
    /// `id`, before the ledger is created (`optout init`, Python
    /// `Ledger.create`): the existing Ed25519 key file `given` (its public
    /// key written to `LEDGER.signing.pub` if that is missing), else a new
    /// pair at `LEDGER.signing.key` / `.pub`. Refused: a key inside the
    /// ledger directory (whoever can write the ledger could sign a rewritten
    /// history), a witness's cosigning key, and, when no key is named, an
    /// existing file at the default path (it may be another ledger's key:
    /// reusing it unasked would sign two logs with one key).
    pub fn init_signing_key(
        ledger: &Path,
        given: Option<&Path>,
        id: &[u8; 16],
    ) -> Result<SigningKeyInit> {
        let key = given.map_or_else(|| default_signing_key_path(ledger), Path::to_path_buf);
        let public = default_signing_pub_path(ledger);
        if crate::pseudonym::key_inside_ledger(&key, ledger) {
            return Err(Error::Invalid(format!(
                "{}: the signing key must be kept outside the ledger directory {} (whoever can write \
                 the ledger could then sign a rewritten history)",
                key.display(),
                ledger.display()
            )));
        }
        if given.is_none() && key.exists() {
            return Err(LedgerError::SigningKeyExists { path: key }.into());
        }
        if given.is_some() {
            let signer = SignerKey::load_file(&key).map_err(TlogError::from)?;
            if signer.verifier().kind() != crate::tlog::KeyKind::Ed25519 {
                return Err(Error::Invalid(format!(
                    "{}: a witness's cosigning key cannot sign checkpoints",
                    key.display()
                )));
            }
            let public_created = !public.exists();
            if public_created {
                signer
                    .verifier()
                    .write_file(&public)
                    .map_err(TlogError::from)?;
            }
            return Ok(SigningKeyInit {
                key,
                public,
                created: false,
                public_created,
                signer,
            });
        }
        let signer = create_key_pair(&key, &public, &origin_of(id), crate::tlog::KeyKind::Ed25519)?;
        Ok(SigningKeyInit {
            key,
            public,
            created: true,
            public_created: true,
            signer,
        })
    }

    /// A signed checkpoint of the ledger's log, as written to a file.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SignedCheckpoint {
        /// The checkpoint (origin, size = head seq, root).
        pub checkpoint: Checkpoint,
        /// The signed note (C2SP), the bytes to publish.
        pub note: String,
    }

    impl<I: Io> Ledger<I> {
        /// The origin of this ledger's log (`optout/<ledger id hex>`).
        pub fn origin(&self) -> String {
            origin_of(self.ledger_id().as_bytes())
        }

        /// Signs a checkpoint of the log at its head with the ledger's
        /// signing key (the tree caught up first).
        pub fn checkpoint(&self, key: &SignerKey) -> Result<SignedCheckpoint> {
            let (size, root) = self.tree_head()?;
            let checkpoint = Checkpoint::new(self.origin(), size, root);
            let note = checkpoint.sign(key).map_err(TlogError::from)?;
            Ok(SignedCheckpoint { checkpoint, note })
        }

        /// The verifier of this ledger's checkpoints: `log` must have
        /// signed them, for this ledger's origin, and `threshold` of
        /// `witnesses` must have cosigned them.
        pub fn checkpoint_verifier(
            &self,
            log: VerifierKey,
            witnesses: Vec<VerifierKey>,
            threshold: usize,
        ) -> CheckpointVerifier {
            CheckpointVerifier::new(log)
                .origin(self.origin())
                .witnesses(witnesses, threshold)
        }

        /// Verifies a signed checkpoint note of this ledger: its
        /// signatures by `verifier`, for this ledger's origin (a checkpoint
        /// of another ledger is refused).
        pub fn verify_checkpoint_note(
            &self,
            note: &[u8],
            verifier: &CheckpointVerifier,
        ) -> Result<Checkpoint> {
            let verifier = verifier.clone().origin(self.origin());
            Ok(verifier.verify(note).map_err(TlogError::from)?.checkpoint)
        }
        /// The receipt of the entry at `seq` in the signed checkpoint
        /// `note` (of this ledger, at or after `seq`).
        pub fn receipt(&self, seq: Seq, note: &SignedCheckpoint) -> Result<Receipt> {
            Ok(self.receipts(&[seq], note)?.remove(0))
        }

        /// A checkpoint signed at the head with `key` and the receipts of
        /// the entries at `seqs` in it (a subject's events:
        /// `SubjectReport::event_seqs`): what `report --receipts` and
        /// Python's `report(..., receipts=True)` add.
        pub fn subject_receipts_at_head(
            &self,
            seqs: &[Seq],
            key: &SignerKey,
        ) -> Result<(SignedCheckpoint, Vec<Receipt>)> {
            let c = self.checkpoint(key)?;
            let receipts = self.receipts(seqs, &c)?;
            Ok((c, receipts))
        }

        /// A checkpoint signed at the head with `key` and the receipts of
        /// every entry after `after` in it: what `apply --receipts` (and
        /// Python's `apply(..., receipts=True)`) hands out for a batch.
        pub fn receipts_after(
            &self,
            after: Seq,
            key: &SignerKey,
        ) -> Result<(SignedCheckpoint, Vec<Receipt>)> {
            let c = self.checkpoint(key)?;
            let seqs: Vec<Seq> = (after.0 + 1..=c.checkpoint.size).map(Seq).collect();
            let receipts = self.receipts(&seqs, &c)?;
            Ok((c, receipts))
        }

        /// The receipts of the entries at `seqs` in checkpoint `note`, the
        /// tree opened once.
        pub fn receipts(&self, seqs: &[Seq], note: &SignedCheckpoint) -> Result<Vec<Receipt>> {
            let size = note.checkpoint.size;
            if note.checkpoint.origin != self.origin() {
                return Err(Error::Invalid(format!(
                    "the checkpoint is of log {:?}, not of this ledger ({:?})",
                    note.checkpoint.origin,
                    self.origin()
                )));
            }
            if let Some(s) = seqs.iter().find(|s| s.0 == 0 || s.0 > size) {
                return Err(seq_error(*s, size));
            }
            let id = self.ledger_id();
            let proofs = self.with_tree(|t, mut log| {
                if t.root_at(size, &mut log)? != note.checkpoint.root {
                    return Err(TlogError::Leaves(format!(
                        "the checkpoint's root is not the root of this ledger's first {size} entries"
                    )));
                }
                seqs.iter()
                    .map(|s| t.inclusion_proof(s.0 - 1, size, &mut log))
                    .collect::<std::result::Result<Vec<_>, _>>()
            })?;
            seqs.iter()
                .zip(proofs)
                .map(|(seq, proof)| {
                    let payload = self.log.read(*seq)?;
                    let entry: Entry = crate::codec::decode(&payload).map_err(|e| {
                        LedgerError::Damaged(format!("log entry at seq {seq} does not decode: {e}"))
                    })?;
                    let summary = entry_summary(*seq, &entry);
                    Ok(Receipt::new(
                        id.as_bytes(),
                        seq.0,
                        &payload,
                        summary,
                        note.note.clone(),
                        proof,
                    )?)
                })
                .collect()
        }
    }

    /// Verifies a receipt offline ([`verify_receipt`]: the checkpoint's
    /// signatures, the leaf hash, the inclusion proof and, given `later`,
    /// the consistency with a later checkpoint), then decodes its entry and
    /// checks that its `summary` is what the entry says.
    pub fn verify_ledger_receipt(
        receipt: &Receipt,
        verifier: &CheckpointVerifier,
        later: Option<Later<'_>>,
    ) -> std::result::Result<VerifiedReceipt, ReceiptError> {
        let v = verify_receipt(receipt, verifier, later)?;
        let entry: Entry =
            crate::codec::decode(&v.entry).map_err(|e| ReceiptError::Inconsistent {
                field: "entry",
                what: format!("is not a ledger entry: {e}"),
            })?;
        if entry_summary(Seq(v.seq), &entry) != receipt.summary {
            return Err(ReceiptError::Inconsistent {
                field: "summary",
                what: "is not what the entry says".into(),
            });
        }
        Ok(v)
    }
}

#[cfg(feature = "signing")]
pub use signing::{
    create_key_pair, init_signing_key, new_ledger_id, origin_of, verify_ledger_receipt,
    SignedCheckpoint, SigningKeyInit,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ChainHash, MemIo};

    /// The anchor's layout, byte for byte (docs/FORMAT.md, "Ledger wiring").
    #[test]
    fn the_anchor_layout_is_the_documented_one() {
        let io = MemIo::new();
        let dir = Path::new("/t");
        io.create_dir(dir).unwrap();
        let chain = ChainHash::from_bytes([0xab; 32]);
        write_anchor(&io, dir, 0x0102_0304_0506_0708, &chain).unwrap();
        let b = io.read_all(&dir.join(ANCHOR_FILE)).unwrap();
        let mut want = b"OOTLOGA\0".to_vec();
        want.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]);
        want.extend_from_slice(&[0xab; 32]);
        let crc = crc32fast::hash(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(b, want);
        assert!(!io.exists(&dir.join("anchor.tmp")).unwrap());
        assert_eq!(
            read_anchor(&io, &dir.join(ANCHOR_FILE)),
            Some((0x0102_0304_0506_0708, chain))
        );
        // A flipped byte: not an anchor (the store is then trusted for nothing).
        let mut bad = b.clone();
        bad[20] ^= 1;
        io.write_at(&dir.join(ANCHOR_FILE), 0, &bad).unwrap();
        assert_eq!(read_anchor(&io, &dir.join(ANCHOR_FILE)), None);
    }
}
