//! Rows of a DSR export into events, by an [`EventMapping`]. Each row
//! becomes the JSON object of an event line and goes through the JSONL
//! event rule (`jsonl::parse_event_line`), so a table event is valid
//! exactly when the same line would be.

use serde_json::{Map, Value};

use super::error::{At, TableError, TableErrorKind};
use super::mapping::{ColRef, EventMapping, Shape, Src, EVENT_FIELDS};
use super::source::{bind, RowSource, Want};
use crate::event::Event;
use crate::pseudonym::SubjectKeyer;

/// Events read from one or more tables, all or nothing.
#[derive(Clone, Debug, Default)]
pub struct TableEvents {
    /// The events, in input order.
    pub events: Vec<Event>,
    /// Where each event came from: `(file, position)`, parallel to `events`.
    pub origins: Vec<(String, At)>,
    /// Rows skipped by the mapping's `filter` or a value mapped to `null`.
    pub skipped: u64,
}

fn shape_of(field: &str) -> Shape {
    EVENT_FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(Shape::Str, |(_, s)| *s)
}

struct BoundCol<'m> {
    field: &'static str,
    shape: Shape,
    col: usize,
    r: &'m ColRef,
}

/// A JSONL-rule error as a table error: the field's column, and "null"
/// when the field was missing because its cell was null.
fn event_error(
    e: crate::InputError,
    file: &str,
    at: At,
    cols: &[BoundCol<'_>],
    nulls: &[&BoundCol<'_>],
) -> TableError {
    let bound = e
        .field
        .as_deref()
        .and_then(|f| cols.iter().find(|b| b.field == f));
    let null = bound.is_some_and(|b| nulls.iter().any(|n| n.field == b.field));
    let (kind, message) = if null {
        (
            TableErrorKind::Null,
            "null where the event needs a value".to_string(),
        )
    } else {
        (TableErrorKind::BadValue, e.message.clone())
    };
    let mut t = TableError::new(kind, file, at, message);
    if let Some(b) = bound {
        t = t.column(&b.r.name);
    }
    if let Some(f) = &e.field {
        t = t.field(f);
    }
    t
}

/// Converts the rows of `src` by the mapping into `out`.
pub(crate) fn push_events(
    m: &EventMapping,
    src: &dyn RowSource,
    keyer: &SubjectKeyer,
    out: &mut TableEvents,
) -> Result<(), TableError> {
    let mut lits = Map::new();
    let mut cols = Vec::new();
    for (f, s) in &m.fields {
        match s {
            Src::Lit(v) => {
                lits.insert(f.to_string(), v.clone());
            }
            Src::Col(r) => {
                let shape = shape_of(f);
                let want = match shape {
                    Shape::Str => Want::Str,
                    Shape::List => Want::Strs,
                    Shape::Bool => Want::Bool,
                    Shape::Time => Want::Time,
                };
                cols.push(BoundCol {
                    field: f,
                    shape,
                    col: bind(src, &r.name, want, f)?,
                    r,
                });
            }
        }
    }
    let filter = match &m.filter {
        Some((c, vals)) => Some((bind(src, c, Want::Str, "filter")?, c.as_str(), vals)),
        None => None,
    };
    let file = src.file();
    'rows: for row in 0..src.len() {
        let err = |b: &BoundCol, kind, msg: String| {
            TableError::new(kind, file, src.at(row), msg)
                .column(&b.r.name)
                .field(b.field)
        };
        if let Some((col, name, vals)) = &filter {
            let v = src.str(*col, row).map_err(|e| {
                TableError::new(TableErrorKind::BadValue, file, src.at(row), e)
                    .column(name)
                    .field("filter")
            })?;
            let keep = v.is_some_and(|v| {
                vals.iter()
                    .any(|w| w == v.as_ref() || w.trim().eq_ignore_ascii_case(v.trim()))
            });
            if !keep {
                out.skipped += 1;
                continue;
            }
        }
        let mut obj = lits.clone();
        let mut nulls: Vec<&BoundCol> = Vec::new();
        for b in &cols {
            let v = match b.shape {
                Shape::Str => match src
                    .str(b.col, row)
                    .map_err(|e| err(b, TableErrorKind::BadValue, e))?
                {
                    None => None,
                    Some(v) => match &b.r.values {
                        None => Some(Value::String(v.into_owned())),
                        Some(map) => match map.get(&v) {
                            Ok(Some(w)) => Some(Value::String(w.to_string())),
                            Ok(None) => {
                                out.skipped += 1;
                                continue 'rows;
                            }
                            Err(e) => return Err(err(b, TableErrorKind::BadValue, e)),
                        },
                    },
                },
                Shape::List => {
                    let mut items = Vec::new();
                    src.each_str(b.col, row, &mut |s| {
                        if !s.trim().is_empty() {
                            items.push(s.to_string())
                        }
                    })
                    .map_err(|e| err(b, TableErrorKind::BadValue, e))?;
                    let mut mapped = Vec::with_capacity(items.len());
                    for s in items {
                        match &b.r.values {
                            None => mapped.push(Value::String(s)),
                            Some(map) => match map.get(&s) {
                                Ok(Some(w)) => mapped.push(Value::String(w.to_string())),
                                Ok(None) => {}
                                Err(e) => return Err(err(b, TableErrorKind::BadValue, e)),
                            },
                        }
                    }
                    (!mapped.is_empty()).then_some(Value::Array(mapped))
                }
                Shape::Bool => src
                    .bool(b.col, row)
                    .map_err(|e| err(b, TableErrorKind::BadValue, e))?
                    .map(Value::Bool),
                Shape::Time => src
                    .time(b.col, row, &m.time)
                    .map_err(|e| err(b, TableErrorKind::BadValue, e))?
                    .map(|t| Value::String(t.to_rfc3339())),
            };
            match v {
                Some(v) => {
                    obj.insert(b.field.to_string(), v);
                }
                None => nulls.push(b),
            }
        }
        // A field the event's type does not take (the literal `purposes` of
        // an export's erasure rows) is dropped: the JSONL rule says which.
        let ev = loop {
            let line = Value::Object(obj.clone()).to_string();
            match crate::jsonl::parse_event_line(keyer, file, 0, &line) {
                Ok(ev) => break ev,
                Err(e)
                    if e.message.starts_with("unknown field")
                        && e.field
                            .as_deref()
                            .is_some_and(|f| f != "type" && obj.contains_key(f)) =>
                {
                    obj.remove(e.field.as_deref().unwrap_or_default());
                }
                Err(e) => return Err(event_error(e, file, src.at(row), &cols, &nulls)),
            }
        };
        out.events.push(ev);
        out.origins.push((file.to_string(), src.at(row)));
    }
    Ok(())
}
