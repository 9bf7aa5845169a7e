//! Python bindings of optout (module `optout._optout`, re-exported by the
//! pure-Python package `optout`).
//!
//! * [`ledger`]: `optout.Ledger` (create/open, ingest, apply, manifest,
//!   runs, affected, report, verify);
//! * [`manifest`]: `optout.Manifest` (load, excluded, keep_mask,
//!   contains_many, diff, check, bytes, pickling);
//! * [`keep`]: the keep-mask kernels;
//! * [`errors`]: library errors as `optout.OptoutError` subclasses;
//! * [`input`], [`convert`]: arguments in, values out;
//! * [`table`]: Parquet, CSV and Arrow data in (`ingest_parquet`,
//!   `ingest_arrow`, `apply_table`).

use pyo3::prelude::*;

mod convert;
mod errors;
mod input;
mod keep;
mod ledger;
mod manifest;
mod table;

/// Verifies the ledger directory at ``path`` without opening it for
/// writing (no lock, nothing modified). See ``Ledger.verify``.
#[pyfunction]
fn verify<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    ledger::verify_path(py, &path, None)
}

/// Reason names in code order (the order of manifest bitmaps).
#[pyfunction]
fn reason_names() -> Vec<&'static str> {
    optout::Reason::ALL.iter().map(|r| r.name()).collect()
}

#[pymodule]
fn _optout(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ledger::PyLedger>()?;
    m.add_class::<manifest::PyManifest>()?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(reason_names, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LIBRARY_VERSION", optout::manifest::tool_version())?;
    Ok(())
}
