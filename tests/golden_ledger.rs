//! A golden v1 ledger (entries of every kind, a snapshot, entries after it)
//! checked into tests/fixtures/ledger-entries-v1. Opening it with this build
//! must give the same answers, byte for byte. Regenerate deliberately with
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test golden_ledger` when the format
//! changes (and bump the format version).

use std::path::{Path, PathBuf};

use optout::{jsonl, Ledger, LedgerOptions, Query, Seq, SubjectKeyer, Timestamp};

mod common;
use common::copy_dir;

const SECRET: [u8; 32] = [0x42; 32];
/// The manifest digest at the head, in manifest format 3 (with each
/// shard's row end).
const GOLDEN_DIGEST: &str = "ccdc436ca93a449a2d51cbead970ca97599708d96ed369fcb4cd0acf0b39a003";
/// The same manifest in manifest format version 2, as computed when the
/// fixture was made (before the row ends).
const GOLDEN_DIGEST_V2: &str = "1f128417ef02b8eb00a48828fcae3be0f9aa027ce8bbecf00b9bf6df05d420c1";
/// The same manifest in manifest format version 1 (before reason 8,
/// `signal_unparsable`): the digest the fixture had then.
const GOLDEN_DIGEST_V1: &str = "215a4ff622c1c7ef6f2a7fb2f42ab85308a0bb4adfc860e55e2077f538e50560";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-entries-v1")
}

/// The format 3 snapshot a writer of this version adds to a copy of the
/// golden ledger (at its head).
fn snapshot_v3_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-v3")
}

/// The golden format 3 snapshot, put into a copy of the golden ledger (with
/// a head file, as a writer leaves it), is trusted on open and gives the
/// golden answers: snapshots of format 3 written by this version keep
/// opening.
#[test]
fn golden_v3_snapshot_opens_in_place_and_answers_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    copy_dir(&fixture(), &copy);
    let keyer = SubjectKeyer::from_secret(SECRET);
    // A writer's open adds the head file (and nothing else: the log needs
    // no snapshot, it is short).
    drop(Ledger::open(&copy, Some(keyer.clone())).unwrap());
    for f in std::fs::read_dir(snapshot_v3_fixture()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.join("snap").join(f.file_name())).unwrap();
    }
    let l = Ledger::open_read_only(&copy, Some(keyer.clone())).unwrap();
    assert!(
        l.notes().iter().all(|n| !n.contains("snapshot")),
        "the format 3 snapshot is used: {:?}",
        l.notes()
    );
    let head = l.index().seq();
    assert_eq!(
        l.manifest(&query(Seq(head.0 - 1))).unwrap().digest_hex(),
        GOLDEN_DIGEST
    );
    // It is what a replay of the log gives, section for section.
    let v = optout::verify_ledger_with(&optout::storage::FsIo::new(), &copy, Some(&keyer), None)
        .unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.snapshot_checked, Some(head));
}

const RECORDS: &str = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["alice@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest","categories":["text"],"visibility":"public","jurisdiction":"EU","license":"CC-BY-4.0","key":"post/1"}
{"dataset":"forum","shard":"p0","row":1,"subjects":["bob@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest","categories":["text"],"visibility":"public","key":"post/2","content_hash":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
{"dataset":"meet","shard":"m0","row":0,"subjects":["ann@corp.com","ben@corp.com","admin@corp.com"],"source":"zoom","collected_at":"2024-04-01T09:00:00Z","basis":"consent","categories":["audio"],"visibility":"private"}
{"dataset":"meet","shard":"t0","row":0,"subjects":["ben@corp.com"],"source":"zoom","collected_at":"2024-04-01T09:00:00Z","basis":"legitimate_interest","categories":["telemetry"]}
{"dataset":"ads","shard":"a0","row":0,"subjects":["carol@example.com"],"source":"crm.example.com","collected_at":"2024-05-01T00:00:00Z","basis":"legitimate_interest","obtained_from":"dmp:acme"}"#;

const EVENTS: &str = r#"{"type":"consent","subject":"ann@corp.com","at":"2025-01-01T00:00:00Z","purposes":["*"],"method":"delegated","confirmed":true,"granted_by":"admin@corp.com"}
{"type":"consent","subject":"ben@corp.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"],"method":"double_opt_in","confirmed":true}
{"type":"consent_withdrawn","subject":"ben@corp.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}
{"type":"objection","subject":"alice@example.com","at":"2025-03-01T00:00:00Z","purposes":["ai-training"],"categories":["text"],"sources":["example.com"],"ref":"T-1"}
{"type":"objection_withdrawn","subject":"bob@example.com","at":"2025-03-01T00:00:00Z","purposes":["*"]}
{"type":"erasure","subject":"dave@example.com","at":"2025-03-02T00:00:00Z"}
{"type":"restriction","subject":"carol@example.com","at":"2025-03-03T00:00:00Z","until":"2025-04-01T00:00:00Z"}
{"type":"takedown","at":"2025-03-04T00:00:00Z","reason":"copyright","key":"post/2"}
{"type":"takedown","at":"2025-03-04T00:00:00Z","content_hash":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
{"type":"takedown","at":"2025-03-04T00:00:00Z","record":{"dataset":"forum","shard":"p0","row":7}}
{"type":"source_optout","source":"dmp:acme","at":"2025-03-05T00:00:00Z","purposes":["ai-training"],"signal":"tdmrep"}"#;

fn query(seq: Seq) -> Query {
    let mut policy = optout::Policy::default_for(optout::Purpose::new("ai-training").unwrap());
    policy.accept_delegated_consent = true;
    policy.exclude_categories = vec!["telemetry".into()];
    Query {
        policy,
        seq,
        at: Timestamp::parse("2025-03-10T00:00:00Z").unwrap(),
        datasets: vec![],
    }
}

fn build(path: &Path) {
    let keyer = SubjectKeyer::from_secret(SECRET);
    let opts = LedgerOptions {
        ledger_id: Some(*b"golden-ledger-v1"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l =
        Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), opts).unwrap();
    l.ingest(jsonl::parse_records(RECORDS.as_bytes(), "records", &keyer).unwrap())
        .unwrap();
    let events = jsonl::parse_events(EVENTS.as_bytes(), "events", &keyer).unwrap();
    let (first, rest) = events.split_at(6);
    l.apply(first.to_vec()).unwrap();
    l.snapshot().unwrap();
    l.apply(rest.to_vec()).unwrap();
    let m = l.manifest(&query(l.index().seq())).unwrap();
    l.register_run(
        "run-1",
        "model-a",
        &m,
        Timestamp::parse("2025-03-11T00:00:00Z").unwrap(),
    )
    .unwrap();
}

#[test]
fn golden_v1_ledger_opens_and_answers_the_same() {
    let path = fixture();
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        build(&path);
        let _ = std::fs::remove_file(path.join("LOCK"));
        let l = Ledger::open_read_only(&path, None).unwrap();
        let d = l
            .manifest(&query(Seq(l.index().seq().0 - 1)))
            .unwrap()
            .digest_hex();
        panic!("fixture regenerated; set GOLDEN_DIGEST = \"{d}\" and re-run");
    }
    let v = optout::verify_ledger(&path).unwrap();
    assert!(v.is_clean(), "{v:?}");
    // Its snapshot (format 1) is never trusted, so not compared either;
    // it has no durable head file (an older ledger): both are notes.
    assert_eq!(v.snapshot_checked, None);
    assert_eq!(v.storage.notes.len(), 2, "{v:?}");
    let l = Ledger::open_read_only(&path, Some(SubjectKeyer::from_secret(SECRET))).unwrap();
    let head = l.index().seq();
    assert_eq!(head, Seq(1 + 1 + 11 + 1), "init, records, 11 events, run");
    // Written before purpose declarations: ai-training counts as declared.
    let purposes: Vec<(String, bool, u64)> = l
        .purposes()
        .into_iter()
        .map(|p| (p.name, p.implicit, p.events))
        .collect();
    assert_eq!(purposes, vec![("ai-training".to_string(), true, 4)]);
    let m = l.manifest(&query(Seq(head.0 - 1))).unwrap();
    // Written as format version 1, the manifest is byte for byte what
    // the builds before version 2 wrote: only the added reason changed.
    let mut v1 = m.clone();
    v1.version = 1;
    v1.header.counts.truncate(8);
    assert_eq!(v1.digest_hex(), GOLDEN_DIGEST_V1, "as manifest format 1");
    let mut v2 = m.clone();
    v2.version = 2;
    assert_eq!(v2.digest_hex(), GOLDEN_DIGEST_V2, "as manifest format 2");
    assert_eq!(
        m.digest_hex(),
        GOLDEN_DIGEST,
        "manifest at the golden ledger's last event"
    );
    let ex: Vec<(String, u32, Vec<&str>)> = m
        .shards
        .iter()
        .flat_map(|s| {
            s.excluded.iter().map(move |r| {
                (
                    s.shard.clone(),
                    r,
                    s.reasons_of(r).iter().map(|x| x.name()).collect(),
                )
            })
        })
        .collect();
    assert_eq!(
        ex,
        vec![
            ("a0".to_string(), 0, vec!["restriction", "source_optout"]),
            ("p0".to_string(), 0, vec!["objection"]),
            ("p0".to_string(), 1, vec!["takedown"]),
            (
                "m0".to_string(),
                0,
                vec!["consent_missing", "consent_withdrawn"]
            ),
            ("t0".to_string(), 0, vec!["filtered"]),
        ]
    );
    assert_eq!(l.index().runs().len(), 1);
    let report = optout::report::subject_report(
        &l,
        "alice@example.com",
        Timestamp::parse("2025-03-10T00:00:00Z").unwrap(),
    )
    .unwrap();
    assert_eq!(report.records.len(), 1);
    assert_eq!(report.records[0].license.as_deref(), Some("CC-BY-4.0"));
    drop(l);

    // A writer of this version upgrades a copy in place: a head file, an
    // authenticated snapshot; the answers stay the same.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    copy_dir(&path, &copy);
    let keyer = SubjectKeyer::from_secret(SECRET);
    let mut w = Ledger::open(&copy, Some(keyer.clone())).unwrap();
    assert!(
        w.notes()
            .iter()
            .any(|n| n.contains("created the durable head file")),
        "{:?}",
        w.notes()
    );
    let written = w.snapshot().unwrap();
    assert_eq!(
        w.manifest(&query(Seq(head.0 - 1))).unwrap().digest_hex(),
        GOLDEN_DIGEST
    );
    drop(w);
    // The snapshot this version writes is format 3, byte for byte the
    // golden one in tests/fixtures/snapshot-v3 (docs/FORMAT.md).
    let bytes = std::fs::read(&written).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 3);
    let golden = snapshot_v3_fixture().join(written.file_name().unwrap());
    // Regenerate (only with a deliberate, versioned format change):
    // `OPTOUT_REGEN_SNAPSHOT_V3=1 cargo test --test golden_ledger`.
    if std::env::var_os("OPTOUT_REGEN_SNAPSHOT_V3").is_some() {
        std::fs::create_dir_all(snapshot_v3_fixture()).unwrap();
        std::fs::write(&golden, &bytes).unwrap();
    }
    assert_eq!(
        bytes,
        std::fs::read(&golden).unwrap(),
        "the format 3 snapshot is the golden one"
    );
    let v = optout::verify_ledger_with(&optout::storage::FsIo::new(), &copy, Some(&keyer), None)
        .unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.snapshot_checked, Some(head));
    let l = Ledger::open_read_only(&copy, Some(keyer)).unwrap();
    assert!(
        l.notes()
            .iter()
            .all(|n| !n.contains("not used") || n.contains("00000000000000000008")),
        "{:?}",
        l.notes()
    );
    assert_eq!(
        l.manifest(&query(Seq(head.0 - 1))).unwrap().digest_hex(),
        GOLDEN_DIGEST
    );
}
