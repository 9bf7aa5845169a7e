//! `optout.Manifest`: an exclusion manifest, read-only, shareable across
//! threads and picklable.

use std::path::PathBuf;
use std::sync::OnceLock;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use optout::manifest::{check, ManifestDiff, ManifestShard};
use optout::{Manifest, Reason};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::convert::to_py;
use crate::errors::{bad_arg, raise, IntoPyResult};
use crate::keep;

/// An exclusion manifest: per data file, the rows a training run must skip,
/// with reasons, sealed by a digest.
///
/// Load one with ``Manifest.load(path)`` or ``Manifest.from_bytes(b)``, or get
/// one from ``Ledger.manifest(...)``. It is immutable, safe to share between
/// threads, and pickles as its sealed bytes (so it can be sent to
/// ``datasets.map/filter(num_proc=...)``, DataLoader workers, Ray or Spark
/// tasks; the receiver re-verifies the seal).
#[pyclass(module = "optout", name = "Manifest", frozen)]
pub struct PyManifest {
    pub(crate) m: Manifest,
    bytes: Vec<u8>,
    dense: Vec<OnceLock<Option<Box<[u64]>>>>,
}

impl PyManifest {
    /// Wraps a manifest and its sealed bytes.
    pub fn new(m: Manifest, bytes: Vec<u8>) -> Self {
        let dense = (0..m.shards.len()).map(|_| OnceLock::new()).collect();
        PyManifest { m, bytes, dense }
    }

    fn decode(py: Python<'_>, bytes: Vec<u8>) -> PyResult<Self> {
        let m = py.detach(|| Manifest::from_bytes(&bytes)).py(py)?;
        Ok(Self::new(m, bytes))
    }

    fn shard_index(&self, dataset: &str, shard: &str) -> Option<usize> {
        self.m
            .shards
            .binary_search_by(|s| (s.dataset.as_str(), s.shard.as_str()).cmp(&(dataset, shard)))
            .ok()
    }

    /// The shard, or `None` (or `UnknownShardError` when `strict`).
    fn find(
        &self,
        py: Python<'_>,
        dataset: &str,
        shard: &str,
        strict: bool,
    ) -> PyResult<Option<usize>> {
        match self.shard_index(dataset, shard) {
            Some(i) => Ok(Some(i)),
            None if strict => Err(unknown_shard(py, dataset, shard)?),
            None => Ok(None),
        }
    }

    fn dense_of(&self, i: usize) -> Option<&[u64]> {
        self.dense[i]
            .get_or_init(|| keep::dense(&self.m.shards[i].excluded))
            .as_deref()
    }

