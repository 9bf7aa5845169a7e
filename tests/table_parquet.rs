//! Parquet files into records: the same RecordBatch (profiles, pseudonyms,
//! row order) as the JSONL path on the same rows; row positions from the
//! row groups; every bad input named by file, row and column.

mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray, TimestampSecondArray,
};
use optout::event::RecordBatch;
use optout::jsonl;
use optout::table::{parquet_records, At, FileOptions, RecordMapping, TableErrorKind};
use optout::SubjectKeyer;
use proptest::prelude::*;
use table::{lists, row_groups, write_parquet};

const MAPPING: &str = r#"{"dataset":"forum","subjects":["author_email","mentions"],"source":"forum.example.com","basis":"legitimate_interest","collected_at":{"column":"created_at"},"categories":["text"],"visibility":"public","key":{"column":"url"}}"#;

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([9; 32])
}

fn mapping(text: &str) -> RecordMapping {
    RecordMapping::from_json(text, "map.json").unwrap()
}

/// One forum post: author, mentions, seconds since the epoch, url.
struct Post {
    author: Option<&'static str>,
    mentions: Option<Vec<Option<&'static str>>>,
    secs: i64,
    url: &'static str,
}

fn posts(n: usize, salt: usize) -> Vec<Post> {
    const NAMES: [Option<&str>; 6] = [
        Some("alice@example.com"),
        Some("Bob@Example.com"),
        None,
        Some(""),
        Some("carol@example.com"),
        Some("dave@example.com"),
    ];
    const URLS: [&str; 4] = ["post/1", "post/2", "post/3", "post/4"];
    (0..n)
        .map(|i| {
            let j = i + salt;
            Post {
                author: NAMES[j % 6],
                mentions: match j % 4 {
                    0 => None,
                    1 => Some(vec![]),
                    2 => Some(vec![Some("erin@example.com"), None, Some("")]),
                    _ => Some(vec![NAMES[(j + 1) % 6], Some("alice@example.com")]),
                },
                secs: 1_700_000_000 + j as i64 * 3_600,
                url: URLS[j % 4],
            }
        })
        .collect()
}

fn write_posts(path: &Path, p: &[Post], groups: &[usize]) {
    let author: ArrayRef = Arc::new(StringArray::from(
        p.iter().map(|x| x.author).collect::<Vec<_>>(),
    ));
    let mentions = lists(&p.iter().map(|x| x.mentions.clone()).collect::<Vec<_>>());
    let created: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(p.iter().map(|x| x.secs * 1_000_000).collect::<Vec<_>>())
            .with_timezone("UTC"),
    );
    let url: ArrayRef = Arc::new(StringArray::from(
        p.iter().map(|x| x.url).collect::<Vec<_>>(),
    ));
    let text: ArrayRef = Arc::new(StringArray::from(vec!["unmapped text"; p.len()]));
    write_parquet(
        path,
        vec![
            ("text", text),
            ("author_email", author),
            ("mentions", mentions),
            ("created_at", created),
            ("url", url),
        ],
        groups,
    );
}

/// The JSONL lines the same posts would be registered with.
fn jsonl_lines(shard: &str, p: &[Post]) -> String {
    let mut out = String::new();
    for (row, x) in p.iter().enumerate() {
        let mut subjects: Vec<&str> = x.author.into_iter().collect();
        for m in x.mentions.iter().flatten().flatten() {
            subjects.push(m);
        }
        subjects.retain(|s| !s.is_empty());
        let t = optout::Timestamp::from_unix_seconds(x.secs).to_rfc3339();
        out.push_str(
            &serde_json::json!({
                "dataset": "forum", "shard": shard, "row": row, "subjects": subjects,
                "source": "forum.example.com", "collected_at": t, "basis": "legitimate_interest",
                "categories": ["text"], "visibility": "public", "key": x.url,
            })
            .to_string(),
        );
        out.push('\n');
    }
    out
}

