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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    dataset: String,
    shard: String,
    row: u32,
    subjects: Vec<String>,
    source: String,
    collected_at: String,
    basis: String,
    #[serde(default)]
    categories: Vec<String>,
    visibility: Option<Visibility>,
    jurisdiction: Option<String>,
    license: Option<String>,
    obtained_from: Option<String>,
    key: Option<String>,
    content_hash: Option<String>,
    #[serde(default)]
    replace: bool,
}

const RECORD_TYPES: &[(&str, &str)] = &[
    ("dataset", "string"),
    ("shard", "string"),
    ("row", "u32"),
    ("subjects", "string list"),
    ("source", "string"),
    ("collected_at", "string"),
    ("basis", "string"),
    ("categories", "string list"),
    ("visibility", "\"public\" or \"private\""),
    ("jurisdiction", "string"),
    ("license", "string"),
    ("obtained_from", "string"),
    ("key", "string"),
    ("content_hash", "string"),
    ("replace", "bool"),
];

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

/// Builds a [`RecordBatch`] (profiles stored once, rows grouped by shard).
#[derive(Default)]
pub struct BatchBuilder {
    batch: RecordBatch,
    profiles: HashMap<Profile, u32>,
    shards: HashMap<(String, String), usize>,
}

impl BatchBuilder {
    /// Adds one row.
    pub fn push(&mut self, dataset: &str, shard: &str, profile: Profile, row: RowEntry) {
        let pid = self.intern(profile);
        let gi = self.group(dataset, shard);
        self.batch.shards[gi].rows.push(RowEntry {
            profile: pid,
            ..row
        });
    }

    /// Adds rows of one shard whose `profile` fields index `profiles`, as
    /// many [`BatchBuilder::push`] calls would (each profile stored once,
    /// rows after those added before), without hashing a profile per row.
    pub fn push_rows(
        &mut self,
        dataset: &str,
        shard: &str,
        profiles: &[Profile],
        mut rows: Vec<RowEntry>,
    ) {
        let remap: Vec<u32> = profiles.iter().map(|p| self.intern(p.clone())).collect();
        if remap.iter().enumerate().any(|(i, &p)| p as usize != i) {
            for r in &mut rows {
                r.profile = remap[r.profile as usize];
            }
        }
        let gi = self.group(dataset, shard);
        let group = &mut self.batch.shards[gi].rows;
        if group.is_empty() {
            *group = rows;
        } else {
            group.append(&mut rows);
        }
    }

    fn intern(&mut self, profile: Profile) -> u32 {
        match self.profiles.get(&profile) {
            Some(&p) => p,
            None => {
                let p = self.batch.profiles.len() as u32;
                self.batch.profiles.push(profile.clone());
                self.profiles.insert(profile, p);
                p
            }
        }
    }

    fn group(&mut self, dataset: &str, shard: &str) -> usize {
        match self.shards.get(&(dataset.to_string(), shard.to_string())) {
            Some(&g) => g,
            None => {
                self.batch.shards.push(ShardRecords {
                    dataset: dataset.to_string(),
                    shard: shard.to_string(),
                    rows: Vec::new(),
                });
                let g = self.batch.shards.len() - 1;
                self.shards
                    .insert((dataset.to_string(), shard.to_string()), g);
                g
            }
        }
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The batch.
    pub fn finish(self) -> RecordBatch {
        self.batch
    }
}

/// The profile of a record from its provenance fields as given: the rule
/// every intake path shares (JSONL lines, Parquet and Arrow tables,
/// WebDataset samples). `source` and `basis` must not be blank; sources,
/// categories and third parties are normalised ([`norm`]). An error names
/// the field and says what is wrong.
pub(crate) fn record_profile<'a>(
    source: &str,
    basis: &str,
    categories: impl IntoIterator<Item = &'a str>,
    visibility: Option<Visibility>,
    jurisdiction: Option<String>,
    license: Option<String>,
    obtained_from: Option<&str>,
) -> Result<Profile, (&'static str, &'static str)> {
    if source.trim().is_empty() {
        return Err(("source", "must not be empty"));
    }
    if basis.trim().is_empty() {
        return Err(("basis", "must not be empty"));
    }
    let mut profile = Profile {
        source: norm(source),
        basis: basis.trim().to_string(),
        categories: categories.into_iter().map(norm).collect(),
        visibility,
        jurisdiction,
        license,
        obtained_from: obtained_from.map(norm),
    };
    profile.normalise();
    Ok(profile)
}

