//! The transparency log's commands (issue 16): signing keys, checkpoints,
//! `verify --checkpoint`, consistency proofs, receipts, witness cosigning.
//! Every rule is the library's (`Ledger::checkpoint`, `check_checkpoints`,
//! `receipts`, `verify_ledger_receipt`, ...); this file reads files, calls
//! it and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use optout::storage::StorageError;
use optout::tlog::{
    cosign as add_cosignature, Checkpoint, CheckpointVerifier, ConsistencyProof, KeyKind, Later,
    Receipt, SignedNote, SignerKey, VerifierKey,
};
use optout::{CheckpointCheck, Error, Ledger, Manifest, SignedCheckpoint};
use serde_json::json;

use crate::args::{
    CheckpointArgs, ExpectHead, KeyArg, ManifestCheckpointArg, ReceiptsArg, SigningKeyArg,
    VerifierArgs,
};
use crate::out::Out;
use crate::{open_ledger, optional_key, Status};

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

fn receipt_name(r: &Receipt) -> String {
    match r.summary.get("subject_pseudonym").and_then(|p| p.as_str()) {
        Some(p) => format!("receipt-{}-{p}.json", r.seq),
        None => format!("receipt-{}.json", r.seq),
    }
}

/// `apply --receipts DIR`: the signing key, loaded before anything is
/// applied (so a missing key fails the command before it writes).
pub fn receipts_key(ledger: &Path, arg: &ReceiptsArg) -> Result<Option<SignerKey>> {
    match &arg.receipts {
        None => Ok(None),
        Some(_) => load_signing_key(ledger, &arg.signing).map(Some),
    }
}

/// `report --receipts`: the signing key, loaded before the ledger is opened.
pub fn report_receipts_key(
    ledger: &Path,
    arg: &crate::args::ReportReceiptsArg,
) -> Result<Option<SignerKey>> {
    match arg.receipts {
        false => Ok(None),
        true => load_signing_key(ledger, &arg.signing).map(Some),
    }
}

/// `report --receipts`: the receipts of the report's events (JSON objects)
/// in a checkpoint signed at the head.
pub fn subject_receipts(
    l: &Ledger,
    report: &optout::report::SubjectReport,
    key: &SignerKey,
) -> Result<serde_json::Value> {
    let (_, rs) = l.subject_receipts_at_head(&report.event_seqs(), key)?;
    Ok(serde_json::to_value(rs)?)
}

/// `apply --receipts DIR`: a checkpoint at the new head, and one receipt
/// per entry `after + 1 ..= head` (the events just applied).
pub fn write_receipts(
    out: &mut Out,
    l: &Ledger,
    ledger: &Path,
    after: u64,
    arg: &ReceiptsArg,
    key: Option<&SignerKey>,
) -> Result<Option<serde_json::Value>> {
    let (Some(dir), Some(sk)) = (&arg.receipts, key) else {
        return Ok(None);
    };
    let head = l.head().0 .0;
    let made = (|| -> Result<(SignedCheckpoint, Vec<String>)> {
        let (c, receipts) = l.receipts_after(optout::Seq(after), sk)?;
        std::fs::create_dir_all(dir).with_context(|| format!("{}: create", dir.display()))?;
        let mut names = Vec::with_capacity(receipts.len());
        for r in &receipts {
            let name = receipt_name(r);
            let mut text = r.to_json();
            text.push('\n');
            write_or_print(out, Some(&dir.join(&name)), &text)?;
            names.push(name);
        }
        Ok((c, names))
    })();
    let (c, names) = made.with_context(|| {
        format!(
            "the events are recorded (seq {}..={head}), but their receipts were not all written \
             (`optout receipt {} SEQ -o FILE` writes one)",
            after + 1,
            ledger.display()
        )
    })?;
    out.line(format!(
        "wrote {} receipt(s) to {} in checkpoint size {}",
        names.len(),
        dir.display(),
        c.checkpoint.size
    ))?;
    Ok(Some(json!({
        "dir": dir,
        "files": names,
        "checkpoint_size": c.checkpoint.size,
        "checkpoint_root": c.checkpoint.root.to_hex(),
    })))
}

pub fn receipt(
    out: &mut Out,
    ledger: &Path,
    seq: u64,
    dest: Option<&Path>,
    signing: &SigningKeyArg,
    key: &KeyArg,
) -> Result<Status> {
    let (l, c) = signed_at_head(out, ledger, signing, key)?;
    let r = l.receipt(optout::Seq(seq), &c)?;
    let mut text = r.to_json();
    text.push('\n');
    write_or_print(out, dest, &text)?;
    if let Some(d) = dest {
        out.line(format!(
            "wrote the receipt of seq {seq} to {} (checkpoint size {})",
            d.display(),
            c.checkpoint.size
        ))?;
    }
    Ok(Status::Ok)
}

