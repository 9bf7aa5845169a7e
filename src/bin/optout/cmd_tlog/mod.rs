//! The transparency log's commands (issue 16): signing keys, checkpoints,
//! consistency proofs here; receipts in `receipts`; keygen, cosigning and
//! `verify --checkpoint` in `verify`. Every rule is the library's
//! (`Ledger::checkpoint`, `check_checkpoints`, `receipts`,
//! `verify_ledger_receipt`, ...); these files read files, call it and print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use optout::tlog::{
    cosign as add_cosignature, Checkpoint, CheckpointVerifier, ConsistencyProof, KeyKind, Later,
    Receipt, SignedNote, SignerKey, VerifierKey,
};
use optout::StorageError;
use optout::{CheckpointCheck, Error, Ledger, Manifest, SignedCheckpoint};
use serde_json::json;

use crate::args::{
    CheckpointArgs, ExpectHead, KeyArg, ManifestCheckpointArg, ReceiptsArg, SigningKeyArg,
    VerifierArgs,
};
use crate::out::Out;
use crate::{open_ledger, optional_key, Status};

mod receipts;
mod verify;

pub use receipts::*;
pub use verify::*;

/// Largest checkpoint, proof or receipt file read.
const MAX_FILE: u64 = 4 << 20;

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    Ok(optout::read_bounded(path, MAX_FILE, what)?)
}

