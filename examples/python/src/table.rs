//! Tabular intake from Python: Parquet paths, CSV paths and Arrow data (any
//! object with `__arrow_c_stream__`: a pyarrow Table or RecordBatchReader,
//! a Polars DataFrame, ...) through the library's `optout::table` rules.

use std::path::PathBuf;

use optout::table::{self, At, EventMapping, RecordMapping, TableError, TableErrorKind};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyString};

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};

use crate::errors::{bad_arg, raise};

/// A table intake error as `InputError` (attributes `file`, `line`, `row`,
/// `column`, `field`, `reason`, `kind`): a CSV error has a `line`, a
/// Parquet or Arrow one a `row` (the position the ledger registers).
pub fn error(py: Python<'_>, e: &TableError) -> PyErr {
    let (line, row) = match e.at {
        At::Line(n) => (Some(n), None),
        At::Row(n) | At::Sample(n) => (None, Some(n)),
        At::RowGroup { first_row, .. } => (None, Some(first_row)),
        _ => (None, None),
    };
    let kind = match e.kind {
        TableErrorKind::Mapping => "mapping",
        TableErrorKind::MissingColumn => "missing_column",
        TableErrorKind::WrongType => "wrong_type",
        TableErrorKind::Null => "null",
        TableErrorKind::BadValue => "bad_value",
        TableErrorKind::Corrupt => "corrupt",
        TableErrorKind::Unsupported => "unsupported",
        TableErrorKind::Io => "io",
        TableErrorKind::Path => "path",
        TableErrorKind::TooLarge => "too_large",
        TableErrorKind::Changed => "changed",
        _ => "other",
    };
    let o = |v: Option<u64>| v.into_pyobject(py).map(|b| b.into_any().unbind());
    let s = |v: Option<&str>| v.into_pyobject(py).map(|b| b.into_any().unbind());
    let attrs = (|| -> PyResult<Vec<(&str, Py<PyAny>)>> {
        Ok(vec![
            ("file", s(Some(&e.file))?),
            ("line", o(line)?),
            ("row", o(row)?),
            ("column", s(e.column.as_deref())?),
            ("field", s(e.field.as_deref())?),
            ("reason", s(Some(&e.message))?),
            ("kind", s(Some(kind))?),
        ])
    })();
    match attrs {
        Ok(a) => raise(py, "InputError", e.to_string(), &a),
        Err(err) => err,
    }
}

/// A mapping given as a dict or JSON text (its text), or as a path (read
/// by the library's `load`).
enum MappingArg {
    Text(String),
    Path(PathBuf),
}

fn mapping_arg(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<MappingArg> {
    if v.is_instance_of::<PyDict>() {
        let s: String = py.import("json")?.call_method1("dumps", (v,))?.extract()?;
        return Ok(MappingArg::Text(s));
    }
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_str()?;
        return Ok(if s.trim_start().starts_with('{') {
            MappingArg::Text(s.to_string())
        } else {
            MappingArg::Path(PathBuf::from(s))
        });
    }
    if v.hasattr("__fspath__")? {
        return Ok(MappingArg::Path(v.call_method0("__fspath__")?.extract()?));
    }
    Err(bad_arg(py, "mapping", "expected a dict, JSON text or a path"))
}

/// A record mapping from a dict, JSON text or a path.
pub fn record_mapping(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<RecordMapping> {
    match mapping_arg(py, v)? {
        MappingArg::Text(t) => RecordMapping::from_json(&t, "<mapping>"),
        MappingArg::Path(p) => RecordMapping::load(&p),
    }
    .map_err(|e| error(py, &e))
}

/// An event mapping from a dict, JSON text or a path.
pub fn event_mapping(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<EventMapping> {
    match mapping_arg(py, v)? {
        MappingArg::Text(t) => EventMapping::from_json(&t, "<mapping>"),
        MappingArg::Path(p) => EventMapping::load(&p),
    }
    .map_err(|e| error(py, &e))
}

/// One path or a list of paths.
pub fn paths(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    let one = |x: &Bound<'_, PyAny>| -> PyResult<PathBuf> {
        if x.is_instance_of::<PyString>() || x.hasattr("__fspath__")? {
            x.extract()
        } else {
            Err(bad_arg(py, "paths", "expected a path or a list of paths"))
        }
    };
    if v.is_instance_of::<PyString>() || v.hasattr("__fspath__")? {
        return Ok(vec![one(v)?]);
    }
    let mut out = Vec::new();
    for x in v.try_iter()? {
        out.push(one(&x?)?);
    }
    if out.is_empty() {
        return Err(bad_arg(py, "paths", "no files given"));
    }
    Ok(out)
}

/// Whether `v` is Arrow data (exports the Arrow C stream interface).
pub fn is_arrow(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.hasattr("__arrow_c_stream__")
}

/// Arrow data as a stream reader, through the Arrow PyCapsule interface.
pub fn arrow_reader(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<RecordBatchStreamReader> {
    let capsule = v.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| bad_arg(py, "data", "__arrow_c_stream__ did not return a PyCapsule"))?;
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the capsule named `arrow_array_stream` holds an
    // `ArrowArrayStream` (the Arrow C stream interface); `from_raw` moves it
    // out and marks the capsule's copy released, so the capsule's destructor
    // does not release it a second time.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr().cast()) };
    RecordBatchStreamReader::try_new(stream)
        .map_err(|e| bad_arg(py, "data", format!("not a readable Arrow stream: {e}")))
}

/// Which reader an event file takes, by its suffix.
pub fn events_of_files(
    py: Python<'_>,
    files: &[PathBuf],
    mapping: &EventMapping,
    keyer: &optout::SubjectKeyer,
) -> PyResult<Vec<optout::Event>> {
    let csv = |p: &PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let parquet = |p: &PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let r = if files.iter().all(csv) {
        table::csv_events(files, mapping, keyer)
    } else if files.iter().all(parquet) {
        table::parquet_events(files, mapping, keyer)
    } else {
        return Err(bad_arg(
            py,
            "data",
            "files must all be .csv or all .parquet (or pass Arrow data)",
        ));
    };
    r.map(|t| t.events).map_err(|e| error(py, &e))
}
