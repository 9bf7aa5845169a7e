//! Commands about manifests: compute one, show, diff, check, export.

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
    out.line(format!(
        "  excluded {} of {} records in {} shards{}",
        num(h.excluded),
        num(h.registered),
        m.shards.len(),
        reason_summary(&h.counts)
    ))?;
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
    out.line(format!(
        "  excluded     {} of {} records in {} shards{}",
        num(h.excluded),
        num(h.registered),
        m.shards.len(),
        reason_summary(&h.counts)
    ))?;
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

/// One line of a `check` input.
enum Used {
    Row(String, String, u32),
    Key(String),
}

fn parse_used(file: &str, n: u64, text: &str) -> Result<Used, InputError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| InputError::new(file, n, None, format!("invalid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(InputError::new(file, n, None, "expected a JSON object"));
    };
    if let Some(k) = o.get("key") {
        return match k.as_str() {
            Some(k) if !k.is_empty() => Ok(Used::Key(k.to_string())),
            _ => Err(InputError::new(
                file,
                n,
                Some("key"),
                "expected a non-empty string",
            )),
        };
    }
    let s = |f: &str| -> Result<String, InputError> {
        match o.get(f) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(InputError::new(
                file,
                n,
                Some(f),
                "expected a non-empty string",
            )),
            None => Err(InputError::new(
                file,
                n,
                Some(f),
                "missing (a line is {\"dataset\",\"shard\",\"row\"} or {\"key\"})",
            )),
        }
    };
    let (d, sh) = (s("dataset")?, s("shard")?);
    let row = match o.get("row") {
        Some(r) => r
            .as_u64()
            .and_then(|r| u32::try_from(r).ok())
            .ok_or_else(|| {
                InputError::new(file, n, Some("row"), "expected an unsigned 32-bit integer")
            })?,
        None => return Err(InputError::new(file, n, Some("row"), "missing")),
    };
    Ok(Used::Row(d, sh, row))
}