    /// The keep mask (`keep = true`) or its complement, over numpy rows.
    fn mask<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        shard: &str,
        rows: &Bound<'py, PyAny>,
        strict: bool,
        keep_value: bool,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let idx = self.find(py, dataset, shard, strict)?;
        let rows = Rows::extract(py, rows)?;
        let n = rows.len();
        let out = PyArray1::<bool>::zeros(py, n, false);
        {
            // SAFETY: `out` was just created here and is not shared yet.
            let o =
                unsafe { out.as_slice_mut() }.map_err(|e| bad_arg(py, "rows", e.to_string()))?;
            let Some(i) = idx else {
                o.fill(keep_value);
                return Ok(out);
            };
            let ex = &self.m.shards[i].excluded;
            match &rows {
                Rows::U32(a) => {
                    let s = a
                        .as_slice()
                        .map_err(|e| bad_arg(py, "rows", e.to_string()))?;
                    if strict {
                        self.m.shards[i]
                            .past_end(s)
                            .map_err(|e| row_past_end(py, &e))?;
                    }
                    py.detach(|| {
                        let d = self.dense_of(i);
                        keep::keep_mask(ex, d, s, o);
                        if !keep_value {
                            o.iter_mut().for_each(|b| *b = !*b);
                        }
                    });
                }
                Rows::U64(a) => {
                    let s = a
                        .as_slice()
                        .map_err(|e| bad_arg(py, "rows", e.to_string()))?;
                    if strict {
                        self.m.shards[i]
                            .past_end(s)
                            .map_err(|e| row_past_end(py, &e))?;
                    }
                    py.detach(|| {
                        let d = self.dense_of(i);
                        keep::keep_mask(ex, d, s, o);
                        if !keep_value {
                            o.iter_mut().for_each(|b| *b = !*b);
                        }
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Row arrays: `uint32` / `uint64` C-contiguous arrays are read in place;
/// anything else integer is converted once by numpy.
enum Rows<'py> {
    U32(PyReadonlyArray1<'py, u32>),
    U64(PyReadonlyArray1<'py, u64>),
}

impl<'py> Rows<'py> {
    fn extract(py: Python<'py>, v: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(a) = v.extract::<PyReadonlyArray1<'py, u32>>() {
            if a.is_c_contiguous() {
                return Ok(Rows::U32(a));
            }
        }
        if let Ok(a) = v.extract::<PyReadonlyArray1<'py, u64>>() {
            if a.is_c_contiguous() {
                return Ok(Rows::U64(a));
            }
        }
        let np = py.import("numpy")?;
        let arr = np.call_method1("asarray", (v,))?;
        let ndim: usize = arr.getattr("ndim")?.extract()?;
        if ndim != 1 {
            return Err(bad_arg(
                py,
                "rows",
                format!("expected a 1-D array of row numbers, got {ndim}-D"),
            ));
        }
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        let size: usize = arr.getattr("size")?.extract()?;
        match kind.as_str() {
            "u" | "i" => {}
            _ if size == 0 => {}
            _ => {
                return Err(bad_arg(
                    py,
                    "rows",
                    format!(
                        "expected integer row numbers, got dtype {}",
                        arr.getattr("dtype")?.str()?
                    ),
                ))
            }
        }
        if kind == "i" && size > 0 {
            let min: i64 = arr.call_method0("min")?.extract()?;
            if min < 0 {
                return Err(bad_arg(
                    py,
                    "rows",
                    format!("row numbers must be >= 0, got {min}"),
                ));
            }
        }
        let kw = PyDict::new(py);
        kw.set_item("dtype", np.getattr("uint64")?)?;
        let conv = np.call_method("ascontiguousarray", (arr,), Some(&kw))?;
        Ok(Rows::U64(conv.extract()?))
    }

    fn len(&self) -> usize {
        match self {
            Rows::U32(a) => a.len(),
            Rows::U64(a) => a.len(),
        }
    }
}

fn reasons_dict<'py>(
    py: Python<'py>,
    counts: impl Iterator<Item = (Reason, u64)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (r, n) in counts {
        d.set_item(r.name(), n)?;
    }
    Ok(d)
}

fn reason_of(py: Python<'_>, name: &str) -> PyResult<Reason> {
    Reason::ALL
        .iter()
        .copied()
        .find(|r| r.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
            bad_arg(
                py,
                "reason",
                format!("unknown reason {name:?}; one of {}", names.join(", ")),
            )
        })
}

fn bitmap_array<'py>(py: Python<'py>, b: &roaring::RoaringBitmap) -> Bound<'py, PyArray1<u32>> {
    let v: Vec<u32> = py.detach(|| {
        let mut v = Vec::with_capacity(b.len() as usize);
        v.extend(b.iter());
        v
    });
    PyArray1::from_vec(py, v)
}

#[pymethods]
impl PyManifest {
    /// Decodes and verifies a manifest from its bytes (same as ``from_bytes``).
    #[new]
    fn py_new(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = buffer(py, data)?;
        Self::decode(py, bytes)
    }

    /// Reads and verifies a manifest file (seal, framing, canonical bitmaps).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let (m, bytes) = py
            .detach(|| -> Result<_, optout::Error> {
                let bytes = optout::read_bounded(&path, optout::MAX_MANIFEST_FILE, "a manifest")?;
                let m = Manifest::from_bytes(&bytes)
                    .map_err(|e| optout::Error::Manifest(e.in_file(&path)))?;
                Ok((m, bytes))
            })
            .py(py)?;
        Ok(Self::new(m, bytes))
    }

    /// Decodes and verifies a manifest from bytes (or any buffer).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = buffer(py, data)?;
        Self::decode(py, bytes)
    }