pub fn verify_receipt(
    out: &mut Out,
    receipt: &Path,
    args: &VerifierArgs,
    later: Option<(&Path, &Path)>,
) -> Result<Status> {
    let v = verifier(args, None)?;
    let bytes = read(receipt, "receipt")?;
    let r = match Receipt::from_json(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return failed(
                out,
                "verify-receipt",
                &receipt.display().to_string(),
                &e.to_string(),
            )
        }
    };
    let later_files = match later {
        None => None,
        Some((cp, proof)) => Some((read(cp, "checkpoint")?, read_proof(proof)?)),
    };
    let l = later_files.as_ref().map(|(note, proof)| Later {
        checkpoint: note,
        proof,
    });
    let what = receipt.display().to_string();
    match optout::verify_ledger_receipt(&r, &v, l) {
        Ok(ok) => {
            let ty = r
                .summary
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("entry");
            out.line(format!(
                "{what}: OK: seq {} ({ty}) is in the log {} at checkpoint size {}{}{}",
                ok.seq,
                ok.checkpoint.origin,
                ok.checkpoint.size,
                ok.later
                    .as_ref()
                    .map(|c| format!(", and still in it at size {}", c.size))
                    .unwrap_or_default(),
                if ok.cosigned_by.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = ok.cosigned_by.iter().map(|(n, _)| n.as_str()).collect();
                    format!("; cosigned by {}", names.join(", "))
                }
            ))?;
            out.json(json!({
                "command": "verify-receipt",
                "ok": true,
                "seq": ok.seq,
                "origin": ok.checkpoint.origin,
                "checkpoint_size": ok.checkpoint.size,
                "later_size": ok.later.as_ref().map(|c| c.size),
                "cosigned_by": ok.cosigned_by.iter().map(|(n, t)| json!({"name": n, "timestamp": t})).collect::<Vec<_>>(),
                "summary": r.summary,
            }))?;
            Ok(Status::Ok)
        }
        Err(e) => failed(out, "verify-receipt", &what, &e.to_string()),
    }
}

pub fn keygen(
    out: &mut Out,
    ledger: Option<&Path>,
    witness: Option<&str>,
    dest: Option<&Path>,
    signing_key: Option<PathBuf>,
) -> Result<Status> {
    if let (Some(name), Some(path)) = (witness, dest) {
        let public = PathBuf::from(format!("{}.pub", path.display()));
        let k = optout::create_key_pair(path, &public, name, KeyKind::Cosignature)?;
        out.line(format!(
            "created witness key {} (mode 0600) and its public key {}: {}",
            path.display(),
            public.display(),
            k.verifier().to_text()
        ))?;
        out.json(json!({"command": "keygen", "witness": name, "key_file": path, "pub_file": public, "vkey": k.verifier().to_text()}))?;
        return Ok(Status::Ok);
    }
    let Some(ledger) = ledger else {
        bail!("keygen: name a LEDGER, or --witness NAME -o PATH");
    };
    let l = open_ledger(out, ledger, None, true)?;
    let arg = SigningKeyArg { signing_key };
    let s = init_signing(ledger, &arg, l.ledger_id().as_bytes())?;
    if !s.0.created {
        bail!("{}: already exists; nothing was created", s.0.key.display());
    }
    s.report(out)?;
    out.json(
        json!({"command": "keygen", "key_file": s.0.key, "pub_file": s.0.public, "origin": l.origin()}),
    )?;
    Ok(Status::Ok)
}

