//! Event mappings: DSR export columns into events.

use serde_json::Value;

use super::{object, push_unique, src, time_spec, Shape, Src};
use crate::table::error::TableError;
use crate::table::timefmt::TimeSpec;

/// How the columns of a DSR export (CSV, Parquet, Arrow) become events.
///
/// ```json
/// {"type": {"column": "request_type", "values": {"objection": "objection", "delete": "erasure"}},
///  "subject": {"column": "email"}, "at": {"column": "received_at"},
///  "purposes": ["ai-training"], "ref": {"column": "ticket"}}
/// ```
///
/// The fields are those of a JSONL event line (`type`, `subject`, `at`,
/// `purposes`, `ref`, `categories`, `sources`, `method`, `confirmed`,
/// `granted_by`, `until`, `reason`, `key`, `content_hash`, `source`,
/// `signal`, `evidence`), each a literal or a column, and every row is
/// checked by the JSONL event rule itself. `filter`, `{"column": NAME,
/// "values": [...]}`, keeps only rows whose cell is one of the values (a
/// `Status` of `complete`); `time_format` and `default_zone` say how `at`
/// and `until` are read.
#[derive(Clone, Debug)]
pub struct EventMapping {
    pub(crate) fields: Vec<(&'static str, Src)>,
    pub(crate) filter: Option<(String, Vec<String>)>,
    pub(crate) time: TimeSpec,
}

pub(crate) const EVENT_FIELDS: &[(&str, Shape)] = &[
    ("type", Shape::Str),
    ("subject", Shape::Str),
    ("at", Shape::Time),
    ("purposes", Shape::List),
    ("ref", Shape::Str),
    ("categories", Shape::List),
    ("sources", Shape::List),
    ("method", Shape::Str),
    ("confirmed", Shape::Bool),
    ("granted_by", Shape::Str),
    ("until", Shape::Time),
    ("reason", Shape::Str),
    ("key", Shape::Str),
    ("content_hash", Shape::Str),
    ("source", Shape::Str),
    ("signal", Shape::Str),
    ("evidence", Shape::Str),
];

impl EventMapping {
    /// Reads the mapping file at `path` (at most [`MAX_MAPPING_FILE`](crate::table::MAX_MAPPING_FILE)
    /// bytes of UTF-8 JSON); errors name the file.
    pub fn load(path: &std::path::Path) -> Result<Self, TableError> {
        let (text, name) = super::read_file(path)?;
        Self::from_json(&text, &name)
    }

    /// Parses an event mapping; `name` (the mapping file's path) is named in errors.
    ///
    /// ```
    /// use optout::table::EventMapping;
    /// let m = EventMapping::from_json(r#"{"type": {"column": "request_type", "values": {"objection": "objection", "delete": "erasure"}}, "subject": {"column": "email"}, "at": {"column": "received_at"}, "purposes": ["ai-training"], "ref": {"column": "ticket"}}"#, "dsr.json").unwrap();
    /// assert_eq!(m.columns(), ["request_type", "email", "received_at", "ticket"]);
    /// let e = EventMapping::from_json(r#"{"type": "objection", "subjct": {"column": "email"}}"#, "dsr.json").unwrap_err();
    /// assert!(e.to_string().starts_with("dsr.json: field `subjct`: unknown field"));
    /// ```
    pub fn from_json(text: &str, name: &str) -> Result<Self, TableError> {
        let mut known: Vec<&str> = EVENT_FIELDS.iter().map(|(f, _)| *f).collect();
        known.extend(["filter", "time_format", "default_zone"]);
        let obj = object(text, name, &known)?;
        let time = time_spec(name, &obj)?;
        let mut fields = Vec::new();
        for (f, shape) in EVENT_FIELDS {
            match obj.get(*f) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let mut s = src(name, f, v, *shape, true)?;
                    if let (Shape::Time, Src::Lit(Value::String(t))) = (shape, &s) {
                        let t = time
                            .parse_text(t)
                            .map_err(|e| TableError::mapping(name, f, e))?;
                        s = Src::Lit(Value::String(t.to_rfc3339()));
                    }
                    fields.push((*f, s));
                }
            }
        }
        for req in ["type", "at"] {
            if !fields.iter().any(|(f, _)| *f == req) {
                return Err(TableError::mapping(name, req, "missing (required)"));
            }
        }
        let filter = match obj.get("filter") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => {
                let col = o.get("column").and_then(Value::as_str);
                let vals = o.get("values").and_then(Value::as_array).and_then(|a| {
                    a.iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                });
                match (col, vals, o.len()) {
                    (Some(c), Some(v), 2) if !c.is_empty() => Some((c.to_string(), v)),
                    _ => {
                        return Err(TableError::mapping(
                            name,
                            "filter",
                            "expected {\"column\": NAME, \"values\": [WORD, ...]}",
                        ))
                    }
                }
            }
            Some(v) => {
                return Err(TableError::mapping(
                    name,
                    "filter",
                    format!("expected {{\"column\": NAME, \"values\": [WORD, ...]}}, got {v}"),
                ))
            }
        };
        Ok(EventMapping {
            fields,
            filter,
            time,
        })
    }

    /// The columns the mapping reads, each once, in mapping order (the
    /// filter column last).
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let cols = self.fields.iter().filter_map(|(_, s)| match s {
            Src::Col(c) => Some(c.name.as_str()),
            Src::Lit(_) => None,
        });
        for c in cols.chain(self.filter.as_ref().map(|(c, _)| c.as_str())) {
            push_unique(&mut out, c);
        }
        out
    }
}
