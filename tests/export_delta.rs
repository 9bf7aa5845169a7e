//! `export::delta`: deletion vectors committed to a Delta table built by
//! hand (the log is what matters here; `examples/python/tests/test_delta.py`
//! reads real Parquet tables back with Polars and delta-rs).
//!
//! The oracle is independent of the export code: the expected deleted rows
//! are computed from the manifest (and the pre-existing vectors the test
//! wrote itself), and the table is read back by replaying its log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optout::export::delta::{self, dv, log, DeltaOptions};
use optout::export::ExportError;
use optout::{
    engine, jsonl, Entry, Index, Manifest, Policy, Purpose, Query, Seq, SubjectKeyer, Timestamp,
};
use roaring::RoaringTreemap;
use serde_json::{json, Value};

const FILES: &[(&str, u64)] = &[
    ("part-0.parquet", 40),
    ("part-1.parquet", 30),
    ("year=2024/part 2.parquet", 20),
];

/// A manifest over `FILES` in dataset `forum`: row r of file f is by
/// subject `u{(r + f) % 7}`; u1 and u4 object.
fn manifest_for(files: &[(&str, u64)]) -> Manifest {
    let keyer = SubjectKeyer::from_secret([7; 32]);
    let mut recs = String::new();
    for (f, (name, n)) in files.iter().enumerate() {
        for r in 0..*n {
            recs.push_str(&format!(
                r#"{{"dataset":"forum","shard":"{name}","row":{r},"subjects":["u{}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}"#,
                (r as usize + f) % 7
            ));
            recs.push('\n');
        }
    }
    let events = r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}
{"type":"objection","subject":"u4@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#;
    let mut index = Index::new();
    index
        .apply(
            Seq(1),
            &Entry::Records(jsonl::parse_records(recs.as_bytes(), "records", &keyer).unwrap()),
        )
        .unwrap();
    for (i, e) in jsonl::parse_events(events.as_bytes(), "events", &keyer)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        index.apply(Seq(2 + i as u64), &Entry::Event(e)).unwrap();
    }
    let q = Query {
        policy: Policy::default_for(Purpose::new("ai-training").unwrap()),
        seq: index.seq(),
        at: Timestamp::parse("2025-06-01T00:00:00Z").unwrap(),
        datasets: vec![],
    };
    let ex = engine::evaluate(&index, &q);
    Manifest::build(&index, &q, &ex, [1; 16], [2; 32])
}

/// The rows the manifest expects deleted, recomputed from the rule above.
fn expected(files: &[(&str, u64)]) -> BTreeMap<String, RoaringTreemap> {
    files
        .iter()
        .enumerate()
        .map(|(f, (name, n))| {
            let rows = (0..*n)
                .filter(|r| matches!((*r as usize + f) % 7, 1 | 4))
                .collect();
            (name.to_string(), rows)
        })
        .collect()
}

fn encode_path(p: &str) -> String {
    p.replace(' ', "%20")
}

