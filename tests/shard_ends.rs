//! Shard ends (issue 14): a file replaced by a shorter one, or a JSONL
//! `{"dataset", "shard", "end"}` line, makes the rows past the new end gone.
//! The manifest (registered, row end, excluded rows and reasons, counts) and
//! each subject's records then agree with a fresh ledger that only ever saw
//! the short file; the history before the end still has the rows; a gone
//! row registered again is a new registration; snapshots and replays agree.
//! And any write to a shard's rows forgets its fingerprint (part 2).

use optout::{jsonl, Ledger, Manifest, Seq, ShardEnd, SubjectKeyer, Timestamp};

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([5; 32])
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Row `r` of shard `p0` by `u{r}@x.org`, rows `from..to`.
fn records(from: u32, to: u32, replace: bool) -> String {
    (from..to)
        .map(|r| {
            format!(
                r#"{{"dataset":"forum","shard":"p0","row":{r},"subjects":["u{r}@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k{r}","replace":{replace}}}"#
            ) + "\n"
        })
        .collect()
}

/// Parses `text` (records and shard end lines) as `ingest` does.
fn parse(text: &str) -> (optout::event::RecordBatch, Vec<ShardEnd>) {
    let k = keyer();
    let mut r = optout::ingest::lines::ParallelRecords::new(&k, 2);
    r.read("r.jsonl", text.as_bytes(), &|_| ()).unwrap();
    r.finish()
}

fn ingest(l: &mut Ledger, text: &str) -> optout::IngestSummary {
    let (b, e) = parse(text);
    l.ingest_ending(b, e).unwrap()
}

/// Objections of u1 and u4, a takedown of key k3.
const EVENTS: &str = r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}
{"type":"objection","subject":"u4@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}
{"type":"takedown","key":"k3","at":"2025-01-01T00:00:00Z","reason":"dmca"}"#;

fn apply(l: &mut Ledger) -> Seq {
    let e = jsonl::parse_events(EVENTS.as_bytes(), "e.jsonl", &keyer()).unwrap();
    l.apply(e).unwrap()
}

fn manifest(l: &Ledger, seq: Option<Seq>) -> Manifest {
    let mut q = l
        .query(None, "ai-training", t("2025-02-01T00:00:00Z"))
        .unwrap();
    if let Some(s) = seq {
        q.seq = s;
    }
    l.manifest(&q).unwrap()
}

/// What a manifest says of the data, not of the ledger it came from.
fn content(m: &Manifest) -> String {
    let v = serde_json::to_value(&m.header.counts).unwrap();
    let shards: Vec<String> = m
        .shards
        .iter()
        .map(|s| {
            format!(
                "{}/{} registered {} end {:?} excluded {:?} reasons {:?}",
                s.dataset,
                s.shard,
                s.registered,
                s.row_end,
                s.excluded.iter().collect::<Vec<_>>(),
                s.reasons
            )
        })
        .collect();
    format!(
        "registered {} excluded {} counts {v} {shards:?}",
        m.header.registered, m.header.excluded
    )
}

/// Records per subject u0..u5 at the head.
fn subjects(l: &Ledger) -> Vec<usize> {
    (0..6)
        .map(|i| {
            let sk = l.pseudonym(&format!("u{i}@x.org")).unwrap();
            l.index().subject_records(&sk, l.index().seq()).len()
        })
        .collect()
}

#[test]
fn a_jsonl_shard_end_agrees_with_a_ledger_that_saw_only_the_short_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("a"), keyer()).unwrap();
    ingest(&mut l, &records(0, 6, false));
    let before = apply(&mut l);
    let m_before = content(&manifest(&l, Some(before)));
    // The shard now has rows 0..3: rows 3, 4, 5 are gone.
    let s = ingest(
        &mut l,
        &(records(0, 3, true) + r#"{"dataset":"forum","shard":"p0","end":3}"#),
    );
    assert_eq!((s.registered, s.gone), (3, 3));

    let mut fresh = Ledger::create(&dir.path().join("b"), keyer()).unwrap();
    ingest(&mut fresh, &records(0, 3, false));
    apply(&mut fresh);
    assert_eq!(
        content(&manifest(&l, None)),
        content(&manifest(&fresh, None))
    );
    assert_eq!(subjects(&l), subjects(&fresh));
    assert_eq!(subjects(&l), vec![1, 1, 1, 0, 0, 0]);
    let m = manifest(&l, None);
    let sh = m.shard("forum", "p0").unwrap();
    assert_eq!((sh.registered, sh.row_end), (3, Some(3)));
    // History: the manifest at the old seq still has the six rows.
    assert_eq!(content(&manifest(&l, Some(before))), m_before);
    assert!(m_before.contains("registered 6"), "{m_before}");

    // Reopened (replay), then from a snapshot: the same answers.
    let path = dir.path().join("a");
    let now = content(&manifest(&l, None));
    drop(l);
    let mut l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(content(&manifest(&l, None)), now);
    l.snapshot().unwrap();
    drop(l);
    let v = optout::verify_ledger_keyed(&path, Some(&keyer()), None).unwrap();
    assert!(v.is_clean(), "{v:?}");
    let mut l = Ledger::open(&path, Some(keyer())).unwrap();
    assert!(l.snapshot_note().is_none(), "{:?}", l.snapshot_note());
    assert_eq!(content(&manifest(&l, None)), now);
    assert_eq!(content(&manifest(&l, Some(before))), m_before);

    // A gone row registered again is new: no `replace` needed, and its
    // row end and subjects are back.
    let s = ingest(&mut l, &records(3, 5, false));
    assert_eq!((s.registered, s.gone), (2, 0));
    let m = manifest(&l, None);
    let sh = m.shard("forum", "p0").unwrap();
    assert_eq!((sh.registered, sh.row_end), (5, Some(5)));
    assert_eq!(subjects(&l), vec![1, 1, 1, 1, 1, 0]);
    // An end that makes nothing gone writes nothing.
    let head = l.head().0;
    let s = ingest(&mut l, r#"{"dataset":"forum","shard":"p0","end":9}"#);
    assert_eq!((s.gone, l.head().0), (0, head));
}

#[test]
fn bad_shard_ends_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("a"), keyer()).unwrap();
    ingest(&mut l, &records(0, 4, false));
    let head = l.head().0;
    let (b, e) = parse(&(records(0, 4, true) + r#"{"dataset":"forum","shard":"p0","end":2}"#));
    let err = l.ingest_ending(b, e).unwrap_err().to_string();
    assert!(
        err.contains("forum/p0 row 2") && err.contains("end 2"),
        "{err}"
    );
    let (b, e) = parse(concat!(
        r#"{"dataset":"forum","shard":"p0","end":2}"#,
        "\n",
        r#"{"dataset":"forum","shard":"p0","end":3}"#
    ));
    let err = l.ingest_ending(b, e).unwrap_err().to_string();
    assert!(err.contains("two ends"), "{err}");
    assert_eq!(l.head().0, head);
    // A whole-input parse that cannot carry ends refuses one by its line.
    let text = records(0, 1, false) + r#"{"dataset":"forum","shard":"p0","end":0}"#;
    let e = jsonl::parse_records(text.as_bytes(), "r.jsonl", &keyer()).unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (2, Some("end")), "{e}");
    // A line that is neither names the record's fields as before.
    let e = jsonl::parse_records(
        r#"{"dataset":"forum","shard":"p0","end":"x"}"#.as_bytes(),
        "r.jsonl",
        &keyer(),
    )
    .unwrap_err();
    assert_eq!(e.line, 1, "{e}");
}

