//! Helpers for the table tests: Parquet files written with the `parquet`
//! crate's ArrowWriter, row groups cut where the test says.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;

/// Writes `columns` as a Parquet file whose row groups hold `groups[i]`
/// rows each (their sum is the column length).
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, groups: &[usize]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    assert_eq!(groups.iter().sum::<usize>(), batch.num_rows());
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, schema, None).unwrap();
    let mut at = 0;
    for &g in groups {
        w.write(&batch.slice(at, g)).unwrap();
        w.flush().unwrap();
        at += g;
    }
    w.close().unwrap();
}

/// A `list<string>` column.
pub fn lists(rows: &[Option<Vec<Option<&str>>>]) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for r in rows {
        match r {
            Some(items) => {
                for i in items {
                    b.values().append_option(*i);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// The row group sizes the file at `path` has.
pub fn row_groups(path: &Path) -> Vec<i64> {
    let f = std::fs::File::open(path).unwrap();
    let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
    use parquet::file::reader::FileReader;
    r.metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect()
}
