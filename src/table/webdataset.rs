//! WebDataset tar shards into records.
//!
//! A sample is a run of consecutive regular members sharing a key, the
//! WebDataset convention: a member `dir/000017.jpg` has key `dir/000017`
//! (the path up to the first dot of its file name) and extension `jpg`;
//! members without an extension and `__...__` metadata members are
//! skipped, as WebDataset's reader does, and a repeated extension within a
//! sample is an error. A sample's row is its index in tar order; its key
//! is `__key__` unless the mapping maps `key` to another column.
//!
//! The other fields come from the same mapping file as for Parquet:
//! literals, or columns, which name fields of the sample's `.json` member
//! (a JSON object; strings, numbers, lists of strings, booleans, nulls) or
//! `__key__` itself.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::{At, TableError, TableErrorKind};
use super::mapping::RecordMapping;
use super::parquet_file::{display, shard_names, FileFingerprint, FileOptions, TableRecords};
use super::records::{push_rows, Chunk};
use super::source::{parse_bool, RowSource, Want};
use super::timefmt::TimeSpec;
use crate::jsonl::{BatchBuilder, MAX_LINE};
use crate::pseudonym::SubjectKeyer;
use crate::time::Timestamp;

/// The column name of a sample's key.
pub const KEY: &str = "__key__";

/// Splits a member name into (key, extension) as WebDataset's pattern
/// `^((?:.*/|)[^.]+)[.]([^/]*)$` does; `None` for members that belong to
/// no sample.
fn key_and_ext(name: &str) -> Option<(&str, &str)> {
    let slash = name.rfind('/');
    let base_at = slash.map_or(0, |i| i + 1);
    let dot = name[base_at..].find('.')?;
    if dot > 0 {
        let cut = base_at + dot;
        return Some((&name[..cut], &name[cut + 1..]));
    }
    // A file name starting with a dot: the pattern keys it by its
    // directory, if that directory's own name has no dot.
    let l = slash?;
    let seg = name[..l].rfind('/').map_or(0, |i| i + 1);
    if name[seg..l].contains('.') {
        return None;
    }
    Some((&name[..=l], &name[l + 2..]))
}

/// WebDataset's metadata members (`__info__`, `__meta__/...`) are skipped.
fn is_meta(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("__") else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or("");
    first.len() >= 2 && first.ends_with("__") && !first[..first.len() - 2].contains('/')
}

struct Sample {
    key: String,
    json: Option<Map<String, Value>>,
}

struct Samples {
    file: String,
    samples: Vec<Sample>,
}

/// The samples of one tar as rows; column 0 is `__key__`, column `i > 0`
/// is field `names[i]` of the `.json` member.
struct SampleRows<'a> {
    samples: &'a Samples,
    names: Vec<String>,
}

impl SampleRows<'_> {
    fn get(&self, col: usize, row: usize) -> Option<Cow<'_, Value>> {
        let s = &self.samples.samples[row];
        if col == 0 {
            return Some(Cow::Owned(Value::String(s.key.clone())));
        }
        let v = s.json.as_ref()?.get(self.names[col].as_str())?;
        (!v.is_null()).then_some(Cow::Borrowed(v))
    }
}

fn shape_err(v: &Value, want: &str) -> String {
    let kind = match v {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
        Value::Null => "null",
    };
    format!("the value is {kind}; the field needs {want}")
}