#[cfg(feature = "parquet")]
mod table;

#[cfg(feature = "parquet")]
mod parquet {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use arrow_array::{ArrayRef, StringArray};
    use optout::table::{FileOptions, RecordMapping};

    use super::table;

    const MAPPING: &str = r#"{"dataset":"forum","subjects":["author"],"source":"forum.x.org","basis":"legitimate_interest","collected_at":"2024-01-01T00:00:00Z","key":{"column":"key"}}"#;

    /// `p0.parquet` under `root`: row r by u{r}@x.org, key k{r}, rows 0..n.
    fn write(root: &Path, n: usize) -> PathBuf {
        let p = root.join("p0.parquet");
        let authors: Vec<String> = (0..n).map(|r| format!("u{r}@x.org")).collect();
        let keys: Vec<String> = (0..n).map(|r| format!("k{r}")).collect();
        let a: ArrayRef = Arc::new(StringArray::from(authors));
        let k: ArrayRef = Arc::new(StringArray::from(keys));
        table::write_parquet(&p, vec![("author", a), ("key", k)], &[n]);
        p
    }

    fn opts(root: &Path, replace: bool) -> FileOptions {
        FileOptions {
            root: Some(root.to_path_buf()),
            threads: 1,
            replace,
        }
    }

    #[test]
    fn a_parquet_file_replaced_by_a_shorter_one_agrees_with_a_fresh_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (data, short) = (dir.path().join("data"), dir.path().join("short"));
        let map = RecordMapping::from_json(MAPPING, "map.json").unwrap();
        let mut l = Ledger::create(&dir.path().join("a"), keyer()).unwrap();
        let p = write(&data, 6);
        l.ingest_parquet(&[&p], &map, &opts(&data, false)).unwrap();
        let before = apply(&mut l);
        let p = write(&data, 3);
        let r = l.ingest_parquet(&[&p], &map, &opts(&data, true)).unwrap();
        assert_eq!((r.summary.registered, r.summary.gone), (3, 3));

