//! The demo's datasets as a user has them: Parquet files (nested
//! directories, several row groups of uneven sizes) and one record mapping
//! per dataset, registered the way `optout ingest --parquet` does it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use optout::table::{FileOptions, RecordMapping};
use optout::{IngestSummary, Ledger};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::data::Columns;

/// A dataset on disk: its directory (the `--root`), files and mapping.
pub struct Dataset {
    pub name: &'static str,
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    pub mapping: PathBuf,
    /// The files as a shell pattern under `root`, for the printed command.
    pub pattern: &'static str,
}

pub const FORUM_MAPPING: &str = r#"{"dataset":"forum","subjects":["author_email"],"source":"forum.example.com","basis":"legitimate_interest","collected_at":{"column":"created_at"},"categories":["text"],"visibility":{"column":"visibility"},"jurisdiction":{"column":"jurisdiction"},"license":{"column":"license"},"key":{"column":"url"},"content_hash":{"column":"content_hash"}}
"#;
pub const MEETINGS_MAPPING: &str = r#"{"dataset":"meetings","subjects":["participants"],"source":"meet.example.com","basis":{"column":"basis"},"collected_at":{"column":"started_at"},"categories":{"column":"categories"},"visibility":"private","jurisdiction":"EU","key":{"column":"meeting_id"}}
"#;
pub const CRM_MAPPING: &str = r#"{"dataset":"crm","subjects":["email"],"source":"crm.example.com","basis":{"column":"basis"},"collected_at":{"column":"updated_at"},"categories":{"column":"segments"},"jurisdiction":{"column":"jurisdiction"},"obtained_from":{"column":"obtained_from"},"key":{"column":"customer_id"}}
"#;

/// Writes `cols` as Parquet files under `dir/name/` (row groups of at most
/// `group` rows) and the mapping beside them as `dir/mapping-NAME.json`.
pub fn write(
    dir: &Path,
    name: &'static str,
    cols: &Columns,
    mapping: &str,
    group: usize,
    pattern: &'static str,
) -> Result<Dataset> {
    let root = dir.join(name);
    let mut fields = Vec::new();
    for (c, _) in &cols.text {
        fields.push(Field::new(*c, DataType::Utf8, true));
    }
    for (c, _) in &cols.lists {
        let item = Field::new("item", DataType::Utf8, true);
        fields.push(Field::new(*c, DataType::List(Arc::new(item)), false));
    }
    for (c, _) in &cols.times {
        let ty = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        fields.push(Field::new(*c, ty, false));
    }
    let schema = Arc::new(Schema::new(fields));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(group))
        .build();
    let n = cols.rows as usize;
    let mut files = Vec::new();
    for (i, shard) in cols.shards.iter().enumerate() {
        let rows = i * n..(i + 1) * n;
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (_, v) in &cols.text {
            arrays.push(Arc::new(StringArray::from(v[rows.clone()].to_vec())));
        }
        for (_, v) in &cols.lists {
            let mut b = ListBuilder::new(StringBuilder::new());
            for items in &v[rows.clone()] {
                for it in items {
                    b.values().append_value(it);
                }
                b.append(true);
            }
            arrays.push(Arc::new(b.finish()));
        }
        for (_, v) in &cols.times {
            let a = TimestampMicrosecondArray::from(v[rows.clone()].to_vec()).with_timezone("UTC");
            arrays.push(Arc::new(a));
        }
        let batch = RecordBatch::try_new(schema.clone(), arrays).context("demo batch")?;
        let path = root.join(shard);
        let parent = path.parent().unwrap_or(&root);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
        let f = std::fs::File::create(&path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        let mut w = ArrowWriter::try_new(f, schema.clone(), Some(props.clone()))?;
        w.write(&batch)?;
        w.close()
            .with_context(|| format!("{}: cannot write", path.display()))?;
        files.push(path);
    }
    let map_path = dir.join(format!("mapping-{name}.json"));
    std::fs::write(&map_path, mapping)
        .with_context(|| format!("{}: cannot write", map_path.display()))?;
    Ok(Dataset {
        name,
        root,
        files,
        mapping: map_path,
        pattern,
    })
}

/// Registers a dataset's files by its mapping, as
/// `optout ingest LEDGER --parquet --mapping MAP --root ROOT FILE...` does.
pub fn ingest(l: &mut Ledger, d: &Dataset) -> Result<IngestSummary> {
    let mapping = RecordMapping::load(&d.mapping)?;
    let opts = FileOptions {
        root: Some(d.root.clone()),
        ..Default::default()
    };
    Ok(l.ingest_parquet(&d.files, &mapping, &opts)?.summary)
}

/// The command that registers `d` again (a no-op on an unchanged file).
pub fn command(ledger: &str, d: &Dataset) -> String {
    format!(
        "optout ingest {ledger} --parquet --mapping {} --root {} {}/{}",
        d.mapping.display(),
        d.root.display(),
        d.root.display(),
        d.pattern
    )
}
