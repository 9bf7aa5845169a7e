//! Signing (feature `signing`): the origin and key files of a ledger's log,
//! signed checkpoints at the head, receipts, and verifying a receipt
//! offline ([`verify_ledger_receipt`]).

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
    let entry: Entry = crate::codec::decode(&v.entry).map_err(|e| ReceiptError::Inconsistent {
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