        let mut fresh = Ledger::create(&dir.path().join("b"), keyer()).unwrap();
        let q = write(&short, 3);
        fresh
            .ingest_parquet(&[&q], &map, &opts(&short, false))
            .unwrap();
        apply(&mut fresh);
        assert_eq!(
            content(&manifest(&l, None)),
            content(&manifest(&fresh, None))
        );
        assert_eq!(subjects(&l), subjects(&fresh));
        assert!(content(&manifest(&l, Some(before))).contains("registered 6"));
        // The short file is now the shard's: a re-run is a no-op.
        let head = l.head().0;
        let r = l.ingest_parquet(&[&p], &map, &opts(&data, false)).unwrap();
        assert_eq!((r.files_unchanged, r.summary.unchanged), (1, 3));
        assert_eq!(l.head().0, head);
    }

    /// Part 2: a JSONL replace of one row of a registered file forgets the
    /// file's fingerprint, so the next `ingest --parquet` reads the file
    /// again: it finds the row changed (refused without `replace`, named),
    /// and with `replace` registers the file's row again.
    #[test]
    fn a_row_replaced_by_jsonl_makes_the_file_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let map = RecordMapping::from_json(MAPPING, "map.json").unwrap();
        let mut l = Ledger::create(&dir.path().join("a"), keyer()).unwrap();
        let p = write(&data, 4);
        l.ingest_parquet(&[&p], &map, &opts(&data, false)).unwrap();
        assert!(l.index().shard_file("forum", "p0.parquet").is_some());
        let line = r#"{"dataset":"forum","shard":"p0.parquet","row":2,"subjects":["zed@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k2","replace":true}"#;
        ingest(&mut l, line);
        assert!(
            l.index().shard_file("forum", "p0.parquet").is_none(),
            "the write forgot the fingerprint"
        );
        let head = l.head().0;
        match l.ingest_parquet(&[&p], &map, &opts(&data, false)) {
            Err(optout::FilesError::Ledger(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains("forum/p0.parquet#2") && e.contains("subjects"),
                    "{e}"
                );
            }
            Err(e) => panic!("{e}"),
            Ok(r) => panic!("the changed row was not seen: {:?}", r.summary),
        }
        assert_eq!(l.head().0, head);
        let r = l.ingest_parquet(&[&p], &map, &opts(&data, true)).unwrap();
        assert_eq!(r.summary.registered, 4);
        let zed = l.pseudonym("zed@x.org").unwrap();
        assert!(l.index().subject_records(&zed, l.index().seq()).is_empty());
        assert_eq!(subjects(&l), vec![1, 1, 1, 1, 0, 0]);
        // And the file is known by its fingerprint again.
        let r = l.ingest_parquet(&[&p], &map, &opts(&data, false)).unwrap();
        assert_eq!(r.files_unchanged, 1);
    }
}

/// Part 4 (issue 19): with `auto_snapshot`, an ingest that leaves enough
/// rows to replay since the newest snapshot writes one; the ledger still
/// verifies and the next open uses it (nothing replayed).
#[test]
fn an_ingest_past_the_threshold_writes_a_snapshot_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let opts = optout::LedgerOptions {
        auto_snapshot: Some(10),
        ..Default::default()
    };
    let mut l = Ledger::create_with(optout::storage::FsIo::new(), &path, keyer(), opts).unwrap();
    let s = ingest(&mut l, &records(0, 5, false));
    assert_eq!(s.snapshot, None, "6 rows since creation: under 10");
    let s = ingest(&mut l, &records(5, 12, false));
    assert_eq!(s.snapshot, Some(s.seq));
    assert_eq!(l.rows_since_snapshot(), 0);
    assert!(path.join(format!("snap/{:020}.snap", s.seq.0)).exists());
    let m = content(&manifest(&l, None));
    drop(l);
    let v = optout::verify_ledger_keyed(&path, Some(&keyer()), None).unwrap();
    assert!(v.is_clean(), "{v:?}");
    let mut l = Ledger::open(&path, Some(keyer())).unwrap();
    assert_eq!(l.rows_since_snapshot(), 0, "opened from the snapshot");
    assert_eq!(content(&manifest(&l, None)), m);
    // Off: no snapshot however many rows.
    l.set_auto_snapshot(None);
    let s = ingest(&mut l, &records(12, 40, false));
    assert_eq!((s.snapshot, l.rows_since_snapshot()), (None, 28));
}
