//! Checking and keeping the ledger: `verify`, `snapshot`, `head`,
//! `quarantine list|ack`.

use super::*;

pub fn verify(out: &mut Out, ledger: &Path, key: &KeyArg, expect: &ExpectHead) -> Result<Status> {
    let t0 = Instant::now();
    // Frames, chain links and snapshots (authenticated with the subject key
    // when there is one); then every entry decoded and folded from seq 1,
    // and the newest snapshot compared with that replay.
    let keyer = optional_key(ledger, key)?;
    let pin = expected_head(expect)?;
    let v = optout::verify_ledger_keyed(ledger, keyer.as_ref(), pin.as_ref())
        .with_context(|| format!("{}: cannot verify", ledger.display()))?;
    let report = &v.storage;
    let mut findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "kind": f.kind.name(),
                "file": f.file,
                "offset": f.offset,
                "seq": f.seq.map(|s| s.0),
                "what": f.what,
            })
        })
        .collect();
    let mut lines: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
    for p in &v.problems {
        lines.push(format!("replay: {p}"));
        findings.push(
            json!({"kind": "replay", "file": ledger, "offset": null, "seq": null, "what": p}),
        );
    }
    let ok = v.is_clean();
    for n in &report.notes {
        out.note(&n.to_string());
    }
    if report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Quarantined)
    {
        out.note(
            "quarantined torn tails are reported until acknowledged: look at them, then \
             `optout quarantine ack LEDGER --note WHY` records that in the log",
        );
    }
    let head = report.head.map(|(s, c)| (s.0, c.to_hex()));
    if ok {
        let (seq, chain) = head.clone().unwrap_or_default();
        out.line(format!(
            "{}: OK: {} segment(s), {} snapshot(s) verified, seq {seq}, chain head {chain}",
            ledger.display(),
            report.segments,
            report.snapshots_ok
        ))?;
        out.line(format!(
            "replayed {} entries from seq 1{} ({})",
            num(v.entries),
            v.snapshot_checked
                .map(|s| format!("; the snapshot at seq {s} matches the replay"))
                .unwrap_or_default(),
            secs(t0.elapsed())
        ))?;
    } else {
        out.line(format!(
            "{}: DAMAGED: {} finding(s)",
            ledger.display(),
            findings.len()
        ))?;
        for l in &lines {
            out.line(format!("  {l}"))?;
        }
    }
    out.json(json!({
        "command": "verify",
        "ok": ok,
        "seq": head.as_ref().map(|h| h.0),
        "chain_head": head.as_ref().map(|h| h.1.clone()),
        "segments": report.segments,
        "snapshots_ok": report.snapshots_ok,
        "entries": v.entries,
        "snapshot_checked": v.snapshot_checked.map(|s| s.0),
        "findings": findings,
    }))?;
    Ok(if ok { Status::Ok } else { Status::Found })
}

pub fn snapshot(out: &mut Out, ledger: &Path, key: &KeyArg) -> Result<Status> {
    let t0 = Instant::now();
    let keyer = load_key(ledger, key)?;
    let mut l = open_ledger(out, ledger, Some(keyer), false)?;
    let path = l.snapshot()?;
    let seq = l.head().0;
    out.line(format!(
        "wrote snapshot {} at seq {seq} ({})",
        path.display(),
        secs(t0.elapsed())
    ))?;
    out.json(json!({"command": "snapshot", "path": path, "seq": seq.0}))?;
    Ok(Status::Ok)
}

pub fn head(out: &mut Out, ledger: &Path) -> Result<Status> {
    let h = optout::PinnedHead::of_ledger(ledger)?;
    let id = h.ledger_id.map(|b| b.to_string());
    // Always JSON: this is the document `--expect-head FILE` reads back.
    out.json_always(&mut json!({
        "command": "head",
        "ledger": ledger,
        "ledger_id": id,
        "seq": h.seq.0,
        "chain_head": h.chain.to_hex(),
    }))?;
    Ok(Status::Ok)
}

fn quarantine_json(
    files: &[(optout::QuarantineFile, Option<optout::Seq>)],
) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|(f, acked)| {
            json!({
                "file": f.path,
                "bytes": f.bytes,
                "blake3": hex(&f.blake3),
                "acknowledged_at": acked.map(|s| s.0),
            })
        })
        .collect()
}

pub fn quarantine_list(out: &mut Out, ledger: &Path) -> Result<Status> {
    let l = open_ledger(out, ledger, None, true)?;
    let files = l.quarantine()?;
    if files.is_empty() {
        out.line(format!("{}: nothing in quarantine/", ledger.display()))?;
    }
    for (f, acked) in &files {
        out.line(format!(
            "{}  {} bytes  blake3 {}  {}",
            f.path.display(),
            num(f.bytes),
            &hex(&f.blake3)[..16],
            match acked {
                Some(s) => format!("acknowledged at seq {s}"),
                None => "not acknowledged (verify reports it)".to_string(),
            }
        ))?;
    }
    out.json(json!({"command": "quarantine list", "files": quarantine_json(&files)}))?;
    Ok(Status::Ok)
}

pub fn quarantine_ack(
    out: &mut Out,
    ledger: &Path,
    note: Option<String>,
    key: &KeyArg,
) -> Result<Status> {
    let keyer = optional_key(ledger, key)?;
    let mut l = open_ledger(out, ledger, keyer, false)?;
    let seq = l.acknowledge_quarantine(note)?;
    let files = l.quarantine()?;
    match seq {
        Some(s) => out.line(format!(
            "acknowledged {} quarantined file(s) at seq {s}; verify no longer reports them",
            files.iter().filter(|(_, a)| *a == Some(s)).count()
        ))?,
        None => out.line("nothing to acknowledge")?,
    }
    out.json(json!({
        "command": "quarantine ack",
        "seq": seq.map(|s| s.0),
        "files": quarantine_json(&files),
    }))?;
    Ok(Status::Ok)
}
