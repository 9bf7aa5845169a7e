//! Lineage as Parquet columns (`optout derive --parquet`): one row per
//! link, `shard`, `row` (the derived row) and its parent in exactly one
//! form: `parent_dataset`, `parent_shard`, `parent_row` (a record), or
//! `parent_key`, or `parent_content_hash` (64 hex digits). The links of one
//! derived row (in file order, across the files given) are its parents; the
//! rows go into the library's [`DerivationBuilder`], so every rule of a
//! derivation is the JSONL path's. A Parquet row is its position in its
//! file; other columns are not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};

use super::arrow_batch::Strs;
use super::error::{At, TableError, TableErrorKind};
use super::parquet_file::ParquetFile;
use crate::error::DeriveError;
use crate::event::{ContentHash, Derivation, DerivedRow, ParentRef};
use crate::jsonl::DerivationBuilder;

/// The lineage columns, in the order they are looked up.
pub const LINEAGE_COLUMNS: [&str; 7] = [
    "shard",
    "row",
    "parent_dataset",
    "parent_shard",
    "parent_row",
    "parent_key",
    "parent_content_hash",
];

const RECORD_FORM: [&str; 3] = ["parent_dataset", "parent_shard", "parent_row"];

/// Lineage read from Parquet files: the derivation (in the library's
/// builder) and where each of its links was read, to name the file, row
/// and column of a link the ledger refuses.
#[derive(Debug)]
pub struct TableLineage {
    builder: DerivationBuilder,
    files: Vec<PathBuf>,
}

/// One link as read: the derived row's shard and row, the parent.
struct Link<'a> {
    shard: &'a str,
    row: u32,
    parent: ParentRef,
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

fn is_str(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if is_str(v))
}

/// Checks the schema: `shard`, `row` and at least one parent form, each
/// column of the type it needs; the record form's three columns together.
fn check_schema(file: &str, schema: &Schema) -> Result<Vec<&'static str>, TableError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing = |c: &str, m: String| {
        TableError::new(TableErrorKind::MissingColumn, file, At::File, m).column(c)
    };
    let all = || names.join(", ");
    let has = |c: &str| names.contains(&c);
    for c in ["shard", "row"] {
        if !has(c) {
            return Err(missing(
                c,
                format!("no such column (the columns are: {})", all()),
            ));
        }
    }
    if RECORD_FORM.iter().any(|c| has(c)) {
        if let Some(c) = RECORD_FORM.iter().find(|c| !has(c)) {
            return Err(missing(
                c,
                format!(
                    "no such column: a record parent needs parent_dataset, parent_shard and parent_row (the columns are: {})",
                    all()
                ),
            ));
        }
    } else if !has("parent_key") && !has("parent_content_hash") {
        return Err(missing(
            "parent_dataset",
            format!(
                "no parent column: give parent_dataset, parent_shard and parent_row, or parent_key, or parent_content_hash (the columns are: {})",
                all()
            ),
        ));
    }
    let mut present = Vec::new();
    for c in LINEAGE_COLUMNS {
        let Ok(f) = schema.field_with_name(c) else {
            continue;
        };
        let t = f.data_type();
        let (ok, need) = if c.ends_with("row") {
            (is_int(t), "an integer column")
        } else {
            (is_str(t), "a string column")
        };
        if !ok {
            return Err(TableError::new(
                TableErrorKind::WrongType,
                file,
                At::File,
                format!("the column is {t}; it needs {need}"),
            )
            .column(c));
        }
        present.push(c);
    }
    Ok(present)
}

/// An integer column's cell as a `u32` below `u32::MAX` (`None`: null).
fn u32_at(a: &dyn Array, i: usize) -> Result<Option<u32>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    let v: i128 = match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        t => return Err(format!("the column is {t}; it needs an integer column")),
    };
    if (0..i128::from(u32::MAX)).contains(&v) {
        Ok(Some(v as u32))
    } else {
        Err(format!("{v} is not a row (0..4294967295)"))
    }
}

/// The columns of one batch, by name.
struct Cols<'a> {
    strs: HashMap<&'static str, Strs<'a>>,
    ints: HashMap<&'static str, &'a dyn Array>,
}

