//! `optout.Ledger`: a ledger directory, open.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use optout::lineage::affected;
use optout::report::subject_report;
use optout::VerifyReport;
use optout::tlog::{SignerKey, TlogError};
use optout::{default_key_path, Ledger, Seq, SubjectKeyer};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert::{policy, timestamp, to_py};
use crate::errors::{invalid, raise, IntoPyResult};
use crate::input;
use crate::manifest::PyManifest;
use crate::table;

/// A ledger of records and privacy events, open for writing (holding its
/// lock) or read-only.
///
/// ``Ledger.create(path)`` makes a new one (and its subject key file,
/// ``PATH.key``, mode 0600, unless ``key_file`` names an existing key);
/// ``Ledger.open(path)`` opens one. Writes are all or nothing per call and
/// durable when the call returns. Heavy calls release the GIL. Use it as a
/// context manager, or call ``close()``, to release the writer lock.
#[pyclass(module = "optout", name = "Ledger")]
pub struct PyLedger {
    inner: Mutex<Option<Ledger>>,
    keyer: Option<SubjectKeyer>,
    path: PathBuf,
    read_only: bool,
}

fn closed(py: Python<'_>) -> PyErr {
    raise(py, "ReadOnlyError", "the ledger is closed".into(), &[])
}

impl PyLedger {
    /// Runs `f` on the open ledger without the GIL (the mutex is taken and
    /// released while detached, so no lock-order inversion with the GIL).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Ledger) -> Result<T, optout::Error> + Send,
    ) -> PyResult<T> {
        let r = py.detach(|| -> Option<Result<T, optout::Error>> {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.as_mut().map(f)
        });
        match r {
            None => Err(closed(py)),
            Some(r) => r.py(py),
        }
    }

    fn keyer(&self, py: Python<'_>) -> PyResult<&SubjectKeyer> {
        self.keyer.as_ref().ok_or_else(|| {
            invalid(
                py,
                format!(
                    "this needs the subject key: pass key_file= (default {})",
                    default_key_path(&self.path).display()
                ),
            )
        })
    }
}

/// The summary of an ingest as a dict.
fn summary<'py>(py: Python<'py>, s: &optout::IngestSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("registered", s.registered)?;
    d.set_item("unchanged", s.unchanged)?;
    d.set_item("links", s.links)?;
    d.set_item("seq", s.seq.0)?;
    d.set_item("gone", s.gone)?;
    Ok(d)
}

fn apply_summary<'py>(py: Python<'py>, s: &optout::ApplySummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("applied", s.applied)?;
    d.set_item("unchanged", s.unchanged)?;
    d.set_item("declared", s.declared.clone())?;
    d.set_item("no_records", s.no_records.clone())?;
    d.set_item("unmatched", s.unmatched.clone())?;
    d.set_item("seq", s.seq.0)?;
    Ok(d)
}

/// `apply`'s answer: the head seq, or with ``summary=True`` the summary.
fn apply_answer<'py>(
    py: Python<'py>,
    s: &optout::ApplySummary,
    summary: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if summary {
        Ok(apply_summary(py, s)?.into_any())
    } else {
        Ok(s.seq.0.into_pyobject(py)?.into_any())
    }
}

fn findings<'py>(
    py: Python<'py>,
    list: &[optout::Finding],
) -> PyResult<Bound<'py, PyList>> {
    let fs = PyList::empty(py);
    for f in list {
        let x = PyDict::new(py);
        x.set_item("kind", f.kind.name())?;
        x.set_item("file", f.file.display().to_string())?;
        x.set_item("offset", f.offset)?;
        x.set_item("seq", f.seq.map(|s| s.0))?;
        x.set_item("what", &f.what)?;
        x.set_item("message", f.to_string())?;
        fs.append(x)?;
    }
    Ok(fs)
}

fn verify_dict<'py>(py: Python<'py>, v: &optout::LedgerVerify) -> PyResult<Bound<'py, PyDict>> {
    let r: &VerifyReport = &v.storage;
    let d = PyDict::new(py);
    d.set_item("clean", v.is_clean())?;
    match &r.head {
        Some((seq, chain)) => {
            d.set_item("head_seq", seq.0)?;
            d.set_item("head_chain", chain.to_hex())?;
        }
        None => {
            d.set_item("head_seq", py.None())?;
            d.set_item("head_chain", py.None())?;
        }
    }
    d.set_item("segments", r.segments)?;
    d.set_item("snapshots_ok", r.snapshots_ok)?;
    d.set_item("findings", findings(py, &r.findings)?)?;
    d.set_item("notes", findings(py, &r.notes)?)?;
    d.set_item("entries", v.entries)?;
    d.set_item("snapshot_checked", v.snapshot_checked.map(|s| s.0))?;
    d.set_item("problems", v.problems.clone())?;
    Ok(d)
}

