//! Parquet and WebDataset ingest with shard fingerprints (docs/FORMAT.md,
//! "Shard fingerprints"): the footers of the files (a tar's member headers
//! and `.json` members) are read first and compared with the newest
//! [`ShardFile`] the log holds for each shard. A file whose size, rows,
//! footer and mapping are the same is `unchanged` without a data page
//! read; a file whose size, rows or footer changed is refused unless
//! `replace`; the others are read and registered as [`Ledger::ingest`]
//! does, with an [`Entry::Files`] after their records in the last group.
//! A replace by a shorter file (or Arrow stream) ends the shard there
//! ([`Entry::Ends`]).

use std::path::Path;

use super::*;
use crate::fingerprint::{FileState, ShardEnd, ShardFile, ShardFiles};
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
        self.ingest_files(paths, mapping, opts, false)
    }

    /// [`Ledger::ingest_parquet`] for WebDataset tars (`optout ingest
    /// --webdataset`): row = sample index. A tar's fingerprint is its size,
    /// its samples and a blake3 of every member header and name and of the
    /// `.json` members' bytes (read without the other members' data), so an
    /// unchanged tar is `unchanged` without being mapped, and a changed one
    /// is a [`TableErrorKind::Changed`] error unless `opts.replace`.
    pub fn ingest_webdataset<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        mapping: &RecordMapping,
        opts: &FileOptions,
    ) -> std::result::Result<TableIngest, FilesError> {
        self.ingest_files(paths, mapping, opts, true)
    }

    fn ingest_files<P: AsRef<Path>>(
        &mut self,
        paths: &[P],
        mapping: &RecordMapping,
        opts: &FileOptions,
        tars: bool,
    ) -> std::result::Result<TableIngest, FilesError> {
        let keyer = self.keyer()?.clone();
        let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
        let fps = if tars {
            table::webdataset_fingerprints(&paths, opts)?
        } else {
            table::parquet_fingerprints(&paths, opts)?
        };
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
        let mut gone = 0;
        if !read.is_empty() {
            let recs = if tars {
                table::webdataset_records(&read, mapping, &keyer, opts)?
            } else {
                table::parquet_records(&read, mapping, &keyer, opts)?
            };
            let mut tail = Vec::new();
            if opts.replace {
                // A file shorter than its shard's rows ends the shard.
                let (ends, n) = self.ends_entry(recs.files.iter().map(|f| ShardEnd {
                    dataset: dataset.to_string(),
                    shard: f.shard.clone(),
                    end: u32::try_from(f.rows).unwrap_or(u32::MAX),
                }));
                tail.extend(ends);
                gone = n;
            }
            tail.push(Entry::Files(ShardFiles {
                files: recs.files.iter().map(file).collect(),
            }));
            summary = self.ingest_with(recs.batch, tail)?;
        }
        if read.is_empty() {
            // Every file recognised: the replay left may still call for a
            // snapshot (a ledger written before snapshots after ingests).
            summary.snapshot = self.auto_snapshot()?;
        }
        summary.unchanged += skipped_rows;
        summary.gone = gone;
        Ok(TableIngest {
            summary,
            files: fps,
            files_unchanged,
        })
    }

    /// Registers the rows of one Arrow stream read as shard `recs.shard`
    /// (`table::arrow_shard`; Python `Ledger.ingest_arrow`), as
    /// [`Ledger::ingest`] does. A stream has no file to fingerprint: every
    /// run reads and compares its rows (docs/TABLES.md, "A changed file").
    /// With `replace`, a stream shorter than the shard's registered rows
    /// ends the shard at its length ([`IngestSummary::gone`]).
    pub fn ingest_arrow(
        &mut self,
        recs: table::ArrowRecords,
        replace: bool,
    ) -> Result<IngestSummary> {
        let mut tail = Vec::new();
        let mut gone = 0;
        if replace {
            let (ends, n) = self.ends_entry([ShardEnd {
                dataset: recs.dataset,
                shard: recs.shard,
                end: u32::try_from(recs.rows).unwrap_or(u32::MAX),
            }]);
            tail.extend(ends);
            gone = n;
        }
        let mut s = self.ingest_with(recs.batch, tail)?;
        s.gone = gone;
        Ok(s)
    }
}
