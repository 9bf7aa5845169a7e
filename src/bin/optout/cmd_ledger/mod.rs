//! Commands that write the ledger itself: init, ingest, apply here;
//! verify, snapshot, head, quarantine in `verify`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use optout::FindingKind;
use optout::{Ledger, SubjectKeyer};
use serde_json::json;

use crate::args::{ExpectHead, IngestFormat, KeyArg, ReceiptsArg, SigningKeyArg};
use crate::cmd_tlog;
use crate::out::{num, secs, Out};
use crate::{
    expected_head, hex, input, key_path, load_key, open_ledger, optional_key, tables, Status,
};

mod verify;

pub use verify::*;

/// Where `apply` reads events from: JSONL, or an export by a mapping.
pub struct EventSource<'a> {
    /// The files are CSV.
    pub csv: bool,
    /// The files are Parquet.
    pub parquet: bool,
    /// The event mapping.
    pub mapping: Option<&'a Path>,
    /// `--new-purpose` and `--strict`.
    pub opts: optout::ApplyOptions,
}

/// Parser threads for `ingest`: `$OPTOUT_THREADS`, else the cores (at most 4).
fn threads() -> usize {
    std::env::var("OPTOUT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4)
        })
        .clamp(1, 64)
}

pub fn init(out: &mut Out, ledger: &Path, key: &KeyArg, signing: &SigningKeyArg) -> Result<Status> {
    if Ledger::exists(ledger) {
        bail!("{}: a ledger already exists here", ledger.display());
    }
    let (kp, named) = key_path(ledger, key);
    if optout::key_inside_ledger(&kp, ledger) {
        bail!(
            "{}: the subject key must be kept outside the ledger directory {} (whoever can read the ledger \
             could then match subject ids and forge snapshots)",
            kp.display(),
            ledger.display()
        );
    }
    let (keyer, created) = if kp.exists() {
        if !named {
            bail!(
                "{}: a key file already exists; pass --key-file {} to create the ledger with it, or move it away",
                kp.display(),
                kp.display()
            );
        }
        let k = SubjectKeyer::load_key_file(&kp)?;
        for w in optout::key_file_warnings(&kp, ledger) {
            eprintln!("optout: warning: {w}");
        }
        (k, false)
    } else {
        (SubjectKeyer::create_key_file(&kp)?, true)
    };
    let remove_key = || {
        if created {
            let _ = std::fs::remove_file(&kp);
        }
    };
    let ledger_id = cmd_tlog::new_ledger_id().inspect_err(|_| remove_key())?;
    let sig = cmd_tlog::init_signing(ledger, signing, &ledger_id).inspect_err(|_| remove_key())?;
    let opts = optout::LedgerOptions {
        ledger_id: Some(ledger_id),
        ..Default::default()
    };
    let l = match Ledger::create_opts(ledger, keyer, opts) {
        Ok(l) => l,
        Err(e) => {
            remove_key();
            sig.undo();
            return Err(e.into());
        }
    };
    let id = l.ledger_id();
    let seq = l.head().0 .0;
    out.line(format!("created ledger {} (id {id})", ledger.display()))?;
    if created {
        out.line(format!(
            "created subject key {} (mode 0600): keep it apart from the ledger and back it up;\n\
             without it, subject ids can no longer be matched to their pseudonyms",
            kp.display()
        ))?;
    } else {
        out.line(format!("using existing subject key {}", kp.display()))?;
    }
    sig.report(out)?;
    out.json(json!({
        "command": "init",
        "ledger": ledger,
        "ledger_id": id,
        "key_file": kp,
        "key_created": created,
        "signing_key_file": sig.0.key,
        "signing_pub_file": sig.0.public,
        "signing_key_created": sig.0.created,
        "seq": seq,
    }))?;
    Ok(Status::Ok)
}

