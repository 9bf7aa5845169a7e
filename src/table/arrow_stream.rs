//! Arrow streams (anything behind a [`RecordBatchReader`], such as the
//! Arrow C stream a Python binding receives as a PyCapsule) into records
//! of one named shard, or into events. A row's position is its position
//! in the stream.

use arrow_array::RecordBatchReader;

use super::arrow_batch::BatchRows;
use super::error::{At, TableError, TableErrorKind};
use super::events::{push_events, TableEvents};
use super::mapping::{EventMapping, RecordMapping};
use super::records::{push_rows, Chunk};
use crate::event::RecordBatch;
use crate::jsonl::BatchBuilder;
use crate::pseudonym::SubjectKeyer;

fn stream_err(name: &str, first_row: u64, e: impl std::fmt::Display) -> TableError {
    TableError::new(
        TableErrorKind::Corrupt,
        name,
        At::Row(first_row),
        format!("the stream failed: {e}"),
    )
}

/// Checks the stream's schema against the mapping before any row (so a
/// missing column is reported even for an empty stream).
fn check_schema(
    reader: &dyn RecordBatchReader,
    name: &str,
    f: impl FnOnce(&BatchRows<'_>) -> Result<(), TableError>,
) -> Result<(), TableError> {
    let empty = arrow_array::RecordBatch::new_empty(reader.schema());
    f(&BatchRows::new(name, 0, &empty))
}

/// Registers the rows of an Arrow stream as shard `shard` by `mapping`,
/// all or nothing; `name` names the stream in errors (`<arrow>`, the
/// caller's variable).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{RecordBatch, RecordBatchIterator, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use optout::table::{arrow_records, RecordMapping};
/// use optout::SubjectKeyer;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("email", DataType::Utf8, true)]));
/// let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![Some("a@x.org"), None]))]).unwrap();
/// let m = RecordMapping::from_json(r#"{"dataset":"d","subjects":["email"],"source":"x.org","basis":"consent","collected_at":"2024-01-01T00:00:00Z"}"#, "map.json").unwrap();
/// let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
/// let b = arrow_records(reader, "part-0", &m, &SubjectKeyer::from_secret([1; 32]), "<arrow>", false).unwrap();
/// assert_eq!(b.len(), 2);
/// assert!(b.shards[0].rows[1].subjects.is_empty()); // a null subject is skipped
/// ```
pub fn arrow_records(
    reader: impl RecordBatchReader,
    shard: &str,
    mapping: &RecordMapping,
    keyer: &SubjectKeyer,
    name: &str,
    replace: bool,
) -> Result<RecordBatch, TableError> {
    Ok(arrow_shard(reader, shard, mapping, keyer, name, replace)?.batch)
}

/// The records of one Arrow stream read as a shard, and how long it was.
#[derive(Clone, Debug, Default)]
pub struct ArrowRecords {
    /// The records (rows whose mapping gives a record).
    pub batch: RecordBatch,
    /// The mapping's dataset.
    pub dataset: String,
    /// The shard the stream was read as.
    pub shard: String,
    /// Rows in the stream: a replace ends the shard here
    /// ([`crate::Ledger::ingest_arrow`]).
    pub rows: u64,
}

/// [`arrow_records`], with the stream's dataset, shard and length, for
/// [`crate::Ledger::ingest_arrow`].
pub fn arrow_shard(
    reader: impl RecordBatchReader,
    shard: &str,
    mapping: &RecordMapping,
    keyer: &SubjectKeyer,
    name: &str,
    replace: bool,
) -> Result<ArrowRecords, TableError> {
    check_schema(&reader, name, |src| {
        push_rows(mapping, src, keyer, replace, &mut Chunk::default())
    })?;
    let mut chunk = Chunk::default();
    let mut first = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| stream_err(name, first, e))?;
        push_rows(
            mapping,
            &BatchRows::new(name, first, &batch),
            keyer,
            replace,
            &mut chunk,
        )?;
        first += batch.num_rows() as u64;
    }
    let mut b = BatchBuilder::default();
    if !chunk.rows.is_empty() {
        b.push_rows(mapping.dataset(), shard, &chunk.profiles, chunk.rows);
    }
    Ok(ArrowRecords {
        batch: b.finish(),
        dataset: mapping.dataset().to_string(),
        shard: shard.to_string(),
        rows: first,
    })
}

/// Reads events from an Arrow stream by `mapping`, all or nothing.
pub fn arrow_events(
    reader: impl RecordBatchReader,
    mapping: &EventMapping,
    keyer: &SubjectKeyer,
    name: &str,
) -> Result<TableEvents, TableError> {
    check_schema(&reader, name, |src| {
        push_events(mapping, src, keyer, &mut TableEvents::default())
    })?;
    let mut out = TableEvents::default();
    let mut first = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| stream_err(name, first, e))?;
        push_events(
            mapping,
            &BatchRows::new(name, first, &batch),
            keyer,
            &mut out,
        )?;
        first += batch.num_rows() as u64;
    }
    Ok(out)
}
