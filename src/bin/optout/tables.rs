//! `ingest --parquet|--webdataset` and `apply --csv|--parquet`: data files
//! read by a mapping through the library's `table` module (the rules are
//! there: shard names, positions, profile normalisation, pseudonyms, the
//! JSONL event rule, the mapping file's read). This file only names places.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use optout::table::{self, At, EventMapping, FileOptions, RecordMapping};
use optout::{Event, FilesError, Ledger, Seq, SubjectKeyer};
use serde_json::json;

use crate::args::IngestFormat;
use crate::out::Out;
use crate::Status;

/// `ingest --parquet|--webdataset`: `Ledger::ingest_parquet` or
/// `Ledger::ingest_webdataset` (fingerprints first: files the log's
/// fingerprints recognise are `unchanged` unread; a changed file is refused
/// without --replace), then the summary `ingest` prints.
pub fn ingest_files(
    out: &mut Out,
    mut l: Ledger,
    files: &[String],
    t: &IngestFormat,
    threads: usize,
    (t0, before): (Instant, Seq),
) -> Result<Status> {
    let map_path = t.mapping.as_deref().expect("clap requires --mapping");
    let mapping = RecordMapping::load(map_path)?;
    let what = if t.parquet { "Parquet" } else { "WebDataset" };
    let paths = paths(files, what)?;
    let opts = FileOptions {
        root: t.root.clone(),
        threads,
        replace: t.replace,
    };
    let sp = out.spinner("reading files");
    let r = if t.parquet {
        l.ingest_parquet(&paths, &mapping, &opts)
    } else {
        l.ingest_webdataset(&paths, &mapping, &opts)
    };
    let r = match r {
        Ok(r) => r,
        Err(FilesError::Table(e)) if e.kind == table::TableErrorKind::Changed => {
            let msg = e.to_string();
            let msg = msg.split("; set replace").next().unwrap_or(&msg);
            bail!("{msg}; if the file changed on purpose, pass --replace");
        }
        Err(FilesError::Table(e)) => return Err(e.into()),
        Err(FilesError::Ledger(e)) => {
            // A fingerprint error names the file already; a row conflict
            // is named by file and row here.
            let shards = opts_shards(&paths, &opts, files, t.parquet);
            return Err(locate_conflict(&shards, e));
        }
    };
    sp.finish_and_clear();
    // As `ingest`: the batch is durable; freeing the index is wasted time.
    std::mem::forget(l);
    let el = t0.elapsed();
    let s = &r.summary;
    let n = s.registered + s.unchanged;
    crate::ingest_report::report(
        out,
        crate::ingest_report::IngestReport {
            records: n,
            files: files.len(),
            summary: s,
            before,
            elapsed: el,
            unchanged_note: table_note(r.files_unchanged),
            json: json!({
                "lines": r.files.iter().map(|f| f.rows).sum::<u64>(),
                "bytes": r.files.iter().map(|f| f.size).sum::<u64>(),
                "files_unchanged": r.files_unchanged,
            }),
        },
    )?;
    Ok(Status::Ok)
}

/// What `ingest` says after "N unchanged" of a table ingest: the files
/// recognised by their fingerprint.
fn table_note(files_unchanged: usize) -> String {
    if files_unchanged > 0 {
        format!(" ({files_unchanged} file(s) recognised by their fingerprint)")
    } else {
        String::new()
    }
}

/// (shard, file as given) of every file, for naming a conflicting row.
fn opts_shards(
    paths: &[PathBuf],
    opts: &FileOptions,
    files: &[String],
    parquet: bool,
) -> Vec<(String, String)> {
    let fps = if parquet {
        table::parquet_fingerprints(paths, opts)
    } else {
        table::webdataset_fingerprints(paths, opts)
    };
    fps.map(|fps| {
        fps.into_iter()
            .zip(files)
            .map(|(f, n)| (f.shard, n.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// Whether `ingest` reads tables, and the mapping it needs.
pub fn wants_table(t: &IngestFormat) -> Result<bool> {
    if t.parquet || t.webdataset {
        return Ok(true);
    }
    if t.mapping.is_some() {
        bail!("--mapping reads Parquet files or WebDataset tars: add --parquet or --webdataset");
    }
    Ok(false)
}

/// The data files of a table read: real paths (no stdin).
fn paths(files: &[String], what: &str) -> Result<Vec<PathBuf>> {
    if files.iter().any(|f| f == "-") {
        bail!("{what} files are read by path: '-' (stdin) is JSONL only");
    }
    Ok(files.iter().map(PathBuf::from).collect())
}

/// A conflicting re-registration named by file and row (a tar's row is
/// its sample index).
pub fn locate_conflict(shards: &[(String, String)], e: optout::Error) -> anyhow::Error {
    if let optout::Error::RecordConflict {
        shard,
        row,
        twice_in_batch,
        ..
    } = &e
    {
        if let Some((_, file)) = shards.iter().find(|(s, _)| s == shard.as_str()) {
            // The row's content comes from the file, not a JSONL line: the
            // way to register it again is the flag.
            let hint = if *twice_in_batch {
                " (the file is given twice?)"
            } else {
                "; if the file changed on purpose, pass --replace"
            };
            let msg = e.to_string();
            let msg = msg.split("; set \"replace\"").next().unwrap_or(&msg);
            return anyhow::anyhow!("{file}: row {row}: {msg}{hint}");
        }
    }
    e.into()
}

/// Events of an export, where each came from (`FILE:LINE`, `FILE: row N`),
/// and the rows the mapping skipped.
pub type ReadEvents = (Vec<Event>, Vec<String>, u64);

/// Events of a DSR tool's CSV or Parquet export, all or nothing, in file
/// and row order.
pub fn read_events(
    files: &[String],
    csv: bool,
    parquet: bool,
    mapping: Option<&Path>,
    keyer: &SubjectKeyer,
) -> Result<Option<ReadEvents>> {
    let Some(map_path) = mapping else {
        return Ok(None);
    };
    if !csv && !parquet {
        bail!("--mapping reads a CSV or Parquet export: add --csv or --parquet");
    }
    let mapping = EventMapping::load(map_path)?;
    let paths = paths(files, if csv { "CSV" } else { "Parquet" })?;
    let read = if csv {
        table::csv_events(&paths, &mapping, keyer)?
    } else {
        table::parquet_events(&paths, &mapping, keyer)?
    };
    let origins = read
        .origins
        .iter()
        .map(|(file, at)| match at {
            At::Line(n) => format!("{file}:{n}"),
            At::Row(n) => format!("{file}: row {n}"),
            _ => file.clone(),
        })
        .collect();
    Ok(Some((read.events, origins, read.skipped)))
}