/// Writes version 0 of a table: protocol (1, 2), metadata, one add per file.
fn make_table(dir: &Path, files: &[(&str, u64)]) {
    std::fs::create_dir_all(dir.join("_delta_log")).unwrap();
    let mut lines = vec![
        json!({"commitInfo":{"operation":"CREATE TABLE"}}),
        json!({"protocol":{"minReaderVersion":1,"minWriterVersion":2}}),
        json!({"metaData":{"id":"t","format":{"provider":"parquet","options":{}},
            "schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}),
    ];
    for (name, n) in files {
        let full = dir.join(name);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, b"PAR1 not really PAR1").unwrap();
        lines.push(json!({"add":{"path":encode_path(name),"partitionValues":{},"size":20,
            "modificationTime":1,"dataChange":true,
            "stats":format!("{{\"numRecords\":{n},\"minValues\":{{}},\"maxValues\":{{}},\"nullCount\":{{}}}}")}}));
    }
    write_commit(dir, 0, &lines);
}

fn write_commit(dir: &Path, v: u64, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(log::commit_path(dir, v), text).unwrap();
}

fn actions(dir: &Path, v: u64) -> Vec<Value> {
    std::fs::read_to_string(log::commit_path(dir, v))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under `dir` with its bytes.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn export_commits_exactly_the_manifest_rows() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let m = manifest_for(FILES);
    // inline_max_bytes 0: every vector in the DV file.
    let opts = DeltaOptions {
        inline_max_bytes: 0,
        ..DeltaOptions::default()
    };
    let s = delta::export(d.path(), &m, &opts).unwrap();
    let want = expected(FILES);
    assert_eq!(s.version, Some(1));
    assert_eq!(s.files_changed, 3);
    assert_eq!(s.rows_added, want.values().map(|r| r.len()).sum::<u64>());
    assert!(s.dv_file.as_ref().unwrap().exists());
    assert_eq!(delta::deleted_rows(d.path()).unwrap(), want);
    let acts = actions(d.path(), 1);
    assert!(acts[0]["commitInfo"]["optout"]["manifestDigest"] == m.digest_hex());
    let p = acts.iter().find_map(|a| a.get("protocol")).unwrap();
    assert_eq!(p["minReaderVersion"], 3);
    assert!(p["readerFeatures"]
        .as_array()
        .unwrap()
        .contains(&json!("deletionVectors")));
    assert!(p["writerFeatures"]
        .as_array()
        .unwrap()
        .contains(&json!("invariants")));
    let md = acts.iter().find_map(|a| a.get("metaData")).unwrap();
    assert_eq!(md["configuration"]["delta.enableDeletionVectors"], "true");
    for a in acts.iter().filter_map(|a| a.get("add")) {
        assert_eq!(a["deletionVector"]["storageType"], "u");
        let stats: Value = serde_json::from_str(a["stats"].as_str().unwrap()).unwrap();
        assert_eq!(stats["tightBounds"], false);
        assert!(stats["numRecords"].as_u64().is_some());
    }
    assert_eq!(acts.iter().filter(|a| a.get("remove").is_some()).count(), 3);
}

#[test]
fn small_vectors_go_inline() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let opts = DeltaOptions {
        inline_max_bytes: 1 << 20,
        ..DeltaOptions::default()
    };
    let s = delta::export(d.path(), &manifest_for(FILES), &opts).unwrap();
    assert!(s.dv_file.is_none());
    for a in actions(d.path(), 1).iter().filter_map(|a| a.get("add")) {
        assert_eq!(a["deletionVector"]["storageType"], "i");
        assert!(a["deletionVector"].get("offset").is_none());
    }
    assert_eq!(delta::deleted_rows(d.path()).unwrap(), expected(FILES));
}

#[test]
fn second_export_is_a_no_op() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let m = manifest_for(FILES);
    delta::export(d.path(), &m, &DeltaOptions::default()).unwrap();
    let before = listing(d.path());
    let s = delta::export(d.path(), &m, &DeltaOptions::default()).unwrap();
    assert_eq!(s.version, None);
    assert_eq!(s.read_version, 1);
    assert_eq!(s.files_changed, 0);
    assert_eq!(listing(d.path()), before);
}

#[test]
fn existing_vectors_are_merged_not_dropped() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    // Version 1, written by "another engine": part-0 has rows {0, 2, 39}
    // deleted in a DV file under a random prefix; part-1 has {5} by
    // absolute path; the protocol already supports deletion vectors.
    let uuid = dv::random_uuid().unwrap();
    let a = dv::encode_bitmap(&[0u64, 2, 39].into_iter().collect());
    let b = dv::encode_bitmap(&[5u64].into_iter().collect());
    let (bytes, offs) = dv::encode_file(&[a.clone(), b.clone()]);
    std::fs::create_dir(d.path().join("zq")).unwrap();
    let dvpath = d.path().join("zq").join(dv::file_name(&uuid));
    std::fs::write(&dvpath, &bytes).unwrap();
    let mut da = dv::Descriptor::in_file(&uuid, offs[0], a.len(), 3);
    da.path_or_inline_dv = format!("zq{}", da.path_or_inline_dv);
    let db = dv::Descriptor {
        storage_type: "p".into(),
        path_or_inline_dv: format!("file://{}", dvpath.display()),
        offset: Some(offs[1].into()),
        size_in_bytes: b.len() as u64,
        cardinality: 1,
    };
    let add = |name: &str, n: u64, d: &dv::Descriptor| {
        json!({"add":{"path":name,"partitionValues":{},"size":20,"modificationTime":1,"dataChange":true,
            "stats":format!("{{\"numRecords\":{n}}}"),"deletionVector":d}})
    };
    write_commit(
        d.path(),
        1,
        &[
            json!({"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}),
            json!({"remove":{"path":"part-0.parquet","dataChange":true}}),
            add("part-0.parquet", 40, &da),
            json!({"remove":{"path":"part-1.parquet","dataChange":true}}),
            add("part-1.parquet", 30, &db),
        ],
    );
    let s = delta::export(d.path(), &manifest_for(FILES), &DeltaOptions::default()).unwrap();
    assert_eq!(s.version, Some(2));
    let mut want = expected(FILES);
    want.get_mut("part-0.parquet")
        .unwrap()
        .extend([0u64, 2, 39]);
    want.get_mut("part-1.parquet").unwrap().insert(5);
    assert_eq!(delta::deleted_rows(d.path()).unwrap(), want);
    let acts = actions(d.path(), 2);
    // No protocol change was needed; the removes name the old logical files.
    assert!(acts.iter().all(|a| a.get("protocol").is_none()));
    let removes: Vec<&Value> = acts.iter().filter_map(|a| a.get("remove")).collect();
    let r0 = removes
        .iter()
        .find(|r| r["path"] == "part-0.parquet")
        .unwrap();
    assert_eq!(r0["deletionVector"], serde_json::to_value(&da).unwrap());
}

#[test]
fn mismatched_tables_are_refused_and_untouched() {
    let m = manifest_for(FILES);
    let cases: Vec<(Vec<(&str, u64)>, &str)> = vec![
        // A shard the table does not have.
        (
            vec![("part-0.parquet", 40), ("part-1.parquet", 30)],
            "no such file",
        ),
        // A file the manifest does not cover.
        ([FILES, &[("extra.parquet", 5)]].concat(), "not a shard"),
        // A file with fewer rows than the manifest excludes.
        (
            vec![
                ("part-0.parquet", 40),
                ("part-1.parquet", 3),
                ("year=2024/part 2.parquet", 20),
            ],
            "the file has 3 rows",
        ),
    ];
    for (files, needle) in cases {
        let d = tempfile::tempdir().unwrap();
        make_table(d.path(), &files);
        let before = listing(d.path());
        let e = delta::export(d.path(), &m, &DeltaOptions::default()).unwrap_err();
        assert!(matches!(e, ExportError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
        assert!(e.to_string().contains("nothing was written"), "{e}");
        assert_eq!(listing(d.path()), before, "{needle}");
    }
    // Unknown files can be allowed explicitly.
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), &[FILES, &[("extra.parquet", 5)]].concat());
    let opts = DeltaOptions {
        allow_unknown_files: true,
        ..DeltaOptions::default()
    };
    assert_eq!(delta::export(d.path(), &m, &opts).unwrap().version, Some(1));
    // Missing stats: refused, nothing written.
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let text = std::fs::read_to_string(log::commit_path(d.path(), 0)).unwrap();
    let stripped: Vec<Value> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(a) = v.get_mut("add") {
                a.as_object_mut().unwrap().remove("stats");
            }
            v
        })
        .collect();
    write_commit(d.path(), 0, &stripped);
    let before = listing(d.path());
    let e = delta::export(d.path(), &m, &DeltaOptions::default()).unwrap_err();
    assert!(e.to_string().contains("numRecords"), "{e}");
    assert_eq!(listing(d.path()), before);
}

