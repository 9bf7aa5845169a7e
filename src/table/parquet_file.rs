//! Parquet files into record batches and events.
//!
//! A file's shard is its path relative to the root (default: its own
//! directory, so its name), with `/` separators, as a Delta table's
//! `add.path`. A row's position is counted from the row groups in the
//! footer, never read from a column. Only the mapped columns are decoded;
//! row groups are decoded in parallel.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaDataReader;

use super::arrow_batch::BatchRows;
use super::error::{At, TableError, TableErrorKind};
use super::events::{push_events, TableEvents};
use super::mapping::{EventMapping, RecordMapping};
use super::records::{push_rows, Chunk};
use crate::event::RecordBatch;
use crate::jsonl::BatchBuilder;
use crate::pseudonym::SubjectKeyer;

/// Rows decoded per Arrow batch.
const BATCH_ROWS: usize = 8192;

/// Longest Parquet footer read, in bytes (the format's own limit is 4 GiB;
/// a footer of a file with thousands of row groups is a few MB).
pub const MAX_FOOTER: usize = 256 << 20;

/// How files are named and read.
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// Shards are paths relative to this directory; `None`: each file's own
    /// directory (the shard is the file name).
    pub root: Option<PathBuf>,
    /// Decoding threads.
    pub threads: usize,
    /// Register every row with `replace` set (a changed file, re-registered
    /// on purpose).
    pub replace: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            root: None,
            threads: super::par::default_threads(),
            replace: false,
        }
    }
}

/// What identifies a registered file's content, to recognise it changed at
/// a re-ingest: its size and the blake3 of its footer (Parquet: the
/// metadata and the 8-byte tail; a tar: every member header), and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFingerprint {
    /// The shard name.
    pub shard: String,
    /// The file's size in bytes.
    pub size: u64,
    /// blake3 of the footer (Parquet) or of the member headers (tar).
    pub footer_blake3: [u8; 32],
    /// Rows (Parquet) or samples (tar) in the file.
    pub rows: u64,
}

/// Records read from files, all or nothing.
#[derive(Clone, Debug, Default)]
pub struct TableRecords {
    /// The records, as the JSONL path would build them.
    pub batch: RecordBatch,
    /// One fingerprint per file, in input order.
    pub files: Vec<FileFingerprint>,
}

pub(crate) fn display(p: &Path) -> String {
    p.display().to_string()
}

fn io_err(file: &str, what: &str, e: std::io::Error) -> TableError {
    TableError::new(TableErrorKind::Io, file, At::File, format!("{what}: {e}"))
}

