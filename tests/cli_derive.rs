//! `optout derive` end to end: lineage JSONL registered, a derived manifest
//! excluding the packed row of an objected post; bad input exits 2 naming
//! the file, line and field, and writes nothing.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

fn optout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optout"))
        .args(args)
        .env_remove("OPTOUT_KEY_FILE")
        .output()
        .expect("run optout")
}

fn run(args: &[&str], want: i32) -> String {
    let o = optout(args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(o.status.code(), Some(want), "{args:?}: {out}{err}");
    out + &err
}

const FORUM: &str = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["ann@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/0"}
{"dataset":"forum","shard":"p0","row":1,"subjects":["ben@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/1"}
"#;

const PACKED: &str = r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}
{"shard":"t0","row":1,"parents":[{"dataset":"forum","shard":"p0","row":1}]}
"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    ledger: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let ledger = dir.join("l").display().to_string();
        run(&["-q", "init", &ledger], 0);
        let f = Fixture {
            _tmp: tmp,
            dir,
            ledger,
        };
        let forum = f.file("forum.jsonl", FORUM);
        run(&["-q", "ingest", &f.ledger, &forum], 0);
        f
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    fn head(&self) -> String {
        run(&["head", &self.ledger], 0)
    }
}

#[test]
fn derive_then_a_derived_manifest_excludes_the_packed_row() {
    let f = Fixture::new();
    let lin = f.file("packed.jsonl", PACKED);
    let out = run(
        &[
            "derive",
            &f.ledger,
            "--dataset",
            "packed",
            "--from",
            "forum",
            &lin,
        ],
        0,
    );
    assert!(out.contains("2 registered, 0 unchanged"), "{out}");
    // Again: unchanged.
    let out = run(
        &[
            "derive",
            &f.ledger,
            "--dataset",
            "packed",
            "--from",
            "forum",
            &lin,
        ],
        0,
    );
    assert!(out.contains("0 registered, 2 unchanged"), "{out}");
    let ev = f.file(
        "ev.jsonl",
        r#"{"type":"objection","subject":"ann@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    run(&["-q", "apply", &f.ledger, &ev], 0);
    let m = f.dir.join("m.optout").display().to_string();
    run(
        &[
            "-q",
            "manifest",
            &f.ledger,
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
    // check: exit 1 when a used row is excluded, with the reason.
    let hit = f.file(
        "u0.jsonl",
        "{\"dataset\":\"packed\",\"shard\":\"t0\",\"row\":0}\n",
    );
    let out = run(&["check", &m, &hit], 1);
    assert!(out.contains("packed/t0#0 is excluded: objection"), "{out}");
    // The re-packing help: the excluded parents of each excluded derived row.
    let out = run(
        &[
            "export",
            &m,
            "--to",
            "jsonl",
            "--ledger",
            &f.ledger,
            "--parents",
        ],
        0,
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![serde_json::json!({
            "dataset": "packed", "shard": "t0", "row": 0, "reasons": ["objection"],
            "parents": [{"dataset": "forum", "shard": "p0", "row": 0, "reasons": ["objection"]}],
        })]
    );
    run(
        &[
            "export",
            &m,
            "--to",
            "csv",
            "--ledger",
            &f.ledger,
            "--parents",
        ],
        2,
    );
    let clean = f.file(
        "u1.jsonl",
        "{\"dataset\":\"packed\",\"shard\":\"t0\",\"row\":1}\n",
    );
    run(&["check", &m, &clean], 0);
}

#[test]
fn bad_lineage_exits_2_with_file_line_field_and_writes_nothing() {
    let f = Fixture::new();
    let before = f.head();
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0}]}\n{\"shard\":\"t0\",\"row\":1,\"parents\":[{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":7}]}\n",
            &[],
            ":2: field `parents[0]`",
        ),
        (
            "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"dataset\":\"packed\",\"shard\":\"t0\",\"row\":1}]}\n{\"shard\":\"t0\",\"row\":1,\"parents\":[{\"dataset\":\"packed\",\"shard\":\"t0\",\"row\":0}]}\n",
            &["--from", "packed"],
            ":1: field `parents`",
        ),
        (
            "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"key\":\"post/0\"}]}\n{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"key\":\"post/1\"}]}\n",
            &[],
            ":2: field `row`",
        ),
        (
            "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"dataset\":\"other\",\"shard\":\"p0\",\"row\":0}]}\n",
            &[],
            ":1: field `parents[0].dataset`",
        ),
        (
            "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"content_hash\":\"zz\"}]}\n",
            &[],
            ":1: field `parents[0].content_hash`",
        ),
    ];
    for (i, (text, extra, want)) in cases.iter().enumerate() {
        let lin = f.file(&format!("bad{i}.jsonl"), text);
        let mut args = vec![
            "derive",
            &f.ledger,
            "--dataset",
            "packed",
            "--from",
            "forum",
        ];
        args.extend_from_slice(extra);
        args.push(&lin);
        let out = run(&args, 2);
        assert!(out.contains("optout: error:"), "{out}");
        assert!(out.contains(&format!("{lin}{want}")), "case {i}: {out}");
        assert!(!out.contains("ann@example.com"), "{out}");
        assert_eq!(f.head(), before, "case {i} wrote something");
    }
    // With --allow-missing-parents the missing parent is recorded.
    let lin = f.file(
        "late.jsonl",
        "{\"shard\":\"t0\",\"row\":0,\"parents\":[{\"dataset\":\"forum\",\"shard\":\"p9\",\"row\":0}]}\n",
    );
    run(
        &[
            "derive",
            &f.ledger,
            "--dataset",
            "packed",
            "--from",
            "forum",
            "--allow-missing-parents",
            &lin,
        ],
        0,
    );
    assert_ne!(f.head(), before);
}
