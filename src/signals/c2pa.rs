//! C2PA / CAWG training-and-mining assertions in an extracted manifest
//! store (the JSON `c2patool` prints): `c2pa.training-mining` or
//! `cawg.training-mining` with `entries` such as `c2pa.ai_training`,
//! `c2pa.ai_generative_training`, `c2pa.data_mining`, `c2pa.ai_inference`,
//! each `{"use": "allowed" | "notAllowed" | "constrained"}`.
//!
//! Only the active manifest speaks for the asset (ingredients' manifests
//! describe other assets); without `active_manifest` every manifest is
//! read. Training is reserved when an entry for training, generative
//! training or data mining is `notAllowed`, or `constrained` (the
//! constraint is free text we cannot check: reserved, its
//! `constraint_info` kept as evidence). Inference-only entries do not
//! reserve training. A training-mining assertion without readable entries,
//! an entry without a known `use`, or a store that is not JSON is
//! unparsable.

use serde_json::Value;

use super::Verdict;

const TRAINING: &[&str] = &["ai_training", "ai_generative_training", "data_mining"];

fn is_training_mining(label: &str) -> bool {
    ["c2pa.training-mining", "cawg.training-mining"]
        .iter()
        .any(|l| {
            label == *l
                || label
                    .strip_prefix(l)
                    .is_some_and(|r| r.starts_with(".v") || r.starts_with("__"))
        })
}

fn assertions_of(m: &Value) -> Vec<&Value> {
    m.get("assertions")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The manifests that speak for the asset.
fn manifests(store: &Value) -> Result<Vec<&Value>, String> {
    if store.get("assertions").is_some() {
        return Ok(vec![store]);
    }
    let Some(ms) = store.get("manifests") else {
        return Err("neither a manifest store (manifests) nor a manifest (assertions)".into());
    };
    let all: Vec<&Value> = match ms {
        Value::Object(o) => o.values().collect(),
        Value::Array(a) => a.iter().collect(),
        _ => return Err("manifests is neither an object nor an array".into()),
    };
    match store.get("active_manifest").and_then(Value::as_str) {
        Some(label) => {
            let hit = match ms {
                Value::Object(o) => o.get(label),
                _ => all
                    .iter()
                    .copied()
                    .find(|m| m.get("label").and_then(Value::as_str) == Some(label)),
            };
            hit.map(|m| vec![m])
                .ok_or_else(|| format!("active_manifest {label:?} is not in the store"))
        }
        None => Ok(all),
    }
}

/// The verdict of a manifest store (a JSON value, or JSON text in a string).
///
/// ```
/// use optout::signals::c2pa;
/// let store = serde_json::json!({"active_manifest": "m1", "manifests": {"m1": {"assertions": [
///     {"label": "c2pa.training-mining", "data": {"entries": {"c2pa.ai_training": {"use": "notAllowed"}}}}]}}});
/// assert!(c2pa::verdict(&store).is_reserved());
/// ```
pub fn verdict(store: &Value) -> Verdict {
    let parsed;
    let store = match store {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(e) => return Verdict::Unparsable(format!("C2PA manifest store is not JSON: {e}")),
        },
        v => v,
    };
    let ms = match manifests(store) {
        Ok(m) => m,
        Err(e) => return Verdict::Unparsable(format!("C2PA manifest store: {e}")),
    };
    let mut reserved = None;
    for m in ms {
        for a in assertions_of(m) {
            let Some(label) = a.get("label").and_then(Value::as_str) else {
                continue;
            };
            if !is_training_mining(label) {
                continue;
            }
            let Some(entries) = a
                .get("data")
                .and_then(|d| d.get("entries"))
                .and_then(Value::as_object)
            else {
                return Verdict::Unparsable(format!("{label}: no entries object"));
            };
            for (k, e) in entries {
                let name = k.split_once('.').map_or(k.as_str(), |(_, n)| n);
                let use_ = e.get("use").and_then(Value::as_str);
                let detail = match use_ {
                    Some("allowed") => continue,
                    Some("notAllowed") => format!("{label}: {k} notAllowed"),
                    Some("constrained") => format!(
                        "{label}: {k} constrained ({})",
                        e.get("constraint_info")
                            .and_then(Value::as_str)
                            .unwrap_or("no constraint_info")
                    ),
                    other => {
                        return Verdict::Unparsable(format!(
                            "{label}: {k}: use must be allowed, notAllowed or constrained, got {}",
                            other.map_or_else(
                                || e.get("use").map_or("nothing".into(), |v| v.to_string()),
                                |s| format!("{s:?}")
                            )
                        ))
                    }
                };
                if TRAINING.contains(&name) && reserved.is_none() {
                    reserved = Some(detail);
                }
            }
        }
    }
    reserved.map_or(Verdict::Open, Verdict::Reserved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(entries: Value, label: &str) -> Value {
        json!({
            "active_manifest": "urn:uuid:active",
            "manifests": {
                "urn:uuid:ingredient": {"assertions": [
                    {"label": "c2pa.training-mining", "data": {"entries": {"c2pa.ai_training": {"use": "notAllowed"}}}}]},
                "urn:uuid:active": {"claim_generator": "Camera/1.0", "assertions": [
                    {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created"}]}},
                    {"label": label, "data": {"entries": entries}}]}
            }
        })
    }

    #[test]
    fn uses() {
        let r = |e: Value| verdict(&store(e, "c2pa.training-mining"));
        assert!(r(json!({"c2pa.ai_generative_training": {"use": "notAllowed"}})).is_reserved());
        assert!(r(json!({"c2pa.data_mining": {"use": "constrained", "constraint_info": "license at https://x"}})).is_reserved());
        // The ingredient's notAllowed is not about this asset.
        assert_eq!(
            r(json!({"c2pa.ai_training": {"use": "allowed"}})),
            Verdict::Open
        );
        assert_eq!(
            r(json!({"c2pa.ai_inference": {"use": "notAllowed"}})),
            Verdict::Open
        );
        assert!(matches!(
            r(json!({"c2pa.ai_training": {"use": "no"}})),
            Verdict::Unparsable(_)
        ));
        assert!(matches!(
            r(json!({"c2pa.ai_training": "notAllowed"})),
            Verdict::Unparsable(_)
        ));
        let cawg = verdict(&store(
            json!({"cawg.ai_training": {"use": "notAllowed"}}),
            "cawg.training-mining",
        ));
        assert!(cawg.is_reserved());
    }

    #[test]
    fn broken_stores() {
        assert!(matches!(
            verdict(&json!("{not json")),
            Verdict::Unparsable(_)
        ));
        assert!(matches!(
            verdict(&json!({"foo": 1})),
            Verdict::Unparsable(_)
        ));
        assert!(matches!(
            verdict(&json!({"active_manifest": "x", "manifests": {}})),
            Verdict::Unparsable(_)
        ));
        let no_entries = json!({"assertions": [{"label": "c2pa.training-mining", "data": {}}]});
        assert!(matches!(verdict(&no_entries), Verdict::Unparsable(_)));
        assert_eq!(verdict(&json!({"manifests": {}})), Verdict::Open);
    }
}
