//! A golden ledger holding an `Entry::Files` (variant 7: the shard
//! fingerprints of an `ingest --parquet`), checked into
//! tests/fixtures/ledger-files-v1 with the Parquet file it registered
//! (tests/fixtures/ledger-files-v1-data): this build must open it (its
//! format 3 snapshot with the `OPTFIL01` section), give the same answers,
//! and recognise the file by its fingerprint. Regenerate deliberately with
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --features parquet --test
//! golden_files` when the format changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use optout::table::{parquet_fingerprints, FileOptions, RecordMapping, TableErrorKind};
use optout::{Entry, FilesError, Ledger, LedgerOptions, SubjectKeyer, Timestamp};
use optout::{ShardFile, ShardFiles};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

mod common;
use common::copy_dir;

const SECRET: [u8; 32] = [0x37; 32];
/// The default-policy manifest digest at the head, as computed when the fixture was made.
const GOLDEN_DIGEST: &str = "e0085fc8c6f59237bf8ee168ff650f96196388041204642ffa953e1d4adddb97";
/// The bytes of [`entry`].
const ENTRY_HEX: &str = "0700000001000000000000000100000000000000640b00000000000000612f702e70617271756574d204000000000000abababababababababababababababababababababababababababababababab0a00000000000000cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
const MAPPING: &str = r#"{"dataset":"forum","subjects":["author"],"source":"forum.example.com","basis":"legitimate_interest","collected_at":"2024-03-01T12:00:00Z"}"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-files-v1")
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-files-v1-data")
}

fn part() -> PathBuf {
    data().join("2024/part-0.parquet")
}

fn mapping() -> RecordMapping {
    RecordMapping::from_json(MAPPING, "map.json").unwrap()
}

fn opts() -> FileOptions {
    FileOptions {
        root: Some(data()),
        threads: 1,
        replace: false,
    }
}

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

/// A documented entry: its bytes are in docs/FORMAT.md's terms.
fn entry() -> Entry {
    Entry::Files(ShardFiles {
        files: vec![ShardFile {
            dataset: "d".into(),
            shard: "a/p.parquet".into(),
            size: 1234,
            footer_blake3: [0xab; 32],
            rows: 10,
            mapping_blake3: [0xcd; 32],
        }],
    })
}

/// Ten rows in row groups of 4, 4 and 2; row 4's author is null.
fn write_part(path: &Path, first: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "author",
        DataType::Utf8,
        true,
    )]));
    let mut authors: Vec<Option<String>> = (0..10)
        .map(|r| (r != 4).then(|| format!("user{}@example.com", r % 3)))
        .collect();
    authors[0] = Some(first.to_string());
    let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(authors))];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn build(path: &Path) {
    let _ = std::fs::remove_dir_all(data());
    write_part(&part(), "user0@example.com");

    let keyer = SubjectKeyer::from_secret(SECRET);
    let o = LedgerOptions {
        ledger_id: Some(*b"golden-files-001"),
        segment_size: 4096,
        ..Default::default()
    };
    let mut l = Ledger::create_with(optout::storage::FsIo::new(), path, keyer.clone(), o).unwrap();
    l.ingest_parquet(&[part()], &mapping(), &opts()).unwrap();
    l.snapshot().unwrap();
    // After the snapshot: an objection (replayed on open).
    let ev = optout::jsonl::parse_event_line(
        &keyer,
        "events",
        1,
        r#"{"type":"objection","subject":"user1@example.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}"#,
    )
    .unwrap();
    l.apply(vec![ev]).unwrap();
}

fn digest(l: &Ledger) -> String {
    l.manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap()
        .digest_hex()
}

#[test]
fn golden_files_ledger_opens_and_recognises_its_file() {
    let path = fixture();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let l = common::golden_fixture(&path, &keyer, build, |l| {
        let bytes = optout::codec::encode(&entry()).unwrap();
        format!(
            "set GOLDEN_DIGEST = \"{}\" and ENTRY_HEX = \"{}\"",
            digest(l),
            optout::hex(&bytes)
        )
    });
    assert!(
        l.snapshot_note().is_none(),
        "the snapshot with fingerprints is used"
    );
    assert_eq!(digest(&l), GOLDEN_DIGEST);
    // The fingerprint the log holds is the file's, as read now.
    let fp = &parquet_fingerprints(&[part()], &opts()).unwrap()[0];
    let held = l
        .index()
        .shard_file("forum", "2024/part-0.parquet")
        .unwrap();
    assert_eq!(
        (held.size, held.rows, held.footer_blake3),
        (fp.size, 10, fp.footer_blake3)
    );
    assert_eq!(
        held.mapping_blake3,
        optout::table::mapping_blake3(&mapping())
    );
    let m = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    let ex: Vec<u32> = m
        .shard("forum", "2024/part-0.parquet")
        .unwrap()
        .excluded
        .iter()
        .collect();
    assert_eq!(ex, vec![1, 7], "user1's rows");
    drop(l);

    // A writer of this build on a copy: the same file is unchanged, read by
    // its footer; the file rewritten with a row fewer is refused, naming it.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    copy_dir(&path, &copy);
    let mut w = Ledger::open(&copy, Some(keyer.clone())).unwrap();
    let head = w.head().0;
    let r = w.ingest_parquet(&[part()], &mapping(), &opts()).unwrap();
    assert_eq!(
        (r.files_unchanged, r.summary.unchanged, r.summary.registered),
        (1, 10, 0)
    );
    assert_eq!(w.head().0, head, "nothing written");
    let other = tmp.path().join("data");
    // Row 0 by another author of the same length: the same size and rows,
    // other statistics in the footer.
    write_part(&other.join("2024/part-0.parquet"), "user9@example.com");
    let o = FileOptions {
        root: Some(other.clone()),
        ..opts()
    };
    match w.ingest_parquet(&[other.join("2024/part-0.parquet")], &mapping(), &o) {
        Err(FilesError::Table(e)) => {
            assert_eq!(e.kind, TableErrorKind::Changed, "{e}");
            assert!(e.to_string().contains(", footer); "), "{e}");
        }
        Err(FilesError::Ledger(e)) => panic!("{e}"),
        Ok(_) => panic!("a changed footer was accepted"),
    }
    assert_eq!(w.head().0, head, "nothing written");
}

#[test]
fn a_files_entry_encodes_to_its_golden_bytes() {
    let bytes = optout::codec::encode(&entry()).unwrap();
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        return;
    }
    assert_eq!(optout::hex(&bytes), ENTRY_HEX);
    let back: Entry = optout::codec::decode(&bytes).unwrap();
    assert_eq!(back, entry());
}