pub fn cosign(
    out: &mut Out,
    checkpoint: &Path,
    witness_key: &Path,
    pubkey: &Path,
    previous: Option<(&Path, &Path)>,
    dest: Option<&Path>,
) -> Result<Status> {
    let w = SignerKey::load_file(witness_key)?;
    if w.verifier().kind() != KeyKind::Cosignature {
        bail!(
            "{}: not a witness key (create one with `optout keygen --witness NAME -o PATH`)",
            witness_key.display()
        );
    }
    let v = CheckpointVerifier::new(VerifierKey::load_file(pubkey)?);
    let note = read(checkpoint, "checkpoint")?;
    let cp = read_verified(&v, checkpoint)?;
    if let Some((prev, proof)) = previous {
        let p = read_verified(&v.clone().origin(cp.origin.clone()), prev)?;
        let pr = read_proof(proof)?;
        if pr.old_size != p.size || pr.new_size != cp.size || pr.verify(&p.root, &cp.root).is_err()
        {
            bail!(
                "{}: does not extend {} by {}: not cosigned",
                checkpoint.display(),
                prev.display(),
                proof.display()
            );
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let text = add_cosignature(&note, &w, now)?;
    write_or_print(out, dest, &text)?;
    if let Some(d) = dest {
        out.line(format!(
            "cosigned {} (size {}) as {}: wrote {}",
            checkpoint.display(),
            cp.size,
            w.name(),
            d.display()
        ))?;
    }
    Ok(Status::Ok)
}

/// The seq a damaged log names, if opening it failed on damage.
fn damaged_seq(e: &Error) -> Option<(String, Option<u64>)> {
    match e {
        Error::Storage(s @ StorageError::Corrupt { seq, .. }) => {
            Some((s.to_string(), seq.map(|s| s.0)))
        }
        _ => None,
    }
}

pub fn verify(
    out: &mut Out,
    ledger: &Path,
    key: &KeyArg,
    expect: &ExpectHead,
    args: &CheckpointArgs,
) -> Result<Status> {
    if expect.expect_head.is_some() {
        bail!("--expect-head and --checkpoint: run `optout verify` once with each");
    }
    let v = verifier(&args.verifier, Some(ledger))?;
    let keyer = optional_key(ledger, key)?;
    // Opening replays the log, checking every frame and the chain.
    let l = match Ledger::open_read_only(ledger, keyer) {
        Ok(l) => l,
        Err(e) => {
            if let Some((what, seq)) = damaged_seq(&e) {
                out.line(format!("{}: DAMAGED: {what}", ledger.display()))?;
                out.json(json!({"command": "verify", "ok": false, "damaged_at_seq": seq, "error": what, "checkpoints": []}))?;
                return Ok(Status::Found);
            }
            return Err(e.into());
        }
    };
    for n in l.notes() {
        out.note(n);
    }
    let mut cps = Vec::with_capacity(args.checkpoints.len());
    for p in &args.checkpoints {
        let note = read(p, "checkpoint")?;
        let cp = l
            .verify_checkpoint_note(&note, &v)
            .with_context(|| format!("{}: checkpoint refused", p.display()))?;
        cps.push(cp);
    }
    let pairs: Vec<(u64, optout::tlog::Hash)> = cps.iter().map(|c| (c.size, c.root)).collect();
    let checks = l.check_checkpoints(&pairs)?;
    let head = l.head().0 .0;
    let mut rows = Vec::new();
    for (p, c) in args.checkpoints.iter().zip(&checks) {
        let (ok, what) = match c {
            CheckpointCheck::Extends { size } => (
                true,
                format!("OK: the ledger (head {head}) extends it (size {size})"),
            ),
            CheckpointCheck::Truncated { size, head } => (
                false,
                format!(
                    "the ledger ends at seq {head}, the checkpoint covers seq 1..={size}: \
                     truncated or rolled back, seq {}..={size} are missing",
                    head + 1
                ),
            ),
            CheckpointCheck::Diverged { size, .. } => (
                false,
                format!(
                    "the ledger's first {size} entries do not hash to the checkpoint's root: \
                     an entry at or before seq {size} was rewritten, or history forked"
                ),
            ),
        };
        out.line(format!("{}: {what}", p.display()))?;
        rows.push(json!({"file": p, "ok": ok, "size": c_size(c), "what": what}));
    }
    let div = optout::divergence(&checks);
    if let Some((after, upto)) = div {
        let at = if after + 1 == upto {
            format!("at seq {upto}")
        } else {
            format!("after seq {after}, at or before seq {upto}")
        };
        out.line(format!(
            "{}: DOES NOT EXTEND the checkpoints: history diverges {at}",
            ledger.display()
        ))?;
    }
    out.json(json!({
        "command": "verify",
        "ok": div.is_none(),
        "seq": head,
        "checkpoints": rows,
        "diverges_after": div.map(|d| d.0),
        "diverges_at_or_before": div.map(|d| d.1),
    }))?;
    Ok(if div.is_none() {
        Status::Ok
    } else {
        Status::Found
    })
}

fn c_size(c: &CheckpointCheck) -> u64 {
    match c {
        CheckpointCheck::Extends { size }
        | CheckpointCheck::Truncated { size, .. }
        | CheckpointCheck::Diverged { size, .. } => *size,
    }
}

/// `check|runs add --checkpoint FILE`: the checkpoint, its signatures
/// verified (by `--pubkey`, default `LEDGER.signing.pub` with a ledger, and
/// the `--witness` keys) as one of the manifest's ledger's log.
pub fn manifest_checkpoint(
    arg: &ManifestCheckpointArg,
    ledger: Option<&Path>,
    m: &Manifest,
) -> Result<Option<(PathBuf, Checkpoint)>> {
    let Some(p) = &arg.file else {
        if arg.verifier.pubkey.is_some() || !arg.verifier.witnesses.is_empty() {
            bail!("--pubkey and --witness are for --checkpoint FILE");
        }
        return Ok(None);
    };
    let v = verifier(&arg.verifier, ledger)?.origin(m.origin());
    Ok(Some((p.clone(), read_verified(&v, p)?)))
}
