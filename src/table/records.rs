//! Rows of a table into record registrations, by a [`RecordMapping`], with
//! the JSONL path's rules: the same profile normalisation
//! (`jsonl::record_profile`) and the same pseudonyms (`jsonl::subject_keys`).

use std::collections::HashMap;

use serde_json::Value;

use super::error::{TableError, TableErrorKind};
use super::mapping::{ColRef, RecordMapping, Src};
use super::source::{bind, RowSource, Want};
use crate::event::{ContentHash, RowEntry};
use crate::provenance::{Profile, Visibility};
use crate::pseudonym::SubjectKeyer;
use crate::time::Timestamp;

/// The rows made from one piece of input (a row group, a batch, a tar):
/// `rows[i].profile` indexes `profiles`.
#[derive(Default)]
pub(crate) struct Chunk {
    pub profiles: Vec<Profile>,
    pub rows: Vec<RowEntry>,
    interned: HashMap<Profile, u32>,
}

impl Chunk {
    /// A chunk for `rows` rows (a row group's count from the footer).
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Chunk {
            rows: Vec::with_capacity(rows),
            ..Chunk::default()
        }
    }

    fn intern(&mut self, p: &Profile) -> u32 {
        if let Some(&i) = self.interned.get(p) {
            return i;
        }
        let i = self.profiles.len() as u32;
        self.profiles.push(p.clone());
        self.interned.insert(p.clone(), i);
        i
    }
}

/// A visibility word, as the JSONL path reads it.
pub(crate) fn visibility(s: &str) -> Result<Visibility, String> {
    serde_json::from_value(Value::String(s.to_string()))
        .map_err(|_| format!("{s:?} is not a visibility (\"public\" or \"private\")"))
}

/// A field bound to a column of one source.
struct Bound<'m> {
    field: &'static str,
    col: usize,
    r: &'m ColRef,
}

/// A literal, or a bound column.
enum Field<'m> {
    Lit(Option<&'m str>),
    Col(Bound<'m>),
}

fn field<'m>(
    src: &dyn RowSource,
    s: Option<&'m Src>,
    name: &'static str,
    want: Want,
) -> Result<Field<'m>, TableError> {
    Ok(match s {
        None => Field::Lit(None),
        Some(Src::Lit(v)) => Field::Lit(v.as_str()),
        Some(Src::Col(r)) => Field::Col(Bound {
            field: name,
            col: bind(src, &r.name, want, name)?,
            r,
        }),
    })
}