fn via_jsonl(text: &str) -> RecordBatch {
    jsonl::parse_records(text.as_bytes(), "records.jsonl", &keyer()).unwrap()
}

fn opts(root: Option<&Path>, threads: usize) -> FileOptions {
    FileOptions {
        root: root.map(Path::to_path_buf),
        threads,
        replace: false,
    }
}

#[test]
fn nested_files_with_uneven_row_groups_equal_the_jsonl_path() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("forum/a/part-0.parquet");
    let b = dir.path().join("forum/a/b/part-1.parquet");
    let pa = posts(9, 0);
    let pb = posts(13, 5);
    write_posts(&a, &pa, &[3, 1, 5]);
    write_posts(&b, &pb, &[7, 6]);
    assert_eq!(row_groups(&a), [3, 1, 5]);
    let root = dir.path().join("forum");
    let want = via_jsonl(
        &(jsonl_lines("a/part-0.parquet", &pa) + &jsonl_lines("a/b/part-1.parquet", &pb)),
    );
    for threads in [1, 2, 5] {
        let got = parquet_records(
            &[&a, &b],
            &mapping(MAPPING),
            &keyer(),
            &opts(Some(&root), threads),
        )
        .unwrap();
        assert_eq!(got.batch, want, "threads {threads}");
        assert_eq!(got.files.len(), 2);
        assert_eq!(
            (got.files[0].shard.as_str(), got.files[0].rows),
            ("a/part-0.parquet", 9)
        );
        assert_eq!(
            (got.files[1].shard.as_str(), got.files[1].rows),
            ("a/b/part-1.parquet", 13)
        );
        assert_eq!(got.files[0].size, std::fs::metadata(&a).unwrap().len());
    }
    // Without a root, the shard is the file name.
    let got = parquet_records(&[&b], &mapping(MAPPING), &keyer(), &opts(None, 2)).unwrap();
    assert_eq!(got.batch, via_jsonl(&jsonl_lines("part-1.parquet", &pb)));
    // Rows are positions: the last row of the last row group is row 12,
    // and row 2 of file b is bob's post (the pseudonym of the lowercased id).
    let rows = &got.batch.shards[0].rows;
    assert_eq!(rows.last().unwrap().row, 12);
    assert!(rows[2]
        .subjects
        .contains(&keyer().pseudonym("bob@example.com")));
}

