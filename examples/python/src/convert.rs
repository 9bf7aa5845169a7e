//! Small conversions between Python values and the library's types.

use optout::{Policy, Timestamp};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde::Serialize;

use crate::errors::{bad_arg, input, IntoPyResult};

/// A valid time from `None` (now), an RFC 3339 string, or an aware `datetime`.
pub fn timestamp(py: Python<'_>, v: Option<&Bound<'_, PyAny>>, field: &str) -> PyResult<Timestamp> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Timestamp::now());
    };
    let text: String = if let Ok(s) = v.cast::<PyString>() {
        s.to_str()?.to_string()
    } else if v.hasattr("isoformat")? && v.hasattr("tzinfo")? {
        if v.getattr("tzinfo")?.is_none() {
            return Err(bad_arg(
                py,
                field,
                "a naive datetime is ambiguous: give it a tzinfo (e.g. datetime.timezone.utc)",
            ));
        }
        v.call_method0("isoformat")?.extract()?
    } else {
        return Err(bad_arg(
            py,
            field,
            format!(
                "expected an RFC 3339 string or an aware datetime, got {}",
                v.get_type().name()?
            ),
        ));
    };
    Timestamp::parse(&text).map_err(|m| bad_arg(py, field, m))
}

/// A policy from a dict, JSON text, or a path to a JSON file.
pub fn policy(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Policy> {
    let (text, name) = if v.is_instance_of::<PyDict>() {
        let s: String = py.import("json")?.call_method1("dumps", (v,))?.extract()?;
        (s, "<policy>".to_string())
    } else if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_str()?;
        if s.trim_start().starts_with('{') {
            (s.to_string(), "<policy>".to_string())
        } else {
            return Policy::load(std::path::Path::new(s)).py(py);
        }
    } else if v.hasattr("__fspath__")? {
        let p: std::path::PathBuf = v.call_method0("__fspath__")?.extract()?;
        return Policy::load(&p).py(py);
    } else {
        return Err(bad_arg(
            py,
            "policy",
            "expected a dict, JSON text or a path",
        ));
    };
    Policy::from_json(&text, &name).map_err(|e| input(py, &e))
}

/// Any serde value as plain Python objects (dicts, lists, str, int, ...).
pub fn to_py<'py, T: Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let s = serde_json::to_string(v)
        .map_err(|e| crate::errors::raise(py, "OptoutError", e.to_string(), &[]))?;
    py.import("json")?.call_method1("loads", (s,))
}
