//! Issue 14 and 19 on the real binary: a file replaced by a shorter one
//! (Parquet, WebDataset) or a JSONL shard end line makes the rows past the
//! end gone, and the manifest and `affected` agree with a fresh ledger that
//! only saw the short file; a JSONL replace of one row makes the next
//! `ingest --parquet` read the file again; a WebDataset tar has a
//! fingerprint; a large ingest is followed by a snapshot.
#![cfg(feature = "cli")]

mod common;
use common::{json, optout, run};

mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray};
use optout::Manifest;

const MAPPING: &str = r#"{"dataset":"forum","subjects":["author"],"source":"forum.x.org","basis":"legitimate_interest","collected_at":"2024-01-01T00:00:00Z","key":{"column":"key"}}"#;

/// Objections of u1 and u4, a takedown of key k3.
const EVENTS: &str = r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}
{"type":"objection","subject":"u4@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}
{"type":"takedown","key":"k3","at":"2025-01-01T00:00:00Z","reason":"dmca"}"#;

struct L {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl L {
    fn new() -> L {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        std::fs::write(root.join("map.json"), MAPPING).unwrap();
        std::fs::write(root.join("events.jsonl"), EVENTS).unwrap();
        let l = L { _dir: d, root };
        for name in ["A", "B"] {
            run(&["init", &l.p(name), "--key-file", &l.p("K")], 0);
        }
        l
    }
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).to_str().unwrap().to_string()
    }
    /// `optout --format json ingest LEDGER --key-file K rest...`.
    fn ingest(&self, ledger: &str, rest: &[&str], want: i32) -> serde_json::Value {
        let (l, k) = (self.p(ledger), self.p("K"));
        let mut a = vec!["ingest", &l, "--key-file", &k];
        a.extend_from_slice(rest);
        json(&a, want)
    }
    fn parquet(&self, ledger: &str, data: &str, rest: &[&str]) -> serde_json::Value {
        let (m, d, f) = (
            self.p("map.json"),
            self.p(data),
            self.p(&format!("{data}/p0.parquet")),
        );
        let mut a = vec!["--parquet", "--mapping", &m, "--root", &d];
        a.extend_from_slice(rest);
        a.push(&f);
        self.ingest(ledger, &a, 0)
    }
    fn apply(&self, ledger: &str) {
        run(
            &[
                "apply",
                &self.p(ledger),
                "--key-file",
                &self.p("K"),
                &self.p("events.jsonl"),
            ],
            0,
        );
    }
    /// The default manifest of `ledger`, read back.
    fn manifest(&self, ledger: &str) -> Manifest {
        let out = self.p(&format!("{ledger}.optm"));
        run(
            &[
                "manifest",
                &self.p(ledger),
                "--key-file",
                &self.p("K"),
                "--purpose",
                "ai-training",
                "--at",
                "2025-02-01T00:00:00Z",
                "-o",
                &out,
            ],
            0,
        );
        Manifest::load(Path::new(&out)).unwrap()
    }
    /// `affected`'s record count for u0..u5.
    fn affected(&self, ledger: &str) -> Vec<String> {
        (0..6)
            .map(|i| {
                let s = format!("u{i}@x.org");
                let o = optout(&[
                    "affected",
                    &self.p(ledger),
                    "--subject",
                    &s,
                    "--key-file",
                    &self.p("K"),
                ]);
                assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
                let t = String::from_utf8_lossy(&o.stdout).to_string();
                t.split(": ")
                    .nth(1)
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

/// `DIR/p0.parquet`: row r by u{r}@x.org, key k{r}, rows 0..n.
fn write(dir: &str, n: usize, first: &str) {
    let authors: Vec<String> = (0..n)
        .map(|r| {
            if r == 0 {
                first.to_string()
            } else {
                format!("u{r}@x.org")
            }
        })
        .collect();
    let keys: Vec<String> = (0..n).map(|r| format!("k{r}")).collect();
    let a: ArrayRef = Arc::new(StringArray::from(authors));
    let k: ArrayRef = Arc::new(StringArray::from(keys));
    table::write_parquet(
        &Path::new(dir).join("p0.parquet"),
        vec![("author", a), ("key", k)],
        &[n],
    );
}

/// What a manifest says of the data, not of the ledger it came from.
fn content(m: &Manifest) -> String {
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
        "registered {} excluded {} counts {:?} {shards:?}",
        m.header.registered, m.header.excluded, m.header.counts
    )
}

#[test]
fn a_parquet_file_replaced_by_a_shorter_one_leaves_no_row_behind() {
    let l = L::new();
    write(&l.p("d6"), 6, "u0@x.org");
    l.parquet("A", "d6", &[]);
    l.apply("A");
    // The same shard, three rows now.
    write(&l.p("d6"), 3, "u0@x.org");
    let r = l.parquet("A", "d6", &["--replace"]);
    assert_eq!(
        (r["registered"].as_u64(), r["gone"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    write(&l.p("d3"), 3, "u0@x.org");
    l.parquet("B", "d3", &[]);
    l.apply("B");
    let (a, b) = (l.manifest("A"), l.manifest("B"));
    assert_eq!(content(&a), content(&b));
    assert!(
        content(&a).contains("registered 3 end Some(3)"),
        "{}",
        content(&a)
    );
    assert_eq!(l.affected("A"), l.affected("B"));
    assert_eq!(l.affected("A")[4], "0 record(s)");
    let v = json(&["verify", &l.p("A"), "--key-file", &l.p("K")], 0);
    assert!(v["problems"].as_array().is_none_or(|p| p.is_empty()), "{v}");
}

#[test]
fn a_jsonl_shard_end_line_leaves_no_row_behind() {
    let l = L::new();
    let line = |r: u32, replace: bool| {
        format!(
            r#"{{"dataset":"forum","shard":"p0.parquet","row":{r},"subjects":["u{r}@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k{r}","replace":{replace}}}"#
        )
    };
    let six: Vec<String> = (0..6).map(|r| line(r, false)).collect();
    std::fs::write(l.p("six.jsonl"), six.join("\n")).unwrap();
    let mut three: Vec<String> = (0..3).map(|r| line(r, true)).collect();
    three.push(r#"{"dataset":"forum","shard":"p0.parquet","end":3}"#.into());
    std::fs::write(l.p("three.jsonl"), three.join("\n")).unwrap();
    l.ingest("A", &[&l.p("six.jsonl")], 0);
    l.apply("A");
    let r = l.ingest("A", &[&l.p("three.jsonl")], 0);
    assert_eq!(r["gone"].as_u64(), Some(3), "{r}");
    std::fs::write(
        l.p("b.jsonl"),
        three[..3].join("\n").replace("true", "false"),
    )
    .unwrap();
    l.ingest("B", &[&l.p("b.jsonl")], 0);
    l.apply("B");
    assert_eq!(content(&l.manifest("A")), content(&l.manifest("B")));
    assert_eq!(l.affected("A"), l.affected("B"));
    // A record past the end it gives is refused, nothing written.
    let mut bad = three.clone();
    bad.push(line(4, false));
    std::fs::write(l.p("bad.jsonl"), bad.join("\n")).unwrap();
    let head = run(&["head", &l.p("A")], 0);
    let o = optout(&[
        "ingest",
        &l.p("A"),
        "--key-file",
        &l.p("K"),
        &l.p("bad.jsonl"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("row 4"),
        "{o:?}"
    );
    assert_eq!(run(&["head", &l.p("A")], 0), head);
}

#[test]
fn a_row_replaced_by_jsonl_makes_the_next_parquet_ingest_read_the_file() {
    let l = L::new();
    write(&l.p("d"), 4, "u0@x.org");
    l.parquet("A", "d", &[]);
    let r = l.parquet("A", "d", &[]);
    assert_eq!(r["files_unchanged"].as_u64(), Some(1), "{r}");
    let one = r#"{"dataset":"forum","shard":"p0.parquet","row":2,"subjects":["zed@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"k2","replace":true}"#;
    std::fs::write(l.p("one.jsonl"), one).unwrap();
    l.ingest("A", &[&l.p("one.jsonl")], 0);
    // Read again, not skipped: the row differs from the file's.
    let (m, d, f) = (l.p("map.json"), l.p("d"), l.p("d/p0.parquet"));
    let o = optout(&[
        "ingest",
        &l.p("A"),
        "--key-file",
        &l.p("K"),
        "--parquet",
        "--mapping",
        &m,
        "--root",
        &d,
        &f,
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&format!("{f}: row 2")) && e.contains("--replace"),
        "{e}"
    );
    let r = l.parquet("A", "d", &["--replace"]);
    assert_eq!(r["registered"].as_u64(), Some(4), "{r}");
    let r = l.parquet("A", "d", &[]);
    assert_eq!(r["files_unchanged"].as_u64(), Some(1), "{r}");
}

/// A tar of `n` samples, sample i by `authors[i]`.
fn tar(path: &Path, authors: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (i, a) in authors.iter().enumerate() {
        let json = format!(r#"{{"author":"{a}"}}"#);
        for (ext, data) in [("jpg", &b"\xff\xd8jpeg"[..]), ("json", json.as_bytes())] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, format!("s/{i:06}.{ext}"), data)
                .unwrap();
        }
    }
    b.finish().unwrap();
}

#[test]
fn a_webdataset_tar_has_a_fingerprint() {
    let l = L::new();
    let map = l.p("wds.json");
    std::fs::write(
        &map,
        r#"{"dataset":"img","subjects":["author"],"source":"x.org","basis":"legitimate_interest","collected_at":"2024-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let t = l.root.join("w/t.tar");
    let (root, tp) = (l.p("w"), t.to_str().unwrap().to_string());
    let args = |extra: &'static str| {
        let mut v = vec![
            "--webdataset".to_string(),
            "--mapping".into(),
            map.clone(),
            "--root".into(),
            root.clone(),
        ];
        if !extra.is_empty() {
            v.push(extra.into());
        }
        v.push(tp.clone());
        v
    };
    let go = |extra: &'static str, want: i32| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        l.ingest("A", &a, want)
    };
    tar(&t, &["a@x.org", "bob@x.org", "c@x.org"]);
    assert_eq!(go("", 0)["registered"].as_u64(), Some(3));
    let head = run(&["head", &l.p("A")], 0);
    let r = go("", 0);
    assert_eq!(
        (r["files_unchanged"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(3)),
        "{r}"
    );
    assert_eq!(
        run(&["head", &l.p("A")], 0),
        head,
        "an unchanged tar writes nothing"
    );
    // Same headers (same sizes, mtime 0), another author in a .json member.
    tar(&t, &["a@x.org", "zoe@x.org", "c@x.org"]);
    let a = args("");
    let mut full = vec![
        "ingest".to_string(),
        l.p("A"),
        "--key-file".into(),
        l.p("K"),
    ];
    full.extend(a);
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let o = optout(&full);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("changed since the ledger registered it as img/t.tar (footer)")
            && e.contains("pass --replace"),
        "{e}"
    );
    assert_eq!(run(&["head", &l.p("A")], 0), head);
    // Replaced by a shorter tar: the third sample is gone.
    tar(&t, &["a@x.org", "zoe@x.org"]);
    let r = go("--replace", 0);
    assert_eq!(
        (r["registered"].as_u64(), r["gone"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    let m = l.manifest("A");
    let s = m.shard("img", "t.tar").unwrap();
    assert_eq!((s.registered, s.row_end), (2, Some(2)));
}

#[test]
fn a_large_ingest_is_followed_by_a_snapshot_and_the_ledger_verifies() {
    let l = L::new();
    write(&l.p("d"), 50, "u0@x.org");
    // Under the default threshold (a million rows): no snapshot.
    let r = l.parquet("A", "d", &[]);
    assert!(r["snapshot_seq"].is_null(), "{r}");
    assert!(std::fs::read_dir(l.root.join("A/snap")).map_or(true, |d| d.count() == 0));
    // With a threshold of 40 rows: the 50 rows appended call for one.
    write(&l.p("e"), 50, "u0@x.org");
    let (m, d, f) = (l.p("map.json"), l.p("e"), l.p("e/p0.parquet"));
    let r = l.ingest(
        "B",
        &[
            "--parquet",
            "--mapping",
            &m,
            "--root",
            &d,
            "--snapshot-after",
            "40",
            &f,
        ],
        0,
    );
    let seq = r["seq"].as_u64().unwrap();
    assert_eq!(r["snapshot_seq"].as_u64(), Some(seq), "{r}");
    let snap = l.root.join(format!("B/snap/{seq:020}.snap"));
    assert!(snap.exists(), "{}", snap.display());
    let v = json(&["verify", &l.p("B"), "--key-file", &l.p("K")], 0);
    assert!(v["problems"].as_array().is_none_or(|p| p.is_empty()), "{v}");
    // The re-run opens from it: nothing replayed, so no second snapshot.
    let r = l.ingest(
        "B",
        &[
            "--parquet",
            "--mapping",
            &m,
            "--root",
            &d,
            "--snapshot-after",
            "40",
            &f,
        ],
        0,
    );
    assert!(r["snapshot_seq"].is_null(), "{r}");
    // 0 = never.
    write(&l.p("e"), 60, "u0@x.org");
    let r = l.ingest(
        "B",
        &[
            "--parquet",
            "--mapping",
            &m,
            "--root",
            &d,
            "--snapshot-after",
            "0",
            "--replace",
            &f,
        ],
        0,
    );
    assert!(r["snapshot_seq"].is_null(), "{r}");
}