impl RowSource for SampleRows<'_> {
    fn len(&self) -> usize {
        self.samples.samples.len()
    }

    fn file(&self) -> &str {
        &self.samples.file
    }

    fn at(&self, row: usize) -> At {
        At::Sample(row as u64)
    }

    fn bind(&self, name: &str, _want: Want) -> Result<usize, String> {
        // JSON members vary per sample: shapes are checked per value.
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| "no such column".to_string())
    }

    fn column_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn str(&self, col: usize, row: usize) -> Result<Option<Cow<'_, str>>, String> {
        match self.get(col, row) {
            None => Ok(None),
            Some(v) => match v.as_ref() {
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(Cow::Owned(s.clone()))),
                Value::Number(n) => Ok(Some(Cow::Owned(n.to_string()))),
                other => Err(shape_err(other, "a string")),
            },
        }
    }

    fn each_str<'s>(
        &'s self,
        col: usize,
        row: usize,
        f: &mut dyn FnMut(&'s str),
    ) -> Result<(), String> {
        let s = &self.samples.samples[row];
        if col == 0 {
            f(&s.key);
            return Ok(());
        }
        let Some(v) = s
            .json
            .as_ref()
            .and_then(|j| j.get(self.names[col].as_str()))
        else {
            return Ok(());
        };
        match v {
            Value::Null => {}
            Value::String(x) => f(x),
            Value::Array(a) => {
                for e in a {
                    match e {
                        Value::String(x) => f(x),
                        Value::Null => {}
                        other => return Err(shape_err(other, "strings in the list")),
                    }
                }
            }
            other => return Err(shape_err(other, "a string or a list of strings")),
        }
        Ok(())
    }

    fn time(&self, col: usize, row: usize, spec: &TimeSpec) -> Result<Option<Timestamp>, String> {
        match self.str(col, row)? {
            Some(s) => spec.parse_text(&s).map(Some),
            None => Ok(None),
        }
    }

    fn bool(&self, col: usize, row: usize) -> Result<Option<bool>, String> {
        match self.get(col, row) {
            None => Ok(None),
            Some(v) => match v.as_ref() {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) => parse_bool(s).map(Some),
                other => Err(shape_err(other, "a boolean")),
            },
        }
    }
}

fn read_tar(path: &Path, want_json: bool) -> Result<(Samples, u64, [u8; 32]), TableError> {
    let file = display(path);
    let io = |what: &str, e: std::io::Error| {
        TableError::new(TableErrorKind::Io, &file, At::File, format!("{what}: {e}"))
    };
    let f = File::open(path).map_err(|e| io("open", e))?;
    let size = f.metadata().map_err(|e| io("stat", e))?.len();
    let mut archive = tar::Archive::new(f);
    let corrupt = |n: usize, e: String| {
        TableError::new(
            TableErrorKind::Corrupt,
            &file,
            At::Sample(n as u64),
            format!("not a valid tar archive: {e}"),
        )
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut exts: Vec<String> = Vec::new();
    let mut hash = blake3::Hasher::new();
    let entries = archive
        .entries_with_seek()
        .map_err(|e| corrupt(0, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(samples.len(), e.to_string()))?;
        hash.update(entry.header().as_bytes());
        let name = entry
            .path()
            .map_err(|e| corrupt(samples.len(), e.to_string()))?
            .to_str()
            .ok_or_else(|| corrupt(samples.len(), "a member name is not valid UTF-8".into()))?
            .to_string();
        hash.update(name.as_bytes());
        if !entry.header().entry_type().is_file() || is_meta(&name) {
            continue;
        }
        let Some((key, ext)) = key_and_ext(&name) else {
            continue;
        };
        let ext = ext.to_lowercase();
        if samples.last().is_none_or(|s| s.key != key) {
            samples.push(Sample {
                key: key.to_string(),
                json: None,
            });
            exts.clear();
        }
        let n = samples.len() - 1;
        if exts.contains(&ext) {
            return Err(TableError::new(
                TableErrorKind::Corrupt,
                &file,
                At::Sample(n as u64),
                format!("member {name:?}: the sample already has a .{ext} member"),
            ));
        }
        if !want_json && ext == "json" {
            // The fingerprint covers what a mapping can read: the bytes of
            // every `.json` member (issue 14), without parsing them.
            std::io::copy(&mut entry, &mut hash)
                .map_err(|e| corrupt(n, format!("member {name:?}: {e}")))?;
        }
        if want_json && ext == "json" {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_LINE as u64 + 1)
                .read_to_string(&mut text)
                .map_err(|e| corrupt(n, format!("member {name:?}: {e}")))?;
            hash.update(text.as_bytes());
            if text.len() > MAX_LINE {
                return Err(TableError::new(
                    TableErrorKind::TooLarge,
                    &file,
                    At::Sample(n as u64),
                    format!("member {name:?} is larger than {MAX_LINE} bytes"),
                ));
            }
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(o)) => samples[n].json = Some(o),
                _ => {
                    return Err(TableError::new(
                        TableErrorKind::BadValue,
                        &file,
                        At::Sample(n as u64),
                        format!("member {name:?} is not a JSON object"),
                    ))
                }
            }
        }
        exts.push(ext);
    }
    Ok((Samples { file, samples }, size, *hash.finalize().as_bytes()))
}

