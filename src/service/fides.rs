//! Fides (Ethyca) privacy-request webhooks → optout events: a pure
//! mapping, tested on payloads written from Fides' published schema
//! (`tests/fixtures/fides/`), documented in docs/SERVICE.md.
//!
//! Fides calls a policy webhook with a `SecondPartyRequestFormat` body:
//! `privacy_request_id`, `privacy_request_status`, `direction`,
//! `callback_type` (`pre_approval`, `pre`, `post`), `identity`,
//! `policy_action` (`access`, `consent`, `erasure`, `update`),
//! `privacy_request` (its safe dict, with `requested_at` and the
//! `consent_preferences`: `{data_use, opt_in, has_gpc_flag, ...}`) and
//! `timestamp`. A two-way webhook answers `{"derived_identity": ..., "halt": bool}`.
//!
//! | Fides | optout |
//! |---|---|
//! | `consent`, `train_ai_system` or `train_ai_system.*` opted out (any one of them) | `objection` to `ai-training` |
//! | `consent`, `train_ai_system*` opted in (none opted out) | `objection_withdrawn` + `consent` (`single_opt_in`, confirmed when the identity was verified) for `ai-training` |
//! | `erasure` | `erasure` |
//! | `access`, `update`, other data uses | nothing (reported as ignored) |
//! | `callback_type` `pre_approval`, or status `denied` / `canceled` / `identity_unverified` / `requires_input` | nothing yet: the request is not approved |
//!
//! One event per identity value Fides sent (email, phone number, external
//! id, device ids, custom identities), since records may be linked by any
//! of them; `at` is the request's `requested_at` (when the person asked),
//! else the webhook's `timestamp`; `ref` is `fides:<privacy_request_id>`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::InputError;
use crate::time::Timestamp;

use super::body::BODY;

/// The data use (and, dotted, its sub-uses) that means AI training.
pub const TRAIN_AI_SYSTEM: &str = "train_ai_system";
/// The optout purpose it maps to.
pub const PURPOSE: &str = "ai-training";
/// At most this many identity values per request become subjects.
const MAX_IDENTITIES: usize = 16;

#[derive(Deserialize)]
struct Payload {
    privacy_request_id: String,
    #[serde(default)]
    privacy_request_status: Option<String>,
    #[serde(default)]
    callback_type: Option<String>,
    #[serde(default)]
    identity: Option<Map<String, Value>>,
    #[serde(default)]
    policy_action: Option<String>,
    #[serde(default)]
    privacy_request: Option<SafeDict>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
struct SafeDict {
    #[serde(default)]
    requested_at: Option<String>,
    #[serde(default)]
    identity_verified_at: Option<String>,
    #[serde(default)]
    policy: Option<PolicyDict>,
    #[serde(default)]
    consent_preferences: Option<Vec<ConsentPref>>,
}

#[derive(Deserialize, Default)]
struct PolicyDict {
    #[serde(default)]
    rules: Vec<RuleDict>,
}

#[derive(Deserialize)]
struct RuleDict {
    #[serde(default)]
    action_type: Option<String>,
}

#[derive(Deserialize)]
struct ConsentPref {
    data_use: String,
    opt_in: bool,
}

/// What a webhook call maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FidesPlan {
    /// Fides' id of the privacy request (the idempotency key).
    pub privacy_request_id: String,
    /// The request's action (`consent`, `erasure`, ...).
    pub action: String,
    /// The events to record, in the JSONL form `optout apply` reads
    /// (they carry raw identities: never log them).
    pub events: Vec<Value>,
    /// Why nothing is recorded, when nothing is.
    pub skipped: Option<String>,
    /// Consent choices for data uses that are not AI training.
    pub ignored: Vec<String>,
}

