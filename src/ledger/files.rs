//! Parquet ingest with shard fingerprints (docs/FORMAT.md, "Shard
//! fingerprints"): the footers of the files are read first and compared
//! with the newest [`ShardFile`] the log holds for each shard. A file whose
//! size, rows, footer and mapping are the same is `unchanged` without a data
//! page read; a file whose size, rows or footer changed is refused unless
//! `replace`; the others are read and registered as [`Ledger::ingest`]
//! does, with an [`Entry::Files`] after their records in the last group.

use std::path::Path;

use super::*;
use crate::fingerprint::{FileState, ShardFile, ShardFiles};
use crate::table::{
    self, At, FileFingerprint, FileOptions, RecordMapping, TableError, TableErrorKind,
};

/// An ingest of Parquet files refused: a file (by name, row and column), or
/// the ledger (a conflicting row, I/O).
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file is bad, or changed since it was registered.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The ledger refused the records.
    #[error(transparent)]
    Ledger(#[from] Error),
}

/// What [`Ledger::ingest_parquet`] did.
#[derive(Clone, Debug, Default)]
pub struct TableIngest {
    /// As [`Ledger::ingest`]; `unchanged` counts the rows of skipped files.
    pub summary: IngestSummary,
    /// The fingerprint of every file, in input order.
    pub files: Vec<FileFingerprint>,
    /// Files recognised by their fingerprint: only their footers were read.
    pub files_unchanged: usize,
}

impl<I: Io> Ledger<I> {
    /// Registers the rows of Parquet files by `mapping`, all or nothing, as
    /// `optout ingest --parquet` does: shard = path under `opts.root`, row =
    /// position in the file. A re-run of unchanged files reads their footers
    /// only and writes nothing; a file changed since it was registered is a
    /// [`TableErrorKind::Changed`] error naming it and what changed, unless
    /// `opts.replace`.
    pub fn ingest_parquet<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        mapping: &RecordMapping,
        opts: &FileOptions,
    ) -> std::result::Result<TableIngest, FilesError> {
        let keyer = self.keyer()?.clone();
        let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
        let fps = table::parquet_fingerprints(&paths, opts)?;
        let map_hash = table::mapping_blake3(mapping);
        let dataset = mapping.dataset();
        let file = |f: &FileFingerprint| ShardFile {
            dataset: dataset.to_string(),
            shard: f.shard.clone(),
            size: f.size,
            footer_blake3: f.footer_blake3,
            rows: f.rows,
            mapping_blake3: map_hash,
        };
        let mut read = Vec::new();
        let mut skipped_rows = 0u64;
        for (p, f) in paths.iter().zip(&fps) {
            let state = match self.index.shard_file(dataset, &f.shard) {
                Some(old) => old.state_of(&file(f)),
                None => FileState::New,
            };
            match state {
                FileState::Same if !opts.replace => skipped_rows += f.rows,
                FileState::Changed(what) if !opts.replace => {
                    return Err(TableError::new(
                        TableErrorKind::Changed,
                        &p.display().to_string(),
                        At::File,
                        format!(
                            "changed since the ledger registered it as {dataset}/{} ({what}); \
                             set replace to register its rows again",
                            f.shard
                        ),
                    )
                    .into());
                }
                _ => read.push(*p),
            }
        }
        let files_unchanged = paths.len() - read.len();
        let mut summary = IngestSummary {
            seq: self.index.seq(),
            ..Default::default()
        };
        if !read.is_empty() {
            let recs = table::parquet_records(&read, mapping, &keyer, opts)?;
            let tail = Entry::Files(ShardFiles {
                files: recs.files.iter().map(file).collect(),
            });
            summary = self.ingest_with(recs.batch, Some(tail))?;
        }
        summary.unchanged += skipped_rows;
        Ok(TableIngest {
            summary,
            files: fps,
            files_unchanged,
        })
    }
}
