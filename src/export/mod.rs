//! Export a manifest into lakehouse tables as deletion vectors, so the
//! engines that read those tables skip the excluded rows with no change to
//! the pipeline.
//!
//! A deletion vector is a per-data-file roaring bitmap of row positions:
//! the shape of a manifest shard. [`delta`] commits them to a Delta table
//! (a new table version); [`iceberg`] writes Iceberg v3 Puffin files of
//! `deletion-vector-v1` blobs for an Iceberg writer to commit. Deletion
//! vectors hide rows without erasing them: see `docs/LAKEHOUSE.md` for the
//! physical removal that must follow.

pub mod delta;
pub mod iceberg;
pub mod z85;

use std::collections::BTreeMap;
use std::path::PathBuf;

use roaring::RoaringBitmap;

use crate::error::{Error, InputError};
use crate::manifest::Manifest;

/// What can go wrong exporting into a table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The table's log or a file it references is malformed, or uses
    /// something optout cannot write to. Names the file, line and field.
    #[error(transparent)]
    Table(InputError),
    /// The table's files and the manifest's shards do not match; nothing
    /// was written.
    #[error("{table}: the table's files do not match dataset {dataset:?} of the manifest; nothing was written:{}", list(problems))]
    Mismatch {
        /// The table.
        table: String,
        /// The manifest dataset.
        dataset: String,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// Another writer committed first and touched the same files (or the
    /// retries ran out); nothing was committed.
    #[error("{table}: commit conflict at version {version}: {message}")]
    Conflict {
        /// The table.
        table: String,
        /// The version that was taken.
        version: u64,
        /// What happened.
        message: String,
    },
    /// A request that cannot be honoured (e.g. which dataset is meant).
    #[error("{0}")]
    Invalid(String),
    /// An operating-system I/O error on a named file.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

fn list(problems: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut s: String = problems
        .iter()
        .take(SHOWN)
        .map(|p| format!("\n  - {p}"))
        .collect();
    if problems.len() > SHOWN {
        s.push_str(&format!("\n  ... and {} more", problems.len() - SHOWN));
    }
    s
}

impl ExportError {
    fn from_crate(e: Error) -> ExportError {
        match e {
            Error::Io { path, op, source } => ExportError::Io { path, op, source },
            other => ExportError::Other(other.to_string()),
        }
    }
}

/// The shards of one dataset of `manifest` (shard name → excluded rows).
/// `dataset` may be `None` when the manifest covers exactly one dataset.
pub fn select_shards(
    manifest: &Manifest,
    dataset: Option<&str>,
) -> Result<(String, BTreeMap<String, RoaringBitmap>), ExportError> {
    let mut names: Vec<&str> = manifest.shards.iter().map(|s| s.dataset.as_str()).collect();
    names.dedup();
    let d = match dataset {
        Some(d) if names.contains(&d) => d.to_string(),
        Some(d) => {
            return Err(ExportError::Invalid(format!(
                "the manifest has no dataset {d:?} (it covers {names:?})"
            )))
        }
        None if names.len() == 1 => names[0].to_string(),
        None if names.is_empty() => {
            return Err(ExportError::Invalid("the manifest covers no shards".into()))
        }
        None => {
            return Err(ExportError::Invalid(format!(
                "the manifest covers several datasets ({names:?}): name the one this table holds (--dataset)"
            )))
        }
    };
    let rows = manifest
        .shards
        .iter()
        .filter(|s| s.dataset == d)
        .map(|s| (s.shard.clone(), s.excluded.clone()))
        .collect();
    Ok((d, rows))
}
