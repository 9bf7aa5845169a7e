//! `optout export --to jsonl|csv|delta|iceberg`: a manifest's excluded rows.

use super::*;

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