#[test]
fn a_concurrent_commit_to_the_same_files_is_reported_not_overwritten() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let plan = delta::plan(d.path(), &manifest_for(FILES), &DeltaOptions::default()).unwrap();
    // Another writer commits version 1 first, rewriting part-0.
    let theirs = vec![
        json!({"remove":{"path":"part-0.parquet","dataChange":false}}),
        json!({"add":{"path":"part-0.parquet","partitionValues":{},"size":20,"modificationTime":2,"dataChange":false,"stats":"{\"numRecords\":40}"}}),
    ];
    write_commit(d.path(), 1, &theirs);
    let before = listing(d.path());
    let e = plan.commit().unwrap_err();
    assert!(matches!(e, ExportError::Conflict { version: 1, .. }), "{e}");
    assert!(e.to_string().contains("part-0.parquet"), "{e}");
    // Their commit is intact, nothing else was left behind (no DV file).
    assert_eq!(listing(d.path()), before);
    assert_eq!(actions(d.path(), 1), theirs);
}

#[test]
fn a_concurrent_commit_elsewhere_is_retried() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), &[FILES, &[("other.parquet", 9)]].concat());
    let opts = DeltaOptions {
        allow_unknown_files: true,
        ..DeltaOptions::default()
    };
    let plan = delta::plan(d.path(), &manifest_for(FILES), &opts).unwrap();
    // Another writer removes a file this export does not touch.
    let theirs = vec![json!({"remove":{"path":"other.parquet","dataChange":true}})];
    write_commit(d.path(), 1, &theirs);
    let s = plan.commit().unwrap();
    assert_eq!((s.version, s.retries, s.read_version), (Some(2), 1, 1));
    assert_eq!(actions(d.path(), 1), theirs);
    assert_eq!(delta::deleted_rows(d.path()).unwrap(), expected(FILES));
}

#[test]
fn the_dataset_must_be_named_when_ambiguous() {
    let d = tempfile::tempdir().unwrap();
    make_table(d.path(), FILES);
    let mut m = manifest_for(FILES);
    let mut other = m.shards[0].clone();
    other.dataset = "zz".into();
    m.shards.push(other);
    let e = delta::export(d.path(), &m, &DeltaOptions::default()).unwrap_err();
    assert!(e.to_string().contains("several datasets"), "{e}");
    let opts = DeltaOptions {
        dataset: Some("nope".into()),
        ..DeltaOptions::default()
    };
    assert!(delta::export(d.path(), &m, &opts)
        .unwrap_err()
        .to_string()
        .contains("no dataset"));
    let opts = DeltaOptions {
        dataset: Some("forum".into()),
        ..DeltaOptions::default()
    };
    assert_eq!(delta::export(d.path(), &m, &opts).unwrap().version, Some(1));
}