fn write_or_print(out: &mut Out, dest: Option<&Path>, text: &str) -> Result<()> {
    match dest {
        Some(p) => {
            let mut o = optout::Output::create(p)?;
            o.write_all(text.as_bytes())
                .with_context(|| format!("{}: write", p.display()))?;
            o.commit()?;
        }
        None => out.raw().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// The signing key file: `--signing-key`, else `LEDGER.signing.key`.
fn signing_key_path(ledger: &Path, arg: &SigningKeyArg) -> PathBuf {
    arg.signing_key
        .clone()
        .unwrap_or_else(|| optout::default_signing_key_path(ledger))
}

/// Loads the ledger's checkpoint signing key; a ledger created before
/// signed checkpoints has none, and the error says how to make one.
fn load_signing_key(ledger: &Path, arg: &SigningKeyArg) -> Result<SignerKey> {
    let p = signing_key_path(ledger, arg);
    if !p.exists() {
        bail!(
            "{}: no checkpoint signing key (a ledger created before signed checkpoints has none): \
             create one with `optout keygen {}`, or pass --signing-key PATH",
            p.display(),
            ledger.display()
        );
    }
    Ok(SignerKey::load_file(&p)?)
}

/// The signing key `init` uses: created (with its .pub) unless
/// `--signing-key` names an existing file (the rule is the library's
/// `init_signing_key`, shared with Python's `Ledger.create`).
pub struct InitSigning(pub optout::SigningKeyInit);

impl InitSigning {
    /// Removes what `init_signing` created.
    pub fn undo(&self) {
        self.0.undo();
    }

    pub fn report(&self, out: &mut Out) -> Result<()> {
        let s = &self.0;
        if s.created {
            out.line(format!(
                "created checkpoint signing key {} (mode 0600) and its public key {}: keep the \
                 secret key apart from the ledger; publish the public key to whoever checks checkpoints and receipts",
                s.key.display(),
                s.public.display()
            ))?;
        } else {
            out.line(format!(
                "using existing checkpoint signing key {}",
                s.key.display()
            ))?;
        }
        Ok(())
    }
}

pub fn init_signing(ledger: &Path, arg: &SigningKeyArg, id: &[u8; 16]) -> Result<InitSigning> {
    let given = arg.signing_key.as_deref();
    optout::init_signing_key(ledger, given, id)
        .map(InitSigning)
        .map_err(|e| {
            let hint = match &e {
                Error::Ledger(optout::LedgerError::SigningKeyExists { path }) => {
                    format!(" (pass --signing-key {} to use it)", path.display())
                }
                _ => String::new(),
            };
            anyhow::anyhow!("{e}{hint}")
        })
}

/// A fresh random ledger id (the signing key is named after it before the
/// ledger exists).
pub fn new_ledger_id() -> Result<[u8; 16]> {
    Ok(optout::new_ledger_id()?)
}

/// `--witness`: a vkey, or a file holding one.
fn witness_key(arg: &str) -> Result<VerifierKey> {
    let p = Path::new(arg);
    let k = if p.is_file() {
        VerifierKey::load_file(p)?
    } else {
        VerifierKey::parse(arg).with_context(|| format!("--witness {arg:?}"))?
    };
    if k.kind() != KeyKind::Cosignature {
        bail!("--witness {arg:?}: a witness's key is a cosignature (0x04) key");
    }
    Ok(k)
}

/// The checkpoint verifier of `--pubkey` (default: `LEDGER.signing.pub`
/// when a ledger is named) and `--witness`.
fn verifier(args: &VerifierArgs, ledger: Option<&Path>) -> Result<CheckpointVerifier> {
    let path = match (&args.pubkey, ledger) {
        (Some(p), _) => p.clone(),
        (None, Some(l)) => optout::default_signing_pub_path(l),
        (None, None) => bail!("--pubkey PATH is needed: the log's public key (LEDGER.signing.pub)"),
    };
    let log = VerifierKey::load_file(&path)?;
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| witness_key(w))
        .collect::<Result<Vec<_>>>()?;
    let threshold = args.witness_threshold.unwrap_or(witnesses.len());
    Ok(CheckpointVerifier::new(log).witnesses(witnesses, threshold))
}

/// `verify` without `--checkpoint` takes none of its flags.
pub fn no_checkpoint_flags(c: &CheckpointArgs) -> Result<()> {
    if c.verifier.pubkey.is_some() || !c.verifier.witnesses.is_empty() {
        bail!("--pubkey and --witness are for --checkpoint FILE");
    }
    Ok(())
}

/// A consistency proof file (docs/FORMAT.md, "Proofs").
fn read_proof(path: &Path) -> Result<ConsistencyProof> {
    serde_json::from_slice(&read(path, "consistency proof")?)
        .with_context(|| format!("{}: not a consistency proof", path.display()))
}

/// A checkpoint file, its signatures verified by `v`.
fn read_verified(v: &CheckpointVerifier, path: &Path) -> Result<Checkpoint> {
    Ok(v.verify(&read(path, "checkpoint")?)
        .with_context(|| format!("{}: checkpoint", path.display()))?
        .checkpoint)
}

fn parse_checkpoint(bytes: &[u8]) -> Result<Checkpoint> {
    let note = SignedNote::parse(bytes)?;
    Ok(Checkpoint::from_text(note.text())?)
}

/// Opens the ledger for writing (the tree is caught up) and signs a
/// checkpoint at its head.
fn signed_at_head(
    out: &mut Out,
    ledger: &Path,
    signing: &SigningKeyArg,
    key: &KeyArg,
) -> Result<(Ledger, SignedCheckpoint)> {
    let sk = load_signing_key(ledger, signing)?;
    let keyer = optional_key(ledger, key)?;
    let l = open_ledger(out, ledger, keyer, false)?;
    let c = l.checkpoint(&sk)?;
    Ok((l, c))
}

pub fn checkpoint(
    out: &mut Out,
    ledger: &Path,
    dest: Option<&Path>,
    signing: &SigningKeyArg,
    key: &KeyArg,
) -> Result<Status> {
    let (_, c) = signed_at_head(out, ledger, signing, key)?;
    let cp = &c.checkpoint;
    // Without -o: the note itself on stdout (the document to publish).
    write_or_print(out, dest, &c.note)?;
    if let Some(d) = dest {
        out.line(format!(
            "wrote checkpoint {} of {}: size {} (seq 1..={}), root {}",
            d.display(),
            cp.origin,
            cp.size,
            cp.size,
            cp.root.to_hex()
        ))?;
        out.json(json!({
            "command": "checkpoint",
            "file": d,
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root.to_hex(),
        }))?;
    }
    Ok(Status::Ok)
}

/// A tree size, or the size of a checkpoint file (which must be of this
/// ledger's history).
fn size_arg(l: &Ledger, arg: &str) -> Result<u64> {
    if let Ok(n) = arg.parse::<u64>() {
        return Ok(n);
    }
    let p = Path::new(arg);
    let cp = parse_checkpoint(&read(p, "checkpoint")?).with_context(|| p.display().to_string())?;
    if cp.origin != l.origin() {
        bail!(
            "{}: a checkpoint of log {:?}, not of this ledger ({:?})",
            p.display(),
            cp.origin,
            l.origin()
        );
    }
    if cp.size > l.head().0 .0 {
        bail!(
            "{}: the checkpoint's size {} is past the ledger's head {} (truncated or rolled back? run `optout verify --checkpoint`)",
            p.display(),
            cp.size,
            l.head().0
        );
    }
    if l.tree_root_at(cp.size)? != cp.root {
        bail!(
            "{}: the ledger's history differs from the checkpoint's at or before seq {}: \
             no consistency proof exists (run `optout verify --checkpoint`)",
            p.display(),
            cp.size
        );
    }
    Ok(cp.size)
}

pub fn prove_consistency(
    out: &mut Out,
    ledger: &Path,
    old: &str,
    new: &str,
    key: &KeyArg,
) -> Result<Status> {
    let keyer = optional_key(ledger, key)?;
    let l = open_ledger(out, ledger, keyer, false)?;
    let (old, new) = (size_arg(&l, old)?, size_arg(&l, new)?);
    let proof = l.consistency_proof(old, new)?;
    // Always the proof's own JSON (docs/FORMAT.md): the document
    // `verify-consistency` and `verify-receipt --proof` read.
    let mut text = serde_json::to_string_pretty(&proof)?;
    text.push('\n');
    out.raw().write_all(text.as_bytes())?;
    Ok(Status::Ok)
}

fn failed(out: &mut Out, command: &str, what: &str, why: &str) -> Result<Status> {
    out.line(format!("{what}: FAILED: {why}"))?;
    out.json(json!({"command": command, "ok": false, "error": why}))?;
    Ok(Status::Found)
}

pub fn verify_consistency(
    out: &mut Out,
    old: &Path,
    new: &Path,
    proof: &Path,
    args: &VerifierArgs,
) -> Result<Status> {
    let v = verifier(args, None)?;
    let o = read_verified(&v, old)?;
    let n = read_verified(&v.clone().origin(o.origin.clone()), new)?;
    let p = read_proof(proof)?;
    let what = format!("{} -> {}", old.display(), new.display());
    if p.old_size != o.size || p.new_size != n.size {
        return failed(
            out,
            "verify-consistency",
            &what,
            &format!(
                "the proof is from size {} to {}, the checkpoints are of {} and {}",
                p.old_size, p.new_size, o.size, n.size
            ),
        );
    }
    if let Err(e) = p.verify(&o.root, &n.root) {
        return failed(
            out,
            "verify-consistency",
            &what,
            &format!(
                "the tree of size {} is not a prefix of the tree of size {}: {e}",
                o.size, n.size
            ),
        );
    }
    out.line(format!(
        "{what}: OK: the log {} of size {} extends its tree of size {}",
        o.origin, n.size, o.size
    ))?;
    out.json(json!({
        "command": "verify-consistency",
        "ok": true,
        "origin": o.origin,
        "old_size": o.size,
        "new_size": n.size,
    }))?;
    Ok(Status::Ok)
}
