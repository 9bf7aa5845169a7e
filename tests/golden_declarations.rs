//! A golden ledger holding `Declare` entries (entry index 5) and an index
//! snapshot in the `OPTIDX02` layout, checked into
//! tests/fixtures/ledger-declare-v1: this build must open it, trust its
//! snapshot, and give the same answers byte for byte. Regenerate
//! deliberately with `OPTOUT_REGEN_FIXTURES=1 cargo test --test
//! golden_declarations` when the format changes.

use std::path::{Path, PathBuf};

use optout::{jsonl, Ledger, LedgerOptions, SubjectKeyer, Timestamp};

mod common;
use common::copy_dir;

const SECRET: [u8; 32] = [0x24; 32];
/// The manifest digest for `ads` at the head, as computed when the fixture was made.
const GOLDEN_DIGEST: &str = "4c49bf4cf2c0ed457f93afbb6fc13a93d39f65baee53601c4b2e12a84d7b60c0";
/// The same manifest in format 3 (with each shard's row end).
const GOLDEN_DIGEST_V3: &str = "f3b14d36423191dad6e7c930cce607fc528c402fba920530c2459f75527d6cbc";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-declare-v1")
}

const RECORDS: &str = r#"{"dataset":"crm","shard":"c0","row":0,"subjects":["ann@example.com"],"source":"crm.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}
{"dataset":"crm","shard":"c0","row":1,"subjects":["ben@example.com"],"source":"crm.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}"#;

const EVENTS: &str = r#"{"type":"objection","subject":"ann@example.com","at":"2025-01-01T00:00:00Z","purposes":["ads"],"ref":"T-1"}
{"type":"objection","subject":"ben@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#;

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

fn build(path: &Path) {
    let keyer = SubjectKeyer::from_secret(SECRET);
    let opts = LedgerOptions {
        ledger_id: Some(*b"golden-declare-1"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l =
        Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), opts).unwrap();
    l.add_purpose("ads", Some("ad targeting")).unwrap();
    l.ingest(jsonl::parse_records(RECORDS.as_bytes(), "records", &keyer).unwrap())
        .unwrap();
    l.apply(jsonl::parse_events(EVENTS.as_bytes(), "events", &keyer).unwrap())
        .unwrap();
    l.snapshot().unwrap();
    l.add_purpose("research", None).unwrap();
}

#[test]
fn golden_declarations_open_and_answer_the_same() {
    let path = fixture();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let l = common::golden_fixture(&path, &keyer, build, |l| {
        let d = l.manifest(&l.query(None, "ads", at()).unwrap()).unwrap();
        format!("set GOLDEN_DIGEST = \"{}\"", d.digest_hex())
    });
    assert!(l.snapshot_note().is_none(), "the OPTIDX02 snapshot is used");
    let got: Vec<(String, Option<u64>, Option<String>, u64)> = l
        .purposes()
        .into_iter()
        .map(|p| (p.name, p.declared_at.map(|s| s.0), p.description, p.events))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ai-training".into(), Some(2), None, 1),
            ("ads".into(), Some(3), Some("ad targeting".into()), 1),
            ("research".into(), Some(7), None, 0),
        ]
    );
    let m = l.manifest(&l.query(None, "ads", at()).unwrap()).unwrap();
    // GOLDEN_DIGEST was sealed in manifest format 2; encoded as format 2
    // (no row ends) this build's manifest has exactly those bytes.
    let mut v2 = m.clone();
    v2.version = 2;
    assert_eq!(v2.digest_hex(), GOLDEN_DIGEST);
    assert_eq!(m.digest_hex(), GOLDEN_DIGEST_V3);
    assert_eq!(
        m.shard("crm", "c0")
            .unwrap()
            .excluded
            .iter()
            .collect::<Vec<u32>>(),
        vec![0]
    );
    drop(l);
    // A writer of this build appends to a copy: an undeclared purpose is
    // still refused, a re-applied event is unchanged.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    copy_dir(&path, &copy);
    let mut w = Ledger::open(&copy, Some(keyer.clone())).unwrap();
    let evs = jsonl::parse_events(EVENTS.as_bytes(), "events", &keyer).unwrap();
    let s = w.apply_with(evs, optout::ApplyOptions::default()).unwrap();
    assert_eq!((s.applied, s.unchanged), (0, 2));
    let typo = EVENTS.replace("\"ads\"", "\"adz\"");
    let evs = jsonl::parse_events(typo.as_bytes(), "events", &keyer).unwrap();
    assert!(w.apply(evs).is_err());
}
