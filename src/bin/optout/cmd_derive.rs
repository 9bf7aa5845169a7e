//! `optout derive`: lineage JSONL (or, with `--parquet` or when every file
//! is Parquet, Parquet) files
//! into one derivation, refused with the file, line (or Parquet row and
//! column) and field of the row at fault.

use std::io::{BufReader, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use optout::jsonl::DerivationBuilder;
use serde_json::json;

use crate::args::{DeriveArgs, KeyArg};
use crate::out::{num, secs, Out};
use crate::{input, load_key, open_ledger, optional_key, Status};

/// True when every file named is Parquet (starts with the `PAR1` magic), so
/// `optout derive L ... lineage.parquet` needs no `--parquet`; stdin (`-`)
/// and anything else is read as JSONL, where a bad line is named.
fn all_parquet(files: &[String]) -> bool {
    use std::io::Read;
    !files.is_empty()
        && files.iter().all(|f| {
            let mut magic = [0u8; 4];
            f != "-"
                && std::fs::File::open(f)
                    .and_then(|mut h| h.read_exact(&mut magic))
                    .is_ok()
                && &magic == b"PAR1"
        })
}

pub fn derive(out: &mut Out, a: &DeriveArgs) -> Result<Status> {
    let t0 = Instant::now();
    let keyer = load_key(&a.ledger, &a.key)?;
    // The input is read and checked whole before the ledger is opened for
    // writing: a bad file is refused without taking the writer lock.
    let s = if a.parquet || all_parquet(&a.files) {
        let mut t =
            optout::table::parquet_lineage(&a.files, &a.dataset, &a.from, a.allow_missing_parents)?;
        let (rows, links) = (t.derivation().len(), t.derivation().links());
        let mut l = open_ledger(out, &a.ledger, Some(keyer), false)?;
        let before = l.head().0;
        match l.derive(t.take()) {
            Err(optout::Error::Derive(e)) => {
                return Err(match t.located(e) {
                    Ok(located) => located.into(),
                    Err(e) => e.into(),
                })
            }
            r => (rows, links, before, r?),
        }
    } else {
        let mut b = DerivationBuilder::new(&a.dataset, &a.from, a.allow_missing_parents);
        for name in &a.files {
            b.parse(BufReader::new(input::open(name)?), name)?;
        }
        let (rows, links) = (b.derivation().len(), b.derivation().links());
        let mut l = open_ledger(out, &a.ledger, Some(keyer), false)?;
        let before = l.head().0;
        match l.derive(b.take()) {
            Err(optout::Error::Derive(e)) => return Err(b.located(e).into()),
            r => (rows, links, before, r?),
        }
    };
    let (rows, links, before, s) = s;
    out.line(format!(
        "derived {} rows of {} from {} with {} links: {} registered, {} unchanged; seq {} -> {} ({})",
        num(rows as u64),
        a.dataset,
        a.from.join(", "),
        num(links as u64),
        num(s.registered),
        num(s.unchanged),
        before,
        s.seq,
        secs(t0.elapsed()),
    ))?;
    out.json(json!({
        "command": "derive",
        "dataset": a.dataset,
        "rows": rows,
        "registered": s.registered,
        "unchanged": s.unchanged,
        "links": s.links,
        "seq_before": before.0,
        "seq": s.seq.0,
    }))?;
    Ok(Status::Ok)
}

/// `export M --to jsonl --ledger L --parents`: one line per excluded
/// derived row of the manifest, with its excluded parents and why.
pub fn export_parents(
    out: &mut Out,
    manifest: &Path,
    dest: &str,
    ledger: &Path,
    key: &KeyArg,
) -> Result<Status> {
    let m = optout::Manifest::load(manifest)?;
    let keyer = optional_key(ledger, key)?;
    let rows = open_ledger(out, ledger, keyer, true)?.excluded_parents(&m)?;
    let mut file = match dest {
        "-" => None,
        _ => Some(std::io::BufWriter::new(optout::Output::create(Path::new(
            dest,
        ))?)),
    };
    let mut stdout = out.raw();
    let w: &mut dyn Write = match file.as_mut() {
        Some(f) => f,
        None => &mut stdout,
    };
    for r in &rows {
        serde_json::to_writer(&mut *w, r).map_err(std::io::Error::from)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    if let Some(f) = file {
        f.into_inner().map_err(|e| e.into_error())?.commit()?;
    }
    Ok(Status::Ok)
}
