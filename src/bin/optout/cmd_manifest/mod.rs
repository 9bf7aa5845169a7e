//! Commands about manifests: compute one, show, diff here; `check` and
//! `export` in their own files.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use optout::manifest::{CheckHit, ManifestDiff, RowPastEnd, UnknownShard};
use optout::{InputError, Manifest, Policy, Reason, Seq};
use serde_json::{json, Map, Value};

use crate::args::{ExpectHead, ExportFormat, KeyArg, ManifestArgs, ManifestCheckpointArg};
use crate::out::{num, secs, Out};
use crate::{expected_head, input, open_ledger, optional_key, time_arg, Status};

mod check;
mod export;

pub use check::*;
pub use export::*;

pub fn manifest(out: &mut Out, a: &ManifestArgs) -> Result<Status> {
    let t0 = Instant::now();
    let sp = out.spinner("opening the ledger");
    let keyer = optional_key(&a.ledger, &a.key)?;
    let pin = expected_head(&a.expect)?;
    // Recording the checkpoint updates the tree store: a writable open.
    let l = open_ledger(out, &a.ledger, keyer, !a.record_checkpoint)?;
    if let Some(p) = &pin {
        l.check_extends(p)
            .with_context(|| format!("{}: --expect-head", a.ledger.display()))?;
    }
    let policy = match &a.policy {
        Some(p) => Some(Policy::load(p)?),
        None => None,
    };
    let purpose = match (&a.purpose, &policy) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.purpose.to_string(),
        (None, None) => bail!("--purpose is required without --policy"),
    };
    let at = time_arg("--at", a.at.as_deref())?;
    let mut q = l.query(policy, &purpose, at)?;
    if let Some(s) = a.at_seq {
        q.seq = Seq(s);
    }
    q.datasets = a.datasets.clone();
    sp.set_message("computing the manifest");
    let m = if a.record_checkpoint {
        l.manifest_at_checkpoint(&q)
    } else {
        l.manifest(&q)
    }
    .map_err(|e| match e {
        optout::Error::Ledger(optout::LedgerError::SeqPastHead { .. }) => {
            anyhow::Error::new(e).context("--at-seq")
        }
        e => e.into(),
    })?;
    m.save(&a.out)?;
    sp.finish_and_clear();
    let h = &m.header;
    let digest = m.digest_hex();
    out.line(format!(
        "wrote {}: {} at {}, ledger seq {}",
        a.out.display(),
        h.purpose,
        h.at,
        h.seq
    ))?;
    out.line(format!("  excluded {}", excluded_summary(&m)))?;
    out.line(format!("  digest {digest} ({})", secs(t0.elapsed())))?;
    // Events the ledger knew at N that take effect after T are not applied:
    // say so (an objection dated ahead by a time-zone slip, say).
    let pending: Vec<optout::Timestamp> = l
        .index()
        .events()
        .iter()
        .filter(|(s, e)| *s <= q.seq && e.at > q.at)
        .map(|(_, e)| e.at)
        .collect();
    out.json(json!({
        "command": "manifest",
        "path": a.out,
        "digest": digest,
        "header": h,
        "events_after_at": pending.len(),
        "seconds": t0.elapsed().as_secs_f64(),
    }))?;
    if let Some(latest) = pending.iter().max() {
        if !out.quiet {
            eprintln!(
                "optout: warning: {} recorded events take effect after --at {} (latest {latest}) and are not applied in this manifest",
                num(pending.len() as u64),
                h.at
            );
        }
    }
    Ok(Status::Ok)
}

/// `N of M records in S shards (objection 3, ...)`: what a manifest excludes.
fn excluded_summary(m: &Manifest) -> String {
    let h = &m.header;
    format!(
        "{} of {} records in {} shards{}",
        num(h.excluded),
        num(h.registered),
        m.shards.len(),
        reason_summary(&h.counts)
    )
}

