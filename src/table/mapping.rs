//! The mapping files: where each record or event field comes from.
//!
//! Every target field is a literal or `{"column": NAME}`; a column may carry
//! a value map, `{"column": NAME, "values": {"export word": "our word"}}`,
//! where a word mapped to `null` skips the row (events only) and a word not
//! in the map is an error. Times are read per the mapping's `time_format`
//! and `default_zone`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::TableError;
use super::timefmt::TimeSpec;
use crate::provenance::Profile;
use crate::time::Timestamp;

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

/// How the columns of a table (Parquet, Arrow, WebDataset samples) become
/// record registrations.
///
/// ```json
/// {"dataset":"forum","subjects":["author_email","mentions"],"source":"forum.example.com",
///  "basis":"legitimate_interest","collected_at":{"column":"created_at"},
///  "categories":["text"],"visibility":"public","key":{"column":"url"}}
/// ```
///
/// `dataset` is a literal (a file is a shard of one dataset). `subjects`
/// lists column names, each a string or `list<string>` column (nulls and
/// empty strings skipped); `[]` registers records without subjects. With
/// `"require_subjects": true` a row whose subject columns give no subject
/// at all is an error (a null author where every record must have one).
/// `source`, `basis`, `collected_at` are required, as literals or columns;
/// `categories` (a list or a column), `visibility`, `jurisdiction`,
/// `license`, `obtained_from` are optional; `key` and `content_hash` are
/// columns. `time_format` and `default_zone` say how `collected_at` is read.
/// The shard and the row come from where the data is, never from a column.
#[derive(Clone, Debug)]
pub struct RecordMapping {
    pub(crate) name: String,
    pub(crate) dataset: String,
    pub(crate) subjects: Vec<String>,
    pub(crate) require_subjects: bool,
    pub(crate) source: Src,
    pub(crate) basis: Src,
    pub(crate) collected_at: Src,
    pub(crate) categories: Option<Src>,
    pub(crate) visibility: Option<Src>,
    pub(crate) jurisdiction: Option<Src>,
    pub(crate) license: Option<Src>,
    pub(crate) obtained_from: Option<Src>,
    pub(crate) key: Option<ColRef>,
    pub(crate) content_hash: Option<ColRef>,
    pub(crate) time: TimeSpec,
    /// The profile when no profile field is a column (checked at load).
    pub(crate) literal_profile: Option<Profile>,
    /// `collected_at` when it is a literal.
    pub(crate) literal_time: Option<Timestamp>,
}

const RECORD_FIELDS: &[&str] = &[
    "dataset",
    "subjects",
    "require_subjects",
    "source",
    "basis",
    "collected_at",
    "categories",
    "visibility",
    "jurisdiction",
    "license",
    "obtained_from",
    "key",
    "content_hash",
    "time_format",
    "default_zone",
];

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

/// Event fields and how their values are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Str,
    List,
    Bool,
    Time,
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