#[test]
fn string_times_naive_times_and_profile_columns() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.parquet");
    let times: ArrayRef = Arc::new(StringArray::from(vec![
        "2024-03-01T12:00:00Z",
        "2024-03-01 13:00:00+01:00",
        "2024-03-01T12:00:00.5Z",
    ]));
    let naive: ArrayRef = Arc::new(TimestampSecondArray::from(vec![0, 3_600, 7_200]));
    let who: ArrayRef = Arc::new(StringArray::from(vec!["a@x.org", "b@x.org", "a@x.org"]));
    let site: ArrayRef = Arc::new(StringArray::from(vec![
        "Forum.X.org ",
        "zoom",
        "forum.x.org",
    ]));
    let cats = lists(&[
        Some(vec![Some("Text"), Some("text")]),
        None,
        Some(vec![Some("audio")]),
    ]);
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![10, 11, 12]));
    write_parquet(
        &f,
        vec![
            ("t", times),
            ("naive", naive),
            ("who", who),
            ("site", site),
            ("cats", cats),
            ("id", ids),
        ],
        &[2, 1],
    );
    let m = mapping(
        r#"{"dataset":"d","subjects":["who"],"source":{"column":"site"},"basis":"consent","collected_at":{"column":"t"},"categories":{"column":"cats"},"key":{"column":"id"}}"#,
    );
    let got = parquet_records(&[&f], &m, &keyer(), &opts(None, 1)).unwrap();
    let want = via_jsonl(concat!(
        r#"{"dataset":"d","shard":"p.parquet","row":0,"subjects":["a@x.org"],"source":"Forum.X.org ","collected_at":"2024-03-01T12:00:00Z","basis":"consent","categories":["Text","text"],"key":"10"}"#,
        "\n",
        r#"{"dataset":"d","shard":"p.parquet","row":1,"subjects":["b@x.org"],"source":"zoom","collected_at":"2024-03-01T12:00:00Z","basis":"consent","key":"11"}"#,
        "\n",
        r#"{"dataset":"d","shard":"p.parquet","row":2,"subjects":["a@x.org"],"source":"forum.x.org","collected_at":"2024-03-01T12:00:00.5Z","basis":"consent","categories":["audio"],"key":"12"}"#,
        "\n",
    ));
    assert_eq!(got.batch, want);
    assert_eq!(got.batch.profiles.len(), 3, "forum/text, zoom, forum/audio");

    // A timestamp without a zone needs the mapping's default zone.
    let naive_map = r#"{"dataset":"d","subjects":["who"],"source":"x","basis":"consent","collected_at":{"column":"naive"}}"#;
    let e = parquet_records(&[&f], &mapping(naive_map), &keyer(), &opts(None, 1)).unwrap_err();
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref()),
        (TableErrorKind::BadValue, &At::Row(0), Some("naive"))
    );
    assert!(e.to_string().contains("add a time zone (e.g. `Z`)"), "{e}");
    let zoned = naive_map.replace("}}", r#"},"default_zone":"+01:00"}"#);
    let got = parquet_records(&[&f], &mapping(&zoned), &keyer(), &opts(None, 1)).unwrap();
    assert_eq!(
        got.batch.shards[0].rows[1].collected_at.to_rfc3339(),
        "1970-01-01T00:00:00Z"
    );
}

fn forum(dir: &Path) -> PathBuf {
    let f = dir.join("forum/part-0.parquet");
    write_posts(&f, &posts(9, 0), &[4, 5]);
    f
}

