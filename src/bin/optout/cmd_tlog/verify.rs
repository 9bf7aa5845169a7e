//! Keys and checks: `keygen`, witness `cosign`, `verify --checkpoint`, and
//! the `--checkpoint` a manifest must agree with.

use super::*;

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