    /// The sealed bytes (deterministic: the same manifest gives the same bytes).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    /// Writes the manifest atomically to ``path``.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.m.save(&path)).py(py)
    }

    /// Pickles as ``Manifest(bytes)``; unpickling re-verifies the seal.
    fn __reduce__<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cls = slf.get_type();
        let bytes = PyBytes::new(py, &slf.get().bytes);
        PyTuple::new(py, [cls.into_any(), PyTuple::new(py, [bytes])?.into_any()])
    }

    /// The header as a dict: tool, purpose, policy, ledger_id, seq, chain_head, at, counts, ...
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.m.header)
    }

    /// Hex digest sealing the manifest (its last 32 bytes).
    #[getter]
    fn digest(&self) -> String {
        self.m.digest_hex()
    }

    /// The purpose the manifest was computed for.
    #[getter]
    fn purpose(&self) -> &str {
        self.m.header.purpose.as_str()
    }

    /// The ledger sequence number N it was computed at.
    #[getter]
    fn seq(&self) -> u64 {
        self.m.header.seq.0
    }

    /// The valid time T it was computed at (RFC 3339).
    #[getter]
    fn at(&self) -> String {
        self.m.header.at.to_rfc3339()
    }

    /// Rows excluded in all shards.
    #[getter]
    fn excluded_count(&self) -> u64 {
        self.m.header.excluded
    }

    /// Rows registered (known to the ledger at N) in all shards.
    #[getter]
    fn registered_count(&self) -> u64 {
        self.m.header.registered
    }

    /// The shards covered, as ``(dataset, shard)`` tuples sorted by name.
    fn shards(&self) -> Vec<(String, String)> {
        self.m
            .shards
            .iter()
            .map(|s| (s.dataset.clone(), s.shard.clone()))
            .collect()
    }

    /// Counts of one shard: ``{"registered", "excluded", "reasons": {name: n}}``.
    #[pyo3(signature = (dataset, shard, *, strict = true))]
    fn shard_counts<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        shard: &str,
        strict: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let s: Option<&ManifestShard> = self
            .find(py, dataset, shard, strict)?
            .map(|i| &self.m.shards[i]);
        d.set_item("registered", s.map_or(0, |s| s.registered))?;
        d.set_item("excluded", s.map_or(0, |s| s.excluded.len()))?;
        d.set_item(
            "reasons",
            reasons_dict(
                py,
                Reason::ALL
                    .iter()
                    .map(|r| (*r, s.map_or(0, |s| s.reasons[*r as usize].len()))),
            )?,
        )?;
        Ok(d)
    }

    /// Excluded rows of a shard as a sorted ``numpy.uint32`` array (the
    /// array owns its buffer; no copy is made after the bitmap is expanded).
    /// With ``reason``, only rows excluded for that reason. A shard the
    /// manifest does not cover raises ``UnknownShardError`` (fail closed: a
    /// naming mismatch must not read as "nothing excluded"); with
    /// ``strict=False`` it has no excluded rows.
    #[pyo3(signature = (dataset, shard, *, reason = None, strict = true))]
    fn excluded<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        shard: &str,
        reason: Option<&str>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let reason = reason.map(|r| reason_of(py, r)).transpose()?;
        let Some(i) = self.find(py, dataset, shard, strict)? else {
            return Ok(PyArray1::from_vec(py, Vec::new()));
        };
        let s = &self.m.shards[i];
        Ok(match reason {
            Some(r) => bitmap_array(py, &s.reasons[r as usize]),
            None => bitmap_array(py, &s.excluded),
        })
    }

    /// For each row of ``rows`` (a 1-D integer numpy array; ``uint32`` and
    /// ``uint64`` are read in place, sorted input is fastest), whether it may
    /// be used: a ``numpy.bool_`` array, ``True`` = keep. Runs without the GIL.
    /// A shard the manifest does not cover raises ``UnknownShardError``,
    /// and a row past the shard's end (a row the ledger did not know at the
    /// manifest's seq) ``RowPastEndError``, unless ``strict=False`` (then
    /// every such row is kept).
    #[pyo3(signature = (dataset, shard, rows, *, strict = true))]
    fn keep_mask<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        shard: &str,
        rows: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        self.mask(py, dataset, shard, rows, strict, true)
    }

    /// For each row of ``rows``, whether it is excluded (the complement of
    /// ``keep_mask``, refusing the same rows).
    #[pyo3(signature = (dataset, shard, rows, *, strict = true))]
    fn contains_many<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        shard: &str,
        rows: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        self.mask(py, dataset, shard, rows, strict, false)
    }

    /// Whether one row is excluded.
    fn contains(&self, dataset: &str, shard: &str, row: u64) -> bool {
        row <= u32::MAX as u64 && self.m.is_excluded(dataset, shard, row as u32)
    }

    /// The reasons (names) that exclude one row; empty if it may be used.
    fn reasons(&self, dataset: &str, shard: &str, row: u64) -> Vec<&'static str> {
        if row > u32::MAX as u64 {
            return Vec::new();
        }
        self.m
            .shard(dataset, shard)
            .map(|s| {
                s.reasons_of(row as u32)
                    .into_iter()
                    .map(|r| r.name())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What changed from this (older) manifest to ``new``: totals,
    /// per-reason ``(added, removed)``, and per changed shard the rows newly
    /// excluded and re-included (``numpy.uint32``).
    fn diff<'py>(&self, py: Python<'py>, new: &PyManifest) -> PyResult<Bound<'py, PyDict>> {
        let d = py.detach(|| ManifestDiff::between(&self.m, &new.m));
        let out = PyDict::new(py);
        out.set_item("newly_excluded", d.newly_excluded())?;
        out.set_item("re_included", d.re_included())?;
        let per = d.per_reason();
        let pr = PyDict::new(py);
        for r in Reason::ALL {
            pr.set_item(r.name(), per[r as usize])?;
        }
        out.set_item("per_reason", pr)?;
        let shards = PyList::empty(py);
        for s in &d.shards {
            let sd = PyDict::new(py);
            sd.set_item("dataset", &s.dataset)?;
            sd.set_item("shard", &s.shard)?;
            sd.set_item("newly_excluded", bitmap_array(py, &s.newly_excluded))?;
            sd.set_item("re_included", bitmap_array(py, &s.re_included))?;
            shards.append(sd)?;
        }
        out.set_item("shards", shards)?;
        Ok(out)
    }

    /// Commits this manifest's exclusions to the Delta table at ``table`` as
    /// deletion vectors (merged with those it has), as one new table version.
    /// A shard is the file whose ``add.path`` (URL-decoded) equals its name.
    /// Returns ``{"version": int | None, "read_version", "files_matched",
    /// "files_changed", "rows_added", "rows_deleted", "dv_file", "retries",
    /// "table", "dataset"}``; ``version`` is None when nothing changed.
    /// Raises ``TableMismatchError`` (nothing written) when the table's files
    /// and the shards differ, ``CommitConflictError`` when another writer
    /// changed the same files first.
    #[pyo3(signature = (table, *, dataset = None, allow_unknown_files = false, inline_max_bytes = 64))]
    fn export_delta<'py>(
        &self,
        py: Python<'py>,
        table: PathBuf,
        dataset: Option<String>,
        allow_unknown_files: bool,
        inline_max_bytes: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = optout::export::delta::DeltaOptions {
            dataset,
            allow_unknown_files,
            inline_max_bytes,
            ..Default::default()
        };
        let s = py
            .detach(|| optout::export::delta::export(&table, &self.m, &opts))
            .map_err(|e| crate::errors::export(py, &e))?;
        to_py(py, &s)
    }

    /// Writes this manifest's exclusions as an Iceberg v3 Puffin file of
    /// ``deletion-vector-v1`` blobs at ``path`` (not committed to any
    /// catalog). ``data_root`` is joined to shard names to give each
    /// ``referenced-data-file``. Returns ``{"path", "dataset", "rows",
    /// "blobs": [{"referenced_data_file", "offset", "length", "cardinality"}]}``.
    #[pyo3(signature = (path, *, dataset = None, data_root = None))]
    fn export_iceberg<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        dataset: Option<String>,
        data_root: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = optout::export::iceberg::IcebergOptions { dataset, data_root };
        let s = py
            .detach(|| optout::export::iceberg::write_puffin(&path, &self.m, &opts))
            .map_err(|e| crate::errors::export(py, &e))?;
        to_py(py, &s)
    }

    /// Which of the records a job used are excluded. ``used``: an iterable
    /// of ``(dataset, shard, row)`` tuples or ``{"dataset", "shard", "row"}``
    /// dicts. Returns hits in input order: ``{"dataset", "shard", "row", "reasons"}``.
    /// A used record of a shard the manifest does not cover raises
    /// ``UnknownShardError`` and one past its shard's end ``RowPastEndError``
    /// (fail closed, like ``optout check``) unless ``strict=False`` (then it
    /// counts as not excluded).
    #[pyo3(signature = (used, *, strict = true))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        used: &Bound<'py, PyAny>,
        strict: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut items: Vec<(String, String, u32)> = Vec::new();
        for (i, it) in used.try_iter()?.enumerate() {
            let it = it?;
            let t: (String, String, u32) = if let Ok(d) = it.cast::<PyDict>() {
                let get = |k: &str| -> PyResult<Bound<'py, PyAny>> {
                    d.get_item(k)?.ok_or_else(|| {
                        crate::errors::input(
                            py,
                            &optout::InputError::new("<used>", i as u64 + 1, Some(k), "missing"),
                        )
                    })
                };
                (
                    get("dataset")?.extract()?,
                    get("shard")?.extract()?,
                    get("row")?.extract()?,
                )
            } else {
                it.extract().map_err(|e| {
                    crate::errors::input(
                        py,
                        &optout::InputError::new(
                            "<used>",
                            i as u64 + 1,
                            None,
                            format!("expected (dataset, shard, row): {e}"),
                        ),
                    )
                })?
            };
            items.push(t);
        }
        let report = py.detach(|| {
            check(
                &self.m,
                items.iter().map(|(d, s, r)| (d.as_str(), s.as_str(), *r)),
            )
        });
        if strict {
            // The first uncovered record in input order: an unknown shard
            // or a row past its shard's end.
            let u = report.unknown_shards.first();
            match (u, report.past_end.first()) {
                (Some(u), p) if p.is_none_or(|p| u.index < p.index) => {
                    return Err(unknown_shard(py, &u.dataset, &u.shard)?)
                }
                (_, Some(p)) => return Err(row_past_end(py, p)),
                _ => {}
            }
        }
        let out = PyList::empty(py);
        for h in report.hits {
            let d = PyDict::new(py);
            d.set_item("dataset", h.dataset)?;
            d.set_item("shard", h.shard)?;
            d.set_item("row", h.row)?;
            d.set_item(
                "reasons",
                h.reasons.iter().map(|r| r.name()).collect::<Vec<_>>(),
            )?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Number of shards covered.
    fn __len__(&self) -> usize {
        self.m.shards.len()
    }

    /// Same digest, same manifest.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyManifest>()
            .is_ok_and(|o| o.get().bytes == self.bytes)
    }

    fn __hash__(&self) -> u64 {
        let d = &self.bytes[self.bytes.len().saturating_sub(8)..];
        let mut a = [0u8; 8];
        a[..d.len()].copy_from_slice(d);
        u64::from_le_bytes(a) >> 1
    }

    fn __repr__(&self) -> String {
        let h = &self.m.header;
        format!(
            "Manifest(purpose={:?}, seq={}, at={:?}, shards={}, excluded={}/{}, digest={}…)",
            h.purpose.as_str(),
            h.seq,
            h.at.to_rfc3339(),
            self.m.shards.len(),
            h.excluded,
            h.registered,
            &self.digest()[..16]
        )
    }
}

