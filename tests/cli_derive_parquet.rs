//! `optout derive --parquet`: lineage as Parquet columns (one row per link)
//! builds the same derivation as the same lineage in JSONL, and gives the
//! same manifest; bad input (a missing column, a wrong type, a null where
//! required, a row naming two parent forms, a parent the ledger refuses)
//! exits 2 naming the file, the Parquet row and the column, writing nothing.
#![cfg(feature = "cli")]

mod common;
use common::optout;

mod table;
use table::write_parquet;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray, UInt32Array};
use optout::jsonl::DerivationBuilder;

fn run(args: &[&str], want: i32) -> String {
    let o = optout(args);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(want), "{args:?}: {text}");
    text
}

const HASH: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn forum_jsonl() -> String {
    let rec = |row: u32, who: &str, extra: &str| {
        format!(
            r#"{{"dataset":"forum","shard":"p0","row":{row},"subjects":["{who}"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/{row}"{extra}}}"#
        )
    };
    [
        rec(0, "ann@example.com", ""),
        rec(1, "ben@example.com", ""),
        rec(2, "cy@example.com", &format!(r#","content_hash":"{HASH}""#)),
        rec(3, "ann@example.com", ""),
    ]
    .join("\n")
        + "\n"
}

/// The lineage both ways: packed t0#0 = forum p0#0 + key post/1; t0#1 =
/// hash of p0#2 + p0#3; t1#0 = p0#1. As JSONL, and as Parquet links (t0#1's
/// second link in the second file, so a row's links may span files).
const JSONL: &str = r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}
{"shard":"t0","row":1,"parents":[{"content_hash":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},{"dataset":"forum","shard":"p0","row":3}]}
{"shard":"t1","row":0,"parents":[{"dataset":"forum","shard":"p0","row":1}]}
"#;

fn s(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn u(v: &[Option<u32>]) -> ArrayRef {
    Arc::new(UInt32Array::from(v.to_vec()))
}

/// Links as rows: (shard, row, parent_dataset, parent_shard, parent_row,
/// parent_key, parent_content_hash).
type LinkRow<'a> = (
    Option<&'a str>,
    Option<u32>,
    Option<&'a str>,
    Option<&'a str>,
    Option<u32>,
    Option<&'a str>,
    Option<&'a str>,
);

fn links(path: &Path, rows: &[LinkRow<'_>], groups: &[usize]) {
    write_parquet(
        path,
        vec![
            ("shard", s(&rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            ("row", u(&rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            (
                "parent_dataset",
                s(&rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            ),
            (
                "parent_shard",
                s(&rows.iter().map(|r| r.3).collect::<Vec<_>>()),
            ),
            (
                "parent_row",
                u(&rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            ),
            (
                "parent_key",
                s(&rows.iter().map(|r| r.5).collect::<Vec<_>>()),
            ),
            (
                "parent_content_hash",
                s(&rows.iter().map(|r| r.6).collect::<Vec<_>>()),
            ),
        ],
        groups,
    );
}

fn rec(shard: &'static str, row: u32, pshard: &'static str, prow: u32) -> LinkRow<'static> {
    (
        Some(shard),
        Some(row),
        Some("forum"),
        Some(pshard),
        Some(prow),
        None,
        None,
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ledger: String,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ledger = dir.join(name).display().to_string();
        run(&["-q", "init", &ledger], 0);
        let f = Fixture {
            _tmp: tmp,
            dir,
            ledger,
        };
        let forum = f.path("forum.jsonl");
        std::fs::write(&forum, forum_jsonl()).unwrap();
        run(&["-q", "ingest", &f.ledger, &forum], 0);
        f
    }
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    fn head(&self) -> String {
        run(&["head", &self.ledger], 0)
    }
    /// The lineage as two Parquet files (the first in two row groups).
    fn parquet(&self) -> (String, String) {
        let (a, b) = (self.path("links-0.parquet"), self.path("links-1.parquet"));
        links(
            Path::new(&a),
            &[
                rec("t0", 0, "p0", 0),
                (Some("t0"), Some(0), None, None, None, Some("post/1"), None),
                (Some("t0"), Some(1), None, None, None, None, Some(HASH)),
            ],
            &[2, 1],
        );
        links(
            Path::new(&b),
            &[rec("t0", 1, "p0", 3), rec("t1", 0, "p0", 1)],
            &[2],
        );
        (a, b)
    }
    fn derive(&self, extra: &[&str], files: &[&str], want: i32) -> String {
        let mut args = vec![
            "derive",
            &self.ledger,
            "--dataset",
            "packed",
            "--from",
            "forum",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(files);
        run(&args, want)
    }
    /// The excluded rows of `packed` after ann objects, as export JSONL.
    fn excluded(&self) -> String {
        let ev = self.path("ev.jsonl");
        std::fs::write(
            &ev,
            r#"{"type":"objection","subject":"ann@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
        )
        .unwrap();
        run(&["-q", "apply", &self.ledger, &ev], 0);
        let m = self.path("m.optout");
        run(
            &[
                "-q",
                "manifest",
                &self.ledger,
                "--purpose",
                "ai-training",
                "--at",
                "2025-06-01T00:00:00Z",
                "--dataset",
                "packed",
                "-o",
                &m,
            ],
            0,
        );
        run(&["export", &m, "--to", "jsonl"], 0)
    }
}

#[test]
fn parquet_lineage_is_the_same_derivation_as_jsonl() {
    let f = Fixture::new("l");
    let (a, b) = f.parquet();
    let sources = vec!["forum".to_string()];
    let mut j = DerivationBuilder::new("packed", &sources, false);
    j.parse(JSONL.as_bytes(), "packed.jsonl").unwrap();
    let mut p = optout::table::parquet_lineage(&[&a, &b], "packed", &sources, false).unwrap();
    assert_eq!(p.take(), j.take());
    assert_eq!(p.derivation().len(), 0, "taken");
}

#[test]
fn derive_parquet_equals_derive_jsonl() {
    // JSONL first, then the same lineage as Parquet: every row unchanged.
    let fj = Fixture::new("j");
    let jl = fj.path("packed.jsonl");
    std::fs::write(&jl, JSONL).unwrap();
    let out = fj.derive(&[], &[&jl], 0);
    assert!(
        out.contains("3 rows of packed from forum with 5 links: 3 registered"),
        "{out}"
    );
    let (a, b) = fj.parquet();
    let head = fj.head();
    let out = fj.derive(&["--parquet"], &[&a, &b], 0);
    assert!(out.contains("0 registered, 3 unchanged"), "{out}");
    assert_eq!(fj.head(), head);
    // A ledger derived from Parquet alone excludes the same rows, for the
    // same reasons.
    let fp = Fixture::new("p");
    let (a, b) = fp.parquet();
    let out = fp.derive(&["--parquet"], &[&a, &b], 0);
    assert!(
        out.contains("3 rows of packed from forum with 5 links: 3 registered"),
        "{out}"
    );
    let (ej, ep) = (fj.excluded(), fp.excluded());
    assert_eq!(ej, ep);
    // ann wrote p0#0 (in t0#0) and p0#3 (in t0#1); t1#0 holds ben's post.
    assert!(ep.contains(r#""shard":"t0","row":0"#), "{ep}");
    assert!(ep.contains(r#""shard":"t0","row":1"#), "{ep}");
    assert!(!ep.contains(r#""shard":"t1""#), "{ep}");
    assert!(ep.contains("objection"), "{ep}");
}

#[test]
fn parquet_files_are_recognised_without_the_flag() {
    // Every file starts with Parquet's magic: read as lineage columns.
    let f = Fixture::new("n");
    let (a, b) = f.parquet();
    let out = f.derive(&[], &[&a, &b], 0);
    assert!(
        out.contains("3 rows of packed from forum with 5 links: 3 registered"),
        "{out}"
    );
    // One JSONL file among them: all are read as JSONL, and the Parquet
    // file is refused as a JSONL line, naming it; nothing written.
    let g = Fixture::new("m");
    let (a, _) = g.parquet();
    let jl = g.path("packed.jsonl");
    std::fs::write(&jl, JSONL).unwrap();
    let head = g.head();
    let err = g.derive(&[], &[&jl, &a], 2);
    assert!(err.contains("links-0.parquet"), "{err}");
    assert_eq!(g.head(), head);
}

#[test]
fn bad_parquet_lineage_exits_2_with_file_row_column_and_writes_nothing() {
    let f = Fixture::new("l");
    let before = f.head();
    let good = rec("t0", 0, "p0", 0);
    let mut n = 0;
    let mut case = |file: &str, extra: &[&str], want: &str| {
        let out = f.derive(&[&["--parquet"], extra].concat(), &[file], 2);
        assert!(out.contains("optout: error:"), "{out}");
        assert!(
            out.contains(&format!("{file}{want}")),
            "case {n}: want {want}: {out}"
        );
        assert!(!out.contains("ann@example.com"), "{out}");
        assert_eq!(f.head(), before, "case {n} wrote something");
        n += 1;
    };
    // Columns: `row` missing; a record form without parent_shard; `row` a
    // string; no parent column at all.
    let p = f.path("no-row.parquet");
    write_parquet(
        Path::new(&p),
        vec![
            ("shard", s(&[Some("t0")])),
            ("parent_key", s(&[Some("post/1")])),
        ],
        &[1],
    );
    case(&p, &[], ": column `row`: no such column");
    let p = f.path("no-pshard.parquet");
    write_parquet(
        Path::new(&p),
        vec![
            ("shard", s(&[Some("t0")])),
            ("row", u(&[Some(0)])),
            ("parent_dataset", s(&[Some("forum")])),
            ("parent_row", u(&[Some(0)])),
        ],
        &[1],
    );
    case(&p, &[], ": column `parent_shard`: no such column");
    let p = f.path("row-str.parquet");
    write_parquet(
        Path::new(&p),
        vec![
            ("shard", s(&[Some("t0")])),
            ("row", s(&[Some("0")])),
            ("parent_key", s(&[Some("post/1")])),
        ],
        &[1],
    );
    case(
        &p,
        &[],
        ": column `row`: the column is Utf8; it needs an integer column",
    );
    let p = f.path("no-parent.parquet");
    write_parquet(
        Path::new(&p),
        vec![("shard", s(&[Some("t0")])), ("row", u(&[Some(0)]))],
        &[1],
    );
    case(&p, &[], ": column `parent_dataset`: no parent column");
    // Cells: a null shard at row 2 (the second row group); a negative row;
    // two parent forms; no parent; a bad hash; a record form missing its row.
    let p = f.path("null-shard.parquet");
    links(
        Path::new(&p),
        &[
            good,
            good,
            (None, Some(1), None, None, None, Some("post/1"), None),
        ],
        &[2, 1],
    );
    case(&p, &[], ": row 2: column `shard`: is null or empty");
    let p = f.path("neg-row.parquet");
    write_parquet(
        Path::new(&p),
        vec![
            ("shard", s(&[Some("t0"), Some("t0")])),
            ("row", Arc::new(Int64Array::from(vec![0, -1]))),
            ("parent_key", s(&[Some("post/1"), Some("post/1")])),
        ],
        &[2],
    );
    case(&p, &[], ": row 1: column `row`: -1 is not a row");
    let two = |path: &str, r: LinkRow<'static>| {
        links(Path::new(path), &[good, r], &[2]);
    };
    let p = f.path("two-forms.parquet");
    two(
        &p,
        (
            Some("t0"),
            Some(1),
            Some("forum"),
            Some("p0"),
            Some(1),
            Some("post/1"),
            None,
        ),
    );
    case(
        &p,
        &[],
        ": row 1: column `parent_key`: names a parent in more than one way",
    );
    let p = f.path("none.parquet");
    two(&p, (Some("t0"), Some(1), None, None, None, None, None));
    case(&p, &[], ": row 1: column `parent_dataset`: names no parent");
    let p = f.path("bad-hash.parquet");
    two(
        &p,
        (Some("t0"), Some(1), None, None, None, None, Some("zz")),
    );
    case(
        &p,
        &[],
        ": row 1: column `parent_content_hash`: content_hash must be 64 hex",
    );
    let p = f.path("no-prow.parquet");
    two(
        &p,
        (
            Some("t0"),
            Some(1),
            Some("forum"),
            Some("p0"),
            None,
            None,
            None,
        ),
    );
    case(&p, &[], ": row 1: column `parent_row`: is null or empty");
    // The ledger's refusals, at the link at fault: a parent that matches no
    // record (t0#0's second link, row 2), a parent outside --from, a key
    // matching nothing, a cycle (at the row's first link).
    let p = f.path("missing.parquet");
    links(
        Path::new(&p),
        &[rec("t0", 1, "p0", 1), good, rec("t0", 0, "p0", 7)],
        &[3],
    );
    case(
        &p,
        &[],
        ": row 2: column `parent_dataset` (field `parents[1]`): derived row packed/t0#0 (parent forum/p0#7): matches no record",
    );
    let p = f.path("outside.parquet");
    links(
        Path::new(&p),
        &[(
            Some("t0"),
            Some(0),
            Some("other"),
            Some("p0"),
            Some(0),
            None,
            None,
        )],
        &[1],
    );
    case(
        &p,
        &[],
        ": row 0: column `parent_dataset` (field `parents[0].dataset`)",
    );
    let p = f.path("no-key.parquet");
    two(
        &p,
        (Some("t0"), Some(1), None, None, None, Some("post/99"), None),
    );
    case(
        &p,
        &[],
        ": row 1: column `parent_key` (field `parents[0].key`)",
    );
    let p = f.path("cycle.parquet");
    links(
        Path::new(&p),
        &[
            (
                Some("t0"),
                Some(0),
                Some("packed"),
                Some("t0"),
                Some(1),
                None,
                None,
            ),
            (
                Some("t0"),
                Some(1),
                Some("packed"),
                Some("t0"),
                Some(0),
                None,
                None,
            ),
        ],
        &[2],
    );
    case(
        &p,
        &["--from", "packed"],
        ": row 0: field `parents`: derived row packed/t0#0: the row would be its own ancestor",
    );
    // Not Parquet at all.
    let p = f.path("not.parquet");
    std::fs::write(&p, "{\"shard\":\"t0\"}\n").unwrap();
    case(&p, &[], ": not a Parquet file");
    // --allow-missing-parents records the missing parent.
    let p = f.path("late.parquet");
    links(Path::new(&p), &[rec("t0", 0, "p9", 0)], &[1]);
    f.derive(&["--parquet", "--allow-missing-parents"], &[&p], 0);
    assert_ne!(f.head(), before);
}