impl<'a> Cols<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        let mut c = Cols {
            strs: HashMap::new(),
            ints: HashMap::new(),
        };
        for name in LINEAGE_COLUMNS {
            let Some(a) = batch.column_by_name(name) else {
                continue;
            };
            if name.ends_with("row") {
                c.ints.insert(name, a.as_ref());
            } else if let Some(s) = Strs::of(a.as_ref()) {
                c.strs.insert(name, s);
            }
        }
        c
    }

    /// A string cell; `None` for null, empty or a column not there.
    fn str(&self, name: &str, i: usize) -> Option<&'a str> {
        self.strs
            .get(name)
            .and_then(|s| s.get(i))
            .filter(|v| !v.is_empty())
    }

    fn int(&self, name: &str, i: usize) -> Result<Option<u32>, String> {
        match self.ints.get(name) {
            Some(a) => u32_at(*a, i),
            None => Ok(None),
        }
    }
}

/// The link of row `i` of a batch whose first row is `first` in `file`.
fn link<'a>(file: &str, first: u64, cols: &Cols<'a>, i: usize) -> Result<Link<'a>, TableError> {
    let at = At::Row(first + i as u64);
    let err = |kind, c: &str, m: String| TableError::new(kind, file, at.clone(), m).column(c);
    let null = |c: &str| {
        err(
            TableErrorKind::Null,
            c,
            "is null or empty; it is required".into(),
        )
    };
    let int = |c: &str| -> Result<Option<u32>, TableError> {
        cols.int(c, i)
            .map_err(|m| err(TableErrorKind::BadValue, c, m))
    };
    let shard = cols.str("shard", i).ok_or_else(|| null("shard"))?;
    let row = int("row")?.ok_or_else(|| null("row"))?;
    let record = RECORD_FORM.iter().any(|c| match *c {
        "parent_row" => cols.ints.get(c).is_some_and(|a| !a.is_null(i)),
        _ => cols.str(c, i).is_some(),
    });
    let key = cols.str("parent_key", i);
    let hash = cols.str("parent_content_hash", i);
    let forms: Vec<&str> = [
        (record, "parent_dataset"),
        (key.is_some(), "parent_key"),
        (hash.is_some(), "parent_content_hash"),
    ]
    .iter()
    .filter(|f| f.0)
    .map(|f| f.1)
    .collect();
    let parent = match forms.as_slice() {
        [] => {
            return Err(err(
                TableErrorKind::Null,
                "parent_dataset",
                "names no parent: set parent_dataset, parent_shard and parent_row, or parent_key, or parent_content_hash".into(),
            ))
        }
        ["parent_dataset"] => ParentRef::Record {
            dataset: cols
                .str("parent_dataset", i)
                .ok_or_else(|| null("parent_dataset"))?
                .to_string(),
            shard: cols
                .str("parent_shard", i)
                .ok_or_else(|| null("parent_shard"))?
                .to_string(),
            row: int("parent_row")?.ok_or_else(|| null("parent_row"))?,
        },
        ["parent_key"] => ParentRef::Key(key.unwrap_or_default().to_string()),
        [_] => ParentRef::ContentHash(
            ContentHash::from_hex(hash.unwrap_or_default())
                .map_err(|m| err(TableErrorKind::BadValue, "parent_content_hash", m))?,
        ),
        [_, second, ..] => {
            return Err(err(
                TableErrorKind::BadValue,
                second,
                format!(
                    "names a parent in more than one way ({}): a row is one link, to one parent",
                    forms.join(", ")
                ),
            ))
        }
    };
    Ok(Link { shard, row, parent })
}

