//! Errors of tabular intake: which file, where in it (CSV line, Parquet or
//! stream row, row group, WebDataset sample), which column, which field.

use std::fmt;

/// Where in an input an error is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// The whole file (its schema, its footer, the mapping as a whole).
    File,
    /// A 1-based line of a CSV file (the header is line 1).
    Line(u64),
    /// A row of a Parquet file or an Arrow stream: its 0-based position,
    /// the same number the ledger registers as the record's `row`.
    Row(u64),
    /// A Parquet row group that could not be decoded.
    RowGroup {
        /// The row group's index in the file.
        index: u32,
        /// The position of its first row in the file.
        first_row: u64,
    },
    /// A WebDataset sample: its 0-based index in tar order.
    Sample(u64),
}

/// What kind of mistake; the Python binding maps these to exceptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableErrorKind {
    /// The mapping file is malformed or names a field it cannot have.
    Mapping,
    /// A mapped column is not in the data.
    MissingColumn,
    /// A mapped column has a type the field cannot take.
    WrongType,
    /// A null (or empty cell) where the field is required.
    Null,
    /// A value that does not parse or is not allowed (a time, a word).
    BadValue,
    /// The file is not a valid Parquet file / tar archive / CSV, or cannot
    /// be decoded.
    Corrupt,
    /// A valid file this build cannot read (a Parquet codec other than
    /// snappy and zstd, an encrypted footer).
    Unsupported,
    /// An operating-system error reading the file.
    Io,
    /// The same file (shard) given twice, or not under the root.
    Path,
    /// More rows than a shard can hold (row positions are `u32`).
    TooLarge,
    /// The file changed since the ledger registered it (its size, rows or
    /// footer differ from the fingerprint the log holds) and `replace` is
    /// not set.
    Changed,
}

/// An intake error. Nothing of the invocation it came from is returned.
///
/// The message never contains a subject id: values of subject columns are
/// not quoted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TableError {
    /// What kind of mistake.
    pub kind: TableErrorKind,
    /// The file (or stream name, or mapping file) it is in.
    pub file: String,
    /// Where in the file.
    pub at: At,
    /// The data column, when one is to blame.
    pub column: Option<Box<str>>,
    /// The mapped field (`collected_at`, `subjects`, `type`, ...), when known.
    pub field: Option<Box<str>>,
    /// What is wrong.
    pub message: String,
}

impl TableError {
    /// An error of `kind` in `file` at `at`.
    pub fn new(kind: TableErrorKind, file: &str, at: At, message: impl Into<String>) -> Self {
        TableError {
            kind,
            file: file.to_string(),
            at,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Blames `column`.
    pub fn column(mut self, column: &str) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Names the mapped `field`.
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A mapping-file error naming `field`.
    pub(crate) fn mapping(file: &str, field: &str, message: impl Into<String>) -> Self {
        Self::new(TableErrorKind::Mapping, file, At::File, message).field(field)
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        match &self.at {
            At::File => {}
            At::Line(n) => write!(f, ":{n}")?,
            At::Row(n) => write!(f, ": row {n}")?,
            At::RowGroup { index, first_row } => {
                write!(f, ": row group {index} (rows from {first_row})")?
            }
            At::Sample(n) => write!(f, ": sample {n}")?,
        }
        match (&self.column, &self.field) {
            (Some(c), Some(fd)) => write!(f, ": column `{c}` (field `{fd}`)")?,
            (Some(c), None) => write!(f, ": column `{c}`")?,
            (None, Some(fd)) => write!(f, ": field `{fd}`")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}