/// Converts the rows of `src` by the mapping into `out`.
pub(crate) fn push_rows(
    m: &RecordMapping,
    src: &dyn RowSource,
    keyer: &SubjectKeyer,
    replace: bool,
    out: &mut Chunk,
) -> Result<(), TableError> {
    let subjects: Vec<(usize, &str)> = m
        .subjects
        .iter()
        .map(|c| Ok((bind(src, c, Want::Strs, "subjects")?, c.as_str())))
        .collect::<Result<_, TableError>>()?;
    let source = field(src, Some(&m.source), "source", Want::Str)?;
    let basis = field(src, Some(&m.basis), "basis", Want::Str)?;
    let visibility_f = field(src, m.visibility.as_ref(), "visibility", Want::Str)?;
    let jurisdiction = field(src, m.jurisdiction.as_ref(), "jurisdiction", Want::Str)?;
    let license = field(src, m.license.as_ref(), "license", Want::Str)?;
    let obtained_from = field(src, m.obtained_from.as_ref(), "obtained_from", Want::Str)?;
    let categories = match &m.categories {
        Some(Src::Col(r)) => Some(Bound {
            field: "categories",
            col: bind(src, &r.name, Want::Strs, "categories")?,
            r,
        }),
        _ => None,
    };
    let lit_categories: Vec<&str> = match &m.categories {
        Some(Src::Lit(Value::Array(a))) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let collected_at = match &m.collected_at {
        Src::Col(r) => Some(Bound {
            field: "collected_at",
            col: bind(src, &r.name, Want::Time, "collected_at")?,
            r,
        }),
        Src::Lit(_) => None,
    };
    let key = match &m.key {
        Some(r) => Some(Bound {
            field: "key",
            col: bind(src, &r.name, Want::Str, "key")?,
            r,
        }),
        None => None,
    };
    let content_hash = match &m.content_hash {
        Some(r) => Some(Bound {
            field: "content_hash",
            col: bind(src, &r.name, Want::Str, "content_hash")?,
            r,
        }),
        None => None,
    };

    let err = |row: usize, b: &Bound, kind, msg: String| {
        TableError::new(kind, src.file(), src.at(row), msg)
            .column(&b.r.name)
            .field(b.field)
    };
    // A column's text through its value map, if it has one.
    let text = |b: &Bound<'_>, row: usize| -> Result<Option<String>, TableError> {
        let v = src
            .str(b.col, row)
            .map_err(|e| err(row, b, TableErrorKind::BadValue, e))?;
        match (v, &b.r.values) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v.into_owned())),
            (Some(v), Some(map)) => match map.get(&v) {
                Ok(w) => Ok(w.map(str::to_string)),
                Err(e) => Err(err(row, b, TableErrorKind::BadValue, e)),
            },
        }
    };
    let value = |f: &Field<'_>, row: usize| -> Result<Option<String>, TableError> {
        match f {
            Field::Lit(v) => Ok(v.map(str::to_string)),
            Field::Col(b) => text(b, row),
        }
    };
    let required = |f: &Field<'_>, name: &str, row: usize| -> Result<String, TableError> {
        match (value(f, row)?, f) {
            (Some(v), _) => Ok(v),
            (None, Field::Col(b)) => Err(err(
                row,
                b,
                TableErrorKind::Null,
                "null in a required column".into(),
            )),
            (None, Field::Lit(_)) => Err(TableError::mapping(&m.name, name, "missing (required)")),
        }
    };

    let literal_pid = m.literal_profile.as_ref().map(|p| out.intern(p));
    let mut ids: Vec<&str> = Vec::new();
    for row in 0..src.len() {
        let position = match src.at(row) {
            super::At::Row(n) | super::At::Sample(n) => n,
            _ => row as u64,
        };
        let row_no = u32::try_from(position)
            .ok()
            .filter(|&r| r != u32::MAX)
            .ok_or_else(|| {
                TableError::new(
                    TableErrorKind::TooLarge,
                    src.file(),
                    src.at(row),
                    "a shard holds at most 4294967295 rows",
                )
            })?;
        ids.clear();
        for &(col, name) in &subjects {
            src.each_str(col, row, &mut |s| {
                if !s.trim().is_empty() {
                    ids.push(s);
                }
            })
            .map_err(|e| {
                TableError::new(TableErrorKind::BadValue, src.file(), src.at(row), e)
                    .column(name)
                    .field("subjects")
            })?;
        }
        if ids.is_empty() && m.require_subjects {
            let cols = m.subjects.join("`, `");
            return Err(TableError::new(
                TableErrorKind::Null,
                src.file(),
                src.at(row),
                "no subject in any subject column, and the mapping sets \"require_subjects\"",
            )
            .column(&cols)
            .field("subjects"));
        }
        let subjects = crate::jsonl::subject_keys(keyer, ids.drain(..));
        let profile = match literal_pid {
            Some(pid) => pid,
            None => {
                let vis = match value(&visibility_f, row)? {
                    Some(v) => Some(visibility(&v).map_err(|e| match &visibility_f {
                        Field::Col(b) => err(row, b, TableErrorKind::BadValue, e),
                        Field::Lit(_) => TableError::mapping(&m.name, "visibility", e),
                    })?),
                    None => None,
                };
                let mut cats: Vec<String> = Vec::new();
                if let Some(b) = &categories {
                    src.each_str(b.col, row, &mut |s| {
                        if !s.trim().is_empty() {
                            cats.push(s.to_string())
                        }
                    })
                    .map_err(|e| err(row, b, TableErrorKind::BadValue, e))?;
                }
                let p = crate::jsonl::record_profile(
                    &required(&source, "source", row)?,
                    &required(&basis, "basis", row)?,
                    lit_categories
                        .iter()
                        .copied()
                        .chain(cats.iter().map(String::as_str)),
                    vis,
                    value(&jurisdiction, row)?,
                    value(&license, row)?,
                    value(&obtained_from, row)?.as_deref(),
                )
                .map_err(|(f, msg)| {
                    let b = if f == "source" { &source } else { &basis };
                    match b {
                        Field::Col(b) => err(row, b, TableErrorKind::BadValue, msg),
                        Field::Lit(_) => TableError::mapping(&m.name, f, msg),
                    }
                })?;
                out.intern(&p)
            }
        };
        let collected_at: Timestamp = match (&collected_at, m.literal_time) {
            (Some(b), _) => src
                .time(b.col, row, &m.time)
                .map_err(|e| err(row, b, TableErrorKind::BadValue, e))?
                .ok_or_else(|| {
                    err(
                        row,
                        b,
                        TableErrorKind::Null,
                        "null in a required column".into(),
                    )
                })?,
            (None, Some(t)) => t,
            (None, None) => return Err(TableError::mapping(&m.name, "collected_at", "missing")),
        };
        let key = match &key {
            Some(b) => text(b, row)?,
            None => None,
        };
        let content_hash = match &content_hash {
            Some(b) => match text(b, row)? {
                Some(h) => Some(
                    ContentHash::from_hex(h.trim())
                        .map_err(|e| err(row, b, TableErrorKind::BadValue, e))?,
                ),
                None => None,
            },
            None => None,
        };
        out.rows.push(RowEntry {
            row: row_no,
            subjects,
            profile,
            collected_at,
            key,
            content_hash,
            replace,
        });
    }
    Ok(())
}
