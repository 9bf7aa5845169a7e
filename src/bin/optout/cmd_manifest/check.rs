//! `optout check`: the rows a pipeline used against a manifest (the
//! library's `manifest::check`, which fails closed on unknown shards), with
//! the pins it must agree with.

use super::*;

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
