//! Export a manifest into a Delta table as deletion vectors, so every
//! engine that reads the table (Spark, Databricks, delta-kernel and what
//! builds on it: Polars, delta-rs queries, DuckDB) skips the excluded rows.
//!
//! A manifest shard is matched to the table file whose `add.path`, with
//! `%XX` escapes decoded, equals the shard name; a row is the file's row
//! position. [`export`] reads the table's log, merges the manifest's rows
//! into each file's existing deletion vector (union: rows are never
//! dropped), and commits one new table version with a `remove` + `add`
//! pair per changed file. Nothing is committed when no file changes.
//!
//! ```no_run
//! use optout::export::delta::{export, DeltaOptions};
//! let m = optout::Manifest::load("exclusions.optm".as_ref())?;
//! let s = export("/data/forum".as_ref(), &m, &DeltaOptions::default())?;
//! println!("committed {:?}: {} rows in {} files", s.version, s.rows_added, s.files_changed);
//! # Ok::<(), optout::Error>(())
//! ```

mod commit;
pub mod dv;
pub mod log;
mod protocol;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use roaring::RoaringTreemap;
use serde_json::{Map, Value};

use crate::export::{select_shards, ExportError};
use crate::manifest::Manifest;
use dv::Descriptor;
use log::Snapshot;

/// How to export.
#[derive(Clone, Debug)]
pub struct DeltaOptions {
    /// The manifest dataset whose shards are the table's files; may be
    /// `None` when the manifest covers one dataset.
    pub dataset: Option<String>,
    /// Accept table files the manifest does not cover (by default they are
    /// an error: their rows have unknown provenance, usually a naming slip).
    pub allow_unknown_files: bool,
    /// A deletion vector whose payload is at most this many bytes goes
    /// inline into the log (Z85); larger ones go into one new
    /// `deletion_vector_<uuid>.bin` file per commit. 0: never inline.
    pub inline_max_bytes: usize,
    /// How often to retry after another writer took the next version
    /// first, when that writer did not touch the files this export changes.
    pub max_retries: u32,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            dataset: None,
            allow_unknown_files: false,
            inline_max_bytes: 64,
            max_retries: 3,
        }
    }
}

/// What an export did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeltaSummary {
    /// The table.
    pub table: PathBuf,
    /// The dataset exported.
    pub dataset: String,
    /// The table version the plan was made from.
    pub read_version: u64,
    /// The version committed, or `None` when nothing changed.
    pub version: Option<u64>,
    /// Table files matched to manifest shards.
    pub files_matched: usize,
    /// Files that got a new deletion vector.
    pub files_changed: usize,
    /// Rows newly deleted (not counting rows already in a deletion vector).
    pub rows_added: u64,
    /// Rows deleted in the changed files after the commit (old and new).
    pub rows_deleted: u64,
    /// The deletion-vector file written, if any (some DVs may be inline).
    pub dv_file: Option<PathBuf>,
    /// Commits lost to a concurrent writer and retried.
    pub retries: u32,
}

/// One file whose deletion vector changes.
#[derive(Clone, Debug)]
struct FileChange {
    /// The old `add` action.
    add: Map<String, Value>,
    /// Old and merged rows.
    old: RoaringTreemap,
    merged: RoaringTreemap,
}

/// A planned export: the snapshot it was made from and the changes.
#[derive(Clone, Debug)]
pub struct Plan {
    snapshot: Snapshot,
    dataset: String,
    digest: String,
    rows: BTreeMap<String, roaring::RoaringBitmap>,
    opts: DeltaOptions,
    files_matched: usize,
    changes: Vec<FileChange>,
    protocol: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
}

fn table_err(file: &Path, field: Option<&str>, msg: impl Into<String>) -> ExportError {
    ExportError::Table(crate::error::InputError::new(
        &file.display().to_string(),
        0,
        field,
        msg,
    ))
}

fn num_records(add: &Map<String, Value>) -> Option<u64> {
    let stats = add.get("stats")?.as_str()?;
    let v: Value = serde_json::from_str(stats).ok()?;
    v.get("numRecords")?.as_u64()
}