/// Maps a webhook body. Errors name the field, as `body: field `F`: ...`.
pub fn map(body: &[u8]) -> Result<FidesPlan, InputError> {
    let p: Payload = serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let field = crate::error::serde::field_of(&msg, std::str::from_utf8(body).ok());
        InputError::new(
            BODY,
            0,
            field.as_deref(),
            format!(
                "not a Fides webhook payload: {}",
                msg.split(" at line ").next().unwrap_or(&msg)
            ),
        )
    })?;
    if p.privacy_request_id.trim().is_empty() {
        return Err(InputError::new(
            BODY,
            0,
            Some("privacy_request_id"),
            "must not be empty",
        ));
    }
    let pr = p.privacy_request.unwrap_or_default();
    let action = p
        .policy_action
        .clone()
        .or_else(|| {
            pr.policy
                .as_ref()
                .and_then(|pol| pol.rules.iter().find_map(|r| r.action_type.clone()))
        })
        .unwrap_or_default()
        .to_lowercase();
    let mut plan = FidesPlan {
        privacy_request_id: p.privacy_request_id.clone(),
        action: action.clone(),
        events: Vec::new(),
        skipped: None,
        ignored: Vec::new(),
    };
    let callback = p.callback_type.as_deref().unwrap_or("pre");
    let status = p.privacy_request_status.as_deref().unwrap_or("");
    if callback == "pre_approval" {
        plan.skipped = Some("pre_approval webhook: the request is not approved yet".into());
        return Ok(plan);
    }
    if matches!(
        status,
        "denied" | "canceled" | "identity_unverified" | "requires_input"
    ) {
        plan.skipped = Some(format!(
            "privacy request status {status}: nothing to honour"
        ));
        return Ok(plan);
    }
    let at = match (&pr.requested_at, &p.timestamp) {
        (Some(t), _) => time_field("privacy_request.requested_at", t)?,
        (None, Some(t)) => time_field("timestamp", t)?,
        (None, None) => {
            return Err(InputError::new(
                BODY,
                0,
                Some("privacy_request.requested_at"),
                "needed (or `timestamp`): when the person asked",
            ))
        }
    };
    let subjects = identities(p.identity.as_ref());
    let reference = format!("fides:{}", p.privacy_request_id);
    let event = |kind: &str, subject: &str| json!({"type": kind, "subject": subject, "at": at, "ref": reference});
    let with_purpose = |mut e: Value| {
        e["purposes"] = json!([PURPOSE]);
        e
    };
    match action.as_str() {
        "erasure" => plan.events = subjects.iter().map(|s| event("erasure", s)).collect(),
        "consent" => {
            let prefs = pr.consent_preferences.unwrap_or_default();
            let (ai, other): (Vec<&ConsentPref>, Vec<&ConsentPref>) =
                prefs.iter().partition(|c| is_ai_training(&c.data_use));
            plan.ignored = other.iter().map(|c| c.data_use.clone()).collect();
            // Fail closed: an opt-out of AI training or any of its sub-uses
            // wins over an opt-in in the same request.
            if ai.iter().any(|c| !c.opt_in) {
                plan.events = subjects
                    .iter()
                    .map(|s| with_purpose(event("objection", s)))
                    .collect();
            } else if !ai.is_empty() {
                let confirmed = pr.identity_verified_at.is_some();
                for s in &subjects {
                    plan.events
                        .push(with_purpose(event("objection_withdrawn", s)));
                    let mut c = with_purpose(event("consent", s));
                    c["method"] = json!("single_opt_in");
                    c["confirmed"] = json!(confirmed);
                    plan.events.push(c);
                }
            } else {
                plan.skipped = Some(format!("no consent choice for {TRAIN_AI_SYSTEM}"));
            }
        }
        "" => {
            return Err(InputError::new(
                BODY,
                0,
                Some("policy_action"),
                "missing, and no rule of privacy_request.policy names an action_type",
            ))
        }
        other => plan.skipped = Some(format!("{other} requests record nothing in optout")),
    }
    if plan.skipped.is_none() && subjects.is_empty() {
        return Err(InputError::new(
            BODY,
            0,
            Some("identity"),
            "no identity value: nobody to record the request for",
        ));
    }
    Ok(plan)
}

fn is_ai_training(data_use: &str) -> bool {
    let u = data_use.trim();
    u == TRAIN_AI_SYSTEM
        || u.strip_prefix(TRAIN_AI_SYSTEM)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Fides writes naive UTC datetimes (`datetime.utcnow().isoformat()`):
/// a time without an offset is read as UTC.
fn time_field(field: &str, t: &str) -> Result<String, InputError> {
    let t = t.trim();
    let has_offset = t.ends_with('Z')
        || t.ends_with('z')
        || t.rfind(['+', '-'])
            .is_some_and(|i| i > t.find('T').unwrap_or(usize::MAX));
    let s = if has_offset {
        t.to_string()
    } else {
        format!("{t}Z")
    };
    Timestamp::parse(&s)
        .map(Timestamp::to_rfc3339)
        .map_err(|m| InputError::new(BODY, 0, Some(field), m))
}

/// Every identity value, in a fixed order (named fields by name, then
/// custom `{label, value}` identities), distinct.
fn identities(identity: Option<&Map<String, Value>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(map) = identity else { return out };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let v = match &map[k] {
            Value::Object(o) => o.get("value").cloned().unwrap_or(Value::Null),
            v => v.clone(),
        };
        let s = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if !s.is_empty() && !out.contains(&s) && out.len() < MAX_IDENTITIES {
            out.push(s);
        }
    }
    out
}

