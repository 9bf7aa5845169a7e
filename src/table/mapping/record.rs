//! Record mappings: table columns into record registrations.

use serde_json::Value;

use super::{lit_str, object, push_unique, src, time_spec, ColRef, Shape, Src};
use crate::provenance::Profile;
use crate::table::error::TableError;
use crate::table::timefmt::TimeSpec;
use crate::time::Timestamp;

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
    /// The mapping's JSON object re-serialised (keys sorted, no white
    /// space): what [`crate::table::mapping_blake3`] hashes.
    pub(crate) canonical: String,
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

impl RecordMapping {
    /// Reads the mapping file at `path` (at most [`MAX_MAPPING_FILE`](crate::table::MAX_MAPPING_FILE)
    /// bytes of UTF-8 JSON); errors name the file.
    pub fn load(path: &std::path::Path) -> Result<Self, TableError> {
        let (text, name) = super::read_file(path)?;
        Self::from_json(&text, &name)
    }

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
            canonical: serde_json::to_string(&obj).unwrap_or_default(),
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
            Some(v) => Some(crate::table::records::visibility(&v).map_err(|m| e("visibility", m))?),
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
                (
                    s.unwrap_or("x"),
                    b.unwrap_or(crate::provenance::basis::CONSENT),
                )
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
        .map_err(|(f, m)| e(f, m))?;
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