/// Verifies the ledger at `path` (no lock taken, nothing modified): every
/// frame and chain link, every entry replayed, the newest snapshot compared
/// with the replay (and authenticated when the subject key is given).
pub fn verify_path<'py>(
    py: Python<'py>,
    path: &Path,
    keyer: Option<&SubjectKeyer>,
) -> PyResult<Bound<'py, PyDict>> {
    let r = py
        .detach(|| optout::verify_ledger_keyed(path, keyer, None))
        .py(py)?;
    verify_dict(py, &r)
}

fn load_key(path: &Path) -> Result<SubjectKeyer, optout::Error> {
    SubjectKeyer::load_key_file(path)
}

/// Loads a checkpoint signing key (default `LEDGER.signing.key`); a ledger
/// created before signed checkpoints has none, and the error says how to
/// make one.
fn signing_key(py: Python<'_>, ledger: &Path, path: Option<PathBuf>) -> PyResult<SignerKey> {
    let p = path.unwrap_or_else(|| optout::default_signing_key_path(ledger));
    if !p.exists() {
        return Err(invalid(
            py,
            format!(
                "{}: no checkpoint signing key (a ledger created before signed checkpoints has \
                 none): create one with `optout keygen LEDGER`, or pass signing_key=",
                p.display()
            ),
        ));
    }
    SignerKey::load_file(&p)
        .map_err(|e| optout::Error::from(TlogError::from(e)))
        .py(py)
}