/// The shard name of `path` under `root` (default: its directory).
pub(crate) fn shard_name(path: &Path, root: Option<&Path>) -> Result<String, TableError> {
    let file = display(path);
    let bad = |m: String| TableError::new(TableErrorKind::Path, &file, At::File, m);
    let rel: PathBuf = match root {
        None => PathBuf::from(
            path.file_name()
                .ok_or_else(|| bad("not a file name".into()))?,
        ),
        Some(root) => match path.strip_prefix(root) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                let canon = |p: &Path| {
                    p.canonicalize()
                        .map_err(|e| io_err(&display(p), "resolve path", e))
                };
                let (p, r) = (canon(path)?, canon(root)?);
                p.strip_prefix(&r)
                    .map(Path::to_path_buf)
                    .map_err(|_| bad(format!("not under the root {}", r.display())))?
            }
        },
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| bad("the path is not valid UTF-8".into()))?
                    .to_string(),
            ),
            Component::CurDir => {}
            _ => {
                return Err(bad(
                    "the path relative to the root must stay under it".into()
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(bad("the root itself is not a file".into()));
    }
    Ok(parts.join("/"))
}

/// Shard names for `paths`, refusing one given twice.
pub(crate) fn shard_names(paths: &[&Path], root: Option<&Path>) -> Result<Vec<String>, TableError> {
    let mut names = Vec::with_capacity(paths.len());
    let mut seen = std::collections::HashMap::new();
    for (i, p) in paths.iter().enumerate() {
        let n = shard_name(p, root)?;
        if let Some(j) = seen.insert(n.clone(), i) {
            return Err(TableError::new(
                TableErrorKind::Path,
                &display(p),
                At::File,
                format!("shard {n:?} is given twice (also by {})", display(paths[j])),
            ));
        }
        names.push(n);
    }
    Ok(names)
}

/// An opened Parquet file: its footer, read once.
pub(crate) struct ParquetFile {
    pub path: PathBuf,
    pub name: String,
    pub meta: ArrowReaderMetadata,
    pub size: u64,
    pub footer_blake3: [u8; 32],
}

impl ParquetFile {
    /// Reads and checks the footer (magic, length, metadata).
    pub(crate) fn open(path: &Path) -> Result<Self, TableError> {
        let name = display(path);
        let corrupt = |m: String| TableError::new(TableErrorKind::Corrupt, &name, At::File, m);
        let mut f = File::open(path).map_err(|e| io_err(&name, "open", e))?;
        let size = f.metadata().map_err(|e| io_err(&name, "stat", e))?.len();
        if size < 12 {
            return Err(corrupt(format!("not a Parquet file: {size} bytes")));
        }
        let mut tail = [0u8; 8];
        f.seek(SeekFrom::Start(size - 8))
            .and_then(|_| f.read_exact(&mut tail))
            .map_err(|e| io_err(&name, "read the footer", e))?;
        match &tail[4..] {
            b"PAR1" => {}
            b"PARE" => {
                return Err(TableError::new(
                    TableErrorKind::Unsupported,
                    &name,
                    At::File,
                    "an encrypted Parquet footer: not supported",
                ))
            }
            _ => {
                return Err(corrupt(
                    "not a Parquet file (no PAR1 magic at the end)".into(),
                ))
            }
        }
        let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
        if len + 12 > size || len as usize > MAX_FOOTER {
            return Err(corrupt(format!(
                "footer length {len} does not fit a file of {size} bytes"
            )));
        }
        let mut footer = vec![0u8; len as usize];
        f.seek(SeekFrom::Start(size - 8 - len))
            .and_then(|_| f.read_exact(&mut footer))
            .map_err(|e| io_err(&name, "read the footer", e))?;
        let mut h = blake3::Hasher::new();
        h.update(&footer);
        h.update(&tail);
        let metadata = ParquetMetaDataReader::decode_metadata(&footer)
            .map_err(|e| corrupt(format!("the footer does not decode: {e}")))?;
        let meta = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
            .map_err(|e| corrupt(format!("the schema cannot be read as Arrow: {e}")))?;
        Ok(ParquetFile {
            path: path.to_path_buf(),
            name,
            meta,
            size,
            footer_blake3: *h.finalize().as_bytes(),
        })
    }

    /// Row groups as `(index, first row, rows)`.
    pub(crate) fn row_groups(&self) -> Result<Vec<(usize, u64, u64)>, TableError> {
        let mut first = 0u64;
        let mut out = Vec::new();
        for (i, rg) in self.meta.metadata().row_groups().iter().enumerate() {
            let n = u64::try_from(rg.num_rows()).map_err(|_| {
                TableError::new(
                    TableErrorKind::Corrupt,
                    &self.name,
                    At::RowGroup {
                        index: i as u32,
                        first_row: first,
                    },
                    "negative row count",
                )
            })?;
            out.push((i, first, n));
            first += n;
        }
        Ok(out)
    }

    /// The projection of `columns` (top-level fields), checking each
    /// against the schema through `check` (an empty batch of the schema).
    pub(crate) fn projection(
        &self,
        columns: &[&str],
        check: impl Fn(&BatchRows<'_>) -> Result<(), TableError>,
    ) -> Result<ProjectionMask, TableError> {
        let schema = self.meta.schema();
        let empty = arrow_array::RecordBatch::new_empty(schema.clone());
        check(&BatchRows::new(&self.name, 0, &empty))?;
        let idx: Vec<usize> = columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect();
        self.check_codecs(columns)?;
        Ok(ProjectionMask::roots(self.meta.parquet_schema(), idx))
    }

    /// Refuses a mapped column compressed with a codec this build does not
    /// read, before decoding anything (the decoder's own error names a
    /// Cargo feature, not the codec).
    fn check_codecs(&self, columns: &[&str]) -> Result<(), TableError> {
        use parquet::basic::Compression;
        for rg in self.meta.metadata().row_groups() {
            for c in rg.columns() {
                let root = c.column_path().parts().first().map(String::as_str);
                let Some(root) = root.filter(|r| columns.contains(r)) else {
                    continue;
                };
                let codec = c.compression();
                if !matches!(
                    codec,
                    Compression::UNCOMPRESSED | Compression::SNAPPY | Compression::ZSTD(_)
                ) {
                    return Err(TableError::new(
                        TableErrorKind::Unsupported,
                        &self.name,
                        At::File,
                        format!("compressed with {codec}: this build reads snappy, zstd and uncompressed Parquet"),
                    )
                    .column(root));
                }
            }
        }
        Ok(())
    }

    /// Decodes one row group (or all, `None`), calling `f` per batch with
    /// the position of its first row.
    pub(crate) fn read(
        &self,
        mask: &ProjectionMask,
        group: Option<(usize, u64)>,
        mut f: impl FnMut(u64, &arrow_array::RecordBatch) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        let file = File::open(&self.path).map_err(|e| io_err(&self.name, "open", e))?;
        let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
            .with_projection(mask.clone())
            .with_batch_size(BATCH_ROWS);
        let (at, mut first) = match group {
            Some((i, first)) => {
                b = b.with_row_groups(vec![i]);
                (
                    At::RowGroup {
                        index: i as u32,
                        first_row: first,
                    },
                    first,
                )
            }
            None => (At::File, 0),
        };
        let corrupt = |e: &dyn std::fmt::Display| {
            TableError::new(
                TableErrorKind::Corrupt,
                &self.name,
                at.clone(),
                format!("cannot decode: {e}"),
            )
        };
        let reader = b.build().map_err(|e| corrupt(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| corrupt(&e))?;
            f(first, &batch)?;
            first += batch.num_rows() as u64;
        }
        Ok(())
    }
}

/// Reads Parquet files into records by `mapping`, all or nothing: every
/// file's schema is checked first, then the row groups of all files are
/// decoded on `opts.threads` threads. The batch equals what the JSONL path
/// builds from the same rows (files in the given order, rows in order).
pub fn parquet_records<P: AsRef<Path>>(
    paths: &[P],
    mapping: &RecordMapping,
    keyer: &SubjectKeyer,
    opts: &FileOptions,
) -> Result<TableRecords, TableError> {
    let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
    let shards = shard_names(&paths, opts.root.as_deref())?;
    let columns = mapping.columns();
    let check =
        |src: &BatchRows<'_>| push_rows(mapping, src, keyer, opts.replace, &mut Chunk::default());
    let opened = super::par::map(paths.len(), opts.threads, |i| {
        let f = ParquetFile::open(paths[i])?;
        let mask = f.projection(&columns, check)?;
        let groups = f.row_groups()?;
        let rows: u64 = groups.iter().map(|g| g.2).sum();
        if rows > u64::from(u32::MAX) {
            return Err(TableError::new(
                TableErrorKind::TooLarge,
                &f.name,
                At::File,
                format!("{rows} rows: a shard holds at most 4294967295"),
            ));
        }
        Ok((f, mask, groups, rows))
    })?;
    let work: Vec<(usize, usize, u64)> = opened
        .iter()
        .enumerate()
        .flat_map(|(fi, (_, _, groups, _))| {
            groups
                .iter()
                .filter(|g| g.2 > 0)
                .map(move |&(gi, first, _)| (fi, gi, first))
        })
        .collect();
    let chunks = super::par::map(work.len(), opts.threads, |w| {
        let (fi, gi, first) = work[w];
        let (f, mask, groups, _) = &opened[fi];
        let mut chunk = Chunk::with_capacity(groups[gi].2 as usize);
        f.read(mask, Some((gi, first)), |first_row, batch| {
            push_rows(
                mapping,
                &BatchRows::new(&f.name, first_row, batch),
                keyer,
                opts.replace,
                &mut chunk,
            )
        })?;
        Ok((fi, chunk))
    })?;
    let mut b = BatchBuilder::default();
    for (fi, chunk) in chunks {
        b.push_rows(mapping.dataset(), &shards[fi], &chunk.profiles, chunk.rows);
    }
    let files = opened
        .iter()
        .zip(shards)
        .map(|((f, _, _, rows), shard)| FileFingerprint {
            shard,
            size: f.size,
            footer_blake3: f.footer_blake3,
            rows: *rows,
        })
        .collect();
    Ok(TableRecords {
        batch: b.finish(),
        files,
    })
}

/// Reads events from Parquet files by `mapping`, all or nothing, in file
/// and row order; positions are rows of the file.
pub fn parquet_events<P: AsRef<Path>>(
    paths: &[P],
    mapping: &EventMapping,
    keyer: &SubjectKeyer,
) -> Result<TableEvents, TableError> {
    let mut out = TableEvents::default();
    let columns = mapping.columns();
    for p in paths {
        let f = ParquetFile::open(p.as_ref())?;
        let mask = f.projection(&columns, |src| {
            push_events(mapping, src, keyer, &mut TableEvents::default())
        })?;
        f.read(&mask, None, |first_row, batch| {
            push_events(
                mapping,
                &BatchRows::new(&f.name, first_row, batch),
                keyer,
                &mut out,
            )
        })?;
    }
    Ok(out)
}