pub fn ingest(
    out: &mut Out,
    ledger: &Path,
    files: &[String],
    table: &IngestFormat,
    key: &KeyArg,
) -> Result<Status> {
    let t0 = Instant::now();
    let is_table = tables::wants_table(table)?;
    let keyer = load_key(ledger, key)?;
    // Take the writer lock before the (long) parse, so a second writer fails fast.
    let mut l = open_ledger(out, ledger, Some(keyer.clone()), false)?;
    // Snapshots after large ingests (issue 19).
    l.set_auto_snapshot((table.snapshot_after > 0).then_some(table.snapshot_after));
    let before = l.head().0;
    // Parquet and WebDataset with shard fingerprints (issue 14): src/bin/optout/tables.rs.
    if is_table {
        return tables::ingest_files(out, l, files, table, threads(), (t0, before));
    }
    let pb = match input::total_len(files) {
        Some(n) => out.bytes_bar(n, "parsing"),
        None => out.spinner("parsing"),
    };
    let recs = input::read_records(files, &keyer, threads(), &pb)?;
    pb.finish_and_clear();
    let parse = t0.elapsed();
    let n = recs.batch.len() as u64;
    let sp = out.spinner(&format!("writing {} records", num(n)));
    let s = match l.ingest_ending(recs.batch, recs.ends) {
        Err(e @ optout::Error::RecordConflict { .. }) => {
            return Err(input::locate_conflict(files, e))
        }
        r => r?,
    };
    sp.finish_and_clear();
    // The batch is durable (fsynced); freeing a large index costs ~0.15 s per
    // million records for nothing, and the OS drops the lock at exit.
    std::mem::forget(l);
    let el = t0.elapsed();
    crate::ingest_report::report(
        out,
        crate::ingest_report::IngestReport {
            records: n,
            files: files.len(),
            summary: &s,
            before,
            elapsed: el,
            unchanged_note: String::new(),
            json: json!({
                "lines": recs.lines,
                "bytes": recs.bytes,
                "parse_seconds": parse.as_secs_f64(),
            }),
        },
    )?;
    Ok(Status::Ok)
}

