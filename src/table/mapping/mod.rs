//! The mapping files: where each record or event field comes from.
//!
//! Every target field is a literal or `{"column": NAME}`; a column may carry
//! a value map, `{"column": NAME, "values": {"export word": "our word"}}`,
//! where a word mapped to `null` skips the row (events only) and a word not
//! in the map is an error. Times are read per the mapping's `time_format`
//! and `default_zone`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::{At, TableError, TableErrorKind};
use super::timefmt::TimeSpec;

mod event;
mod record;

pub use event::EventMapping;
pub(crate) use event::EVENT_FIELDS;
pub use record::RecordMapping;

/// A field's source: a literal (as JSON) or a column.
#[derive(Clone, Debug)]
pub(crate) enum Src {
    /// The same value for every row.
    Lit(Value),
    /// A column of the data.
    Col(ColRef),
}

/// A mapped column, with its value map if it has one.
#[derive(Clone, Debug)]
pub(crate) struct ColRef {
    /// The column's name.
    pub name: String,
    /// Export words to ours.
    pub values: Option<ValueMap>,
}

/// `{"export word": "our word" | null}`, matched exactly, then ignoring
/// case and surrounding white space.
#[derive(Clone, Debug)]
pub(crate) struct ValueMap {
    exact: HashMap<String, Option<String>>,
    folded: HashMap<String, Option<String>>,
}

impl ValueMap {
    /// Our word for `word`: `Ok(None)` skips the row, `Err` lists the known words.
    pub(crate) fn get(&self, word: &str) -> Result<Option<&str>, String> {
        let hit = self
            .exact
            .get(word)
            .or_else(|| self.folded.get(&word.trim().to_lowercase()));
        match hit {
            Some(v) => Ok(v.as_deref()),
            None => {
                let mut known: Vec<&str> = self.exact.keys().map(String::as_str).collect();
                known.sort_unstable();
                Err(format!(
                    "{word:?} is not in the mapping's \"values\" (known: {})",
                    known.join(", ")
                ))
            }
        }
    }
}

/// Event fields and how their values are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Str,
    List,
    Bool,
    Time,
}

/// Reads the JSON object of a mapping file, refusing unknown keys.
pub(super) fn object(
    text: &str,
    name: &str,
    known: &[&str],
) -> Result<Map<String, Value>, TableError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        TableError::new(
            TableErrorKind::Mapping,
            name,
            At::File,
            format!("not a JSON mapping: {e}"),
        )
    })?;
    let Value::Object(obj) = v else {
        return Err(TableError::new(
            TableErrorKind::Mapping,
            name,
            At::File,
            "a mapping is a JSON object",
        ));
    };
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            return Err(TableError::mapping(
                name,
                k,
                format!("unknown field (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(obj)
}

/// A source: a literal of the expected shape, or `{"column": NAME[, "values": {...}]}`.
pub(super) fn src(
    name: &str,
    field: &str,
    v: &Value,
    shape: Shape,
    allow_skip: bool,
) -> Result<Src, TableError> {
    let bad = |m: &str| TableError::mapping(name, field, m.to_string());
    if let Value::Object(o) = v {
        return Ok(Src::Col(colref(name, field, o, allow_skip)?));
    }
    let ok = match shape {
        Shape::Str | Shape::Time => v.is_string(),
        Shape::List => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Shape::Bool => v.is_boolean(),
    };
    if !ok {
        let want = match shape {
            Shape::Str | Shape::Time => "a string",
            Shape::List => "a list of strings",
            Shape::Bool => "true or false",
        };
        return Err(bad(&format!(
            "expected {want} or {{\"column\": NAME}}, got {v}"
        )));
    }
    Ok(Src::Lit(v.clone()))
}

pub(super) fn colref(
    name: &str,
    field: &str,
    o: &Map<String, Value>,
    allow_skip: bool,
) -> Result<ColRef, TableError> {
    let bad = |m: String| TableError::mapping(name, field, m);
    for k in o.keys() {
        if k != "column" && k != "values" {
            return Err(bad(format!(
                "unknown key {k:?} in a column reference (known: column, values)"
            )));
        }
    }
    let col = match o.get("column") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        _ => {
            return Err(bad(
                "a column reference is {\"column\": NAME} with a non-empty name".into(),
            ))
        }
    };
    let values = match o.get("values") {
        None => None,
        Some(Value::Object(m)) => {
            let mut exact = HashMap::new();
            let mut folded = HashMap::new();
            for (k, v) in m {
                let ours = match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Null if allow_skip => None,
                    _ => {
                        return Err(bad(format!(
                            "\"values\" maps each word to a string{}, got {v} for {k:?}",
                            if allow_skip {
                                " or null (skip the row)"
                            } else {
                                ""
                            }
                        )))
                    }
                };
                folded.insert(k.trim().to_lowercase(), ours.clone());
                exact.insert(k.clone(), ours);
            }
            Some(ValueMap { exact, folded })
        }
        Some(v) => return Err(bad(format!("\"values\" is an object of words, got {v}"))),
    };
    Ok(ColRef { name: col, values })
}

pub(super) fn string_key<'a>(
    name: &str,
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, TableError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(TableError::mapping(
            name,
            key,
            format!("expected a string, got {v}"),
        )),
    }
}

pub(super) fn time_spec(name: &str, obj: &Map<String, Value>) -> Result<TimeSpec, TableError> {
    TimeSpec::new(
        string_key(name, obj, "time_format")?,
        string_key(name, obj, "default_zone")?,
    )
    .map_err(|(k, m)| TableError::mapping(name, k, m))
}

pub(super) fn push_unique<'a>(out: &mut Vec<&'a str>, c: &'a str) {
    if !out.contains(&c) {
        out.push(c);
    }
}

pub(super) fn lit_str(s: &Src) -> Option<&str> {
    match s {
        Src::Lit(Value::String(v)) => Some(v),
        _ => None,
    }
}

/// Longest mapping file read.
pub const MAX_MAPPING_FILE: u64 = 1 << 20;

/// The text of the mapping file at `path` (bounded, UTF-8) and its name.
pub(crate) fn read_file(path: &std::path::Path) -> Result<(String, String), TableError> {
    use crate::table::error::{At, TableErrorKind};
    let name = path.display().to_string();
    let bytes = crate::fsutil::read_bounded(path, MAX_MAPPING_FILE, "mapping file")
        .map_err(|e| TableError::new(TableErrorKind::Io, &name, At::File, e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| TableError::new(TableErrorKind::Mapping, &name, At::File, "not UTF-8 text"))?;
    Ok((text, name))
}
