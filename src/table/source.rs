//! One interface over the rows of every tabular input: an Arrow record
//! batch (Parquet, Arrow streams), a CSV file, WebDataset samples. Records
//! and events are made from it, so each rule is written once.

use std::borrow::Cow;

use super::error::{At, TableError, TableErrorKind};
use super::timefmt::TimeSpec;
use crate::time::Timestamp;

/// What a field needs of its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A string, or a list of strings (subjects, categories, purposes).
    Strs,
    /// One string (or an integer, read as its decimal digits).
    Str,
    /// A time: a timestamp, or text.
    Time,
    /// A boolean, or text (`true`/`false`, `yes`/`no`, `1`/`0`).
    Bool,
}

impl Want {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Want::Strs => "a string or list<string> column",
            Want::Str => "a string or integer column",
            Want::Time => "a timestamp or string column",
            Want::Bool => "a boolean or string column",
        }
    }
}

/// Rows of one input, read by column index after [`RowSource::bind`].
///
/// Cell accessors return `Err(message)` for a value of the wrong shape;
/// the caller adds the file, position, column and field.
pub(crate) trait RowSource {
    /// Number of rows.
    fn len(&self) -> usize;
    /// The file (or stream) name for errors.
    fn file(&self) -> &str;
    /// Where row `row` is, for errors.
    fn at(&self, row: usize) -> At;
    /// The index of column `name`, checked to be usable as `want`.
    fn bind(&self, name: &str, want: Want) -> Result<usize, String>;
    /// The names of all columns (for "no such column" errors).
    fn column_names(&self) -> Vec<String>;
    /// One string; `None` for null or empty.
    fn str(&self, col: usize, row: usize) -> Result<Option<Cow<'_, str>>, String>;
    /// Every string of the cell (none for null, one for a string, each
    /// non-null element of a list).
    fn each_str<'s>(
        &'s self,
        col: usize,
        row: usize,
        f: &mut dyn FnMut(&'s str),
    ) -> Result<(), String>;
    /// A time; `None` for null or empty.
    fn time(&self, col: usize, row: usize, spec: &TimeSpec) -> Result<Option<Timestamp>, String>;
    /// A boolean; `None` for null or empty.
    fn bool(&self, col: usize, row: usize) -> Result<Option<bool>, String>;
}

/// Binds `name` for `field`, turning a refusal into a [`TableError`]:
/// a missing column lists the columns there are; a wrong type names it.
pub(crate) fn bind(
    src: &dyn RowSource,
    name: &str,
    want: Want,
    field: &str,
) -> Result<usize, TableError> {
    src.bind(name, want).map_err(|m| {
        let names = src.column_names();
        let kind = if names.iter().any(|n| n == name) {
            TableErrorKind::WrongType
        } else {
            TableErrorKind::MissingColumn
        };
        let message = if kind == TableErrorKind::MissingColumn {
            format!("no such column (the columns are: {})", names.join(", "))
        } else {
            m
        };
        TableError::new(kind, src.file(), At::File, message)
            .column(name)
            .field(field)
    })
}

/// A text cell as a boolean.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true/false, yes/no, 1/0)")),
    }
}
