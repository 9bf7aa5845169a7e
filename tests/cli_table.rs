//! `optout ingest --parquet|--webdataset` and `optout apply --csv|--parquet`
//! on the real binary: shards are paths under `--root`, rows are positions in
//! the file, a re-run is a no-op, a changed file needs `--replace`, errors
//! name the file, row and column, and nothing is half-applied.
#![cfg(feature = "cli")]

mod common;
use common::optout;

mod table;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use serde_json::Value;

fn ok(args: &[&str]) -> String {
    let o = optout(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let o = optout(args);
    assert_eq!(o.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MAPPING: &str = r#"{"dataset":"forum","subjects":["author_email","mentions"],"source":"forum.example.com",
 "basis":"legitimate_interest","collected_at":{"column":"created_at"},"categories":["text"],
 "visibility":"public","key":{"column":"url"}}"#;

fn strings(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn times(n: usize) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(vec![1_700_000_000_000_000i64; n]).with_timezone("UTC"),
    )
}

/// A forum shard: row i is written by `authors[i]` and mentions `mentions[i]`.
fn forum(
    path: &Path,
    authors: &[Option<&str>],
    mentions: &[Option<Vec<Option<&str>>>],
    groups: &[usize],
) {
    let n = authors.len();
    let urls: Vec<String> = (0..n)
        .map(|i| format!("https://forum.example.com/{}/{i}", path.display()))
        .collect();
    let urls: Vec<Option<&str>> = urls.iter().map(|s| Some(s.as_str())).collect();
    table::write_parquet(
        path,
        vec![
            ("author_email", strings(authors)),
            ("mentions", table::lists(mentions)),
            ("created_at", times(n)),
            ("url", strings(&urls)),
        ],
        groups,
    );
}

/// The excluded (shard, row) pairs of a manifest, via `export --to jsonl`.
fn excluded(manifest: &Path) -> Vec<(String, u64, Vec<String>)> {
    let text = ok(&["export", manifest.to_str().unwrap(), "--to", "jsonl"]);
    let mut v: Vec<(String, u64, Vec<String>)> = text
        .lines()
        .map(|l| {
            let j: Value = serde_json::from_str(l).unwrap();
            let reasons = j["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            (
                j["shard"].as_str().unwrap().to_string(),
                j["row"].as_u64().unwrap(),
                reasons,
            )
        })
        .collect();
    v.sort();
    v
}

/// `optout ingest L --key-file K --parquet --mapping MAP` then `rest`.
fn ingest_parquet<'a>(l: &'a str, key: &'a str, map: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "ingest",
        l,
        "--key-file",
        key,
        "--parquet",
        "--mapping",
        map,
    ];
    v.extend_from_slice(rest);
    v
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn setup(name: &str) -> Fixture {
    let d = tempfile::Builder::new().prefix(name).tempdir().unwrap();
    let root = d.path().to_path_buf();
    std::fs::write(root.join("map.json"), MAPPING).unwrap();
    ok(&[
        "init",
        root.join("L").to_str().unwrap(),
        "--key-file",
        root.join("L.key").to_str().unwrap(),
    ]);
    Fixture { _dir: d, root }
}

impl Fixture {
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).to_str().unwrap().to_string()
    }
    fn key(&self) -> String {
        self.p("L.key")
    }
}

