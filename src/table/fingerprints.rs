//! Fingerprints of Parquet files from their footers alone (no data page is
//! read), and of the mapping rows are read by: what a re-ingest compares
//! with the log's [`ShardFile`](crate::fingerprint::ShardFile)s.

use std::path::Path;

use super::parquet_file::{shard_names, ParquetFile};
use super::{FileFingerprint, FileOptions, RecordMapping, TableError};

/// The fingerprint of every file (shard name from `opts.root`, size,
/// footer blake3, rows), reading only footers, on `opts.threads` threads;
/// the first error by file order.
pub fn parquet_fingerprints<P: AsRef<Path>>(
    paths: &[P],
    opts: &FileOptions,
) -> Result<Vec<FileFingerprint>, TableError> {
    let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
    let shards = shard_names(&paths, opts.root.as_deref())?;
    super::par::map(paths.len(), opts.threads, |i| {
        let f = ParquetFile::open(paths[i])?;
        let rows = f.row_groups()?.iter().map(|g| g.2).sum();
        Ok(FileFingerprint {
            shard: shards[i].clone(),
            size: f.size,
            footer_blake3: f.footer_blake3,
            rows,
        })
    })
}

/// blake3 (`derive_key` context `optout 2026-12 record mapping fingerprint
/// v1`) of the mapping's JSON object re-serialised with sorted keys and no
/// white space, not of its file's name: two mappings with equal hashes give
/// the same records from the same file.
pub fn mapping_blake3(m: &RecordMapping) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("optout 2026-12 record mapping fingerprint v1");
    h.update(m.canonical.as_bytes());
    *h.finalize().as_bytes()
}