/// `UnknownShardError`: the manifest does not cover `dataset/shard`.
fn unknown_shard(py: Python<'_>, dataset: &str, shard: &str) -> PyResult<PyErr> {
    Ok(raise(
        py,
        "UnknownShardError",
        format!("the manifest does not cover shard {dataset}/{shard}"),
        &[
            ("dataset", dataset.into_pyobject(py)?.into_any().unbind()),
            ("shard", shard.into_pyobject(py)?.into_any().unbind()),
        ],
    ))
}

/// `RowPastEndError`: a row past its shard's end in the manifest.
fn row_past_end(py: Python<'_>, e: &optout::manifest::RowPastEnd) -> PyErr {
    let obj = |v: Bound<'_, PyAny>| v.unbind();
    let attrs = (|| -> PyResult<Vec<(&str, Py<PyAny>)>> {
        Ok(vec![
            (
                "dataset",
                obj(e.dataset.as_str().into_pyobject(py)?.into_any()),
            ),
            ("shard", obj(e.shard.as_str().into_pyobject(py)?.into_any())),
            ("row", obj(e.row.into_pyobject(py)?.into_any())),
            ("row_end", obj(e.row_end.into_pyobject(py)?.into_any())),
            ("index", obj(e.index.into_pyobject(py)?.into_any())),
        ])
    })();
    match attrs {
        Ok(a) => raise(py, "RowPastEndError", e.to_string(), &a),
        Err(err) => err,
    }
}

/// The bytes of a `bytes`, `bytearray`, `memoryview` or other buffer.
fn buffer(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let view = py
        .import("builtins")?
        .getattr("memoryview")?
        .call1((data,))
        .map_err(|_| {
            bad_arg(
                py,
                "data",
                "expected bytes or an object with the buffer protocol",
            )
        })?;
    let b = view.call_method0("tobytes")?;
    Ok(b.cast::<PyBytes>()?.as_bytes().to_vec())
}