/// The pseudonyms of a record's subjects, sorted and without duplicates:
/// the stored form of [`RowEntry::subjects`], for every intake path.
pub(crate) fn subject_keys<'a>(
    keyer: &SubjectKeyer,
    ids: impl IntoIterator<Item = &'a str>,
) -> Vec<crate::ids::SubjectKey> {
    let mut subjects: Vec<_> = ids.into_iter().map(|s| keyer.pseudonym(s)).collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects
}

/// Parses one record line into the builder.
pub fn parse_record_line(
    b: &mut BatchBuilder,
    keyer: &SubjectKeyer,
    file: &str,
    n: u64,
    line: &str,
) -> Result<(), InputError> {
    let r: RecordLine =
        serde_json::from_str(line).map_err(|e| json_error(file, n, line, e, RECORD_TYPES))?;
    nonempty(file, n, "dataset", &r.dataset)?;
    nonempty(file, n, "shard", &r.shard)?;
    if r.row == u32::MAX {
        return Err(InputError::new(
            file,
            n,
            Some("row"),
            "row must be below 4294967295",
        ));
    }
    let profile = record_profile(
        &r.source,
        &r.basis,
        r.categories.iter().map(String::as_str),
        r.visibility,
        r.jurisdiction,
        r.license,
        r.obtained_from.as_deref(),
    )
    .map_err(|(f, m)| InputError::new(file, n, Some(f), m))?;
    for (i, s) in r.subjects.iter().enumerate() {
        if s.trim().is_empty() {
            return Err(InputError::new(
                file,
                n,
                Some(&format!("subjects[{i}]")),
                "must not be empty",
            ));
        }
    }
    let collected_at = time(file, n, "collected_at", &r.collected_at)?;
    let content_hash = match &r.content_hash {
        Some(h) => Some(
            ContentHash::from_hex(h)
                .map_err(|m| InputError::new(file, n, Some("content_hash"), m))?,
        ),
        None => None,
    };
    let subjects = subject_keys(keyer, r.subjects.iter().map(String::as_str));
    b.push(
        &r.dataset,
        &r.shard,
        profile,
        RowEntry {
            row: r.row,
            subjects,
            profile: 0,
            collected_at,
            key: r.key,
            content_hash,
            replace: r.replace,
        },
    );
    Ok(())
}

