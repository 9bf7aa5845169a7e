//! Which tables optout may write deletion vectors into, and the protocol
//! and metadata changes that make a table accept them.

use serde_json::{Map, Value};

/// Writer features whose rules a commit of `remove` + `add`-with-DV
/// actions (no new data, no schema change) respects by construction.
const COMPATIBLE_WRITER_FEATURES: &[&str] = &[
    "appendOnly", // checked: refused when delta.appendOnly=true
    "invariants",
    "checkConstraints",
    "generatedColumns",
    "allowColumnDefaults",
    "changeDataFeed", // checked: refused when delta.enableChangeDataFeed=true
    "columnMapping",
    "identityColumns",
    "deletionVectors",
    "timestampNtz",
    "domainMetadata",
    "v2Checkpoint",
    "vacuumProtocolCheck",
    "typeWidening",
    "typeWidening-preview",
    "variantType",
    "variantType-preview",
    "clustering",
    // The re-added file keeps its baseRowId and defaultRowCommitVersion.
    "rowTracking",
];

/// Features implied by a legacy writer version (PROTOCOL.md, "Writer
/// Version Requirements"), which an upgrade to version 7 must list.
fn legacy_writer_features(w: u64) -> Vec<&'static str> {
    let mut f = Vec::new();
    if w >= 2 {
        f.extend(["appendOnly", "invariants"]);
    }
    if w >= 3 {
        f.push("checkConstraints");
    }
    if w >= 4 {
        f.extend(["changeDataFeed", "generatedColumns"]);
    }
    if w >= 5 {
        f.push("columnMapping");
    }
    if w >= 6 {
        f.push("identityColumns");
    }
    f
}

fn features(p: &Map<String, Value>, key: &str) -> Vec<String> {
    p.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn version(p: &Map<String, Value>, key: &str) -> Result<u64, String> {
    p.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("protocol.{key} missing or not a number"))
}

/// Checks that optout may write to a table with this protocol and table
/// configuration; the error says why not.
pub fn check_writable(
    protocol: &Map<String, Value>,
    config: &Map<String, Value>,
) -> Result<(), String> {
    let r = version(protocol, "minReaderVersion")?;
    let w = version(protocol, "minWriterVersion")?;
    if r > 3 || w > 7 {
        return Err(format!(
            "the table needs reader version {r} / writer version {w}; optout writes up to 3 / 7"
        ));
    }
    for f in features(protocol, "writerFeatures") {
        if !COMPATIBLE_WRITER_FEATURES.contains(&f.as_str()) {
            return Err(format!(
                "the table uses the writer feature `{f}`, which optout's deletion-vector commits do not support"
            ));
        }
    }
    let on = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    if on("delta.appendOnly") {
        return Err(
            "the table is append-only (delta.appendOnly=true): rows cannot be deleted".into(),
        );
    }
    if on("delta.enableChangeDataFeed") {
        return Err(
            "the table has the change data feed on (delta.enableChangeDataFeed=true); optout does \
             not write change data files, so it refuses to delete rows silently from the feed"
                .into(),
        );
    }
    Ok(())
}

/// The protocol action to commit so the table supports deletion vectors,
/// or `None` when it already does. Keeps every existing feature and lists
/// those a legacy version implied.
pub fn upgraded(protocol: &Map<String, Value>) -> Result<Option<Map<String, Value>>, String> {
    let r = version(protocol, "minReaderVersion")?;
    let w = version(protocol, "minWriterVersion")?;
    let mut rf = features(protocol, "readerFeatures");
    let mut wf = features(protocol, "writerFeatures");
    let dv = "deletionVectors".to_string();
    if r == 3 && w == 7 && rf.contains(&dv) && wf.contains(&dv) {
        return Ok(None);
    }
    if r == 2 {
        rf.push("columnMapping".into());
    }
    if w < 7 {
        wf.extend(legacy_writer_features(w).into_iter().map(str::to_string));
    }
    rf.push(dv.clone());
    wf.push(dv);
    for v in [&mut rf, &mut wf] {
        v.sort();
        v.dedup();
    }
    let mut p = Map::new();
    p.insert("minReaderVersion".into(), 3.into());
    p.insert("minWriterVersion".into(), 7.into());
    p.insert("readerFeatures".into(), rf.into());
    p.insert("writerFeatures".into(), wf.into());
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn upgrades_legacy_protocols_keeping_their_features() {
        let p = upgraded(&obj(json!({"minReaderVersion":1,"minWriterVersion":2})))
            .unwrap()
            .unwrap();
        assert_eq!(p["minReaderVersion"], 3);
        assert_eq!(p["minWriterVersion"], 7);
        assert_eq!(p["readerFeatures"], json!(["deletionVectors"]));
        assert_eq!(
            p["writerFeatures"],
            json!(["appendOnly", "deletionVectors", "invariants"])
        );
        let p = upgraded(&obj(json!({"minReaderVersion":2,"minWriterVersion":5})))
            .unwrap()
            .unwrap();
        assert_eq!(
            p["readerFeatures"],
            json!(["columnMapping", "deletionVectors"])
        );
        assert!(p["writerFeatures"]
            .as_array()
            .unwrap()
            .contains(&json!("columnMapping")));
        let p = upgraded(&obj(json!({"minReaderVersion":3,"minWriterVersion":7,
            "readerFeatures":["timestampNtz"],"writerFeatures":["timestampNtz","domainMetadata"]})))
        .unwrap()
        .unwrap();
        assert_eq!(
            p["readerFeatures"],
            json!(["deletionVectors", "timestampNtz"])
        );
        assert_eq!(
            p["writerFeatures"],
            json!(["deletionVectors", "domainMetadata", "timestampNtz"])
        );
        let done = json!({"minReaderVersion":3,"minWriterVersion":7,
            "readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]});
        assert!(upgraded(&obj(done)).unwrap().is_none());
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let cfg = Map::new();
        let p = obj(
            json!({"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":[],"writerFeatures":["icebergCompatV2"]}),
        );
        assert!(check_writable(&p, &cfg)
            .unwrap_err()
            .contains("icebergCompatV2"));
        let p = obj(json!({"minReaderVersion":1,"minWriterVersion":2}));
        assert!(check_writable(&p, &cfg).is_ok());
        let ao = obj(json!({"delta.appendOnly":"true"}));
        assert!(check_writable(&p, &ao).unwrap_err().contains("append-only"));
        let cdf = obj(json!({"delta.enableChangeDataFeed":"true"}));
        assert!(check_writable(&p, &cdf)
            .unwrap_err()
            .contains("change data feed"));
        let p = obj(json!({"minReaderVersion":4,"minWriterVersion":7}));
        assert!(check_writable(&p, &cfg).is_err());
    }
}
