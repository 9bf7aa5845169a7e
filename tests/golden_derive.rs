//! A golden ledger holding `Derive` entries (entry index 6) and a format 3
//! snapshot with the lineage sections (5-7), checked into
//! tests/fixtures/ledger-derive-v1: this build must open it, trust its
//! snapshot and give the same manifests byte for byte; and the encoding of
//! one `Derive` entry, byte for byte. Regenerate deliberately with
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test golden_derive` when the
//! format changes (and say so in docs/FORMAT.md).

use std::path::{Path, PathBuf};

use optout::event::{ContentHash, Derivation, DerivedRow, DerivedShard, Entry, ParentRef};
use optout::jsonl::{self, DerivationBuilder};
use optout::{Ledger, LedgerOptions, SubjectKeyer, Timestamp};

mod common;

const SECRET: [u8; 32] = [0x42; 32];
/// Manifest digests (all datasets; `packed` only) in manifest format 3
/// (each shard's row end recorded).
const GOLDEN_DIGESTS: [&str; 2] = [
    "d789a2374661734f536d45e03be838037315cc7573ce9d00cb57685110fcc92d",
    "0010d19f312fbf1fcbc48d1f4082a796bc30c8f587bff005de7dfce5270bb199",
];
/// The same manifests written as format 2, as computed when the fixture
/// was made (before format 3): only the format changed, not the answer.
const GOLDEN_DIGESTS_V2: [&str; 2] = [
    "b17c5b75d7fb4a3e47142ad357d44a708b409218e9a1e729616bb9b85ba7459e",
    "72430a0960538e8def214b79ba545038d304a25e5ce2a147c91c1a0cef3752c6",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-derive-v1")
}

const RECORDS: &str = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["ann@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/0"}
{"dataset":"forum","shard":"p0","row":1,"subjects":["ben@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/1"}"#;

const PACKED: &str = r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}
{"shard":"t0","row":1,"parents":[{"dataset":"forum","shard":"p0","row":1}]}"#;

const MIX: &str = r#"{"shard":"m0","row":0,"parents":[{"dataset":"packed","shard":"t0","row":1},{"content_hash":"0101010101010101010101010101010101010101010101010101010101010101"}]}"#;

const EVENTS: &str = r#"{"type":"objection","subject":"ann@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#;

const LATE_EVENTS: &str =
    r#"{"type":"erasure","subject":"ben@example.com","at":"2025-02-01T00:00:00Z"}"#;

/// The bytes of `entry()` as encoded when the fixture was made (hex).
const ENTRY_HEX: &str = "0600000006000000000000007061636b656401000000000000000500000000000000666f72756d010100000000000000020000000000000074300100000000000000070000000300000000000000000000000500000000000000666f72756d0200000000000000703003000000010000000600000000000000706f73742f3902000000abababababababababababababababababababababababababababababababab";

fn entry() -> Entry {
    Entry::Derive(Derivation {
        dataset: "packed".into(),
        sources: vec!["forum".into()],
        allow_missing: true,
        shards: vec![DerivedShard {
            shard: "t0".into(),
            rows: vec![DerivedRow {
                row: 7,
                parents: vec![
                    ParentRef::Record {
                        dataset: "forum".into(),
                        shard: "p0".into(),
                        row: 3,
                    },
                    ParentRef::Key("post/9".into()),
                    ParentRef::ContentHash(ContentHash([0xab; 32])),
                ],
            }],
        }],
    })
}

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

fn derive(l: &mut Ledger, dataset: &str, from: &[&str], lines: &str) {
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    let mut b = DerivationBuilder::new(dataset, &from, true);
    b.parse(lines.as_bytes(), "lineage").unwrap();
    l.derive(b.take()).unwrap();
}

fn build(path: &Path) {
    let keyer = SubjectKeyer::from_secret(SECRET);
    let opts = LedgerOptions {
        ledger_id: Some(*b"golden-derive-01"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l =
        Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), opts).unwrap();
    l.ingest(jsonl::parse_records(RECORDS.as_bytes(), "records", &keyer).unwrap())
        .unwrap();
    derive(&mut l, "packed", &["forum"], PACKED);
    derive(&mut l, "mix", &["packed", "forum"], MIX);
    l.apply(jsonl::parse_events(EVENTS.as_bytes(), "events", &keyer).unwrap())
        .unwrap();
    l.snapshot().unwrap();
    l.apply(jsonl::parse_events(LATE_EVENTS.as_bytes(), "events", &keyer).unwrap())
        .unwrap();
}

fn digests(l: &Ledger) -> [String; 2] {
    digests_as(l, None)
}

/// The digests, written as manifest format `version` (None: this build's).
fn digests_as(l: &Ledger, version: Option<u16>) -> [String; 2] {
    let mut all = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    let mut q = l.query(None, "ai-training", at()).unwrap();
    q.datasets = vec!["packed".into()];
    let mut packed = l.manifest(&q).unwrap();
    if let Some(v) = version {
        all.version = v;
        packed.version = v;
    }
    [all.digest_hex(), packed.digest_hex()]
}

#[test]
fn golden_derive_ledger_opens_and_answers_the_same() {
    let path = fixture();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let l = common::golden_fixture(&path, &keyer, build, |l| {
        let bytes = optout::codec::encode(&entry()).unwrap();
        format!(
            "set GOLDEN_DIGESTS = {:?} and ENTRY_HEX = \"{}\"",
            digests(l),
            optout::hex(&bytes)
        )
    });
    assert!(
        l.snapshot_note().is_none(),
        "the snapshot with lineage is used"
    );
    let s = l.index().stats();
    assert_eq!((s.derived, s.lineage_links), (3, 5));
    assert_eq!(digests(&l), GOLDEN_DIGESTS.map(String::from));
    assert_eq!(
        digests_as(&l, Some(2)),
        GOLDEN_DIGESTS_V2.map(String::from),
        "as manifest format 2"
    );
    let m = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    // ann objected (t0#0); ben was erased after the snapshot (t0#0, t0#1, m0#0).
    assert!(m.is_excluded("packed", "t0", 0) && m.is_excluded("packed", "t0", 1));
    assert!(m.is_excluded("mix", "m0", 0));
}

#[test]
fn a_derive_entry_encodes_to_its_golden_bytes() {
    let bytes = optout::codec::encode(&entry()).unwrap();
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        return;
    }
    assert_eq!(optout::hex(&bytes), ENTRY_HEX);
    let back: Entry = optout::codec::decode(&bytes).unwrap();
    assert_eq!(back, entry());
}
