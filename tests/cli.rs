//! The `optout` binary end to end: every command, exit codes 0/1/2, JSON
//! output, all-or-nothing batches, the writer lock, damage detection, demo.
#![cfg(feature = "cli")]

mod common;
use common::optout;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs with `--format json`, expects `want` as exit code, parses stdout.
fn json(args: &[&str], want: i32) -> Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let o = optout(&a);
    assert_eq!(code(&o), want, "{args:?}: {}{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&o)));
    assert_eq!(v["schema_version"], 1, "{args:?}: {v}");
    v
}

fn ok(args: &[&str]) -> Output {
    let o = optout(args);
    assert_eq!(code(&o), 0, "{args:?}: {}{}", stdout(&o), stderr(&o));
    o
}

/// Ten forum posts by u0..u4 (row r by u{r % 5}), keys post/r.
fn records() -> String {
    (0..10)
        .map(|r| {
            format!(
                r#"{{"dataset":"forum","shard":"p0","row":{r},"subjects":["u{}@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/{r}"}}"#,
                r % 5
            ) + "\n"
        })
        .collect()
}

const OBJECTION_U1: &str = r#"{"type":"objection","subject":"U1@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"],"ref":"T-1"}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ledger: String,
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn head(&self) -> u64 {
        json(&["verify", &self.ledger], 0)["seq"].as_u64().unwrap()
    }
}

/// A ledger with the ten records ingested.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ledger = root.join("ledger").display().to_string();
    let f = Fixture {
        _dir: dir,
        root,
        ledger,
    };
    ok(&["-q", "init", &f.ledger]);
    let recs = f.write("records.jsonl", &records());
    ok(&["-q", "ingest", &f.ledger, &recs]);
    f
}