#[test]
fn bad_inputs_name_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = forum(dir.path());
    let name = f.display().to_string();
    let run = |m: &str, files: &[&Path]| {
        parquet_records(files, &mapping(m), &keyer(), &opts(None, 2)).unwrap_err()
    };

    // A missing column: named, with the columns there are.
    let e = run(&MAPPING.replace("\"mentions\"", "\"mentionz\""), &[&f]);
    assert_eq!(e.kind, TableErrorKind::MissingColumn);
    assert_eq!(
        e.to_string(),
        format!("{name}: column `mentionz` (field `subjects`): no such column (the columns are: text, author_email, mentions, created_at, url)")
    );
    // A column of the wrong type.
    let e = run(
        &MAPPING.replace(r#"{"column":"created_at"}"#, r#"{"column":"mentions"}"#),
        &[&f],
    );
    assert_eq!(e.kind, TableErrorKind::WrongType);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "{name}: column `mentions` (field `collected_at`): the column is List("
        )),
        "{text}"
    );
    assert!(
        text.ends_with("; the field needs a timestamp or string column"),
        "{text}"
    );

    // A null in a required column: row 2's author is null.
    let e = run(
        &MAPPING.replace(
            r#""source":"forum.example.com""#,
            r#""source":{"column":"author_email"}"#,
        ),
        &[&f],
    );
    assert_eq!((e.kind, &e.at), (TableErrorKind::Null, &At::Row(2)));
    assert_eq!(
        e.to_string(),
        format!("{name}: row 2: column `author_email` (field `source`): null in a required column")
    );

    // A row with no subject when the mapping requires one: row 8 (in the
    // second row group) has a null author and a null mention list; row 2
    // has a null author but a mention.
    let e = run(
        &MAPPING.replace(
            r#""dataset":"forum""#,
            r#""dataset":"forum","require_subjects":true"#,
        ),
        &[&f],
    );
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref()),
        (
            TableErrorKind::Null,
            &At::Row(8),
            Some("author_email`, `mentions")
        )
    );

    // A bad timestamp in a string column, in the second row group.
    let g = dir.path().join("times.parquet");
    let t: ArrayRef = Arc::new(StringArray::from(
        vec!["2024-01-01T00:00:00Z"; 5]
            .into_iter()
            .chain(["yesterday", "2024-01-01T00:00:00Z"])
            .collect::<Vec<_>>(),
    ));
    let who: ArrayRef = Arc::new(StringArray::from(vec!["a@x.org"; 7]));
    write_parquet(&g, vec![("who", who), ("t", t)], &[4, 3]);
    let e = run(
        r#"{"dataset":"d","subjects":["who"],"source":"x","basis":"consent","collected_at":{"column":"t"}}"#,
        &[&g],
    );
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref(), e.field.as_deref()),
        (
            TableErrorKind::BadValue,
            &At::Row(5),
            Some("t"),
            Some("collected_at")
        )
    );
    assert!(
        e.to_string().starts_with(&format!(
            "{}: row 5: column `t` (field `collected_at`): not an RFC 3339 time",
            g.display()
        )),
        "{e}"
    );

    // Corrupt files: truncated, garbage, a damaged footer.
    let bytes = std::fs::read(&f).unwrap();
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let e = run(MAPPING, &[&f, &cut]);
    assert_eq!(
        (e.kind, e.file.as_str(), &e.at),
        (
            TableErrorKind::Corrupt,
            cut.display().to_string().as_str(),
            &At::File
        )
    );
    assert!(e.message.contains("no PAR1 magic"), "{e}");
    let junk = dir.path().join("junk.parquet");
    std::fs::write(&junk, b"PAR1 this is not parquet at all PAR1").unwrap();
    assert_eq!(run(MAPPING, &[&junk]).kind, TableErrorKind::Corrupt);
    let mut bad_footer = bytes.clone();
    let len =
        u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let start = bytes.len() - 8 - len;
    for b in &mut bad_footer[start..start + len / 2] {
        *b = 0xff;
    }
    let bf = dir.path().join("footer.parquet");
    std::fs::write(&bf, &bad_footer).unwrap();
    let e = run(MAPPING, &[&bf]);
    assert_eq!((e.kind, &e.at), (TableErrorKind::Corrupt, &At::File), "{e}");

    // The same file twice, and a file outside the root.
    let e = run(MAPPING, &[&f, &f]);
    assert_eq!(e.kind, TableErrorKind::Path);
    let e = parquet_records(
        &[&g],
        &mapping(MAPPING),
        &keyer(),
        &opts(Some(&dir.path().join("forum")), 1),
    )
    .unwrap_err();
    assert_eq!(e.kind, TableErrorKind::Path);
    assert!(e.message.contains("not under the root"), "{e}");
}

#[test]
fn errors_never_quote_a_subject() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.parquet");
    let who: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    let src: ArrayRef = Arc::new(StringArray::from(vec!["canary@example.com"]));
    write_parquet(&f, vec![("who", who), ("src", src)], &[1]);
    for m in [
        r#"{"dataset":"d","subjects":["who"],"source":"x","basis":"consent","collected_at":"2024-01-01T00:00:00Z"}"#,
        r#"{"dataset":"d","subjects":["src"],"source":"x","basis":"consent","collected_at":{"column":"src"}}"#,
    ] {
        let e = parquet_records(&[&f], &mapping(m), &keyer(), &opts(None, 1)).unwrap_err();
        // The time parse error quotes the cell: but that cell is a subject
        // column only in a broken mapping; the subject path itself never quotes.
        if e.field.as_deref() == Some("subjects") {
            assert!(!e.to_string().contains("canary"), "{e}");
        }
    }
}

