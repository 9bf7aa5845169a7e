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

use errors::IntoPyResult;
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

/// Verifies a receipt (JSON text) offline, with nothing but the log's
/// public key file ``pubkey`` (``LEDGER.signing.pub``): the checkpoint's
/// signature, the entry's leaf hash, the inclusion proof and the summary;
/// with ``later`` (a later checkpoint's text) and ``proof`` (the JSON of
/// ``optout prove-consistency``), that the entry is still in the log.
/// Returns a dict; raises ``OptoutError`` when the receipt does not verify.
#[pyfunction]
#[pyo3(signature = (receipt, pubkey, later = None, proof = None))]
fn verify_receipt<'py>(
    py: Python<'py>,
    receipt: &str,
    pubkey: std::path::PathBuf,
    later: Option<String>,
    proof: Option<String>,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    use optout::tlog::{CheckpointVerifier, ConsistencyProof, Later, Receipt, TlogError, VerifierKey};
    let tlog = |e: TlogError| optout::Error::from(e);
    let key = VerifierKey::load_file(&pubkey)
        .map_err(|e| tlog(e.into()))
        .py(py)?;
    let r = Receipt::from_json(receipt.as_bytes())
        .map_err(|e| tlog(e.into()))
        .py(py)?;
    let proof: Option<ConsistencyProof> = match (&later, proof) {
        (Some(_), Some(p)) => Some(
            serde_json::from_str(&p)
                .map_err(|e| errors::bad_arg(py, "proof", format!("not a consistency proof: {e}")))?,
        ),
        (None, None) => None,
        _ => return Err(errors::invalid(py, "later and proof go together")),
    };
    let l = later.as_ref().zip(proof.as_ref()).map(|(c, p)| Later {
        checkpoint: c.as_bytes(),
        proof: p,
    });
    let v = optout::verify_ledger_receipt(&r, &CheckpointVerifier::new(key), l)
        .map_err(|e| tlog(e.into()))
        .py(py)?;
    let d = pyo3::types::PyDict::new(py);
    d.set_item("seq", v.seq)?;
    d.set_item("origin", &v.checkpoint.origin)?;
    d.set_item("checkpoint_size", v.checkpoint.size)?;
    d.set_item("later_size", v.later.map(|c| c.size))?;
    d.set_item("summary", r.summary.to_string())?;
    Ok(d)
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
    m.add_function(wrap_pyfunction!(verify_receipt, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LIBRARY_VERSION", optout::manifest::tool_version())?;
    Ok(())
}
