//! `export --to delta|iceberg`: a manifest's exclusions as deletion vectors.

use std::path::Path;

use anyhow::{bail, Result};
use optout::export::{delta, iceberg};
use optout::Manifest;
use serde_json::json;

use crate::args::TableArgs;
use crate::out::{num, Out};
use crate::Status;

pub fn delta(out: &mut Out, manifest: &Path, t: &TableArgs) -> Result<Status> {
    let Some(table) = &t.table else {
        bail!("--to delta needs --table PATH");
    };
    if t.data_root.is_some() {
        bail!("--data-root is for --to iceberg");
    }
    let m = Manifest::load(manifest)?;
    let opts = delta::DeltaOptions {
        dataset: t.dataset.clone(),
        allow_unknown_files: t.allow_unknown_files,
        inline_max_bytes: t.inline_max_bytes,
        ..delta::DeltaOptions::default()
    };
    let s = delta::export(table, &m, &opts).map_err(optout::Error::from)?;
    match s.version {
        Some(v) => out.line(format!(
            "committed version {v} of {}: {} newly deleted rows in {} of {} files ({} deleted in those files){}",
            table.display(),
            num(s.rows_added),
            s.files_changed,
            s.files_matched,
            num(s.rows_deleted),
            if s.retries > 0 {
                format!(", after {} retries", s.retries)
            } else {
                String::new()
            }
        ))?,
        None => out.line(format!(
            "nothing to do: every excluded row of the {} files is already deleted at version {} of {}",
            s.files_matched,
            s.read_version,
            table.display()
        ))?,
    }
    out.json(json!({
        "command": "export",
        "to": "delta",
        "table": table.display().to_string(),
        "dataset": s.dataset,
        "digest": m.digest_hex(),
        "read_version": s.read_version,
        "version": s.version,
        "files_matched": s.files_matched,
        "files_changed": s.files_changed,
        "rows_added": s.rows_added,
        "rows_deleted": s.rows_deleted,
        "dv_file": s.dv_file.map(|p| p.display().to_string()),
        "retries": s.retries,
    }))?;
    Ok(Status::Ok)
}

pub fn iceberg(out: &mut Out, manifest: &Path, dest: &str, t: &TableArgs) -> Result<Status> {
    if dest == "-" {
        bail!("--to iceberg writes a Puffin file: give -o OUT.puffin");
    }
    if t.table.is_some() {
        bail!("--table is for --to delta; Iceberg deletion vectors go to the Puffin file -o names");
    }
    let m = Manifest::load(manifest)?;
    let opts = iceberg::IcebergOptions {
        dataset: t.dataset.clone(),
        data_root: t.data_root.clone(),
    };
    let s = iceberg::write_puffin(Path::new(dest), &m, &opts).map_err(optout::Error::from)?;
    out.line(format!(
        "wrote {dest}: {} deletion vectors, {} rows (not committed: see docs/LAKEHOUSE.md)",
        s.blobs.len(),
        num(s.rows)
    ))?;
    out.json(json!({
        "command": "export",
        "to": "iceberg",
        "path": dest,
        "dataset": s.dataset,
        "digest": m.digest_hex(),
        "rows": s.rows,
        "blobs": s.blobs,
    }))?;
    Ok(Status::Ok)
}