/// The fingerprint of every tar (shard name from `opts.root`, size, rows =
/// samples, and a blake3 over every member header and name and the bytes
/// of every `.json` member: everything a mapping can read; docs/TABLES.md,
/// "A changed file"), on `opts.threads` threads, seeking over the other
/// members' data; the first error by file order.
pub fn webdataset_fingerprints<P: AsRef<Path>>(
    paths: &[P],
    opts: &FileOptions,
) -> Result<Vec<FileFingerprint>, TableError> {
    let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
    let shards = shard_names(&paths, opts.root.as_deref())?;
    super::par::map(paths.len(), opts.threads, |i| {
        let (samples, size, footer_blake3) = read_tar(paths[i], false)?;
        Ok(FileFingerprint {
            shard: shards[i].clone(),
            size,
            footer_blake3,
            rows: samples.samples.len() as u64,
        })
    })
}

/// Reads WebDataset tar shards into records by `mapping`, all or nothing;
/// tars are read on `opts.threads` threads.
pub fn webdataset_records<P: AsRef<Path>>(
    paths: &[P],
    mapping: &RecordMapping,
    keyer: &SubjectKeyer,
    opts: &FileOptions,
) -> Result<TableRecords, TableError> {
    let paths: Vec<&Path> = paths.iter().map(AsRef::as_ref).collect();
    let shards = shard_names(&paths, opts.root.as_deref())?;
    let mut m = mapping.clone();
    if m.key.is_none() {
        m.key = Some(super::mapping::ColRef {
            name: KEY.to_string(),
            values: None,
        });
    }
    let mut names = vec![KEY.to_string()];
    names.extend(
        m.columns()
            .into_iter()
            .filter(|c| *c != KEY)
            .map(str::to_string),
    );
    let want_json = names.len() > 1;
    let done = super::par::map(paths.len(), opts.threads, |i| {
        let (samples, size, footer_blake3) = read_tar(paths[i], want_json)?;
        let rows = SampleRows {
            samples: &samples,
            names: names.clone(),
        };
        let mut chunk = Chunk::default();
        push_rows(&m, &rows, keyer, opts.replace, &mut chunk)?;
        Ok((chunk, size, footer_blake3, samples.samples.len() as u64))
    })?;
    let mut b = BatchBuilder::default();
    let mut files = Vec::new();
    for ((chunk, size, footer_blake3, rows), shard) in done.into_iter().zip(shards) {
        if !chunk.rows.is_empty() {
            b.push_rows(m.dataset(), &shard, &chunk.profiles, chunk.rows);
        }
        files.push(FileFingerprint {
            shard,
            size,
            footer_blake3,
            rows,
        });
    }
    Ok(TableRecords {
        batch: b.finish(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_webdataset_splits_them() {
        assert_eq!(key_and_ext("a/000017.jpg"), Some(("a/000017", "jpg")));
        assert_eq!(key_and_ext("a.b/c.seg.json"), Some(("a.b/c", "seg.json")));
        assert_eq!(key_and_ext("a/noext"), None);
        assert_eq!(key_and_ext("a/.hidden"), Some(("a/", "hidden")));
        assert_eq!(key_and_ext("a.b/.hidden"), None);
        assert_eq!(key_and_ext(".hidden"), None);
        assert!(is_meta("__info__"));
        assert!(is_meta("__meta__/x.json"));
        assert!(!is_meta("__key.json"));
        assert!(!is_meta("x/__info__"));
    }
}
