//! Training runs and subjects: runs add/list, affected, report.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use optout::lineage::{self, RunImpact, Use};
use optout::Manifest;
use serde_json::json;

use crate::args::KeyArg;
use crate::out::{num, Out};
use crate::{load_key, open_ledger, optional_key, time_arg, Status};

/// `runs add`'s optional arguments.
pub struct RunArgs<'a> {
    /// `--name`.
    pub name: Option<&'a str>,
    /// `--started-at`.
    pub started_at: Option<&'a str>,
    /// `--require-fresh`.
    pub require_fresh: bool,
    /// `--checkpoint FILE` (with `--pubkey`, `--witness`).
    pub checkpoint: &'a crate::args::ManifestCheckpointArg,
}

pub fn add(
    out: &mut Out,
    ledger: &Path,
    model: &str,
    manifest: &Path,
    a: RunArgs<'_>,
    key: &KeyArg,
) -> Result<Status> {
    let m = Manifest::load(manifest)?;
    let started = time_arg("--started-at", a.started_at)?;
    let keyer = optional_key(ledger, key)?;
    let mut l = open_ledger(out, ledger, keyer, false)?;
    if let Some((f, c)) = crate::cmd_tlog::manifest_checkpoint(a.checkpoint, Some(ledger), &m)? {
        l.check_manifest_checkpoint(&m, (c.size, c.root))
            .with_context(|| format!("{}: --checkpoint", f.display()))?;
    }
    if a.require_fresh {
        let more = l.excluded_since(&m, started)?;
        if more > 0 {
            anyhow::bail!(
                "--require-fresh: {}: events recorded after this manifest (seq {}) exclude {} more row(s) at {}; compute a fresh manifest (nothing was registered)",
                manifest.display(),
                m.header.seq,
                num(more),
                started.max(optout::Timestamp(m.header.at_ns))
            );
        }
    }
    let name = match a.name {
        Some(n) => n.to_string(),
        None => l.default_run_name(model),
    };
    let seq = l.register_run(&name, model, &m, started)?;
    let h = &m.header;
    let later = l.events_after_manifest(&m, started);
    out.line(format!(
        "registered run {name} (model {model}) at seq {seq}: manifest {} ({} at {}, seq {}), started {}",
        &m.digest_hex()[..16],
        h.purpose,
        h.at,
        h.seq,
        started
    ))?;
    if later > 0 && !out.quiet {
        eprintln!(
            "optout: warning: {later} event(s) recorded after this manifest (seq {}) had taken effect when the run started; \
             a fresh manifest may exclude more (see `optout affected`)",
            h.seq
        );
    }
    out.json(json!({
        "command": "runs add",
        "name": name,
        "model": model,
        "seq": seq.0,
        "manifest_digest": m.digest_hex(),
        "manifest_seq": h.seq,
        "started_at": started.to_rfc3339(),
        "events_after_manifest": later,
    }))?;
    Ok(Status::Ok)
}

pub fn list(out: &mut Out, ledger: &Path, key: &KeyArg) -> Result<Status> {
    let keyer = optional_key(ledger, key)?;
    let l = open_ledger(out, ledger, keyer, true)?;
    let runs = l.index().runs();
    if runs.is_empty() {
        out.line("no training runs registered")?;
    }
    let mut js = Vec::new();
    for (seq, r) in runs {
        out.line(format!(
            "{:<24} model {:<20} {} started {}  manifest {} (seq {}, at {}){}",
            r.name,
            r.model,
            r.purpose,
            r.started_at,
            &r.manifest_digest[..16.min(r.manifest_digest.len())],
            r.manifest_seq,
            r.manifest_at,
            if r.datasets.is_empty() {
                String::new()
            } else {
                format!(" datasets {}", r.datasets.join(","))
            }
        ))?;
        js.push(optout::run_json(*seq, r));
    }
    out.json(json!({"command": "runs list", "runs": js}))?;
    Ok(Status::Ok)
}

fn use_name(u: Use) -> &'static str {
    match u {
        Use::Violation => "VIOLATION",
        Use::After => "after",
        Use::Used => "used",
    }
}

/// One line per run, as `affected` and `demo` print it.
pub fn describe(r: &RunImpact) -> String {
    let reasons: BTreeSet<&str> = r
        .records
        .iter()
        .flat_map(|x| x.reasons.iter().map(|r| r.name()))
        .collect();
    let why = reasons.into_iter().collect::<Vec<_>>().join(", ");
    let n = r.records.len();
    let what = match r.status() {
        Use::Violation => format!(
            "used {n} record(s) although they were excluded ({why}) before the run was registered"
        ),
        Use::After => {
            format!("used {n} record(s); excluded later ({why}): retrain or unlearn decision")
        }
        Use::Used => format!("used {n} record(s); still usable"),
    };
    format!(
        "{:<22} {:<20} started {}  {:<9}  {what}",
        r.run,
        r.model,
        r.started_at,
        use_name(r.status())
    )
}

pub fn affected(
    out: &mut Out,
    ledger: &Path,
    subject: &str,
    at: Option<&str>,
    key: &KeyArg,
) -> Result<Status> {
    let keyer = load_key(ledger, key)?;
    let l = open_ledger(out, ledger, Some(keyer), true)?;
    let at = time_arg("--at", at)?;
    let sk = l.pseudonym(subject)?;
    let ix = l.index();
    let records = ix.subject_records(&sk, ix.seq()).len();
    let runs = lineage::affected(ix, &sk, ix.seq(), at);
    let violations = runs.iter().filter(|r| r.status() == Use::Violation).count();
    // The subject is named by pseudonym only: ids never appear in output.
    out.line(format!(
        "subject {}: {} record(s); {} of {} training run(s) used them",
        sk.to_hex(),
        num(records as u64),
        runs.len(),
        ix.runs().len()
    ))?;
    for r in &runs {
        out.line(format!("  {}", describe(r)))?;
    }
    if violations > 0 {
        out.line(format!(
            "{violations} run(s) trained on this subject's data after an exclusion had been recorded"
        ))?;
    }
    out.json(json!({
        "command": "affected",
        "pseudonym": sk.to_hex(),
        "at": at.to_rfc3339(),
        "seq": ix.seq().0,
        "records": records,
        "violations": violations,
        "runs": runs,
    }))?;
    Ok(if violations > 0 {
        Status::Found
    } else {
        Status::Ok
    })
}

pub fn report(
    out: &mut Out,
    ledger: &Path,
    subject: &str,
    at: Option<&str>,
    key: &KeyArg,
    receipts: &crate::args::ReportReceiptsArg,
) -> Result<Status> {
    let keyer = load_key(ledger, key)?;
    let signing = crate::cmd_tlog::report_receipts_key(ledger, receipts)?;
    let l = open_ledger(out, ledger, Some(keyer), signing.is_none())?;
    let at = time_arg("--at", at)?;
    let r = optout::report::subject_report(&l, subject, at)?;
    let mut v = serde_json::to_value(&r)?;
    if let Some(sk) = signing {
        v["receipts"] = crate::cmd_tlog::subject_receipts(&l, &r, &sk)?;
    }
    out.json_always(&mut v)?;
    Ok(Status::Ok)
}