#[test]
fn a_changed_file_has_another_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("part-0.parquet");
    let p = posts(9, 0);
    write_posts(&f, &p, &[4, 5]);
    let m = mapping(MAPPING);
    let first = parquet_records(&[&f], &m, &keyer(), &opts(None, 1)).unwrap();
    write_posts(&f, &p, &[4, 5]);
    let same = parquet_records(&[&f], &m, &keyer(), &opts(None, 1)).unwrap();
    assert_eq!(
        first.files, same.files,
        "rewriting the same rows gives the same fingerprint"
    );
    // One more row, and a different row-group cut of the same rows.
    write_posts(&f, &posts(10, 0), &[4, 6]);
    let more = parquet_records(&[&f], &m, &keyer(), &opts(None, 1)).unwrap();
    assert_ne!(first.files[0].footer_blake3, more.files[0].footer_blake3);
    assert_eq!(more.files[0].rows, 10);
    write_posts(&f, &p, &[5, 4]);
    let recut = parquet_records(&[&f], &m, &keyer(), &opts(None, 1)).unwrap();
    assert_ne!(first.files[0].footer_blake3, recut.files[0].footer_blake3);
    assert_eq!(
        first.batch, recut.batch,
        "positions do not depend on the row groups"
    );
    // `replace` marks every row.
    let r = parquet_records(
        &[&f],
        &m,
        &keyer(),
        &FileOptions {
            replace: true,
            ..opts(None, 2)
        },
    )
    .unwrap();
    assert!(r.batch.shards[0].rows.iter().all(|x| x.replace));
}

#[test]
fn an_empty_file_registers_nothing_but_is_fingerprinted() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.parquet");
    write_posts(&f, &[], &[]);
    let got = parquet_records(&[&f], &mapping(MAPPING), &keyer(), &opts(None, 2)).unwrap();
    assert!(got.batch.is_empty() && got.batch.shards.is_empty());
    assert_eq!(got.files[0].rows, 0);
}

// A random table, cut into random row groups, gives the RecordBatch the
// equivalent JSONL lines give.
proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_tables_equal_their_jsonl(
        rows in proptest::collection::vec(
            (proptest::option::of(0usize..5), proptest::collection::vec(proptest::option::of(0usize..5), 0..3),
             any::<bool>(), 0i64..2_000_000_000, proptest::option::of(0usize..3), 0usize..3),
            0..30),
        cuts in proptest::collection::vec(1usize..8, 1..6),
        threads in 1usize..4,
    ) {
        const IDS: [&str; 5] = ["a@x.org", "B@X.org", "c", "C", " d@x.org "];
        const SOURCES: [&str; 3] = ["Forum.example", "zoom", "crm"];
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.parquet");
        let who: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.0.map(|i| IDS[i])).collect::<Vec<_>>()));
        let more = lists(&rows.iter().map(|r| r.2.then(|| r.1.iter().map(|o| o.map(|i| IDS[i])).collect())).collect::<Vec<_>>());
        let t: ArrayRef = Arc::new(TimestampSecondArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>()).with_timezone("+02:00"));
        let key: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| r.4.map(|k| ["k0", "k1", "k2"][k])).collect::<Vec<_>>()));
        let src: ArrayRef = Arc::new(StringArray::from(rows.iter().map(|r| SOURCES[r.5]).collect::<Vec<_>>()));
        let mut groups = Vec::new();
        let mut left = rows.len();
        for c in cuts.iter().cycle() {
            if left == 0 { break; }
            let g = (*c).min(left);
            groups.push(g);
            left -= g;
        }
        write_parquet(&f, vec![("who", who), ("more", more), ("t", t), ("key", key), ("src", src)], &groups);
        let m = mapping(r#"{"dataset":"d","subjects":["who","more"],"source":{"column":"src"},"basis":"licensed","collected_at":{"column":"t"},"key":{"column":"key"},"jurisdiction":"EU"}"#);
        let got = parquet_records(&[&f], &m, &keyer(), &opts(None, threads)).unwrap();
        let mut lines = String::new();
        for (i, r) in rows.iter().enumerate() {
            let mut subjects: Vec<&str> = r.0.map(|i| IDS[i]).into_iter().collect();
            if r.2 {
                subjects.extend(r.1.iter().flatten().map(|&i| IDS[i]));
            }
            let mut line = serde_json::json!({"dataset":"d","shard":"t.parquet","row":i,"subjects":subjects,
                "source":SOURCES[r.5],"basis":"licensed","jurisdiction":"EU",
                "collected_at": optout::Timestamp::from_unix_seconds(r.3).to_rfc3339()});
            if let Some(k) = r.4 { line["key"] = serde_json::json!(["k0", "k1", "k2"][k]); }
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        prop_assert_eq!(got.batch, via_jsonl(&lines));
    }
}