#[test]
fn init_creates_a_private_key_and_refuses_to_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l").display().to_string();
    let v = json(&["init", &ledger], 0);
    assert_eq!(v["key_created"], true);
    let key = PathBuf::from(v["key_file"].as_str().unwrap());
    assert_eq!(key, dir.path().join("l.key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Again: the ledger exists.
    let o = optout(&["init", &ledger]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    // A new ledger beside an existing default key: refused, unless named.
    std::fs::rename(dir.path().join("l.key"), dir.path().join("m.key")).unwrap();
    let m = dir.path().join("m").display().to_string();
    let o = optout(&["init", &m]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--key-file"), "{}", stderr(&o));
    let keyfile = dir.path().join("m.key").display().to_string();
    let v = json(&["init", &m, "--key-file", &keyfile], 0);
    assert_eq!(v["key_created"], false);
    // A command that needs the key finds it through $OPTOUT_KEY_FILE...
    std::fs::rename(dir.path().join("m.key"), dir.path().join("elsewhere.key")).unwrap();
    let recs = dir.path().join("r.jsonl");
    std::fs::write(&recs, records()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_optout"))
        .args(["-q", "ingest", &m, recs.to_str().unwrap()])
        .env("OPTOUT_KEY_FILE", dir.path().join("elsewhere.key"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // ... and says so clearly when there is none.
    let o = optout(&["ingest", &m, recs.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("optout: error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("subject key"), "{}", stderr(&o));
}

#[test]
fn the_whole_flow_in_json() {
    let f = fixture();
    let v = json(&["verify", &f.ledger], 0);
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(2))
    );
    // Re-ingesting the same file changes nothing.
    let v = json(&["ingest", &f.ledger, &f.path("records.jsonl")], 0);
    assert_eq!(
        (v["registered"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(10))
    );

    let m1 = f.path("m1.optm");
    let v = json(
        &[
            "manifest",
            &f.ledger,
            "--purpose",
            "ai-training",
            "--at",
            "2025-02-01T00:00:00Z",
            "-o",
            &m1,
        ],
        0,
    );
    assert_eq!(v["header"]["excluded"], 0);
    assert_eq!(v["header"]["registered"], 10);
    let seq1 = v["header"]["seq"].as_u64().unwrap();
    let v = json(
        &[
            "runs",
            "add",
            &f.ledger,
            "--model",
            "m-a",
            "--manifest",
            &m1,
            "--name",
            "run-1",
            "--started-at",
            "2025-01-15T00:00:00Z",
        ],
        0,
    );
    assert_eq!(v["name"], "run-1");

    let ev = f.write("events.jsonl", &format!("{OBJECTION_U1}\n"));
    let v = json(&["apply", &f.ledger, &ev], 0);
    assert_eq!(v["events"], 1);
    assert_eq!(v["by_type"]["objection"], 1);

    let m2 = f.path("m2.optm");
    let v = json(
        &[
            "manifest",
            &f.ledger,
            "--purpose",
            "ai-training",
            "--at",
            "2025-02-01T00:00:00Z",
            "-o",
            &m2,
        ],
        0,
    );
    assert_eq!(v["header"]["excluded"], 2, "rows 1 and 6");
    // The same manifest at the old sequence number excludes nothing.
    let m_old = f.path("m-old.optm");
    let v = json(
        &[
            "manifest",
            &f.ledger,
            "--purpose",
            "ai-training",
            "--at",
            "2025-02-01T00:00:00Z",
            "--at-seq",
            &seq1.to_string(),
            "-o",
            &m_old,
        ],
        0,
    );
    assert_eq!(v["header"]["excluded"], 0);
    assert_eq!(
        std::fs::read(&m_old).unwrap(),
        std::fs::read(&m1).unwrap(),
        "reproducible at seq N"
    );

    let v = json(&["show", &m2], 0);
    assert_eq!(v["header"]["excluded"], 2);
    assert_eq!(v["datasets"][0]["reasons"]["objection"], 2);
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);

    let v = json(&["diff", &m1, &m2], 0);
    assert_eq!(
        (v["newly_excluded"].as_u64(), v["re_included"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(v["reasons"]["objection"]["added"], 2);
    assert_eq!(v["shards"][0]["newly_excluded"], serde_json::json!([1, 6]));

    // A run on the stale manifest after the objection: a violation.
    json(
        &[
            "runs",
            "add",
            &f.ledger,
            "--model",
            "m-b",
            "--manifest",
            &m1,
            "--name",
            "run-2",
            "--started-at",
            "2025-03-01T00:00:00Z",
        ],
        0,
    );
    let v = json(&["runs", "list", &f.ledger], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);

    let v = json(
        &[
            "affected",
            &f.ledger,
            "--subject",
            "u1@x.org",
            "--at",
            "2025-04-01T00:00:00Z",
        ],
        1,
    );
    let st: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, vec!["after", "violation"]);
    assert_eq!(v["violations"], 1);
    // Someone who never objected: used by both runs, exit 0.
    let v = json(&["affected", &f.ledger, "--subject", "u2@x.org"], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);

    // The Art. 15/20 report is JSON whatever the format.
    let o = ok(&[
        "report",
        &f.ledger,
        "--subject",
        "u1@x.org",
        "--at",
        "2025-04-01T00:00:00Z",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["records"].as_array().unwrap().len(), 2);
    assert_eq!(v["events"][0]["ref"], "T-1");

    let v = json(&["snapshot", &f.ledger], 0);
    assert!(v["seq"].as_u64().unwrap() > seq1);
    json(&["verify", &f.ledger], 0);
}

#[test]
fn text_output_and_quiet() {
    let f = fixture();
    let m = f.path("m.optm");
    let o = ok(&["manifest", &f.ledger, "--purpose", "ai-training", "-o", &m]);
    assert!(
        stdout(&o).contains("excluded 0 of 10 records"),
        "{}",
        stdout(&o)
    );
    let o = ok(&["show", &m]);
    assert!(
        stdout(&o).contains("purpose      ai-training"),
        "{}",
        stdout(&o)
    );
    let o = ok(&["-q", "show", &m]);
    assert!(o.stdout.is_empty());
    let ev = f.write("e.jsonl", OBJECTION_U1);
    let o = ok(&["apply", &f.ledger, &ev, "--quiet"]);
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["manifest", "l"],
        &["--format", "xml", "show", "m"],
        &["export", "m", "--to", "parquet"],
        &["ingest", "l"],
    ] {
        let o = optout(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    let o = optout(&["show", "/nonexistent/m.optm"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("optout: error: "), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/m.optm"), "{}", stderr(&o));
}

#[test]
fn a_bad_line_in_the_middle_rejects_the_whole_batch() {
    let f = fixture();
    let head = f.head();
    // Records: line 3 of the second file has a bad time; the first file is fine.
    let good = f.write(
        "good.jsonl",
        &records().replace("\"shard\":\"p0\"", "\"shard\":\"p1\""),
    );
    let mut lines: Vec<String> = records()
        .replace("\"shard\":\"p0\"", "\"shard\":\"p2\"")
        .lines()
        .map(String::from)
        .collect();
    lines[2] = lines[2].replace("2024-01-01T00:00:00Z", "yesterday");
    let bad = f.write("bad.jsonl", &(lines.join("\n") + "\n"));
    let o = optout(&["ingest", &f.ledger, &good, &bad]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{bad}:3: field `collected_at`")),
        "{err}"
    );
    assert_eq!(f.head(), head, "nothing of the batch was written");
    let v = json(&["verify", &f.ledger], 0);
    assert_eq!(v["entries"], 2, "init and one record batch");

    // Events: an unknown type on line 2 of 3.
    let ev = f.write(
        "ev.jsonl",
        &format!(
            "{OBJECTION_U1}\n{}\n{OBJECTION_U1}\n",
            r#"{"type":"complaint","subject":"u2@x.org","at":"2025-01-01T00:00:00Z"}"#
        ),
    );
    let o = optout(&["apply", &f.ledger, &ev]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("{ev}:2: field `type`")),
        "{}",
        stderr(&o)
    );
    assert_eq!(f.head(), head);

    // A conflicting re-registration is refused, and names the record.
    let changed = f.write("changed.jsonl", &records().replace("u0@x.org", "zed@x.org"));
    let o = optout(&["ingest", &f.ledger, &changed]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("forum/p0#0"), "{}", stderr(&o));
    assert_eq!(f.head(), head);
}

#[test]
fn stdin_is_dash_and_large_inputs_parse_in_parallel() {
    let f = fixture();
    // Enough rows for several parser blocks, with a bad line near the end.
    let mut text = String::new();
    for r in 0..60_000u32 {
        text += &format!(
            r#"{{"dataset":"big","shard":"s{}","row":{r},"subjects":["p{}@x.org","q{}@x.org"],"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"contract","categories":["text"]}}"#,
            r % 3,
            r % 1000,
            r % 777
        );
        text.push('\n');
    }
    let bad = text.clone() + "{\"dataset\":\"big\"}\n";
    let run = |input: &str, quiet: bool| {
        let mut args = vec!["--format", "json", "ingest", &f.ledger, "-"];
        if quiet {
            args.push("-q");
        }
        let mut c = Command::new(env!("CARGO_BIN_EXE_optout"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        let input = input.to_string();
        let w = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(input.as_bytes());
        });
        let o = c.wait_with_output().unwrap();
        w.join().unwrap();
        o
    };
    let o = run(&bad, false);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("-:60001: field `shard`"),
        "{}",
        stderr(&o)
    );
    let o = run(&text, true);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["registered"].as_u64(), v["links"].as_u64()),
        (Some(60_000), Some(120_000))
    );
    // Rows keep their order and shard grouping: a manifest sees all of them.
    let m = f.path("m.optm");
    let v = json(
        &[
            "manifest",
            &f.ledger,
            "--purpose",
            "ai-training",
            "--dataset",
            "big",
            "-o",
            &m,
        ],
        0,
    );
    assert_eq!(v["header"]["registered"], 60_000);
}

#[test]
fn a_second_writer_gets_a_clear_locked_error() {
    let f = fixture();
    let key = optout::SubjectKeyer::load_key_file(&optout::default_key_path(Path::new(&f.ledger)))
        .unwrap();
    let held = optout::Ledger::open(Path::new(&f.ledger), Some(key)).unwrap();
    let ev = f.write("e.jsonl", OBJECTION_U1);
    let o = optout(&["apply", &f.ledger, &ev]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
    // Readers are not blocked.
    let m = f.path("m.optm");
    ok(&["manifest", &f.ledger, "--purpose", "ai-training", "-o", &m]);
    drop(held);
    // The lock goes with the last handle of its open file: a child that
    // another test thread forks at that moment holds a copy until its exec,
    // which on a loaded machine can take a while. Wait for that, not more.
    let mut o = optout(&["apply", &f.ledger, &ev]);
    for _ in 0..50 {
        if code(&o) == 0 || !stderr(&o).contains("locked") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = optout(&["apply", &f.ledger, &ev]);
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn check_finds_exactly_the_excluded_rows() {
    let f = fixture();
    let ev = f.write("e.jsonl", OBJECTION_U1);
    ok(&["apply", &f.ledger, &ev]);
    let m = f.path("m.optm");
    ok(&[
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "--at",
        "2025-06-01T00:00:00Z",
        "-o",
        &m,
    ]);

    let all: String = (0..10)
        .map(|r| format!("{{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":{r}}}\n"))
        .collect();
    let used = f.write("used.jsonl", &all);
    let v = json(&["check", &m, &used], 1);
    let rows: Vec<u64> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![1, 6]);
    assert_eq!(v["checked"], 10);
    assert_eq!(v["hits"][0]["reasons"], serde_json::json!(["objection"]));
    assert_eq!(v["hits"][1]["line"], 7);
    // Text mode lists the hits with their line.
    let o = optout(&["check", &m, &used]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains(":7: forum/p0#6 is excluded: objection"),
        "{}",
        stdout(&o)
    );

    let clean = f.write(
        "clean.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0}\n{\"dataset\":\"other\",\"shard\":\"x\",\"row\":1}\n",
    );
    // A shard the manifest does not cover is a finding (a naming mismatch
    // must not pass as a clean check) unless explicitly allowed.
    let v = json(&["check", &m, &clean], 1);
    assert_eq!(
        (v["excluded"].as_u64(), v["unknown_shard_rows"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(v["unknown_shards"][0]["shard"], "x");
    let v = json(&["check", &m, &clean, "--allow-unknown-shards"], 0);
    assert_eq!(v["excluded"], 0);
    let known = f.write(
        "known.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":0}\n",
    );
    assert_eq!(json(&["check", &m, &known], 0)["excluded"], 0);

    // Keys need the ledger.
    let keys = f.write("keys.jsonl", "{\"key\":\"post/0\"}\n{\"key\":\"post/6\"}\n");
    let o = optout(&["check", &m, &keys]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--ledger"), "{}", stderr(&o));
    let v = json(&["check", &m, &keys, "--ledger", &f.ledger], 1);
    assert_eq!(v["excluded"], 1);
    assert_eq!(v["hits"][0]["row"], 6);
    assert_eq!(v["hits"][0]["key"], "post/6");

    // A bad USED line: exit 2 with file, line and field.
    let bad = f.write(
        "bad.jsonl",
        "{\"dataset\":\"forum\",\"shard\":\"p0\",\"row\":-1}\n",
    );
    let o = optout(&["check", &m, &bad]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("{bad}:1: field `row`")),
        "{}",
        stderr(&o)
    );

    // Export lists the same rows, with keys when given the ledger.
    let csv = f.path("x.csv");
    ok(&[
        "export", &m, "--to", "csv", "-o", &csv, "--ledger", &f.ledger,
    ]);
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "dataset,shard,row,reasons,key\nforum,p0,1,objection,post/1\nforum,p0,6,objection,post/6\n"
    );
    let o = ok(&["export", &m, "--to", "jsonl"]);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["row"], 6);
    assert!(lines[1].get("key").is_none());
}

#[test]
fn verify_finds_a_flipped_byte_with_its_offset() {
    let f = fixture();
    let ev = f.write("e.jsonl", OBJECTION_U1);
    ok(&["apply", &f.ledger, &ev]);
    let o = ok(&["verify", &f.ledger]);
    assert!(stdout(&o).contains("OK"), "{}", stdout(&o));

    let seg = std::fs::read_dir(Path::new(&f.ledger).join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a log segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();

    let o = optout(&["verify", &f.ledger]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        stdout(&o).contains(name) && stdout(&o).contains("byte"),
        "{}",
        stdout(&o)
    );
    let v = json(&["verify", &f.ledger], 1);
    assert_eq!(v["ok"], false);
    assert!(v["findings"][0]["offset"].as_u64().is_some());
}

#[test]
fn the_demo_tells_the_story_and_leaves_files_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let ds = d.display().to_string();
    let o = ok(&["demo", &ds]);
    let text = stdout(&o);
    assert!(text.contains("VIOLATION"), "{text}");
    assert!(text.contains("run-2025-05-hotfix"), "{text}");
    assert!(text.contains("Explore further"), "{text}");
    for f in [
        "forum/crawl=1/posts-0000.parquet",
        "forum/crawl=2/posts-0003.parquet",
        "meetings/meetings-2024-q1.parquet",
        "crm/crm-profiles-00.parquet",
        "mapping-forum.json",
        "mapping-meetings.json",
        "mapping-crm.json",
        "events-2025-q1.jsonl",
        "events-2025-q2.jsonl",
        "manifest-1.optm",
        "manifest-2.optm",
        "ledger.key",
    ] {
        assert!(d.join(f).exists(), "{f}");
    }
    let ledger = d.join("ledger").display().to_string();
    let m2 = d.join("manifest-2.optm").display().to_string();
    let used = d
        .join("training-input-run-2025-05-hotfix.jsonl")
        .display()
        .to_string();
    let v = json(&["check", &m2, &used], 1);
    assert!(v["excluded"].as_u64().unwrap() > 0);
    json(
        &["affected", &ledger, "--subject", "alice.martin@example.com"],
        1,
    );
    json(&["verify", &ledger], 0);

    // The printed `ingest --parquet` commands, run as printed (by a shell,
    // which expands the patterns): every row is already there, nothing is
    // written. The forum's rows come from several row groups in two
    // directories, its shards are the paths under its root.
    let printed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("optout ingest ") && l.contains("--parquet"))
        .collect();
    assert_eq!(printed.len(), 3, "{text}");
    let bin = env!("CARGO_BIN_EXE_optout");
    let mut seen = 0;
    for cmd in &printed {
        let line = format!("{bin} --format json {}", &cmd["optout ".len()..]);
        let o = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert_eq!(code(&o), 0, "{line}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["registered"], 0, "{line}: {v}");
        assert_eq!(v["seq"], v["seq_before"], "{line}: {v}");
        assert!(v["unchanged"].as_u64().unwrap() > 0, "{v}");
        seen += v["unchanged"].as_u64().unwrap();
    }
    assert_eq!(seen, 35_000);
    let posts = d.join("forum/crawl=2/posts-0003.parquet");
    let r = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&posts).unwrap())
        .unwrap();
    use parquet::file::reader::FileReader as _;
    assert!(r.metadata().num_row_groups() > 1);
    let rows = std::fs::read_to_string(&used).unwrap();
    assert!(
        rows.contains(r#""shard":"crawl=2/posts-0003.parquet""#),
        "{}",
        &rows[..200]
    );
    json(&["verify", &ledger], 0);

    // Twice: the demo directory is wiped and recreated, data identical.
    let crm = d.join("crm/crm-profiles-00.parquet");
    let before = std::fs::read(&crm).unwrap();
    let v = json(&["demo", &ds], 0);
    assert_eq!(v["violations"], serde_json::json!(["run-2025-05-hotfix"]));
    assert_eq!(std::fs::read(&crm).unwrap(), before);
    // But a directory it did not make is left alone.
    let other = dir.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "x").unwrap();
    let o = optout(&["demo", other.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(other.join("precious.txt").exists());

    // A closed stdout pipe ends the program quietly.
    let mut c = Command::new(env!("CARGO_BIN_EXE_optout"))
        .args(["export", &m2, "--to", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    c.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // (stdout handle dropped here: the pipe is closed)
    let o = c.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn events_dated_in_the_future_are_applied_with_a_warning() {
    let f = fixture();
    let ev = f.write(
        "future.jsonl",
        "{\"type\":\"objection\",\"subject\":\"u1@example.com\",\"at\":\"2200-01-01T00:00:00Z\",\"purposes\":[\"*\"]}\n",
    );
    let o = optout(&["--format", "json", "apply", &f.ledger, &ev]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["future_events"], 1);
    assert!(
        stderr(&o).contains("take effect in the future"),
        "{}",
        stderr(&o)
    );
    // The manifest at an earlier --at says it did not apply it.
    let m = f.path("m.optm");
    let o = optout(&[
        "--format",
        "json",
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "--at",
        "2025-06-01T00:00:00Z",
        "-o",
        &m,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["events_after_at"], 1);
    assert!(
        stderr(&o).contains("not applied in this manifest"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn export_to_delta_and_iceberg() {
    let f = fixture();
    let ev = f.write("e.jsonl", OBJECTION_U1);
    ok(&["apply", &f.ledger, &ev]);
    let m = f.path("m.optm");
    ok(&[
        "-q",
        "manifest",
        &f.ledger,
        "--purpose",
        "ai-training",
        "--at",
        "2025-06-01T00:00:00Z",
        "-o",
        &m,
    ]);
    // A Delta table whose one file is the shard p0 (10 rows).
    let t = f.root.join("table");
    std::fs::create_dir_all(t.join("_delta_log")).unwrap();
    std::fs::write(t.join("p0"), b"data").unwrap();
    let v0 = [
        r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#,
        r#"{"metaData":{"id":"t","format":{"provider":"parquet","options":{}},"schemaString":"{}","partitionColumns":[],"configuration":{}}}"#,
        r#"{"add":{"path":"p0","partitionValues":{},"size":4,"modificationTime":1,"dataChange":true,"stats":"{\"numRecords\":10}"}}"#,
    ]
    .join("\n");
    std::fs::write(t.join("_delta_log/00000000000000000000.json"), v0).unwrap();
    let ts = t.display().to_string();
    let v = json(&["export", &m, "--to", "delta", "--table", &ts], 0);
    assert_eq!(
        (v["version"].as_u64(), v["rows_added"].as_u64()),
        (Some(1), Some(2))
    );
    let o = ok(&["export", &m, "--to", "delta", "--table", &ts]);
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert!(!t.join("_delta_log/00000000000000000002.json").exists());
    let rows = optout::export::delta::deleted_rows(&t).unwrap();
    assert_eq!(rows["p0"].iter().collect::<Vec<_>>(), vec![1, 6]);
    // --to delta needs --table; a table missing the shard: exit 2, named.
    assert_eq!(code(&optout(&["export", &m, "--to", "delta"])), 2);
    let empty = f.root.join("empty");
    std::fs::create_dir_all(empty.join("_delta_log")).unwrap();
    std::fs::write(
        empty.join("_delta_log/00000000000000000000.json"),
        r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"e","configuration":{}}}"#,
    )
    .unwrap();
    let o = optout(&[
        "export",
        &m,
        "--to",
        "delta",
        "--table",
        &empty.display().to_string(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("\"p0\": no such file"),
        "{}",
        stderr(&o)
    );
    // Iceberg: a Puffin file with one blob for p0 under the data root.
    let puffin = f.path("dv.puffin");
    let v = json(
        &[
            "export",
            &m,
            "--to",
            "iceberg",
            "-o",
            &puffin,
            "--data-root",
            "s3://b/t/data/",
        ],
        0,
    );
    assert_eq!(v["rows"], 2);
    assert_eq!(v["blobs"][0]["referenced_data_file"], "s3://b/t/data/p0");
    let bytes = std::fs::read(&puffin).unwrap();
    assert_eq!(&bytes[..4], b"PFA1");
    let off = v["blobs"][0]["offset"].as_u64().unwrap() as usize;
    assert_eq!(&bytes[off + 4..off + 8], &[0xD1, 0xD3, 0x39, 0x64]);
    assert_eq!(code(&optout(&["export", &m, "--to", "iceberg"])), 2);
    assert_eq!(
        code(&optout(&["export", &m, "--to", "jsonl", "--table", &ts])),
        2
    );
}