/// The line number of the `nth` (1-based) record line of `input` for
/// `(dataset, shard, row)`, or how many such lines there were: for
/// naming the file and line of a [`crate::Error::RecordConflict`], which
/// the ledger finds after parsing (lines that do not parse are skipped).
pub fn locate_record(
    input: impl BufRead,
    file: &str,
    dataset: &str,
    shard: &str,
    row: u32,
    nth: u64,
) -> Result<Result<u64, u64>, InputError> {
    #[derive(Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        dataset: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        shard: std::borrow::Cow<'a, str>,
        row: u32,
    }
    let mut seen = 0;
    let mut found = None;
    for_lines(input, file, |n, line| {
        if found.is_none() {
            if let Ok(k) = serde_json::from_str::<Key>(line) {
                if k.dataset == dataset && k.shard == shard && k.row == row {
                    seen += 1;
                    if seen == nth {
                        found = Some(n);
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(found.ok_or(seen))
}

/// Parses a whole JSONL input of records.
///
/// ```
/// use optout::{jsonl, SubjectKeyer};
/// let k = SubjectKeyer::from_secret([1; 32]);
/// let text = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["a@x.org"],"source":"forum.x.org","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest"}
/// {"dataset":"forum","shard":"p0","row":1,"subjects":[],"source":"forum.x.org","collected_at":"not a time","basis":"consent"}"#;
/// let err = jsonl::parse_records(text.as_bytes(), "in.jsonl", &k).unwrap_err();
/// assert_eq!((err.line, err.field.as_deref()), (2, Some("collected_at")));
/// ```
pub fn parse_records(
    input: impl BufRead,
    file: &str,
    keyer: &SubjectKeyer,
) -> Result<RecordBatch, InputError> {
    let mut b = BatchBuilder::default();
    for_lines(input, file, |n, line| {
        parse_record_line(&mut b, keyer, file, n, line)
    })?;
    Ok(b.finish())
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum EventLine {
    Objection {
        subject: String,
        at: String,
        purposes: Vec<String>,
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default)]
        sources: Vec<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    ObjectionWithdrawn {
        subject: String,
        at: String,
        purposes: Vec<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Consent {
        subject: String,
        at: String,
        purposes: Vec<String>,
        method: ConsentMethod,
        #[serde(default)]
        confirmed: bool,
        granted_by: Option<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    ConsentWithdrawn {
        subject: String,
        at: String,
        purposes: Vec<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Erasure {
        subject: String,
        at: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Restriction {
        subject: String,
        at: String,
        until: Option<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Takedown {
        at: String,
        reason: Option<String>,
        key: Option<String>,
        content_hash: Option<String>,
        record: Option<RecordRef>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    SourceOptout {
        source: String,
        at: String,
        purposes: Vec<String>,
        signal: Option<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    SignalLifted {
        at: String,
        source: Option<String>,
        key: Option<String>,
        purposes: Vec<String>,
        evidence: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRef {
    dataset: String,
    shard: String,
    row: u32,
}

const EVENT_TYPES: &[(&str, &str)] = &[
    ("type", "string"),
    ("subject", "string"),
    ("at", "string"),
    ("purposes", "string list"),
    ("categories", "string list"),
    ("sources", "string list"),
    ("confirmed", "bool"),
    ("granted_by", "string"),
    ("until", "string"),
    ("reason", "string"),
    ("key", "string"),
    ("content_hash", "string"),
    ("source", "string"),
    ("signal", "string"),
    ("evidence", "string"),
    ("ref", "string"),
];

/// Parses one event line.
pub fn parse_event_line(
    keyer: &SubjectKeyer,
    file: &str,
    n: u64,
    line: &str,
) -> Result<Event, InputError> {
    let ev: EventLine =
        serde_json::from_str(line).map_err(|e| json_error(file, n, line, e, EVENT_TYPES))?;
    let purposes = |p: &[String]| {
        Purposes::parse(p).map_err(|m| InputError::new(file, n, Some("purposes"), m))
    };
    let subject = |s: &str| -> Result<_, InputError> {
        nonempty(file, n, "subject", s)?;
        Ok(keyer.pseudonym(s))
    };
    let (at, reference, kind) = match ev {
        EventLine::Objection {
            subject: s,
            at,
            purposes: p,
            categories,
            sources,
            reference,
        } => (
            at,
            reference,
            EventKind::Objection {
                subject: subject(&s)?,
                purposes: purposes(&p)?,
                categories: categories.iter().map(|c| norm(c)).collect(),
                sources: sources.iter().map(|c| norm(c)).collect(),
            },
        ),
        EventLine::ObjectionWithdrawn {
            subject: s,
            at,
            purposes: p,
            reference,
        } => (
            at,
            reference,
            EventKind::ObjectionWithdrawn {
                subject: subject(&s)?,
                purposes: purposes(&p)?,
            },
        ),
        EventLine::Consent {
            subject: s,
            at,
            purposes: p,
            method,
            confirmed,
            granted_by,
            reference,
        } => {
            let granted_by = match granted_by {
                Some(g) => {
                    nonempty(file, n, "granted_by", &g)?;
                    Some(keyer.pseudonym(&g))
                }
                None => None,
            };
            (
                at,
                reference,
                EventKind::Consent {
                    subject: subject(&s)?,
                    purposes: purposes(&p)?,
                    method,
                    confirmed,
                    granted_by,
                },
            )
        }
        EventLine::ConsentWithdrawn {
            subject: s,
            at,
            purposes: p,
            reference,
        } => (
            at,
            reference,
            EventKind::ConsentWithdrawn {
                subject: subject(&s)?,
                purposes: purposes(&p)?,
            },
        ),
        EventLine::Erasure {
            subject: s,
            at,
            reference,
        } => (
            at,
            reference,
            EventKind::Erasure {
                subject: subject(&s)?,
            },
        ),
        EventLine::Restriction {
            subject: s,
            at,
            until,
            reference,
        } => {
            let until = match until {
                Some(u) => {
                    let u = time(file, n, "until", &u)?;
                    if u <= time(file, n, "at", &at)? {
                        return Err(InputError::new(
                            file,
                            n,
                            Some("until"),
                            "a restriction must end after it starts",
                        ));
                    }
                    Some(u)
                }
                None => None,
            };
            (
                at,
                reference,
                EventKind::Restriction {
                    subject: subject(&s)?,
                    until,
                },
            )
        }
        EventLine::Takedown {
            at,
            reason,
            key,
            content_hash,
            record,
            reference,
        } => {
            let target =
                match (key, content_hash, record) {
                    (Some(k), None, None) => {
                        nonempty(file, n, "key", &k)?;
                        TakedownTarget::Key(k)
                    }
                    (None, Some(h), None) => TakedownTarget::ContentHash(
                        ContentHash::from_hex(&h)
                            .map_err(|m| InputError::new(file, n, Some("content_hash"), m))?,
                    ),
                    (None, None, Some(r)) => {
                        nonempty(file, n, "record.dataset", &r.dataset)?;
                        nonempty(file, n, "record.shard", &r.shard)?;
                        TakedownTarget::Record {
                            dataset: r.dataset,
                            shard: r.shard,
                            row: r.row,
                        }
                    }
                    _ => return Err(InputError::new(
                        file,
                        n,
                        Some("key"),
                        "a takedown names exactly one of \"key\", \"content_hash\" or \"record\"",
                    )),
                };
            (at, reference, EventKind::Takedown { target, reason })
        }
        EventLine::SourceOptout {
            source,
            at,
            purposes: p,
            signal,
            reference,
        } => {
            nonempty(file, n, "source", &source)?;
            (
                at,
                reference,
                EventKind::SourceOptout {
                    source: norm(&source),
                    purposes: purposes(&p)?,
                    signal,
                },
            )
        }
        EventLine::SignalLifted {
            at,
            source,
            key,
            purposes: p,
            evidence,
            reference,
        } => {
            nonempty(file, n, "evidence", &evidence)?;
            let target = match (source, key) {
                (Some(s), None) => {
                    nonempty(file, n, "source", &s)?;
                    SignalTarget::Source(norm(&s))
                }
                (None, Some(k)) => {
                    nonempty(file, n, "key", &k)?;
                    SignalTarget::Key(k)
                }
                _ => {
                    return Err(InputError::new(
                        file,
                        n,
                        Some("source"),
                        "give exactly one of source and key",
                    ))
                }
            };
            (
                at,
                reference,
                EventKind::SignalLifted {
                    target,
                    purposes: purposes(&p)?,
                    evidence,
                },
            )
        }
    };
    Ok(Event {
        at: time(file, n, "at", &at)?,
        reference,
        kind,
    })
}

/// Parses a whole JSONL input of events.
///
/// ```
/// use optout::{jsonl, SubjectKeyer};
/// let k = SubjectKeyer::from_secret([1; 32]);
/// let ok = r#"{"type":"objection","subject":"alice@example.com","at":"2025-06-01T00:00:00Z","purposes":["ai-training"]}"#;
/// assert_eq!(jsonl::parse_events(ok.as_bytes(), "ev.jsonl", &k).unwrap().len(), 1);
/// let bad = r#"{"type":"objection","subject":"alice@example.com","purposes":["ai-training"]}"#;
/// let err = jsonl::parse_events(bad.as_bytes(), "ev.jsonl", &k).unwrap_err();
/// assert_eq!(err.field.as_deref(), Some("at"));
/// ```
pub fn parse_events(
    input: impl BufRead,
    file: &str,
    keyer: &SubjectKeyer,
) -> Result<Vec<Event>, InputError> {
    let mut out = Vec::new();
    for_lines(input, file, |n, line| {
        out.push(parse_event_line(keyer, file, n, line)?);
        Ok(())
    })?;
    Ok(out)
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
        let e = crate::Policy::from_json(
            r#"{"purpose":"ai-training","require_visibility":"secret"}"#,
            "p.json",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("require_visibility"), "{e}");
    }
}
