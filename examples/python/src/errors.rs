//! Library errors as Python exceptions (defined in `optout/_errors.py`).
//!
//! Every fallible call maps its [`optout::Error`] here; nothing panics across
//! the FFI boundary.

use optout::export::ExportError;
use optout::StorageError;
use optout::{Error, InputError, LedgerError, ManifestError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::BoundObject;

/// Builds `optout._errors.<class>(message, **attrs)` as a `PyErr`.
pub fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("optout._errors")?.getattr(class)?;
        let kw = PyDict::new(py);
        for (k, v) in attrs {
            kw.set_item(*k, v)?;
        }
        let exc = cls.call((message.clone(),), Some(&kw))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    match v.into_pyobject(py) {
        Ok(b) => b.into_any().unbind(),
        Err(_) => py.None(),
    }
}

/// An input error (bad JSONL line, policy, argument).
pub fn input(py: Python<'_>, e: &InputError) -> PyErr {
    raise(
        py,
        "InputError",
        e.to_string(),
        &[
            ("file", obj(py, e.file.as_str())),
            ("line", obj(py, e.line)),
            ("field", obj(py, e.field.as_deref())),
            ("reason", obj(py, e.message.as_str())),
        ],
    )
}

/// A manifest that did not decode or verify.
pub fn manifest(py: Python<'_>, e: &ManifestError) -> PyErr {
    raise(
        py,
        "CorruptError",
        e.to_string(),
        &[
            ("file", obj(py, e.file.as_deref())),
            ("offset", obj(py, e.offset)),
            ("seq", py.None()),
        ],
    )
}

/// A storage-layer error.
pub fn storage(py: Python<'_>, e: &StorageError) -> PyErr {
    let msg = e.to_string();
    match e {
        StorageError::Locked { path } => raise(
            py,
            "LockedError",
            msg,
            &[("path", obj(py, path.display().to_string()))],
        ),
        StorageError::Corrupt {
            file, offset, seq, ..
        } => raise(
            py,
            "CorruptError",
            msg,
            &[
                ("file", obj(py, file.display().to_string())),
                ("offset", obj(py, *offset)),
                ("seq", obj(py, seq.map(|s| s.0))),
            ],
        ),
        StorageError::SnapshotMismatch { file, seq, .. } => raise(
            py,
            "CorruptError",
            msg,
            &[
                ("file", obj(py, file.display().to_string())),
                ("offset", obj(py, 0u64)),
                ("seq", obj(py, seq.0)),
            ],
        ),
        StorageError::UnsupportedVersion { file, .. } => raise(
            py,
            "CorruptError",
            msg,
            &[
                ("file", obj(py, file.display().to_string())),
                ("offset", obj(py, 8u64)),
                ("seq", py.None()),
            ],
        ),
        StorageError::NoLedger { path } => raise(
            py,
            "NotFoundError",
            msg,
            &[("path", obj(py, path.display().to_string()))],
        ),
        StorageError::Io { path, op, .. } => raise(
            py,
            "StorageIOError",
            msg,
            &[
                ("path", obj(py, path.display().to_string())),
                ("op", obj(py, *op)),
            ],
        ),
        StorageError::ReadOnly => raise(py, "ReadOnlyError", msg, &[]),
        StorageError::Replaced { path, .. } => raise(
            py,
            "LedgerReplacedError",
            msg,
            &[
                ("path", obj(py, path.display().to_string())),
                ("op", obj(py, "write")),
            ],
        ),
        StorageError::Symlink { .. } | StorageError::NoSnapshotKey => {
            raise(py, "InvalidRequestError", msg, &[])
        }
        _ => raise(py, "OptoutError", msg, &[]),
    }
}

/// An error exporting into a table.
pub fn export(py: Python<'_>, e: &ExportError) -> PyErr {
    match e {
        ExportError::Table(ie) => input(py, ie),
        ExportError::Mismatch {
            table,
            dataset,
            problems,
        } => raise(
            py,
            "TableMismatchError",
            e.to_string(),
            &[
                ("table", obj(py, table.as_str())),
                ("dataset", obj(py, dataset.as_str())),
                ("problems", obj(py, problems.clone())),
            ],
        ),
        ExportError::Conflict { table, version, .. } => raise(
            py,
            "CommitConflictError",
            e.to_string(),
            &[
                ("table", obj(py, table.as_str())),
                ("version", obj(py, *version)),
            ],
        ),
        ExportError::Invalid(m) => raise(py, "InvalidRequestError", m.clone(), &[]),
        ExportError::Io { path, op, .. } => raise(
            py,
            "StorageIOError",
            e.to_string(),
            &[
                ("path", obj(py, path.display().to_string())),
                ("op", obj(py, *op)),
            ],
        ),
        other => raise(py, "OptoutError", other.to_string(), &[]),
    }
}