/// Reads the JSON object of a mapping file, refusing unknown keys.
fn object(text: &str, name: &str, known: &[&str]) -> Result<Map<String, Value>, TableError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        TableError::new(
            super::TableErrorKind::Mapping,
            name,
            super::At::File,
            format!("not a JSON mapping: {e}"),
        )
    })?;
    let Value::Object(obj) = v else {
        return Err(TableError::new(
            super::TableErrorKind::Mapping,
            name,
            super::At::File,
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
fn src(
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

fn colref(
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

fn string_key<'a>(
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

fn time_spec(name: &str, obj: &Map<String, Value>) -> Result<TimeSpec, TableError> {
    TimeSpec::new(
        string_key(name, obj, "time_format")?,
        string_key(name, obj, "default_zone")?,
    )
    .map_err(|(k, m)| TableError::mapping(name, k, m))
}

fn push_unique<'a>(out: &mut Vec<&'a str>, c: &'a str) {
    if !out.contains(&c) {
        out.push(c);
    }
}

fn lit_str(s: &Src) -> Option<&str> {
    match s {
        Src::Lit(Value::String(v)) => Some(v),
        _ => None,
    }
}

impl RecordMapping {
    /// Parses a record mapping; `name` (the mapping file's path) is named in errors.
    ///
    /// ```
    /// use optout::table::RecordMapping;
    /// let m = RecordMapping::from_json(r#"{"dataset":"forum","subjects":["author_email"],"source":"forum.example.com","basis":"legitimate_interest","collected_at":{"column":"created_at"}}"#, "map.json").unwrap();
    /// assert_eq!(m.columns(), ["author_email", "created_at"]);
    /// let e = RecordMapping::from_json(r#"{"dataset":"forum","subjects":"author_email"}"#, "map.json").unwrap_err();
    /// assert_eq!(e.to_string(), "map.json: field `subjects`: expected a list of column names, got \"author_email\"");
    /// ```
    pub fn from_json(text: &str, name: &str) -> Result<Self, TableError> {
        let obj = object(text, name, RECORD_FIELDS)?;
        let need = |k: &str| {
            obj.get(k)
                .ok_or_else(|| TableError::mapping(name, k, "missing (required)"))
        };
        let dataset = match need("dataset")? {
            Value::String(s) if !s.trim().is_empty() => s.clone(),
            Value::Object(_) => {
                return Err(TableError::mapping(
                    name,
                    "dataset",
                    "must be a literal: a file is a shard of one dataset",
                ))
            }
            v => {
                return Err(TableError::mapping(
                    name,
                    "dataset",
                    format!("expected a non-empty string, got {v}"),
                ))
            }
        };
        let subjects = match need("subjects")? {
            Value::Array(a) => {
                let mut out = Vec::new();
                for (i, c) in a.iter().enumerate() {
                    match c {
                        Value::String(s) if !s.is_empty() => out.push(s.clone()),
                        _ => {
                            return Err(TableError::mapping(
                                name,
                                &format!("subjects[{i}]"),
                                format!("expected a column name, got {c}"),
                            ))
                        }
                    }
                }
                out
            }
            v => {
                return Err(TableError::mapping(
                    name,
                    "subjects",
                    format!("expected a list of column names, got {v}"),
                ))
            }
        };
        let require_subjects = match obj.get("require_subjects") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(TableError::mapping(
                    name,
                    "require_subjects",
                    format!("expected true or false, got {v}"),
                ))
            }
        };
        let req = |k: &str, shape| src(name, k, need(k)?, shape, false);
        let opt = |k: &str, shape| match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => src(name, k, v, shape, false).map(Some),
        };
        let col_only = |k: &str| match opt(k, Shape::Str)? {
            None => Ok(None),
            Some(Src::Col(c)) => Ok(Some(c)),
            Some(Src::Lit(_)) => Err(TableError::mapping(
                name,
                k,
                "must be {\"column\": NAME}: a literal would give every row the same value",
            )),
        };
        let mut m = RecordMapping {
            name: name.to_string(),
            dataset,
            subjects,
            require_subjects,
            source: req("source", Shape::Str)?,
            basis: req("basis", Shape::Str)?,
            collected_at: req("collected_at", Shape::Time)?,
            categories: opt("categories", Shape::List)?,
            visibility: opt("visibility", Shape::Str)?,
            jurisdiction: opt("jurisdiction", Shape::Str)?,
            license: opt("license", Shape::Str)?,
            obtained_from: opt("obtained_from", Shape::Str)?,
            key: col_only("key")?,
            content_hash: col_only("content_hash")?,
            time: time_spec(name, &obj)?,
            literal_profile: None,
            literal_time: None,
        };
        if let Some(t) = lit_str(&m.collected_at) {
            m.literal_time = Some(
                m.time
                    .parse_text(t)
                    .map_err(|e| TableError::mapping(name, "collected_at", e))?,
            );
        }
        m.literal_profile = m.check_literals()?;
        Ok(m)
    }

    /// Checks the literal profile fields with the JSONL rule; the profile
    /// itself when no profile field is a column.
    fn check_literals(&self) -> Result<Option<Profile>, TableError> {
        let e = |f: &str, msg: String| TableError::mapping(&self.name, f, msg);
        let mut all = true;
        let mut text = |s: &Option<Src>| -> Option<String> {
            match s {
                Some(Src::Col(_)) => {
                    all = false;
                    None
                }
                Some(Src::Lit(Value::String(v))) => Some(v.clone()),
                _ => None,
            }
        };
        let visibility = text(&self.visibility);
        let jurisdiction = text(&self.jurisdiction);
        let license = text(&self.license);
        let obtained_from = text(&self.obtained_from);
        let visibility = match visibility {
            Some(v) => Some(super::records::visibility(&v).map_err(|m| e("visibility", m))?),
            None => None,
        };
        let categories: Vec<String> = match &self.categories {
            Some(Src::Col(_)) => {
                all = false;
                vec![]
            }
            Some(Src::Lit(Value::Array(a))) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        let (source, basis) = match (lit_str(&self.source), lit_str(&self.basis)) {
            (Some(s), Some(b)) => (s, b),
            (s, b) => {
                all = false;
                // Check whichever is literal on its own.
                (s.unwrap_or("x"), b.unwrap_or("x"))
            }
        };
        let p = crate::jsonl::record_profile(
            source,
            basis,
            categories.iter().map(String::as_str),
            visibility,
            jurisdiction,
            license,
            obtained_from.as_deref(),
        )
        .map_err(|(f, m)| e(f, m.to_string()))?;
        Ok(all.then_some(p))
    }

    /// The columns the mapping reads, in mapping order, each once: what a
    /// reader projects.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.subjects {
            push_unique(&mut out, s);
        }
        for s in [
            Some(&self.source),
            Some(&self.basis),
            Some(&self.collected_at),
            self.categories.as_ref(),
            self.visibility.as_ref(),
            self.jurisdiction.as_ref(),
            self.license.as_ref(),
            self.obtained_from.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Src::Col(c) = s {
                push_unique(&mut out, &c.name);
            }
        }
        for c in [&self.key, &self.content_hash].into_iter().flatten() {
            push_unique(&mut out, &c.name);
        }
        out
    }

    /// The dataset every record is registered in.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }
}

impl EventMapping {
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