#[test]
fn an_arrow_stream_registers_what_the_same_parquet_file_does() {
    use arrow_array::{RecordBatchIterator, RecordBatchReader};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("part-0.parquet");
    let p = posts(11, 2);
    write_posts(&f, &p, &[6, 5]);
    let m = mapping(MAPPING);
    let from_file = parquet_records(&[&f], &m, &keyer(), &opts(None, 2)).unwrap();
    // The same rows as a stream of uneven batches: positions continue across them.
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&f).unwrap(),
    )
    .unwrap()
    .with_batch_size(4)
    .build()
    .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.collect();
    assert!(batches.len() > 2);
    let stream = RecordBatchIterator::new(batches, schema);
    let got =
        optout::table::arrow_records(stream, "part-0.parquet", &m, &keyer(), "<arrow>", false)
            .unwrap();
    assert_eq!(got, from_file.batch);
    assert_eq!(got, via_jsonl(&jsonl_lines("part-0.parquet", &p)));
}

#[test]
fn pyarrow_files_and_codecs() {
    let fx = |n: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/table")
            .join(n)
    };
    let m = mapping(
        r#"{"dataset":"d","subjects":["who"],"source":"x","basis":"consent","collected_at":{"column":"t"}}"#,
    );
    let want = via_jsonl(concat!(
        r#"{"dataset":"d","shard":"S","row":0,"subjects":["a@x.org"],"source":"x","collected_at":"1970-01-01T00:00:00Z","basis":"consent"}"#,
        "\n",
        r#"{"dataset":"d","shard":"S","row":1,"subjects":["b@x.org"],"source":"x","collected_at":"1970-01-01T00:00:01Z","basis":"consent"}"#,
        "\n",
    ));
    for name in ["pyarrow_snappy.parquet", "zstd.parquet"] {
        let got = parquet_records(&[fx(name)], &m, &keyer(), &opts(None, 1)).unwrap();
        let mut want = want.clone();
        want.shards[0].shard = name.to_string();
        assert_eq!(got.batch, want, "{name}");
    }
    // A codec this build does not read is refused before decoding, named.
    let e = parquet_records(&[fx("gzip.parquet")], &m, &keyer(), &opts(None, 1)).unwrap_err();
    assert_eq!(
        (e.kind, &e.at, e.column.as_deref()),
        (TableErrorKind::Unsupported, &At::File, Some("who")),
        "{e}"
    );
    assert!(e.message.starts_with("compressed with GZIP"), "{e}");
}

#[test]
fn through_the_arrow_c_stream_interface() {
    // What a Python binding receives from `__arrow_c_stream__`: the C
    // stream ABI, read back with `RecordBatchStreamReader`.
    use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
    use arrow_array::{RecordBatchIterator, RecordBatchReader};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("part-0.parquet");
    let p = posts(7, 1);
    write_posts(&f, &p, &[7]);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&f).unwrap(),
    )
    .unwrap()
    .with_batch_size(3)
    .build()
    .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.collect();
    let ffi = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(batches, schema)));
    let stream = RecordBatchStreamReader::try_new(ffi).unwrap();
    let got = optout::table::arrow_records(
        stream,
        "posts",
        &mapping(MAPPING),
        &keyer(),
        "<capsule>",
        false,
    )
    .unwrap();
    assert_eq!(got, via_jsonl(&jsonl_lines("posts", &p)));
}