pub fn check(
    out: &mut Out,
    path: &Path,
    used: &str,
    ledger: Option<&Path>,
    allow_unknown_shards: bool,
    key: &KeyArg,
    pins: CheckPins<'_>,
) -> Result<Status> {
    let m = Manifest::load(path)?;
    let pin = expected_head(pins.expect)?;
    let cp = crate::cmd_tlog::manifest_checkpoint(pins.checkpoint, ledger, &m)?;
    let mut lines = Vec::new();
    let input = BufReader::with_capacity(1 << 20, input::open(used)?);
    optout::jsonl::for_lines(input, used, |n, text| {
        lines.push((n, parse_used(used, n, text)?));
        Ok(())
    })?;
    // With the ledger, the manifest must be exactly what it computes at
    // the seq, time, policy and scope the manifest claims (a re-sealed
    // manifest is refused, exit 2).
    let key_map: HashMap<String, (String, String, u32)> = match ledger {
        Some(l) => {
            let keyer = optional_key(l, key)?;
            let led = open_ledger(out, l, keyer, true)?;
            if let Some(p) = &pin {
                led.check_pinned_manifest(p, &m).context("--expect-head")?;
            }
            if let Some((f, c)) = &cp {
                led.check_manifest_checkpoint(&m, (c.size, c.root))
                    .with_context(|| format!("{}: --checkpoint", f.display()))?;
            }
            led.excluded_keys(&m)?
                .into_iter()
                .map(|(row, key)| (key, row))
                .collect()
        }
        None => {
            if let Some(p) = &pin {
                p.check_manifest_header(&m, false)
                    .context("--expect-head")?;
            }
            if let Some((f, c)) = &cp {
                m.check_checkpoint(c.size, &c.root)
                    .with_context(|| format!("{}: --checkpoint", f.display()))?;
            }
            if let Some((n, _)) = lines.iter().find(|(_, u)| matches!(u, Used::Key(_))) {
                bail!(
                    "{used}:{n}: field `key`: key lines need --ledger LEDGER (the ledger the manifest came from) to resolve keys to records"
                );
            }
            HashMap::new()
        }
    };
    // Key lines resolve to records (a key the manifest does not exclude is
    // not in the map: nothing to check); the rule itself is the library's.
    let resolved: Vec<(u64, &str, &str, u32, Option<&str>)> = lines
        .iter()
        .filter_map(|(n, u)| match u {
            Used::Row(d, s, row) => Some((*n, d.as_str(), s.as_str(), *row, None)),
            Used::Key(k) => key_map
                .get(k)
                .map(|(d, s, row)| (*n, d.as_str(), s.as_str(), *row, Some(k.as_str()))),
        })
        .collect();
    let report = optout::manifest::check(&m, resolved.iter().map(|r| (r.1, r.2, r.3)));
    // Print findings in input order (a used record is a hit, of an unknown
    // shard or past its shard's end, never two of them).
    let mut findings: Vec<Finding> = report
        .hits
        .iter()
        .map(Finding::Hit)
        .chain(report.unknown_shards.iter().map(Finding::Unknown))
        .chain(report.past_end.iter().map(Finding::PastEnd))
        .collect();
    findings.sort_by_key(Finding::index);
    let mut hits = Vec::new();
    let mut unknown: Vec<Value> = Vec::new();
    let mut past_end: Vec<Value> = Vec::new();
    for f in findings {
        let (n, key) = (resolved[f.index()].0, resolved[f.index()].4);
        if let Finding::PastEnd(p) = f {
            if !allow_unknown_shards && past_end.len() < 20 {
                out.line(format!("{used}:{n}: {p}"))?;
            }
            past_end.push(json!({"line": n, "dataset": p.dataset, "shard": p.shard, "row": p.row, "row_end": p.row_end, "exact": p.exact}));
        }
        if let Finding::Unknown(u) = f {
            let (d, s) = (&u.dataset, &u.shard);
            if !allow_unknown_shards && unknown.len() < 20 {
                out.line(format!(
                    "{used}:{n}: shard {d}/{s} is not covered by the manifest (unknown to the ledger at its seq, or outside its datasets)"
                ))?;
            }
            unknown.push(json!({"line": n, "dataset": d, "shard": s}));
        }
        if let Finding::Hit(h) = f {
            let (d, s, row) = (&h.dataset, &h.shard, h.row);
            let reasons: Vec<&str> = h.reasons.iter().map(|r| r.name()).collect();
            out.line(format!(
                "{used}:{n}: {d}/{s}#{row}{} is excluded: {}",
                key.map(|k| format!(" (key {k})")).unwrap_or_default(),
                reasons.join(", ")
            ))?;
            hits.push(json!({"line": n, "dataset": d, "shard": s, "row": row, "key": key, "reasons": reasons}));
        }
    }
    let unknown_rows = report.unknown_rows;
    out.line(format!(
        "checked {} used records against {} (digest {}): {} excluded",
        num(lines.len() as u64),
        path.display(),
        &m.digest_hex()[..16],
        if hits.is_empty() {
            "none".to_string()
        } else {
            num(hits.len() as u64)
        }
    ))?;
    if unknown_rows > 0 {
        out.line(format!(
            "{} used rows in {} shards the manifest does not cover{}",
            num(unknown_rows),
            num(unknown.len() as u64),
            if allow_unknown_shards {
                " (allowed by --allow-unknown-shards)"
            } else {
                ": counted as a finding"
            }
        ))?;
    }
    if !past_end.is_empty() {
        out.line(format!(
            "{} used rows past their shard's end in the manifest{}",
            num(past_end.len() as u64),
            if allow_unknown_shards {
                " (allowed by --allow-uncovered)"
            } else {
                ": counted as a finding"
            }
        ))?;
    }
    let found = report.found(allow_unknown_shards);
    out.json(json!({
        "command": "check",
        "checked": lines.len(),
        "excluded": hits.len(),
        "unknown_shard_rows": unknown_rows,
        "unknown_shards": unknown,
        "rows_past_end": past_end,
        "digest": m.digest_hex(),
        "hits": hits,
    }))?;
    Ok(if found { Status::Found } else { Status::Ok })
}

