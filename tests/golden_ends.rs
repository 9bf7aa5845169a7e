//! A golden ledger holding an `Entry::Ends` (variant 9: rows past a shard's
//! new end are gone), checked into tests/fixtures/ledger-ends-v1: this
//! build must open it (its format 3 snapshot with the `OPTEND01` section),
//! give the same answers at the head and before the end, and encode the
//! documented entry to its documented bytes. Regenerate deliberately with
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test golden_ends` when the format
//! changes.

use std::path::{Path, PathBuf};

use optout::{jsonl, Entry, Ledger, LedgerOptions, Seq, ShardEnd, ShardEnds, SubjectKeyer};
use optout::{Manifest, Timestamp};

mod common;

const SECRET: [u8; 32] = [0x39; 32];
/// The default-policy manifest digests at the head and at seq 2 (before
/// the end), as computed when the fixture was made.
const GOLDEN_DIGEST: &str = "f768d5b569ff765beed20d806120c81e79599b6342b122d8aa9e09ca246520b0";
const GOLDEN_DIGEST_BEFORE: &str =
    "a3930576ea3935b44d7aa8e727a9291554f1b5d51d1042b5c75b55da86edd8c9";
/// The bytes of [`entry`].
const ENTRY_HEX: &str = "09000000010000000000000001000000000000006402000000000000007030 03000000";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-ends-v1")
}

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

/// A documented entry: its bytes are in docs/FORMAT.md's terms.
fn entry() -> Entry {
    Entry::Ends(ShardEnds {
        shards: vec![ShardEnd {
            dataset: "d".into(),
            shard: "p0".into(),
            end: 3,
        }],
    })
}

fn records(from: u32, to: u32, replace: bool) -> String {
    (from..to)
        .map(|r| {
            format!(
                r#"{{"dataset":"forum","shard":"p0","row":{r},"subjects":["u{}@example.com"],"source":"forum.example.com","collected_at":"2024-03-01T12:00:00Z","basis":"legitimate_interest","replace":{replace}}}"#,
                r % 4
            ) + "\n"
        })
        .collect()
}

fn ingest(l: &mut Ledger, keyer: &SubjectKeyer, text: &str) {
    let mut r = optout::ingest::lines::ParallelRecords::new(keyer, 1);
    r.read("records", text.as_bytes(), &|_| ()).unwrap();
    let (b, e) = r.finish();
    l.ingest_ending(b, e).unwrap();
}

fn build(path: &Path) {
    let keyer = SubjectKeyer::from_secret(SECRET);
    let o = LedgerOptions {
        ledger_id: Some(*b"golden-ends-0001"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l = Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), o).unwrap();
    // Seq 2: six rows; seq 3, 4: rows 0..3 again and the end at 3.
    ingest(&mut l, &keyer, &records(0, 6, false));
    ingest(
        &mut l,
        &keyer,
        &(records(0, 3, true) + r#"{"dataset":"forum","shard":"p0","end":3}"#),
    );
    l.snapshot().unwrap();
    // After the snapshot: an objection (replayed on open).
    let ev = jsonl::parse_event_line(
        &keyer,
        "events",
        1,
        r#"{"type":"objection","subject":"u1@example.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}"#,
    )
    .unwrap();
    l.apply(vec![ev]).unwrap();
}

fn manifest(l: &Ledger, seq: Option<Seq>) -> Manifest {
    let mut q = l.query(None, "ai-training", at()).unwrap();
    if let Some(s) = seq {
        q.seq = s;
    }
    l.manifest(&q).unwrap()
}

#[test]
fn golden_ends_ledger_opens_with_its_rows_gone() {
    let path = fixture();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let l = common::golden_fixture(&path, &keyer, build, |l| {
        let bytes = optout::codec::encode(&entry()).unwrap();
        format!(
            "set GOLDEN_DIGEST = \"{}\", GOLDEN_DIGEST_BEFORE = \"{}\" and ENTRY_HEX = \"{}\"",
            manifest(l, None).digest_hex(),
            manifest(l, Some(Seq(2))).digest_hex(),
            optout::hex(&bytes)
        )
    });
    assert!(
        l.snapshot_note().is_none(),
        "the snapshot with shard ends is used: {:?}",
        l.snapshot_note()
    );
    let m = manifest(&l, None);
    assert_eq!(m.digest_hex(), GOLDEN_DIGEST);
    let sh = m.shard("forum", "p0").unwrap();
    assert_eq!((sh.registered, sh.row_end), (3, Some(3)));
    assert_eq!(
        sh.excluded.iter().collect::<Vec<_>>(),
        vec![1],
        "u1's row 5 is gone"
    );
    let before = manifest(&l, Some(Seq(2)));
    assert_eq!(before.digest_hex(), GOLDEN_DIGEST_BEFORE);
    let sh = before.shard("forum", "p0").unwrap();
    assert_eq!((sh.registered, sh.row_end), (6, Some(6)));
}

#[test]
fn an_ends_entry_encodes_to_its_golden_bytes() {
    let bytes = optout::codec::encode(&entry()).unwrap();
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        return;
    }
    assert_eq!(optout::hex(&bytes), ENTRY_HEX.replace(' ', ""));
    let back: Entry = optout::codec::decode(&bytes).unwrap();
    assert_eq!(back, entry());
    // Index 8 (DeriveOwn, another branch's) is refused, not misread.
    let mut eight = bytes.clone();
    eight[0] = 8;
    assert!(optout::codec::decode::<Entry>(&eight).is_err());
}
