//! The JSONL inputs users write: record registrations (`ingest`) and events
//! (`apply`). Parsing is all-or-nothing: the first bad line stops it with
//! the file, line and field, and nothing of the input is returned.
//!
//! Subject ids are turned into pseudonyms here, on the way in; the raw ids
//! go no further.

use std::collections::HashMap;
use std::io::BufRead;

use serde::Deserialize;

use crate::error::serde::{field_of, redact};
use crate::error::InputError;
use crate::event::{
    ConsentMethod, ContentHash, Event, EventKind, RecordBatch, RowEntry, ShardRecords,
    SignalTarget, TakedownTarget,
};
use crate::ids::Purposes;
use crate::provenance::{Profile, Visibility};
use crate::pseudonym::SubjectKeyer;
use crate::time::Timestamp;

pub use super::lines::{for_lines, MAX_LINE};

mod events;
mod lineage;
mod records;

pub use events::{parse_event_line, parse_events, parse_events_located};
pub use lineage::{parse_lineage_line, DerivationBuilder};
pub use records::{locate_record, parse_record_line, parse_records, BatchBuilder};
#[cfg(feature = "parquet")]
pub(crate) use records::{record_profile, subject_keys};

/// Names the first field whose JSON type is wrong (for error messages only).
fn diagnose(line: &str, types: &[(&str, &str)]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    for (name, ty) in types {
        let Some(x) = obj.get(*name) else { continue };
        let ok = match *ty {
            "string" => x.is_string() || x.is_null(),
            "u32" => x.as_u64().is_some_and(|n| n <= u32::MAX as u64),
            "bool" => x.is_boolean(),
            "string list" => x
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e.is_string())),
            "\"public\" or \"private\"" => {
                x.is_null() || x.as_str().is_some_and(|s| s == "public" || s == "private")
            }
            _ => true,
        };
        if !ok {
            return Some((
                name.to_string(),
                format!("expected {ty}, got {}", kind_of(x)),
            ));
        }
    }
    None
}

/// What kind of JSON value `x` is, without its content (numbers and
/// booleans are shown: they cannot be subject ids).
fn kind_of(x: &serde_json::Value) -> String {
    use serde_json::Value;
    match x {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => "a string".into(),
        Value::Array(a) => match a.iter().find(|e| !e.is_string()) {
            Some(e) => format!("a list holding {}", kind_of(e)),
            None => "a list of strings".into(),
        },
        Value::Object(_) => "an object".into(),
    }
}

fn json_error(
    file: &str,
    line_no: u64,
    line: &str,
    e: serde_json::Error,
    types: &[(&str, &str)],
) -> InputError {
    let msg = e.to_string();
    if let Some(f) = field_of(&msg, Some(line)) {
        return InputError::new(file, line_no, Some(&f), redact(&msg));
    }
    if let Some((f, m)) = diagnose(line, types) {
        return InputError::new(file, line_no, Some(&f), m);
    }
    InputError::new(
        file,
        line_no,
        None,
        format!("invalid JSON: {}", redact(&msg)),
    )
}

fn nonempty(file: &str, line: u64, field: &str, v: &str) -> Result<(), InputError> {
    if v.trim().is_empty() {
        Err(InputError::new(
            file,
            line,
            Some(field),
            "must not be empty",
        ))
    } else {
        Ok(())
    }
}

fn time(file: &str, line: u64, field: &str, v: &str) -> Result<Timestamp, InputError> {
    Timestamp::parse(v).map_err(|m| InputError::new(file, line, Some(field), m))
}

/// Sources, third parties and categories are matched case-insensitively:
/// they are stored trimmed and lowercased, in records and events alike.
pub(crate) fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, finding 12: the field named is the one at fault, and no
    /// value of the input (a subject id, say) is echoed.
    #[test]
    fn errors_name_the_right_field_and_echo_no_value() {
        let k = SubjectKeyer::from_secret([1; 32]);
        let canary = "canary-7f3a@example.com";
        let ev = |body: &str| {
            parse_event_line(&k, "e.jsonl", 3, &format!(r#"{{"type":"consent","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"],{body}}}"#))
                .unwrap_err()
        };
        let e = ev(&format!(r#""method":"{canary}""#));
        assert_eq!(e.field.as_deref(), Some("method"), "{e}");
        assert!(!e.to_string().contains(canary), "{e}");
        let e = ev(r#""method":"double_opt_in","confirmed":"yes""#);
        assert_eq!(e.field.as_deref(), Some("confirmed"), "{e}");
        let e = parse_event_line(
            &k,
            "e.jsonl",
            1,
            &format!(r#"{{"type":"{canary}","subject":"a@x.org","at":"x"}}"#),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        assert!(!e.to_string().contains(canary), "{e}");
        for line in [
            format!(r#"{{"type":"erasure","subject":"a@x.org","at":"{canary}"}}"#),
            format!(
                r#"{{"type":"objection","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["{canary}"]}}"#
            ),
            format!(r#"{{"type":"erasure","subject":["{canary}",5],"at":"2025-01-01T00:00:00Z"}}"#),
            format!(
                r#"{{"type":"erasure","{canary}":1,"subject":"a","at":"2025-01-01T00:00:00Z"}}"#
            ),
        ] {
            let e = parse_event_line(&k, "e.jsonl", 1, &line).unwrap_err();
            assert!(!e.to_string().contains("canary"), "{line}: {e}");
        }
        let r = format!(
            r#"{{"dataset":"d","shard":"s","row":0,"subjects":["{canary}",5],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"consent"}}"#
        );
        let e = parse_records(r.as_bytes(), "r.jsonl", &k).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("subjects"));
        assert!(!e.to_string().contains("canary"), "{e}");
        let e = crate::policy::Policy::from_json(
            r#"{"purpose":"ai-training","require_visibility":"secret"}"#,
            "p.json",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("require_visibility"), "{e}");
    }
}
