//! CSV exports (a DSR tool's download) into events. The header names the
//! columns; an empty cell is a null; positions are CSV lines (the header
//! is line 1, a quoted cell may span lines: a row is named by the line it
//! starts on).

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use super::error::{At, TableError, TableErrorKind};
use super::events::{push_events, TableEvents};
use super::mapping::EventMapping;
use super::source::{parse_bool, RowSource, Want};
use super::timefmt::TimeSpec;
use crate::pseudonym::SubjectKeyer;
use crate::time::Timestamp;

/// Largest CSV input read, in bytes.
pub const MAX_CSV: u64 = 1 << 30;

/// The rows of one CSV input.
struct CsvRows {
    file: String,
    header: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

impl CsvRows {
    fn read(input: impl Read, file: &str) -> Result<Self, TableError> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input.take(MAX_CSV + 1));
        let err = |e: csv::Error| {
            let line = e.position().map_or(0, csv::Position::line);
            let at = if line > 0 { At::Line(line) } else { At::File };
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("{len} cells where the header has {expected_len}")
                }
                csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
                csv::ErrorKind::Io(io) => format!("read error: {io}"),
                _ => format!("not valid CSV: {e}"),
            };
            let kind = if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                TableErrorKind::Io
            } else {
                TableErrorKind::Corrupt
            };
            TableError::new(kind, file, at, message)
        };
        let header: Vec<String> = r
            .headers()
            .map_err(err)?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        let mut rec = csv::StringRecord::new();
        while r.read_record(&mut rec).map_err(err)? {
            if r.position().byte() > MAX_CSV {
                return Err(TableError::new(
                    TableErrorKind::TooLarge,
                    file,
                    At::File,
                    format!("larger than {MAX_CSV} bytes"),
                ));
            }
            let line = rec.position().map_or(0, csv::Position::line);
            if rec.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            rows.push((line, std::mem::take(&mut rec)));
        }
        Ok(CsvRows {
            file: file.to_string(),
            header,
            rows,
        })
    }

    fn cell(&self, col: usize, row: usize) -> Option<&str> {
        self.rows[row].1.get(col).filter(|c| !c.trim().is_empty())
    }
}

impl RowSource for CsvRows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn file(&self) -> &str {
        &self.file
    }

    fn at(&self, row: usize) -> At {
        At::Line(self.rows[row].0)
    }

    fn bind(&self, name: &str, _want: Want) -> Result<usize, String> {
        // Every CSV column is text, which every field can read.
        self.header
            .iter()
            .position(|h| h == name)
            .or_else(|| {
                self.header
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
            })
            .ok_or_else(|| "no such column".to_string())
    }

    fn column_names(&self) -> Vec<String> {
        self.header.clone()
    }

    fn str(&self, col: usize, row: usize) -> Result<Option<Cow<'_, str>>, String> {
        Ok(self.cell(col, row).map(|c| Cow::Borrowed(c.trim())))
    }

    fn each_str<'s>(
        &'s self,
        col: usize,
        row: usize,
        f: &mut dyn FnMut(&'s str),
    ) -> Result<(), String> {
        if let Some(c) = self.cell(col, row) {
            f(c.trim());
        }
        Ok(())
    }

    fn time(&self, col: usize, row: usize, spec: &TimeSpec) -> Result<Option<Timestamp>, String> {
        self.cell(col, row).map(|c| spec.parse_text(c)).transpose()
    }

    fn bool(&self, col: usize, row: usize) -> Result<Option<bool>, String> {
        self.cell(col, row).map(parse_bool).transpose()
    }
}

/// Reads events from CSV input by `mapping`, all or nothing; `name` names
/// the input in errors.
pub fn csv_events_from(
    input: impl Read,
    name: &str,
    mapping: &EventMapping,
    keyer: &SubjectKeyer,
    out: &mut TableEvents,
) -> Result<(), TableError> {
    let rows = CsvRows::read(input, name)?;
    // Bind first, so a missing column is reported at the header.
    let mut all = TableEvents::default();
    push_events(mapping, &rows, keyer, &mut all).map_err(|mut e| {
        if e.kind == TableErrorKind::MissingColumn {
            e.at = At::Line(1);
        }
        e
    })?;
    out.events.append(&mut all.events);
    out.origins.append(&mut all.origins);
    out.skipped += all.skipped;
    Ok(())
}

/// Reads events from CSV files by `mapping`, all or nothing, in order.
pub fn csv_events<P: AsRef<Path>>(
    paths: &[P],
    mapping: &EventMapping,
    keyer: &SubjectKeyer,
) -> Result<TableEvents, TableError> {
    let mut out = TableEvents::default();
    for p in paths {
        let name = super::parquet_file::display(p.as_ref());
        let f = std::fs::File::open(p.as_ref()).map_err(|e| {
            TableError::new(TableErrorKind::Io, &name, At::File, format!("open: {e}"))
        })?;
        csv_events_from(std::io::BufReader::new(f), &name, mapping, keyer, &mut out)?;
    }
    Ok(out)
}