/// The answer Fides' two-way webhooks expect (`SecondPartyResponseFormat`:
/// `derived_identity`, `halt`), with what optout did beside it (Fides
/// ignores fields it does not know).
pub fn answer(plan: &FidesPlan, recorded: &Value) -> Value {
    json!({
        "derived_identity": null,
        "halt": false,
        "optout": {
            "privacy_request_id": plan.privacy_request_id,
            "action": plan.action,
            "skipped": plan.skipped,
            "ignored_data_uses": plan.ignored,
            "recorded": recorded,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fides")
            .join(name);
        std::fs::read(p).unwrap()
    }

    fn kinds(p: &FidesPlan) -> Vec<(String, String)> {
        p.events
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_string(),
                    e["subject"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn an_ai_training_opt_out_is_an_objection_per_identity() {
        let p = map(&fixture("consent_opt_out_pre.json")).unwrap();
        assert_eq!(
            p.privacy_request_id,
            "pri_6f1b3c8e-2f0a-4d7e-9a51-0c2d8e4b7a10"
        );
        assert_eq!(
            kinds(&p),
            vec![
                ("objection".into(), "Alice@Example.com".into()),
                ("objection".into(), "+31612345678".into())
            ]
        );
        let e = &p.events[0];
        assert_eq!(e["purposes"], json!(["ai-training"]));
        assert_eq!(e["at"], "2025-02-01T09:30:00.123456Z");
        assert_eq!(e["ref"], "fides:pri_6f1b3c8e-2f0a-4d7e-9a51-0c2d8e4b7a10");
        assert_eq!(p.ignored, vec!["marketing.advertising".to_string()]);
    }

    #[test]
    fn a_sub_use_opt_out_wins_over_an_opt_in() {
        let p = map(&fixture("consent_opt_out_subuse_gpc_post.json")).unwrap();
        let k = kinds(&p);
        assert_eq!(k.len(), 3, "{k:?}");
        assert!(k.iter().all(|(t, _)| t == "objection"));
        let subjects: Vec<&str> = k.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(subjects, ["bob@example.com", "crm-1042", "LY-77"]);
        // requested_at with +01:00 is stored in UTC.
        assert_eq!(p.events[0]["at"], "2025-03-04T16:00:00Z");
    }

    #[test]
    fn an_opt_in_withdraws_the_objection_and_consents() {
        let p = map(&fixture("consent_opt_in_pre.json")).unwrap();
        assert_eq!(
            kinds(&p),
            vec![
                ("objection_withdrawn".into(), "carol@example.com".into()),
                ("consent".into(), "carol@example.com".into())
            ]
        );
        assert_eq!(p.events[1]["method"], "single_opt_in");
        assert_eq!(p.events[1]["confirmed"], true);
        assert_eq!(p.ignored, vec!["essential".to_string()]);
    }

    #[test]
    fn erasure_access_and_pre_approval() {
        let p = map(&fixture("erasure_pre.json")).unwrap();
        assert_eq!(
            kinds(&p),
            vec![("erasure".into(), "dave@example.com".into())]
        );
        let p = map(&fixture("access_post.json")).unwrap();
        assert!(p.events.is_empty() && p.skipped.is_some());
        let p = map(&fixture("erasure_pre_approval.json")).unwrap();
        assert!(p.events.is_empty());
        assert!(p.skipped.unwrap().contains("pre_approval"));
    }

    #[test]
    fn bad_payloads_name_the_field() {
        let e = map(br#"{"identity":{}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("privacy_request_id"));
        let e = map(br#"{"privacy_request_id":"p","policy_action":"erasure","timestamp":"x","identity":{"email":"a@b"}}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("timestamp"));
        let e = map(br#"{"privacy_request_id":"p","policy_action":"erasure","timestamp":"2025-01-01T00:00:00","identity":{}}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("identity"));
        // The naive timestamp was read as UTC.
        let p = map(br#"{"privacy_request_id":"p","policy_action":"erasure","timestamp":"2025-01-01T00:00:00","identity":{"email":"a@b"}}"#)
            .unwrap();
        assert_eq!(p.events[0]["at"], "2025-01-01T00:00:00Z");
    }

    #[test]
    fn only_train_ai_system_and_its_sub_uses_count() {
        assert!(is_ai_training("train_ai_system"));
        assert!(is_ai_training("train_ai_system.fine_tuning"));
        assert!(!is_ai_training("train_ai_systems"));
        assert!(!is_ai_training("marketing.train_ai_system"));
    }
}