#[test]
fn parquet_rows_are_file_positions_and_manifests_exclude_them() {
    let f = setup("positions");
    // Row groups of 2, 1, 2 rows: positions must run across them.
    forum(
        &f.root.join("data/forum/part-0.parquet"),
        &[
            Some("a@x.org"),
            Some("b@x.org"),
            None,
            Some("c@x.org"),
            Some(""),
        ],
        &[
            Some(vec![Some("b@x.org")]),
            Some(vec![]),
            None,
            Some(vec![Some("a@x.org"), Some("")]),
            Some(vec![Some("B@X.org")]),
        ],
        &[2, 1, 2],
    );
    forum(
        &f.root.join("data/forum/sub/part-1.parquet"),
        &[Some("d@x.org"), Some("b@x.org")],
        &[None, None],
        &[2],
    );
    let (l, key, map, data) = (f.p("L"), f.key(), f.p("map.json"), f.p("data"));
    let files = [
        f.p("data/forum/part-0.parquet"),
        f.p("data/forum/sub/part-1.parquet"),
    ];
    let mut args = vec![
        "ingest",
        &l,
        "--key-file",
        &key,
        "--parquet",
        "--mapping",
        &map,
        "--root",
        &data,
    ];
    args.extend(files.iter().map(String::as_str));
    let first = ok(&args);
    assert!(
        first.contains("ingested 7 records from 2 file(s): 7 registered, 0 unchanged"),
        "{first}"
    );
    // A re-run is a no-op.
    let again = ok(&args);
    assert!(again.contains("0 registered, 7 unchanged"), "{again}");

    let ev = f.p("ev.jsonl");
    std::fs::write(&ev, r#"{"type":"objection","subject":"b@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#).unwrap();
    ok(&["apply", &l, "--key-file", &key, &ev]);
    let m = f.p("m.optm");
    ok(&[
        "manifest",
        &l,
        "--key-file",
        &key,
        "--purpose",
        "ai-training",
        "-o",
        &m,
    ]);
    let got: Vec<(String, u64)> = excluded(Path::new(&m))
        .into_iter()
        .map(|(s, r, _)| (s, r))
        .collect();
    // b@x.org: author of part-0 row 1 and part-1 row 1, mentioned in part-0
    // rows 0 and 4 (B@X.org: emails are case-folded).
    assert_eq!(
        got,
        vec![
            ("forum/part-0.parquet".to_string(), 0),
            ("forum/part-0.parquet".to_string(), 1),
            ("forum/part-0.parquet".to_string(), 4),
            ("forum/sub/part-1.parquet".to_string(), 1),
        ]
    );

    // Without --root the shard is the file name.
    let f2 = setup("noroot");
    forum(
        &f2.root.join("x/part-9.parquet"),
        &[Some("a@x.org")],
        &[None],
        &[1],
    );
    let (l2, k2, m2) = (f2.p("L"), f2.key(), f2.p("map.json"));
    ok(&ingest_parquet(&l2, &k2, &m2, &[&f2.p("x/part-9.parquet")]));
    let ev2 = f2.p("ev.jsonl");
    std::fs::write(
        &ev2,
        r#"{"type":"erasure","subject":"a@x.org","at":"2025-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    ok(&["apply", &l2, "--key-file", &k2, &ev2]);
    let o = f2.p("o.optm");
    ok(&[
        "manifest",
        &l2,
        "--key-file",
        &k2,
        "--purpose",
        "ai-training",
        "-o",
        &o,
    ]);
    let got = excluded(Path::new(&o));
    assert_eq!(
        got,
        vec![("part-9.parquet".to_string(), 0, vec!["erasure".to_string()])]
    );
}

#[test]
fn a_changed_file_needs_replace_and_bad_input_names_the_place() {
    let f = setup("changed");
    let (l, key, map) = (f.p("L"), f.key(), f.p("map.json"));
    let part = f.p("part-0.parquet");
    forum(
        Path::new(&part),
        &[Some("a@x.org"), Some("b@x.org")],
        &[None, None],
        &[2],
    );
    ok(&ingest_parquet(&l, &key, &map, &[&part]));
    let head = ok(&["head", &l]);
    // A re-run is recognised by the file's fingerprint (footer only).
    let r = ok(&ingest_parquet(&l, &key, &map, &[&part]));
    assert!(
        r.contains("2 unchanged (1 file(s) recognised by their fingerprint)"),
        "{r}"
    );
    assert_eq!(ok(&["head", &l]), head, "a re-run writes nothing");

    // The same size, another subject: the footer's statistics differ.
    forum(
        Path::new(&part),
        &[Some("a@x.org"), Some("z@x.org")],
        &[None, None],
        &[2],
    );
    let e = fails(&ingest_parquet(&l, &key, &map, &[&part]));
    assert!(
        e.contains(&format!(
            "{part}: changed since the ledger registered it as forum/part-0.parquet (footer); "
        )) && e.contains("pass --replace"),
        "{e}"
    );
    assert_eq!(ok(&["head", &l]), head);
    // A file that lost its last row: the size, the rows and the footer.
    let short = f.p("short.parquet");
    forum(Path::new(&short), &[Some("a@x.org")], &[None], &[1]);
    std::fs::copy(&short, &part).unwrap();
    let e = fails(&ingest_parquet(&l, &key, &map, &[&part]));
    assert!(e.contains("bytes, rows 2 -> 1, footer)"), "{e}");
    assert!(e.contains("(size "), "{e}");
    forum(
        Path::new(&part),
        &[Some("a@x.org"), Some("z@x.org")],
        &[None, None],
        &[2],
    );
    assert_eq!(
        ok(&["head", &l]),
        head,
        "nothing recorded on a refused ingest"
    );
    let r = ok(&ingest_parquet(&l, &key, &map, &["--replace", &part]));
    assert!(r.contains("2 records"), "{r}");

    // A missing column names the file, the column and the field.
    let bad = f.p("bad.json");
    std::fs::write(&bad, MAPPING.replace("\"created_at\"", "\"created\"")).unwrap();
    let e = fails(&ingest_parquet(&l, &key, &bad, &[&part]));
    assert!(
        e.contains(&part) && e.contains("column `created`") && e.contains("field `collected_at`"),
        "{e}"
    );
    // A null in a required column names the file and the column: the second file is bad,
    // and the first (good, new) file is not registered either.
    let good = f.p("good.parquet");
    forum(Path::new(&good), &[Some("q@x.org")], &[None], &[1]);
    let nulls = f.p("nulls.parquet");
    table::write_parquet(
        Path::new(&nulls),
        vec![
            ("author_email", strings(&[Some("a@x.org"), Some("b@x.org")])),
            ("mentions", table::lists(&[None, None])),
            (
                "created_at",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000i64), None])
                        .with_timezone("UTC"),
                ),
            ),
            ("url", strings(&[Some("u/1"), Some("u/2")])),
        ],
        &[1, 1],
    );
    let before = ok(&["head", &l]);
    let e = fails(&ingest_parquet(&l, &key, &map, &[&good, &nulls]));
    assert!(
        e.contains(&format!("{nulls}: row 1: column `created_at`")) && e.contains("null"),
        "{e}"
    );
    assert_eq!(ok(&["head", &l]), before, "all or nothing");

    // Usage mistakes.
    let e = fails(&["ingest", &l, "--key-file", &key, "--mapping", &map, &part]);
    assert!(e.contains("add --parquet or --webdataset"), "{e}");
    let e = fails(&ingest_parquet(&l, &key, &map, &["-"]));
    assert!(e.contains("stdin"), "{e}");
}

