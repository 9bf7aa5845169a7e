//! Events (`apply`): one JSON object a line, tagged by `type`.

use super::*;

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
    Ok(parse_events_located(input, file, keyer)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// [`parse_events`], each event with its 1-based line number (blank
/// lines are skipped, so positions and lines differ), for reports that
/// name the line of an event.
pub fn parse_events_located(
    input: impl BufRead,
    file: &str,
    keyer: &SubjectKeyer,
) -> Result<Vec<(u64, Event)>, InputError> {
    let mut out = Vec::new();
    for_lines(input, file, |n, line| {
        out.push((n, parse_event_line(keyer, file, n, line)?));
        Ok(())
    })?;
    Ok(out)
}
