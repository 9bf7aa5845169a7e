//! JSON renderings of stored entries, in the shape of the input JSONL (with
//! pseudonyms in hex where the input had subject ids).

use serde_json::{json, Map, Value};

use crate::event::{Event, EventKind, SignalTarget, TakedownTarget, TrainingRun};
use crate::ids::Seq;

/// A training run as JSON, with the sequence number that recorded it (the
/// fields of `optout runs list --format json` and `GET /v1/runs`).
pub fn run_json(seq: Seq, r: &TrainingRun) -> Value {
    json!({
        "name": r.name,
        "model": r.model,
        "purpose": r.purpose.to_string(),
        "started_at": r.started_at.to_rfc3339(),
        "seq": seq.0,
        "manifest_digest": r.manifest_digest,
        "manifest_seq": r.manifest_seq.0,
        "manifest_at": r.manifest_at.to_rfc3339(),
        "datasets": r.datasets,
        "policy_digest": crate::ids::hex(&r.policy.digest()),
    })
}

/// An event as JSON, with the sequence number that recorded it.
pub fn event_json(seq: Seq, e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(seq.0));
    m.insert("type".into(), json!(e.type_name()));
    m.insert("at".into(), json!(e.at.to_rfc3339()));
    if let Some(r) = &e.reference {
        m.insert("ref".into(), json!(r));
    }
    if let Some(s) = e.subject() {
        m.insert("subject_pseudonym".into(), json!(s.to_hex()));
    }
    match &e.kind {
        EventKind::Objection {
            purposes,
            categories,
            sources,
            ..
        } => {
            m.insert("purposes".into(), json!(purposes.names()));
            if !categories.is_empty() {
                m.insert("categories".into(), json!(categories));
            }
            if !sources.is_empty() {
                m.insert("sources".into(), json!(sources));
            }
        }
        EventKind::ObjectionWithdrawn { purposes, .. }
        | EventKind::ConsentWithdrawn { purposes, .. } => {
            m.insert("purposes".into(), json!(purposes.names()));
        }
        EventKind::Consent {
            purposes,
            method,
            confirmed,
            granted_by,
            ..
        } => {
            m.insert("purposes".into(), json!(purposes.names()));
            m.insert(
                "method".into(),
                serde_json::to_value(method).unwrap_or(Value::Null),
            );
            m.insert("confirmed".into(), json!(confirmed));
            if let Some(g) = granted_by {
                m.insert("granted_by_pseudonym".into(), json!(g.to_hex()));
            }
        }
        EventKind::Erasure { .. } => {}
        EventKind::Restriction { until, .. } => {
            if let Some(u) = until {
                m.insert("until".into(), json!(u.to_rfc3339()));
            }
        }
        EventKind::Takedown { target, reason } => {
            if let Some(r) = reason {
                m.insert("reason".into(), json!(r));
            }
            match target {
                TakedownTarget::Key(k) => m.insert("key".into(), json!(k)),
                TakedownTarget::ContentHash(h) => {
                    m.insert("content_hash".into(), json!(h.to_hex()))
                }
                TakedownTarget::Record {
                    dataset,
                    shard,
                    row,
                } => m.insert(
                    "record".into(),
                    json!({"dataset": dataset, "shard": shard, "row": row}),
                ),
            };
        }
        EventKind::SourceOptout {
            source,
            purposes,
            signal,
        } => {
            m.insert("source".into(), json!(source));
            m.insert("purposes".into(), json!(purposes.names()));
            if let Some(s) = signal {
                m.insert("signal".into(), json!(s));
            }
        }
        EventKind::Signal {
            target,
            purposes,
            unparsable,
            evidence,
        } => {
            target_json(&mut m, target, purposes);
            m.insert("unparsable".into(), json!(unparsable));
            m.insert("signal".into(), json!(evidence.kind));
            m.insert("url".into(), json!(evidence.url));
            m.insert("fetched_at".into(), json!(evidence.fetched_at.to_rfc3339()));
            m.insert("raw".into(), json!(evidence.raw));
            m.insert("raw_len".into(), json!(evidence.raw_len));
            m.insert(
                "raw_blake3".into(),
                json!(crate::ids::hex(&evidence.raw_blake3)),
            );
            if let Some(d) = &evidence.detail {
                m.insert("detail".into(), json!(d));
            }
        }
        EventKind::SignalLifted {
            target,
            purposes,
            evidence,
        } => {
            target_json(&mut m, target, purposes);
            m.insert("evidence".into(), json!(evidence));
        }
    }
    Value::Object(m)
}

/// The target (a source or a key) and the purposes of a signal event.
fn target_json(m: &mut Map<String, Value>, target: &SignalTarget, purposes: &crate::ids::Purposes) {
    match target {
        SignalTarget::Source(s) => m.insert("source".into(), json!(s)),
        SignalTarget::Key(k) => m.insert("key".into(), json!(k)),
    };
    m.insert("purposes".into(), json!(purposes.names()));
}