/// What `check` must tie the manifest to: `--expect-head`, `--checkpoint`.
pub struct CheckPins<'a> {
    pub expect: &'a ExpectHead,
    pub checkpoint: &'a ManifestCheckpointArg,
}

/// One finding of `check`, by its position in the input.
enum Finding<'a> {
    Hit(&'a CheckHit),
    Unknown(&'a UnknownShard),
    PastEnd(&'a RowPastEnd),
}

impl Finding<'_> {
    fn index(&self) -> usize {
        match self {
            Finding::Hit(h) => h.index,
            Finding::Unknown(u) => u.index,
            Finding::PastEnd(p) => p.index,
        }
    }
}

/// One line of `export --to jsonl` (fields in this order).
#[derive(serde::Serialize)]
struct ExportRow<'a> {
    dataset: &'a str,
    shard: &'a str,
    row: u32,
    reasons: &'a [&'a str],
    /// Present (possibly null) only with `--ledger`.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<&'a str>>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn export(
    out: &mut Out,
    path: &Path,
    to: ExportFormat,
    dest: &str,
    ledger: Option<&Path>,
    key: &KeyArg,
) -> Result<Status> {
    let m = Manifest::load(path)?;
    let keys = match ledger {
        Some(l) => {
            let keyer = optional_key(l, key)?;
            Some(open_ledger(out, l, keyer, true)?.excluded_keys(&m)?)
        }
        None => None,
    };
    // A file is replaced atomically on success (and left alone on error);
    // see optout::Output for FIFOs, devices, symlinks and ledger dirs.
    let mut file = match dest {
        "-" => None,
        _ => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            optout::Output::create(Path::new(dest))?,
        )),
    };
    let mut stdout = out.raw();
    let w: &mut dyn Write = match file.as_mut() {
        Some(f) => f,
        None => &mut stdout,
    };
    if to == ExportFormat::Csv {
        w.write_all(if keys.is_some() {
            b"dataset,shard,row,reasons,key\n"
        } else {
            b"dataset,shard,row,reasons\n"
        })?;
    }
    let mut n = 0u64;
    for s in &m.shards {
        let (d, sh) = (csv_field(&s.dataset), csv_field(&s.shard));
        for row in s.excluded.iter() {
            let reasons: Vec<&str> = s.reasons_of(row).iter().map(|r| r.name()).collect();
            let key = keys
                .as_ref()
                .and_then(|k| k.get(&(s.dataset.clone(), s.shard.clone(), row)));
            match to {
                ExportFormat::Jsonl => {
                    let line = ExportRow {
                        dataset: &s.dataset,
                        shard: &s.shard,
                        row,
                        reasons: &reasons,
                        key: keys.as_ref().map(|_| key.map(String::as_str)),
                    };
                    serde_json::to_writer(&mut *w, &line).map_err(std::io::Error::from)?;
                    w.write_all(b"\n")?;
                }
                // (`--to delta|iceberg` never get here: main sends them to cmd_export.)
                ExportFormat::Csv | ExportFormat::Delta | ExportFormat::Iceberg => {
                    write!(w, "{d},{sh},{row},{}", reasons.join(";"))?;
                    if keys.is_some() {
                        write!(w, ",{}", key.map(|k| csv_field(k)).unwrap_or_default())?;
                    }
                    w.write_all(b"\n")?;
                }
            }
            n += 1;
        }
    }
    w.flush()?;
    if let Some(f) = file {
        f.into_inner().map_err(|e| e.into_error())?.commit()?;
    }
    if dest != "-" {
        out.line(format!("exported {} excluded records to {dest}", num(n)))?;
        out.json(
            json!({"command": "export", "path": dest, "records": n, "digest": m.digest_hex()}),
        )?;
    }
    Ok(Status::Ok)
}
