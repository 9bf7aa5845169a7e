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

use roaring::RoaringBitmap;

use crate::error::Error;
use crate::manifest::Manifest;

pub use crate::error::ExportError;

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