#[test]
fn a_corrupt_parquet_file_is_refused_naming_it_and_nothing_is_written() {
    let f = setup("corrupt");
    let (l, key, map) = (f.p("L"), f.key(), f.p("map.json"));
    let good = f.p("good.parquet");
    forum(
        Path::new(&good),
        &[Some("a@x.org"), Some("b@x.org"), Some("c@x.org")],
        &[None, None, None],
        &[2, 1],
    );
    let bytes = std::fs::read(&good).unwrap();
    let head = ok(&["head", &l]);
    // A truncated footer, garbage over the first data page (the magic and
    // the footer intact), and a file that is not Parquet at all; each given
    // after a good file, which must not be registered either.
    let mut paged = bytes.clone();
    for b in &mut paged[4..bytes.len() / 2] {
        *b = 0xA5;
    }
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated.parquet", bytes[..bytes.len() - 9].to_vec()),
        ("paged.parquet", paged),
        ("text.parquet", b"not a parquet file\n".to_vec()),
    ];
    for (name, content) in cases {
        let bad = f.p(name);
        std::fs::write(&bad, content).unwrap();
        let e = fails(&ingest_parquet(&l, &key, &map, &[&good, &bad]));
        assert!(
            e.starts_with("optout: error:") && e.contains(&bad),
            "{name}: the error names the file: {e}"
        );
        assert_eq!(ok(&["head", &l]), head, "{name}: nothing recorded");
        std::fs::remove_file(&bad).unwrap();
    }
    ok(&ingest_parquet(&l, &key, &map, &[&good]));
    assert_ne!(ok(&["head", &l]), head, "the good file alone registers");
}