/// ` (objection 3, erasure 1)` for the non-zero counts.
fn reason_summary(counts: &[(String, u64)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {}", num(*n)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// One dataset of a manifest: (name, shards, registered, excluded, excluded per reason).
type DatasetCounts = (String, u64, u64, u64, [u64; Reason::COUNT]);

/// Per dataset: shards, registered, excluded, and excluded per reason.
fn per_dataset(m: &Manifest) -> Vec<DatasetCounts> {
    let mut out: Vec<DatasetCounts> = Vec::new();
    for s in &m.shards {
        if out.last().is_none_or(|d| d.0 != s.dataset) {
            out.push((s.dataset.clone(), 0, 0, 0, [0; Reason::COUNT]));
        }
        if let Some(d) = out.last_mut() {
            d.1 += 1;
            d.2 += s.registered;
            d.3 += s.excluded.len();
            for (i, b) in s.reasons.iter().enumerate() {
                d.4[i] += b.len();
            }
        }
    }
    out
}

fn reasons_json(counts: &[u64; Reason::COUNT]) -> Value {
    let mut m = Map::new();
    for r in Reason::ALL {
        m.insert(r.name().into(), counts[r as usize].into());
    }
    Value::Object(m)
}

/// Prints the records and exclusions of a manifest per reason (rows) and
/// dataset (columns), each line starting with `indent`.
pub fn print_table(out: &mut Out, m: &Manifest, indent: &str) -> Result<()> {
    let ds = per_dataset(m);
    let w: Vec<usize> = ds.iter().map(|d| d.0.len().max(9)).collect();
    let mut head = format!("{indent}{:<20}", "");
    for (d, w) in ds.iter().zip(&w) {
        head.push_str(&format!(" {:>w$}", d.0));
    }
    out.line(head)?;
    let row = |name: &str, val: &dyn Fn(&DatasetCounts) -> u64| {
        let mut line = format!("{indent}{name:<20}");
        for (d, w) in ds.iter().zip(&w) {
            line.push_str(&format!(" {:>w$}", num(val(d))));
        }
        line
    };
    let mut lines = vec![row("records", &|d| d.2), row("excluded", &|d| d.3)];
    for r in Reason::ALL {
        if ds.iter().any(|d| d.4[r as usize] > 0) {
            lines.push(row(&format!("  {}", r.name()), &|d| d.4[r as usize]));
        }
    }
    for l in lines {
        out.line(l)?;
    }
    Ok(())
}

pub fn show(out: &mut Out, path: &Path) -> Result<Status> {
    let m = Manifest::load(path)?;
    let h = &m.header;
    let digest = m.digest_hex();
    out.line(format!("manifest {}", path.display()))?;
    out.line(format!("  purpose      {}", h.purpose))?;
    out.line(format!(
        "  valid time   {} (events in effect at or before it count)",
        h.at
    ))?;
    out.line(format!(
        "  ledger       {} at seq {} (entries recorded at or before it count)",
        h.ledger_id, h.seq
    ))?;
    out.line(format!("  chain head   {}", h.chain_head))?;
    out.line(match &h.checkpoint {
        Some(t) => format!(
            "  checkpoint   tree size {}, root {} (the ledger's Merkle tree at its seq)",
            t.size, t.root
        ),
        None => "  checkpoint   none recorded (computed without --record-checkpoint)".to_string(),
    })?;
    out.line(format!(
        "  datasets     {}",
        if h.datasets.is_empty() {
            "all".to_string()
        } else {
            h.datasets.join(", ")
        }
    ))?;
    out.line(format!("  policy       {}", h.policy.to_json()))?;
    out.line(format!("  policy digest {}", h.policy_digest))?;
    out.line(format!("  written by   {}", h.tool))?;
    out.line(format!("  digest       {digest}"))?;
    out.line(format!("  excluded     {}", excluded_summary(&m)))?;
    print_table(out, &m, "  ")?;
    let datasets: Vec<Value> = per_dataset(&m)
        .iter()
        .map(|d| {
            json!({"dataset": d.0, "shards": d.1, "registered": d.2, "excluded": d.3, "reasons": reasons_json(&d.4)})
        })
        .collect();
    out.json(json!({
        "command": "show",
        "path": path,
        "digest": digest,
        "header": h,
        "shards": m.shards.len(),
        "datasets": datasets,
    }))?;
    Ok(Status::Ok)
}

pub fn diff(out: &mut Out, old_path: &Path, new_path: &Path) -> Result<Status> {
    let old = Manifest::load(old_path)?;
    let new = Manifest::load(new_path)?;
    let d = ManifestDiff::between(&old, &new);
    let (o, n) = (&old.header, &new.header);
    for (what, differ) in [
        ("purposes", o.purpose != n.purpose),
        ("ledgers", o.ledger_id != n.ledger_id),
        ("policies", o.policy_digest != n.policy_digest),
    ] {
        if differ {
            out.line(format!("note: the manifests have different {what}"))?;
        }
    }
    let side = |m: &Manifest| {
        format!(
            "seq {}, at {}, digest {}",
            m.header.seq,
            m.header.at,
            m.digest_hex()
        )
    };
    out.line(format!("old {}: {}", old_path.display(), side(&old)))?;
    out.line(format!("new {}: {}", new_path.display(), side(&new)))?;
    out.line(format!(
        "newly excluded {}, re-included {}",
        num(d.newly_excluded()),
        num(d.re_included())
    ))?;
    let per = d.per_reason();
    let mut reasons = Map::new();
    for r in Reason::ALL {
        let (add, rem) = per[r as usize];
        reasons.insert(r.name().into(), json!({"added": add, "removed": rem}));
        if add > 0 || rem > 0 {
            out.line(format!("  {:<18} +{} -{}", r.name(), num(add), num(rem)))?;
        }
    }
    let mut shards = Vec::new();
    for s in &d.shards {
        out.line(format!(
            "  {}/{}: +{} -{}",
            s.dataset,
            s.shard,
            num(s.newly_excluded.len()),
            num(s.re_included.len())
        ))?;
        shards.push(json!({
            "dataset": s.dataset,
            "shard": s.shard,
            "newly_excluded": s.newly_excluded.iter().collect::<Vec<u32>>(),
            "re_included": s.re_included.iter().collect::<Vec<u32>>(),
        }));
    }
    let sj = |m: &Manifest| json!({"digest": m.digest_hex(), "seq": m.header.seq, "at": m.header.at, "excluded": m.header.excluded});
    out.json(json!({
        "command": "diff",
        "old": sj(&old),
        "new": sj(&new),
        "newly_excluded": d.newly_excluded(),
        "re_included": d.re_included(),
        "reasons": reasons,
        "shards": shards,
    }))?;
    Ok(Status::Ok)
}