/// A request the ledger refuses, by variant (never by message text).
pub fn ledger(py: Python<'_>, e: &LedgerError) -> PyErr {
    let msg = e.to_string();
    match e {
        LedgerError::ReadOnly => raise(py, "ReadOnlyError", msg, &[]),
        LedgerError::Damaged(_) => raise(py, "OptoutError", msg, &[]),
        LedgerError::Exists { .. }
        | LedgerError::NeedsKey { .. }
        | LedgerError::KeyMismatch { .. }
        | LedgerError::EntryTooLarge { .. }
        | LedgerError::SeqPastHead { .. }
        | LedgerError::UnknownDataset(_)
        | LedgerError::BadPurpose(_)
        | LedgerError::BadBasis(_)
        | LedgerError::UndeclaredBasis { .. }
        | LedgerError::PolicyPurpose { .. }
        | LedgerError::EmptyRun
        | LedgerError::SigningKeyExists { .. } => raise(py, "InvalidRequestError", msg, &[]),
        LedgerError::Locked { path, .. } => raise(
            py,
            "LockedError",
            msg,
            &[("path", obj(py, path.display().to_string()))],
        ),
        LedgerError::UndeclaredPurpose {
            purpose,
            closest,
            event,
        } => raise(
            py,
            "InvalidRequestError",
            msg,
            &[
                ("purpose", obj(py, purpose.as_str())),
                ("closest", obj(py, closest.clone())),
                ("event", obj(py, *event)),
            ],
        ),
        LedgerError::WouldDoNothing {
            no_records,
            unmatched,
        } => raise(
            py,
            "InvalidRequestError",
            msg,
            &[
                ("no_records", obj(py, no_records.clone())),
                ("unmatched", obj(py, unmatched.clone())),
            ],
        ),
        _ => raise(py, "OptoutError", msg, &[]),
    }
}

/// Any library error.
pub fn lib(py: Python<'_>, e: &Error) -> PyErr {
    match e {
        Error::Input(ie) => input(py, ie),
        Error::Manifest(me) => manifest(py, me),
        Error::Storage(se) => storage(py, se),
        Error::Io { path, op, source } => {
            let class = if source.kind() == std::io::ErrorKind::NotFound {
                "NotFoundError"
            } else {
                "StorageIOError"
            };
            raise(
                py,
                class,
                e.to_string(),
                &[
                    ("path", obj(py, path.display().to_string())),
                    ("op", obj(py, *op)),
                ],
            )
        }
        Error::Export(x) => export(py, x),
        Error::ManifestMismatch(m) | Error::HeadMismatch(m) => {
            raise(py, "ManifestMismatchError", m.clone(), &[])
        }
        Error::RecordConflict { .. } => input(
            py,
            &InputError::new("<records>", 0, Some("row"), e.to_string()),
        ),
        Error::TooLarge { path, .. } => input(
            py,
            &InputError::new(&path.display().to_string(), 0, None, e.to_string()),
        ),
        Error::Ledger(le) => ledger(py, le),
        Error::Invalid(m) => raise(py, "InvalidRequestError", m.clone(), &[]),
        other => raise(py, "OptoutError", other.to_string(), &[]),
    }
}

/// Extension: `.map_err(py_err)` for library results inside `Python::attach`.
pub trait IntoPyResult<T> {
    /// Maps the error to the matching `optout` exception.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| lib(py, &e))
    }
}

impl<T> IntoPyResult<T> for Result<T, StorageError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| storage(py, &e))
    }
}

impl<T> IntoPyResult<T> for Result<T, InputError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| input(py, &e))
    }
}

impl<T> IntoPyResult<T> for Result<T, ManifestError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| manifest(py, &e))
    }
}

/// An invalid argument, as `InvalidRequestError`.
pub fn invalid(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    raise(py, "InvalidRequestError", msg.into(), &[])
}

/// An argument error blaming `field`, as `InputError` (file `<argument>`).
pub fn bad_arg(py: Python<'_>, field: &str, msg: impl Into<String>) -> PyErr {
    input(py, &InputError::new("<argument>", 0, Some(field), msg))
}