#[test]
fn a_dsr_csv_export_is_applied_by_its_mapping() {
    let f = setup("csv");
    let (l, key) = (f.p("L"), f.key());
    let part = f.p("part-0.parquet");
    forum(
        Path::new(&part),
        &[
            Some("alice@example.com"),
            Some("bob@example.com"),
            Some("carol@example.com"),
            Some("erin@example.com"),
        ],
        &[None, None, None, None],
        &[4],
    );
    ok(&ingest_parquet(&l, &key, &f.p("map.json"), &[&part]));
    // The Fides-shaped export and mapping the table tests use: erasures only,
    // completed or approved requests only.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/table");
    let csv = fixtures.join("fides_privacy_requests.csv");
    let mapping = fixtures.join("fides_mapping.json");
    let out = ok(&[
        "--format",
        "json",
        "apply",
        &l,
        "--key-file",
        &key,
        "--csv",
        "--mapping",
        mapping.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    let j: Value = serde_json::from_str(&out).unwrap();
    // alice (complete erasure) and Carol (approved access+erasure); bob's was
    // denied, dave's and erin's are not erasures.
    assert_eq!(j["by_type"]["erasure"], 2, "{out}");
    assert_eq!(j["events"], 2, "{out}");
    assert_eq!(j["skipped_rows"], 3, "{out}");
    let m = f.p("m.optm");
    ok(&[
        "manifest",
        &l,
        "--key-file",
        &key,
        "--purpose",
        "ai-training",
        "-o",
        &m,
    ]);
    let got = excluded(Path::new(&m));
    assert_eq!(
        got,
        vec![
            ("part-0.parquet".to_string(), 0, vec!["erasure".to_string()]),
            ("part-0.parquet".to_string(), 2, vec!["erasure".to_string()]),
        ]
    );

    // A bad time names the file, the line and the column; nothing applied.
    let bad = f.p("bad.csv");
    std::fs::write(
        &bad,
        "Status,Request Type,Time Received,Request ID,email\n\
         complete,erasure,2024-03-01T12:00:00Z,r1,bob@example.com\n\
         complete,erasure,yesterday,r2,erin@example.com\n",
    )
    .unwrap();
    let before = ok(&["head", &l]);
    let e = fails(&[
        "apply",
        &l,
        "--key-file",
        &key,
        "--csv",
        "--mapping",
        mapping.to_str().unwrap(),
        &bad,
    ]);
    assert!(
        e.contains(&format!("{bad}:3")) && e.contains("column `Time Received`"),
        "{e}"
    );
    assert_eq!(ok(&["head", &l]), before, "all or nothing");
    let e = fails(&["apply", &l, "--key-file", &key, "--csv", &bad]);
    assert!(e.contains("--mapping"), "{e}");
}

#[test]
fn webdataset_tars_are_registered_by_sample_index() {
    let f = setup("wds");
    let (l, key) = (f.p("L"), f.key());
    let tar_path = f.root.join("wds/train/shard-000000.tar");
    std::fs::create_dir_all(tar_path.parent().unwrap()).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let members: [(&str, &[u8]); 4] = [
        ("img/000000.jpg", b"\xff\xd8jpeg"),
        (
            "img/000000.json",
            br#"{"author":"alice@example.com","created":"2024-03-01T12:00:00Z"}"#,
        ),
        ("img/000001.jpg", b"\xff\xd8jpeg"),
        (
            "img/000001.json",
            br#"{"author":"bob@example.com","created":"2024-03-02T12:00:00Z"}"#,
        ),
    ];
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let map = f.p("wds.json");
    std::fs::write(
        &map,
        r#"{"dataset":"images","subjects":["author"],"source":"photos.example.com","basis":"legitimate_interest","collected_at":{"column":"created"},"categories":["image"]}"#,
    )
    .unwrap();
    let (root, tar) = (f.p("wds"), tar_path.to_str().unwrap().to_string());
    let out = ok(&[
        "ingest",
        &l,
        "--key-file",
        &key,
        "--webdataset",
        "--mapping",
        &map,
        "--root",
        &root,
        &tar,
    ]);
    assert!(out.contains("2 registered"), "{out}");
    let ev = f.p("ev.jsonl");
    std::fs::write(
        &ev,
        r#"{"type":"erasure","subject":"bob@example.com","at":"2025-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    ok(&["apply", &l, "--key-file", &key, &ev]);
    let m = f.p("m.optm");
    ok(&[
        "manifest",
        &l,
        "--key-file",
        &key,
        "--purpose",
        "ai-training",
        "-o",
        &m,
    ]);
    assert_eq!(
        excluded(Path::new(&m)),
        vec![(
            "train/shard-000000.tar".to_string(),
            1,
            vec!["erasure".to_string()]
        )]
    );
}