pub fn apply(
    out: &mut Out,
    ledger: &Path,
    files: &[String],
    src: &EventSource,
    key: &KeyArg,
    receipts: &ReceiptsArg,
) -> Result<Status> {
    let t0 = Instant::now();
    if src.mapping.is_none() && (src.csv || src.parquet) {
        bail!("--csv and --parquet read an export by a mapping: add --mapping MAP.json");
    }
    let keyer = load_key(ledger, key)?;
    let signing = cmd_tlog::receipts_key(ledger, receipts)?;
    let mut l = open_ledger(out, ledger, Some(keyer.clone()), false)?;
    let before = l.head().0;
    let sp = out.spinner("reading events");
    let (events, origins, skipped) =
        match tables::read_events(files, src.csv, src.parquet, src.mapping, &keyer)? {
            Some((events, origins, skipped)) => (events, origins, Some(skipped)),
            None => {
                let (events, origins) = input::read_events(files, &keyer)?;
                (events, origins, None)
            }
        };
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    for e in &events {
        *by_type.entry(e.type_name()).or_default() += 1;
    }
    let n = events.len() as u64;
    // Events that take effect later are kept, but a manifest at `--at now`
    // does not apply them yet: say so (a portal writing local time with a
    // `Z` suffix would otherwise be silently ignored for hours).
    let soon = optout::Timestamp(optout::Timestamp::now().0.saturating_add(300_000_000_000));
    let future: Vec<&optout::Event> = events.iter().filter(|e| e.at > soon).collect();
    let future_n = future.len() as u64;
    let latest = future.iter().map(|e| e.at).max();
    // Subjects are named by pseudonym only, wherever an event is listed.
    let subjects: Vec<Option<optout::SubjectKey>> = events.iter().map(|e| e.subject()).collect();
    sp.set_message(format!("appending {} events", num(n)));
    let s = match l.apply_with(events, src.opts) {
        Ok(s) => s,
        Err(e) => return Err(located(e, &origins)),
    };
    sp.finish_and_clear();
    let receipts = cmd_tlog::write_receipts(out, &l, ledger, before.0, receipts, signing.as_ref())?;
    let el = t0.elapsed();
    let kinds: Vec<String> = by_type.iter().map(|(k, v)| format!("{v} {k}")).collect();
    out.line(format!(
        "applied {} events{}, {} unchanged{}{}; seq {} -> {} ({})",
        num(s.applied),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" (read {})", kinds.join(", "))
        },
        num(s.unchanged),
        if s.declared.is_empty() {
            String::new()
        } else {
            format!("; declared purpose(s) {}", s.declared.join(", "))
        },
        match skipped {
            Some(k) if k > 0 => format!(", {} rows skipped by the mapping", num(k)),
            _ => String::new(),
        },
        before,
        s.seq,
        secs(el)
    ))?;
    let listed = |positions: &[usize]| -> Vec<serde_json::Value> {
        positions
            .iter()
            .map(|&i| json!({"at": origins[i], "subject": subjects[i].map(|k| k.to_hex())}))
            .collect()
    };
    for (what, positions) in [
        (
            "concern a subject with no records (a typo in the subject id?)",
            &s.no_records,
        ),
        (
            "are scoped to records that do not exist (categories, sources or takedown target)",
            &s.unmatched,
        ),
    ] {
        if positions.is_empty() || out.quiet {
            continue;
        }
        eprintln!(
            "optout: warning: {} event(s) {what}; they change no manifest:",
            positions.len()
        );
        for &i in positions {
            match subjects[i] {
                Some(p) => eprintln!("  {}: subject {}", origins[i], p.to_hex()),
                None => eprintln!("  {}", origins[i]),
            }
        }
    }
    out.json(json!({
        "command": "apply",
        "events": n,
        "applied": s.applied,
        "unchanged": s.unchanged,
        "declared_purposes": s.declared,
        "no_records": listed(&s.no_records),
        "unmatched": listed(&s.unmatched),
        "by_type": by_type,
        "seq_before": before.0,
        "seq": s.seq.0,
        "future_events": future_n,
        "skipped_rows": skipped,
        "receipts": receipts,
        "seconds": el.as_secs_f64(),
    }))?;
    if let Some(latest) = latest {
        if !out.quiet {
            eprintln!(
                "optout: warning: {} of these events take effect in the future (latest {latest}); manifests at an earlier --at will not apply them",
                num(future_n)
            );
        }
    }
    Ok(Status::Ok)
}

/// A library error about events of the batch, with the file and line of
/// each event it names (the library knows only positions).
fn located(e: optout::Error, origins: &[String]) -> anyhow::Error {
    use optout::{Error, LedgerError};
    let at = |i: usize| {
        origins
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("event {}", i + 1))
    };
    match &e {
        Error::Ledger(LedgerError::UndeclaredPurpose {
            purpose,
            closest,
            event: Some(i),
        }) => anyhow::anyhow!(
            "{}: field `purposes`: purpose `{purpose}` is not declared in this ledger{}",
            at(*i),
            match closest {
                Some(c) => format!(
                    "; did you mean `{c}`? (or declare it: optout purposes add, or --new-purpose)"
                ),
                None =>
                    "; declare it with `optout purposes add LEDGER NAME`, or pass --new-purpose"
                        .into(),
            }
        ),
        Error::Ledger(LedgerError::WouldDoNothing {
            no_records,
            unmatched,
        }) => {
            let list = |v: &[usize]| v.iter().map(|&i| at(i)).collect::<Vec<_>>().join(", ");
            let mut parts = Vec::new();
            if !no_records.is_empty() {
                parts.push(format!("subject has no records: {}", list(no_records)));
            }
            if !unmatched.is_empty() {
                parts.push(format!("scope matches no record: {}", list(unmatched)));
            }
            anyhow::anyhow!("--strict: {}; nothing was written", parts.join("; "))
        }
        _ => e.into(),
    }
}
