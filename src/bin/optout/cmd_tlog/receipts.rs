//! Receipts: `apply --receipts`, `report --receipts`, `receipt`,
//! `verify-receipt` (the library's `receipts` and `verify_ledger_receipt`).

use super::*;

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