/// Reads every link of `paths` in file and row order, calling `f` with the
/// file's index, the link's Parquet row and the link.
fn each_link(
    paths: &[PathBuf],
    mut f: impl FnMut(usize, u64, Link<'_>) -> Result<(), TableError>,
) -> Result<(), TableError> {
    let opened = paths
        .iter()
        .map(|p| {
            let pf = ParquetFile::open(p)?;
            let present = check_schema(&pf.name, pf.meta.schema())?;
            let mask = pf.projection(&present, |_| Ok(()))?;
            Ok((pf, mask))
        })
        .collect::<Result<Vec<_>, TableError>>()?;
    for (fi, (pf, mask)) in opened.iter().enumerate() {
        pf.read(mask, None, |first, batch| {
            let cols = Cols::of(batch);
            for i in 0..batch.num_rows() {
                f(fi, first + i as u64, link(&pf.name, first, &cols, i)?)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Reads lineage from Parquet files into a derivation of `dataset` from
/// `sources`, all or nothing: the first bad cell (lowest file, then row)
/// is the error, naming the file, the Parquet row and the column.
pub fn parquet_lineage<P: AsRef<Path>>(
    paths: &[P],
    dataset: &str,
    sources: &[String],
    allow_missing: bool,
) -> Result<TableLineage, TableError> {
    let files: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    // Derived rows by shard name, then row; the links of a row are usually
    // consecutive, so the last row is tried first.
    let mut pos: HashMap<String, HashMap<u32, usize>> = HashMap::new();
    let mut rows: Vec<(String, DerivedRow, usize, u64)> = Vec::new();
    each_link(&files, |fi, at, l| {
        let last = rows
            .last()
            .filter(|r| r.1.row == l.row && r.0 == l.shard)
            .map(|_| rows.len() - 1);
        let known = last.or_else(|| pos.get(l.shard).and_then(|m| m.get(&l.row)).copied());
        let i = match known {
            Some(i) => i,
            None => {
                pos.entry(l.shard.to_string())
                    .or_default()
                    .insert(l.row, rows.len());
                rows.push((
                    l.shard.to_string(),
                    DerivedRow {
                        row: l.row,
                        parents: Vec::new(),
                    },
                    fi,
                    at,
                ));
                rows.len() - 1
            }
        };
        rows[i].1.parents.push(l.parent);
        Ok(())
    })?;
    let mut builder = DerivationBuilder::new(dataset, sources, allow_missing);
    for (shard, row, fi, at) in rows {
        // The builder's "line" of a Parquet row is its first link's row + 1;
        // refusals are located by `TableLineage::located`, not by the builder.
        builder.push(&shard, row, &files[fi].display().to_string(), at + 1);
    }
    Ok(TableLineage { builder, files })
}

impl TableLineage {
    /// The derivation so far.
    pub fn derivation(&self) -> &Derivation {
        self.builder.derivation()
    }

    /// The derivation, taken (refusals can still be located).
    pub fn take(&mut self) -> Derivation {
        self.builder.take()
    }

    /// A refusal of the ledger as an error at the file, Parquet row and
    /// column of the link at fault (the derived row's first link when the
    /// row as a whole is refused); the refusal itself when no link names
    /// the row (the files changed since they were read).
    pub fn located(&self, e: DeriveError) -> Result<TableError, DeriveError> {
        match self.locate(&e) {
            Ok(Some(t)) => Ok(t),
            _ => Err(e),
        }
    }

    /// The refusal `e` as a [`TableError`] at the link at fault (the files
    /// are read again to find it); `None` when no link names the row.
    pub fn locate(&self, e: &DeriveError) -> Result<Option<TableError>, TableError> {
        let (link, column) = match e.field.strip_prefix("parents[") {
            Some(rest) => {
                let (n, suffix) = rest.split_once(']').unwrap_or((rest, ""));
                let column = match suffix {
                    ".key" => "parent_key",
                    ".content_hash" => "parent_content_hash",
                    _ => "parent_dataset",
                };
                (n.parse::<usize>().unwrap_or(0), Some(column))
            }
            None if e.field == "row" => (0, Some("row")),
            None => (0, None),
        };
        let mut seen = 0usize;
        let mut found: Option<(usize, u64, ParentRef)> = None;
        let r = each_link(&self.files, |fi, at, l| {
            if found.is_none() && l.shard == e.shard && l.row == e.row {
                if seen == link {
                    found = Some((fi, at, l.parent));
                }
                seen += 1;
            }
            Ok(())
        });
        r?;
        let Some((fi, at, parent)) = found else {
            return Ok(None);
        };
        let named = match (&parent, column) {
            (
                ParentRef::Record {
                    dataset,
                    shard,
                    row,
                },
                Some("parent_dataset"),
            ) => {
                format!(" (parent {dataset}/{shard}#{row})")
            }
            _ => String::new(),
        };
        let mut t = TableError::new(
            TableErrorKind::BadValue,
            &self.files[fi].display().to_string(),
            At::Row(at),
            format!(
                "derived row {}/{}#{}{named}: {}",
                e.dataset, e.shard, e.row, e.what
            ),
        )
        .field(&e.field);
        if let Some(c) = column {
            t = t.column(c);
        }
        Ok(Some(t))
    }
}
