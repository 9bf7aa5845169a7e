//! Inputs to `ingest` / `apply`: JSONL files, JSONL bytes, or Python dicts
//! (serialised with `json.dumps` and parsed by the library's own line
//! parsers, so errors name the same fields as the CLI's).

use std::io::BufRead;
use std::path::PathBuf;

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

/// Collects the sources of an `ingest(*sources)` / `apply(*sources)` call.
pub fn collect(py: Python<'_>, sources: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<Vec<Source>> {
    let os = py.import("os")?;
    let mut out = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        if src.is_instance_of::<PyString>() || src.hasattr("__fspath__")? {
            let p: PathBuf = os.call_method1("fspath", (&src,))?.extract()?;
            out.push(Source::File(p));
        } else if let Ok(b) = src.cast::<PyBytes>() {
            out.push(Source::Text {
                name: "<bytes>".into(),
                bytes: b.as_bytes().to_vec(),
            });
        } else if let Ok(b) = src.cast::<PyByteArray>() {
            out.push(Source::Text {
                name: "<bytes>".into(),
                bytes: b.to_vec(),
            });
        } else if src.is_instance_of::<PyDict>() {
            out.push(Source::Lines {
                name: "<records>".into(),
                lines: vec![dumps(py, &src)?],
            });
        } else if let Ok(it) = src.try_iter() {
            let mut lines = Vec::new();
            for item in it {
                lines.push(dumps(py, &item?)?);
            }
            out.push(Source::Lines {
                name: "<records>".into(),
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

/// Calls `f(name, line_no, line)` for every non-blank line, like the CLI.
fn each_line(
    sources: &[Source],
    mut f: impl FnMut(&str, u64, &str) -> Result<(), InputError>,
) -> Result<(), optout::Error> {
    for s in sources {
        match s {
            Source::File(p) => {
                let name = p.display().to_string();
                let file =
                    std::fs::File::open(p).map_err(|e| optout::Error::io(p, "open input", e))?;
                read_lines(std::io::BufReader::new(file), &name, &mut f)?;
            }
            Source::Text { name, bytes } => read_lines(bytes.as_slice(), name, &mut f)?,
            Source::Lines { name, lines } => {
                for (i, l) in lines.iter().enumerate() {
                    let t = l.trim();
                    if t.len() > MAX_LINE {
                        return Err(InputError::new(
                            name,
                            i as u64 + 1,
                            None,
                            format!("line longer than {MAX_LINE} bytes"),
                        )
                        .into());
                    }
                    if !t.is_empty() {
                        f(name, i as u64 + 1, t)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn read_lines(
    mut input: impl BufRead,
    name: &str,
    f: &mut impl FnMut(&str, u64, &str) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| InputError::new(name, n + 1, None, format!("read error: {e}")))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if buf.len() > MAX_LINE {
            return Err(InputError::new(
                name,
                n,
                None,
                format!("line longer than {MAX_LINE} bytes"),
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| InputError::new(name, n, None, "not valid UTF-8"))?
            .trim();
        if !text.is_empty() {
            f(name, n, text)?;
        }
    }
}

/// Parses every source as records into one batch (all or nothing).
pub fn records(
    sources: &[Source],
    keyer: &SubjectKeyer,
) -> Result<optout::event::RecordBatch, optout::Error> {
    let mut b = BatchBuilder::default();
    each_line(sources, |name, n, line| {
        jsonl::parse_record_line(&mut b, keyer, name, n, line)
    })?;
    Ok(b.finish())
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