#[pymethods]
impl PyLedger {
    /// Creates a ledger directory at ``path``. The subject key is read from
    /// ``key_file`` if given, else from ``PATH.key`` if it exists, else a new
    /// one is created there (mode 0600). Keep the key apart from the ledger.
    /// The checkpoint signing key, as ``optout init`` does: ``signing_key``
    /// if given (an existing key file; ``PATH.signing.pub`` is written if
    /// missing), else a new pair is created (``PATH.signing.key``, mode
    /// 0600, and ``PATH.signing.pub``). An existing ``PATH.signing.key``
    /// that was not named raises ``InvalidRequestError`` (it may be
    /// another ledger's key; pass ``signing_key=`` to use it). Nothing is
    /// left behind on failure.
    #[staticmethod]
    #[pyo3(signature = (path, key_file = None, *, signing_key = None))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        key_file: Option<PathBuf>,
        signing_key: Option<PathBuf>,
    ) -> PyResult<Self> {
        let p = path.clone();
        let (ledger, keyer) = py
            .detach(move || -> Result<_, optout::Error> {
                let (keyer, created) = match key_file {
                    Some(k) => (load_key(&k)?, None),
                    None => {
                        let k = default_key_path(&p);
                        if k.exists() {
                            (load_key(&k)?, None)
                        } else {
                            (SubjectKeyer::create_key_file(&k)?, Some(k))
                        }
                    }
                };
                let remove_key = || {
                    if let Some(k) = &created {
                        let _ = std::fs::remove_file(k);
                    }
                };
                // The library's rule, shared with `optout init`.
                let id = optout::new_ledger_id().inspect_err(|_| remove_key())?;
                let sig = optout::init_signing_key(&p, signing_key.as_deref(), &id)
                    .inspect_err(|_| remove_key())?;
                let opts = optout::LedgerOptions {
                    ledger_id: Some(id),
                    ..Default::default()
                };
                let l = Ledger::create_opts(&p, keyer.clone(), opts)
                    .inspect_err(|_| {
                        remove_key();
                        sig.undo();
                    })?;
                Ok((l, keyer))
            })
            .py(py)?;
        Ok(PyLedger {
            inner: Mutex::new(Some(ledger)),
            keyer: Some(keyer),
            path,
            read_only: false,
        })
    }

    /// Opens an existing ledger. The subject key (needed to ingest, apply,
    /// or look subjects up) is read from ``key_file``, else from ``PATH.key``
    /// if it exists. ``read_only=True`` takes no lock and never writes.
    /// Raises ``LockedError`` (naming the holder's PID and since when) if
    /// another writer holds the ledger, after waiting up to ``wait``
    /// seconds for it to finish (default: not at all).
    #[staticmethod]
    #[pyo3(signature = (path, key_file = None, *, read_only = false, wait = None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        key_file: Option<PathBuf>,
        read_only: bool,
        wait: Option<f64>,
    ) -> PyResult<Self> {
        let wait = wait
            .map(std::time::Duration::try_from_secs_f64)
            .transpose()
            .map_err(|_| invalid(py, "wait: expected a number of seconds, at least 0"))?;
        let p = path.clone();
        let (ledger, keyer) = py
            .detach(move || -> Result<_, optout::Error> {
                let keyer = match key_file {
                    Some(k) => Some(load_key(&k)?),
                    None => {
                        let k = default_key_path(&p);
                        if k.exists() {
                            Some(load_key(&k)?)
                        } else {
                            None
                        }
                    }
                };
                let l = if read_only {
                    Ledger::open_read_only(&p, keyer.clone())?
                } else {
                    let opts = optout::LedgerOptions {
                        wait,
                        ..Default::default()
                    };
                    Ledger::open_opts(&p, keyer.clone(), opts)?
                };
                Ok((l, keyer))
            })
            .py(py)?;
        Ok(PyLedger {
            inner: Mutex::new(Some(ledger)),
            keyer,
            path,
            read_only,
        })
    }

    /// Closes the ledger, releasing the writer lock. Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.take();
        });
    }

    /// Context manager: returns the ledger itself.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Context manager: closes the ledger (exceptions propagate).
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// Whether ``close()`` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            self.inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
        })
    }

    /// The ledger directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Whether it was opened read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    /// The head sequence number (the last entry written).
    #[getter]
    fn seq(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |l| Ok(l.head().0 .0))
    }

    /// ``(seq, chain_hash_hex)`` of the last entry: pin it to detect rewrites.
    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<(u64, String)> {
        self.with(py, |l| {
            let (s, c) = l.head();
            Ok((s.0, c.to_hex()))
        })
    }

    /// The ledger's id (hex).
    #[getter]
    fn ledger_id(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |l| Ok(l.ledger_id().to_string()))
    }

    /// The ledger's pseudonym (hex) of an external subject id (needs the key).
    fn pseudonym(&self, py: Python<'_>, subject: &str) -> PyResult<String> {
        Ok(self.keyer(py)?.pseudonym(subject).to_hex())
    }

    /// Registers records, all or nothing. Each source is a JSONL file path
    /// (``str`` or ``PathLike``), JSONL ``bytes``, a record ``dict``, or an
    /// iterable of dicts. A bad line raises ``InputError`` naming the file,
    /// line and field, and nothing is written. Rows already registered
    /// identically are skipped. A JSONL line ``{"dataset", "shard", "end"}``
    /// makes the shard's rows at or past ``end`` gone. Returns
    /// ``{"registered", "unchanged", "links", "seq", "gone"}``.
    #[pyo3(signature = (*sources))]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        sources: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let keyer = self.keyer(py)?.clone();
        let srcs = input::collect(py, sources)?;
        let s = self.with(py, move |l| {
            let (batch, ends) = input::records(&srcs, &keyer)?;
            l.ingest_ending(batch, ends)
        })?;
        summary(py, &s)
    }

    /// Registers rows of the derived ``dataset`` (packed, tokenised shards)
    /// with their parents, all or nothing. ``sources``: the datasets parents
    /// may come from. ``lineage``: a JSONL path, JSONL ``bytes``, one
    /// lineage ``dict`` or an iterable of them, each
    /// ``{"shard", "row", "parents": [{"dataset", "shard", "row"} | {"key"} |
    /// {"content_hash"}]}``. A missing parent (unless
    /// ``allow_missing_parents``), a cycle or a row derived twice from
    /// different parents raises ``InputError`` naming the file, line and
    /// field; nothing is written. Returns ``{"registered", "unchanged",
    /// "links", "seq"}``.
    #[pyo3(signature = (dataset, sources, lineage, *, allow_missing_parents = false))]
    fn derive<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        sources: Vec<String>,
        lineage: &Bound<'py, PyAny>,
        allow_missing_parents: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let srcs = input::collect(py, &PyTuple::new(py, [lineage])?)?;
        let dataset = dataset.to_string();
        let s = self.with(py, move |l| {
            let mut b = input::lineage(&srcs, &dataset, &sources, allow_missing_parents)?;
            match l.derive(b.take()) {
                Err(optout::Error::Derive(e)) => Err(b.located(e)),
                r => r,
            }
        })?;
        let d = PyDict::new(py);
        d.set_item("registered", s.registered)?;
        d.set_item("unchanged", s.unchanged)?;
        d.set_item("links", s.links)?;
        d.set_item("seq", s.seq.0)?;
        Ok(d)
    }

    /// Registers rows of a derived dataset from lineage as Parquet columns,
    /// one row per link: ``shard``, ``row`` and the parent as
    /// ``parent_dataset``, ``parent_shard``, ``parent_row``, or
    /// ``parent_key``, or ``parent_content_hash`` (exactly one form a row).
    /// The links of one derived row are its parents; the same rules as
    /// ``derive``. ``paths``: one path or a list. A bad cell or a refused
    /// link raises ``InputError`` naming the file, ``row`` (the Parquet
    /// row), ``column`` and ``field``; nothing is written. Returns
    /// ``{"registered", "unchanged", "links", "seq"}``.
    #[pyo3(signature = (dataset, sources, paths, *, allow_missing_parents = false))]
    fn derive_parquet<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        sources: Vec<String>,
        paths: &Bound<'py, PyAny>,
        allow_missing_parents: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let files = table::paths(py, paths)?;
        let mut t = py
            .detach(|| {
                optout::table::parquet_lineage(&files, dataset, &sources, allow_missing_parents)
            })
            .map_err(|e| table::error(py, &e))?;
        let derivation = t.take();
        let r = self.with(py, move |l| match l.derive(derivation) {
            Err(optout::Error::Derive(e)) => Ok(Err(e)),
            r => r.map(Ok),
        })?;
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                return Err(match t.located(e) {
                    Ok(located) => table::error(py, &located),
                    Err(e) => crate::errors::lib(py, &optout::Error::Derive(e)),
                })
            }
        };
        let d = PyDict::new(py);
        d.set_item("registered", s.registered)?;
        d.set_item("unchanged", s.unchanged)?;
        d.set_item("links", s.links)?;
        d.set_item("seq", s.seq.0)?;
        Ok(d)
    }

    /// Registers the rows of Parquet files by a record ``mapping`` (a dict,
    /// JSON text or a path; docs/TABLES.md), all or nothing. ``paths``: one
    /// path or a list. The shard of a file is its path relative to ``root``
    /// (default: its name), ``/``-separated; the row is its position in the
    /// file. A bad value raises ``InputError`` naming the file, ``row``,
    /// ``column`` and ``field``; nothing is written. A re-run is a no-op; a
    /// file whose rows changed needs ``replace=True``. Returns the
    /// ``ingest`` summary.
    #[pyo3(signature = (paths, mapping, root = None, *, replace = false))]
    fn ingest_parquet<'py>(
        &self,
        py: Python<'py>,
        paths: &Bound<'py, PyAny>,
        mapping: &Bound<'py, PyAny>,
        root: Option<PathBuf>,
        replace: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = table::record_mapping(py, mapping)?;
        let files = table::paths(py, paths)?;
        let opts = optout::table::FileOptions {
            root,
            replace,
            ..Default::default()
        };
        // Footers first: files the log's fingerprints recognise are not read.
        let r = self.with(py, move |l| match l.ingest_parquet(&files, &m, &opts) {
            Ok(r) => Ok(Ok(r.summary)),
            Err(optout::FilesError::Table(e)) => Ok(Err(e)),
            Err(optout::FilesError::Ledger(e)) => Err(e),
        })?;
        let s = r.map_err(|e| table::error(py, &e))?;
        summary(py, &s)
    }

    /// Registers Arrow ``data`` (anything with ``__arrow_c_stream__``: a
    /// pyarrow Table or RecordBatchReader, a Polars DataFrame) as shard
    /// ``shard`` by a record ``mapping``; a row's position in the stream is
    /// its row. All or nothing; returns the ``ingest`` summary. A stream has
    /// no fingerprint (a re-run compares row by row); with ``replace``, a
    /// stream shorter than the shard makes its rows past the end gone.
    #[pyo3(signature = (data, mapping, shard, *, replace = false))]
    fn ingest_arrow<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        mapping: &Bound<'py, PyAny>,
        shard: &str,
        replace: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let keyer = self.keyer(py)?.clone();
        let m = table::record_mapping(py, mapping)?;
        let reader = table::arrow_reader(py, data)?;
        let recs = optout::table::arrow_shard(reader, shard, &m, &keyer, "<arrow>", replace)
            .map_err(|e| table::error(py, &e))?;
        let s = self.with(py, move |l| l.ingest_arrow(recs, replace))?;
        summary(py, &s)
    }

    /// Records the events of a DSR tool's export by an event ``mapping``
    /// (a dict, JSON text or a path; docs/TABLES.md), all or nothing.
    /// ``data``: Arrow data (``__arrow_c_stream__``), or a path or list of
    /// ``.csv`` or ``.parquet`` files. A bad value raises ``InputError``
    /// naming the file, ``line`` (CSV) or ``row``, ``column`` and
    /// ``field``. Returns the head seq after them.
    #[pyo3(signature = (data, mapping, *, new_purpose = false, strict = false, summary = false))]
    fn apply_table<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        mapping: &Bound<'py, PyAny>,
        new_purpose: bool,
        strict: bool,
        summary: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keyer = self.keyer(py)?.clone();
        let m = table::event_mapping(py, mapping)?;
        let events = if table::is_arrow(data)? {
            let reader = table::arrow_reader(py, data)?;
            optout::table::arrow_events(reader, &m, &keyer, "<arrow>")
                .map_err(|e| table::error(py, &e))?
                .events
        } else {
            let files = table::paths(py, data)?;
            table::events_of_files(py, &files, &m, &keyer)?
        };
        let opts = optout::ApplyOptions {
            new_purpose,
            strict,
        };
        let s = self.with(py, move |l| l.apply_with(events, opts))?;
        apply_answer(py, &s, summary)
    }

    /// Records events (objections, consents, erasures, takedowns, ...), all
    /// or nothing; sources as for ``ingest``. Every purpose named must be
    /// declared (``add_purpose``) unless ``new_purpose=True`` declares it; an
    /// event identical to a recorded one is skipped (``unchanged``);
    /// ``strict=True`` refuses a batch with an event whose subject has no
    /// records or whose scope matches none. Returns the head seq after
    /// them, or with ``summary=True`` ``{"applied", "unchanged", "declared",
    /// "no_records", "unmatched", "seq"}`` (positions in the batch).
    ///
    /// With ``receipts=True`` returns ``(answer, receipts)``: one receipt
    /// (JSON text) per entry recorded, in a checkpoint signed at the new head
    /// with ``signing_key`` (default ``PATH.signing.key``), for a DSR portal
    /// to hand to the person; ``optout.verify_receipt`` checks one offline.
    #[pyo3(signature = (*sources, new_purpose = false, strict = false, summary = false, receipts = false, signing_key = None))]
    #[allow(clippy::too_many_arguments)]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        sources: &Bound<'py, PyTuple>,
        new_purpose: bool,
        strict: bool,
        summary: bool,
        receipts: bool,
        signing_key: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keyer = self.keyer(py)?.clone();
        let sk = match receipts {
            true => Some(self::signing_key(py, &self.path, signing_key)?),
            false => None,
        };
        let srcs = input::collect(py, sources)?;
        let opts = optout::ApplyOptions {
            new_purpose,
            strict,
        };
        let (s, made) = self.with(py, move |l| {
            let events = input::events(&srcs, &keyer)?;
            let before = l.head().0;
            let s = l.apply_with(events, opts)?;
            let Some(sk) = sk else {
                return Ok((s, None));
            };
            let (_, rs) = l.receipts_after(before, &sk)?;
            Ok((s, Some(rs.iter().map(|r| r.to_json()).collect::<Vec<_>>())))
        })?;
        let answer = apply_answer(py, &s, summary)?;
        match made {
            None => Ok(answer),
            Some(rs) => Ok((answer, rs).into_pyobject(py)?.into_any()),
        }
    }

    /// Signs a checkpoint of the log at its head (C2SP signed note: origin,
    /// size = head seq, Merkle root) with ``signing_key`` (default
    /// ``PATH.signing.key``); returns the note's text, to publish.
    #[pyo3(signature = (signing_key = None))]
    fn checkpoint(&self, py: Python<'_>, signing_key: Option<PathBuf>) -> PyResult<String> {
        let sk = self::signing_key(py, &self.path, signing_key)?;
        self.with(py, move |l| Ok(l.checkpoint(&sk)?.note))
    }

    /// The receipt (JSON text) of the entry at ``seq``, in a checkpoint
    /// signed at the head with ``signing_key`` (default ``PATH.signing.key``).
    #[pyo3(signature = (seq, signing_key = None))]
    fn receipt(&self, py: Python<'_>, seq: u64, signing_key: Option<PathBuf>) -> PyResult<String> {
        let sk = self::signing_key(py, &self.path, signing_key)?;
        self.with(py, move |l| {
            let c = l.checkpoint(&sk)?;
            Ok(l.receipt(Seq(seq), &c)?.to_json())
        })
    }

    /// The declared purposes, and purposes named by recorded events but
    /// never declared: ``[{"name", "description", "declared",
    /// "declared_at_seq", "implicit", "events"}]``.
    fn purposes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = self.with(py, |l| Ok(l.purposes()))?;
        let out = PyList::empty(py);
        for p in list {
            let d = PyDict::new(py);
            d.set_item("name", &p.name)?;
            d.set_item("description", &p.description)?;
            d.set_item("declared", p.is_declared())?;
            d.set_item("declared_at_seq", p.declared_at.map(|s| s.0))?;
            d.set_item("implicit", p.implicit)?;
            d.set_item("events", p.events)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Declares a purpose. Returns the seq of the declaration, or ``None``
    /// when it was declared already.
    #[pyo3(signature = (name, description = None))]
    fn add_purpose(
        &self,
        py: Python<'_>,
        name: String,
        description: Option<String>,
    ) -> PyResult<Option<u64>> {
        let s = self.with(py, move |l| l.add_purpose(&name, description.as_deref()))?;
        Ok(s.map(|s| s.0))
    }

    /// Declares ``name`` an extension legal basis (``optout vocab add LEDGER
    /// basis NAME``), which records may then name. Returns the seq of the
    /// declaration, or ``None`` when it was declared already.
    fn add_basis(&self, py: Python<'_>, name: String) -> PyResult<Option<u64>> {
        let s = self.with(py, move |l| l.add_basis(&name))?;
        Ok(s.map(|s| s.0))
    }

    /// Computes the exclusion manifest for ``purpose`` at valid time ``at``
    /// (RFC 3339 string or aware datetime; default now) and ledger seq
    /// ``at_seq`` (default the head), over ``datasets`` (default all), with
    /// ``policy`` (dict, JSON text or path; default the purpose's default).
    /// The same arguments give byte-identical manifests later.
    /// ``record_checkpoint=True`` records the transparency log's tree head at
    /// the manifest's seq (catching the tree up first; a writable ledger),
    /// as `optout manifest --record-checkpoint` does.
    #[pyo3(signature = (purpose, at = None, at_seq = None, *, datasets = None, policy = None, record_checkpoint = false))]
    #[allow(clippy::too_many_arguments)]
    fn manifest(
        &self,
        py: Python<'_>,
        purpose: &str,
        at: Option<&Bound<'_, PyAny>>,
        at_seq: Option<u64>,
        datasets: Option<Vec<String>>,
        policy: Option<&Bound<'_, PyAny>>,
        record_checkpoint: bool,
    ) -> PyResult<PyManifest> {
        let at = timestamp(py, at, "at")?;
        let policy = policy.map(|p| self::policy(py, p)).transpose()?;
        let purpose = purpose.to_string();
        let (m, bytes) = self.with(py, move |l| {
            let mut q = l.query(policy, &purpose, at)?;
            if let Some(s) = at_seq {
                q.seq = Seq(s);
            }
            if let Some(d) = datasets {
                q.datasets = d;
            }
            let m = if record_checkpoint {
                l.manifest_at_checkpoint(&q)?
            } else {
                l.manifest(&q)?
            };
            let bytes = m.to_bytes();
            Ok((m, bytes))
        })?;
        Ok(PyManifest::new(m, bytes))
    }

    /// Checks that ``manifest`` comes from this ledger's history (same
    /// ledger id, same chain at its seq); raises ``InvalidRequestError`` if
    /// the ledger was forked, rewritten or rolled back.
    fn verify_manifest(&self, py: Python<'_>, manifest: &PyManifest) -> PyResult<()> {
        self.with(py, |l| l.verify_manifest(&manifest.m))
    }

    /// Registers a training run of ``model`` on ``manifest`` (which must come
    /// from this ledger). ``started_at`` defaults to now. Returns its seq.
    #[pyo3(signature = (name, model, manifest, started_at = None))]
    fn add_run(
        &self,
        py: Python<'_>,
        name: &str,
        model: &str,
        manifest: &PyManifest,
        started_at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let at = timestamp(py, started_at, "started_at")?;
        self.with(py, |l| Ok(l.register_run(name, model, &manifest.m, at)?.0))
    }

    /// The training runs registered, in order: dicts with ``seq``, ``name``,
    /// ``model``, ``started_at``, ``purpose``, ``manifest_digest``,
    /// ``manifest_seq``, ``manifest_at``, ``datasets``.
    fn runs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let runs = self.with(py, |l| {
            Ok(l.index()
                .runs()
                .iter()
                .map(|(seq, r)| {
                    serde_json::json!({
                        "seq": seq.0,
                        "name": r.name,
                        "model": r.model,
                        "started_at": r.started_at.to_rfc3339(),
                        "purpose": r.purpose.to_string(),
                        "manifest_digest": r.manifest_digest,
                        "manifest_seq": r.manifest_seq.0,
                        "manifest_at": r.manifest_at.to_rfc3339(),
                        "datasets": r.datasets,
                    })
                })
                .collect::<Vec<_>>())
        })?;
        to_py(py, &runs)
    }

    /// The runs that trained on ``subject``'s records, each with the records
    /// used and their status (``violation``, ``after`` or ``used``), judged at
    /// the head and valid time ``at`` (default now). Needs the key.
    #[pyo3(signature = (subject, at = None))]
    fn affected<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        at: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let at = timestamp(py, at, "at")?;
        let key = self.keyer(py)?.pseudonym(subject);
        let out = self.with(py, |l| {
            let ix = l.index();
            let runs = affected(ix, &key, ix.seq(), at);
            // RunImpact serialises its worst status as `status`.
            Ok(runs)
        })?;
        to_py(py, &out)
    }

    /// The GDPR Art. 15/20 report of ``subject`` (records, provenance,
    /// events, runs, status per purpose) as a dict. Needs the key. With
    /// ``receipts=True`` (like ``optout report --receipts``), also
    /// ``"receipts"``: the receipts of the subject's events (JSON strings,
    /// as ``apply(..., receipts=True)`` returns them; check each with
    /// ``optout.verify_receipt``) in a checkpoint signed at the head with
    /// ``signing_key`` (default ``PATH.signing.key``).
    #[pyo3(signature = (subject, at = None, *, receipts = false, signing_key = None))]
    fn report<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        at: Option<&Bound<'py, PyAny>>,
        receipts: bool,
        signing_key: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let at = timestamp(py, at, "at")?;
        self.keyer(py)?;
        let sk = match receipts {
            true => Some(self::signing_key(py, &self.path, signing_key)?),
            false => None,
        };
        let (r, rs) = self.with(py, |l| {
            let r = subject_report(l, subject, at)?;
            let rs = match &sk {
                Some(k) => Some(l.subject_receipts_at_head(&r.event_seqs(), k)?.1),
                None => None,
            };
            Ok((r, rs))
        })?;
        let mut v = serde_json::to_value(&r)
            .map_err(|e| optout::Error::Other(e.to_string()))
            .py(py)?;
        if let Some(rs) = rs {
            v["receipts"] = rs.iter().map(|r| r.to_json()).collect();
        }
        to_py(py, &v)
    }

    /// Verifies the ledger on disk: every frame, the whole chain, every
    /// entry replayed, the newest snapshot compared with the replay (and
    /// authenticated with the subject key). Returns ``{"clean", "head_seq",
    /// "head_chain", "segments", "snapshots_ok", "entries",
    /// "snapshot_checked", "problems", "findings": [{"kind", "file",
    /// "offset", "seq", "what", "message"}], "notes": [...]}``.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        verify_path(py, &self.path, self.keyer.as_ref())
    }

    /// Writes a snapshot of the index at the head; returns its path.
    fn snapshot(&self, py: Python<'_>) -> PyResult<PathBuf> {
        self.with(py, |l| l.snapshot())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.head(py) {
            Ok((s, _)) => format!(
                "Ledger({:?}, seq={s}{})",
                self.path.display().to_string(),
                if self.read_only {
                    ", read_only=True"
                } else {
                    ""
                }
            ),
            Err(_) => format!("Ledger({:?}, closed)", self.path.display().to_string()),
        }
    }
}
