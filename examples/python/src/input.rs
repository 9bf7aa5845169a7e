//! Inputs to `ingest` / `apply`: JSONL files, JSONL bytes, or Python dicts
//! (serialised with `json.dumps` and parsed by the library's own line
//! parsers, so errors name the same fields as the CLI's).

use std::path::PathBuf;

use optout::ingest::lines::{self, ParallelRecords};
use optout::jsonl::{self, BatchBuilder, MAX_LINE};
use optout::{Event, InputError, SubjectKeyer};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};

/// One input, collected while attached so it can be parsed detached.
pub enum Source {
    /// A JSONL file.
    File(PathBuf),
    /// JSONL content in memory.
    Text { name: String, bytes: Vec<u8> },
    /// One JSON object per item (item `i` is line `i + 1`).
    Lines { name: String, lines: Vec<String> },
}

fn dumps(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_str()?.to_string());
    }
    let json = py.import("json")?;
    let kw = PyDict::new(py);
    kw.set_item("separators", (",", ":"))?;
    kw.set_item("default", py.import("builtins")?.getattr("str")?)?;
    json.call_method("dumps", (v,), Some(&kw))?.extract()
}

/// Where the Python code that called the binding is (`train.py:12`): the
/// place to name for an in-memory source (`<records>:1` is not a place).
fn caller(py: Python<'_>) -> String {
    let at = || -> PyResult<String> {
        let f = py.import("sys")?.call_method1("_getframe", (0,))?;
        let file: String = f.getattr("f_code")?.getattr("co_filename")?.extract()?;
        let line: u64 = f.getattr("f_lineno")?.extract()?;
        Ok(format!("{file}:{line}"))
    };
    at().unwrap_or_else(|_| "<python>".into())
}

/// Collects the sources of an `ingest(*sources)` / `apply(*sources)` call.
/// In-memory sources are named after the caller's line and the argument:
/// `train.py:12: argument 1` (a dict), `... argument 1 item` (an iterable
/// of dicts: the error's line is the item, from 1), `... argument 1 line`
/// (JSONL bytes).
pub fn collect(py: Python<'_>, sources: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<Vec<Source>> {
    let os = py.import("os")?;
    let here = caller(py);
    let mut out = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let name = |what: &str| format!("{here}: argument {}{what}", i + 1);
        if src.is_instance_of::<PyString>() || src.hasattr("__fspath__")? {
            let p: PathBuf = os.call_method1("fspath", (&src,))?.extract()?;
            out.push(Source::File(p));
        } else if let Ok(b) = src.cast::<PyBytes>() {
            out.push(Source::Text {
                name: name(" line"),
                bytes: b.as_bytes().to_vec(),
            });
        } else if let Ok(b) = src.cast::<PyByteArray>() {
            out.push(Source::Text {
                name: name(" line"),
                bytes: b.to_vec(),
            });
        } else if src.is_instance_of::<PyDict>() {
            out.push(Source::Lines {
                name: name(""),
                lines: vec![dumps(py, &src)?],
            });
        } else if let Ok(it) = src.try_iter() {
            let mut lines = Vec::new();
            for item in it {
                lines.push(dumps(py, &item?)?);
            }
            out.push(Source::Lines {
                name: name(" item"),
                lines,
            });
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "source {i}: expected a path, JSONL bytes, a dict or an iterable of dicts, got {}",
                src.get_type().name()?
            )));
        }
    }
    Ok(out)
}

/// Calls `f(name, line_no, line)` for every non-blank line of the event
/// sources, through the library's line reader (the CLI's).
fn each_line(
    sources: &[Source],
    mut f: impl FnMut(&str, u64, &str) -> Result<(), InputError>,
) -> Result<(), optout::Error> {
    for s in sources {
        match s {
            Source::File(p) => {
                let name = p.display().to_string();
                let file = open(p)?;
                lines::for_lines(std::io::BufReader::new(file), &name, |n, t| f(&name, n, t))?;
            }
            Source::Text { name, bytes } => {
                lines::for_lines(bytes.as_slice(), name, |n, t| f(name, n, t))?
            }
            Source::Lines { name, lines } => each_item(name, lines, &mut f)?,
        }
    }
    Ok(())
}

/// Items of an iterable of dicts, each one line (item `i` is line `i + 1`).
fn each_item(
    name: &str,
    lines: &[String],
    f: &mut impl FnMut(&str, u64, &str) -> Result<(), InputError>,
) -> Result<(), InputError> {
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.len() > MAX_LINE {
            return Err(InputError::new(
                name,
                i as u64 + 1,
                None,
                format!("line longer than {MAX_LINE} bytes"),
            ));
        }
        if !t.is_empty() {
            f(name, i as u64 + 1, t)?;
        }
    }
    Ok(())
}

fn open(p: &std::path::Path) -> Result<std::fs::File, optout::Error> {
    std::fs::File::open(p).map_err(|e| optout::Error::io(p, "open input", e))
}

/// Parses every source as records into one batch (all or nothing): files
/// and bytes through the library's parallel block reader, the CLI's; with
/// the shard end lines read (`{"dataset", "shard", "end"}`).
pub fn records(
    sources: &[Source],
    keyer: &SubjectKeyer,
) -> Result<(optout::event::RecordBatch, Vec<optout::ShardEnd>), optout::Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut r = ParallelRecords::new(keyer, threads);
    for s in sources {
        match s {
            Source::File(p) => r.read(&p.display().to_string(), open(p)?, &|_| ())?,
            Source::Text { name, bytes } => r.read(name, bytes.as_slice(), &|_| ())?,
            Source::Lines { name, lines } => {
                let mut b = BatchBuilder::default();
                each_item(name, lines, &mut |name, n, line| {
                    jsonl::parse_record_line(&mut b, keyer, name, n, line)
                })?;
                let (batch, ends) = b.finish_all();
                r.push(batch);
                r.push_ends(ends.into_iter().map(|(_, e)| e));
            }
        }
    }
    Ok(r.finish())
}

/// Parses every source as lineage lines of a derivation of `dataset` from
/// `sources` (all or nothing), kept in the builder so a refusal by the
/// ledger can name its file and line.
pub fn lineage(
    inputs: &[Source],
    dataset: &str,
    sources: &[String],
    allow_missing: bool,
) -> Result<jsonl::DerivationBuilder, optout::Error> {
    let mut b = jsonl::DerivationBuilder::new(dataset, sources, allow_missing);
    for s in inputs {
        match s {
            Source::File(p) => {
                b.parse(std::io::BufReader::new(open(p)?), &p.display().to_string())?
            }
            Source::Text { name, bytes } => b.parse(bytes.as_slice(), name)?,
            Source::Lines { name, lines } => {
                each_item(name, lines, &mut |name, n, line| b.parse_line(line, name, n))?
            }
        }
    }
    Ok(b)
}

/// Parses every source as events (all or nothing).
pub fn events(sources: &[Source], keyer: &SubjectKeyer) -> Result<Vec<Event>, optout::Error> {
    let mut out = Vec::new();
    each_line(sources, |name, n, line| {
        out.push(jsonl::parse_event_line(keyer, name, n, line)?);
        Ok(())
    })?;
    Ok(out)
}