/// Reads the table and plans the export of `manifest` into it: checks
/// that the table's files and the manifest's shards match, reads existing
/// deletion vectors and merges. Writes nothing.
pub fn plan(table: &Path, manifest: &Manifest, opts: &DeltaOptions) -> Result<Plan, ExportError> {
    let (dataset, rows) = select_shards(manifest, opts.dataset.as_deref())?;
    let snapshot = log::read_snapshot(table)?;
    plan_on(snapshot, dataset, manifest.digest_hex(), rows, opts.clone())
}

fn plan_on(
    snapshot: Snapshot,
    dataset: String,
    digest: String,
    rows: BTreeMap<String, roaring::RoaringBitmap>,
    opts: DeltaOptions,
) -> Result<Plan, ExportError> {
    let logdir = snapshot.table.join("_delta_log");
    let config = snapshot
        .metadata
        .get("configuration")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    protocol::check_writable(&snapshot.protocol, &config)
        .map_err(|m| table_err(&logdir, Some("protocol"), m))?;
    // Decoded path → raw path as in the log.
    let mut by_name: BTreeMap<String, &str> = BTreeMap::new();
    for p in snapshot.files.keys() {
        let name = dv::percent_decode(p).map_err(|m| table_err(&logdir, Some("add.path"), m))?;
        by_name.insert(name, p);
    }
    let mut problems = Vec::new();
    let mut matched = Vec::new();
    for (shard, ex) in &rows {
        let Some(raw) = by_name.get(shard) else {
            problems.push(format!("shard {shard:?}: no such file in the table"));
            continue;
        };
        let add = &snapshot.files[*raw];
        let Some(n) = num_records(add) else {
            problems.push(format!(
                "file {raw:?}: its add action has no stats.numRecords, which a file with a deletion vector must have"
            ));
            continue;
        };
        if let Some(max) = ex.max().filter(|&m| u64::from(m) >= n) {
            problems.push(format!(
                "shard {shard:?}: the manifest excludes row {max}, the file has {n} rows"
            ));
            continue;
        }
        matched.push((*raw, ex));
    }
    if !opts.allow_unknown_files {
        for (name, raw) in &by_name {
            if !rows.contains_key(name) {
                problems.push(format!(
                    "file {raw:?} is not a shard of dataset {dataset:?} in the manifest (its rows have unknown provenance)"
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ExportError::Mismatch {
            table: snapshot.table.display().to_string(),
            dataset,
            problems,
        });
    }
    let mut changes = Vec::new();
    for (raw, ex) in &matched {
        let add = &snapshot.files[*raw];
        let old = match add.get("deletionVector") {
            None | Some(Value::Null) => RoaringTreemap::new(),
            Some(v) => {
                let d: Descriptor = serde_json::from_value(v.clone())
                    .map_err(|e| table_err(&logdir, Some("add.deletionVector"), e.to_string()))?;
                d.read(&snapshot.table).map_err(|m| {
                    table_err(
                        &logdir,
                        Some("add.deletionVector"),
                        format!("file {raw:?}: {m}"),
                    )
                })?
            }
        };
        let mut merged = old.clone();
        merged.extend(ex.iter().map(u64::from));
        if merged.len() != old.len() {
            changes.push(FileChange {
                add: add.clone(),
                old,
                merged,
            });
        }
    }
    let protocol = if changes.is_empty() {
        None
    } else {
        protocol::upgraded(&snapshot.protocol)
            .map_err(|m| table_err(&logdir, Some("protocol"), m))?
    };
    let enabled = config
        .get("delta.enableDeletionVectors")
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let metadata = if changes.is_empty() || enabled {
        None
    } else {
        let mut m = snapshot.metadata.clone();
        let mut c = config.clone();
        c.insert("delta.enableDeletionVectors".into(), "true".into());
        m.insert("configuration".into(), Value::Object(c));
        Some(m)
    };
    Ok(Plan {
        files_matched: matched.len(),
        snapshot,
        dataset,
        digest,
        rows,
        opts,
        changes,
        protocol,
        metadata,
    })
}

impl Plan {
    /// The table version the plan was made from.
    pub fn read_version(&self) -> u64 {
        self.snapshot.version
    }

    /// Files whose deletion vector would change.
    pub fn files_changed(&self) -> usize {
        self.changes.len()
    }

    /// Whether committing would change nothing (the manifest's rows are
    /// already deleted).
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    fn summary(
        &self,
        version: Option<u64>,
        dv_file: Option<PathBuf>,
        retries: u32,
    ) -> DeltaSummary {
        DeltaSummary {
            table: self.snapshot.table.clone(),
            dataset: self.dataset.clone(),
            read_version: self.snapshot.version,
            version,
            files_matched: self.files_matched,
            files_changed: self.changes.len(),
            rows_added: self
                .changes
                .iter()
                .map(|c| c.merged.len() - c.old.len())
                .sum(),
            rows_deleted: self.changes.iter().map(|c| c.merged.len()).sum(),
            dv_file,
            retries,
        }
    }

    /// Commits the plan as the next table version. If another writer
    /// committed that version first: when its commits touched none of the
    /// files this plan changes, the table is re-read, the plan re-made and
    /// the commit retried (up to `max_retries` times); otherwise
    /// [`ExportError::Conflict`]. Never overwrites a commit.
    pub fn commit(self) -> Result<DeltaSummary, ExportError> {
        let mut plan = self;
        let mut retries = 0;
        loop {
            if plan.is_noop() {
                return Ok(plan.summary(None, None, retries));
            }
            match plan.try_commit()? {
                Ok((version, dv_file)) => return Ok(plan.summary(Some(version), dv_file, retries)),
                Err(taken) => {
                    let c = log::changes_after(&plan.snapshot.table, plan.snapshot.version)?;
                    let ours: Vec<&str> = plan
                        .changes
                        .iter()
                        .filter_map(|f| f.add.get("path").and_then(Value::as_str))
                        .collect();
                    let clash: Vec<&String> = c
                        .paths
                        .iter()
                        .filter(|p| ours.contains(&p.as_str()))
                        .collect();
                    if !clash.is_empty() {
                        return Err(ExportError::Conflict {
                            table: plan.snapshot.table.display().to_string(),
                            version: taken,
                            message: format!(
                                "another writer committed changes to {} of the files this export changes \
                                 (first: {:?}) since version {}; nothing was committed, run the export again",
                                clash.len(),
                                clash[0],
                                plan.snapshot.version
                            ),
                        });
                    }
                    if retries >= plan.opts.max_retries {
                        return Err(ExportError::Conflict {
                            table: plan.snapshot.table.display().to_string(),
                            version: taken,
                            message: format!(
                                "version {taken} was taken by another writer, {retries} retries spent; nothing was committed"
                            ),
                        });
                    }
                    retries += 1;
                    let snapshot = log::read_snapshot(&plan.snapshot.table)?;
                    plan = plan_on(snapshot, plan.dataset, plan.digest, plan.rows, plan.opts)?;
                }
            }
        }
    }
}

/// Plans and commits: [`plan`] then [`Plan::commit`].
pub fn export(
    table: &Path,
    manifest: &Manifest,
    opts: &DeltaOptions,
) -> Result<DeltaSummary, ExportError> {
    plan(table, manifest, opts)?.commit()
}

/// The rows deleted from each live file of the table (by `add.path`,
/// decoded), read from their deletion vectors: for tests and audits.
pub fn deleted_rows(table: &Path) -> Result<BTreeMap<String, RoaringTreemap>, ExportError> {
    let s = log::read_snapshot(table)?;
    let logdir = table.join("_delta_log");
    let mut out = BTreeMap::new();
    for (p, add) in &s.files {
        let name = dv::percent_decode(p).map_err(|m| table_err(&logdir, Some("add.path"), m))?;
        let rows = match add.get("deletionVector") {
            None | Some(Value::Null) => RoaringTreemap::new(),
            Some(v) => {
                let d: Descriptor = serde_json::from_value(v.clone())
                    .map_err(|e| table_err(&logdir, Some("add.deletionVector"), e.to_string()))?;
                d.read(table).map_err(|m| {
                    table_err(
                        &logdir,
                        Some("add.deletionVector"),
                        format!("file {p:?}: {m}"),
                    )
                })?
            }
        };
        out.insert(name, rows);
    }
    Ok(out)
}
