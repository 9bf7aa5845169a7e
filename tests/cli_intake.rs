//! Ordinary mistakes at intake fail closed or are reported (issue 21,
//! parts 2, 3 and 5), on the real binary: a misspelt purpose is refused
//! with the closest declared one (in an event, a manifest, a policy);
//! re-applying an export records nothing; events that would do nothing
//! are reported by line and pseudonym, and refused with `--strict`; a
//! stale manifest is refused by `runs add --require-fresh` (part 8).
#![cfg(feature = "cli")]

mod common;
use common::optout;

use std::path::Path;

use serde_json::Value;

fn run(args: &[&str], code: i32) -> (String, String) {
    let o = optout(args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(o.status.code(), Some(code), "{args:?}: {out}{err}");
    (out, err)
}

fn json(args: &[&str]) -> Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let (out, _) = run(&a, 0);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const RECORDS: &str = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["alice@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","categories":["text"],"key":"post/1"}
{"dataset":"forum","shard":"p0","row":1,"subjects":["bob@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","categories":["text"],"key":"post/2"}
{"dataset":"forum","shard":"p0","row":2,"subjects":["carol@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","categories":["text"]}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let d = tempfile::tempdir().unwrap();
        let f = Fixture {
            root: d.path().to_path_buf(),
            _dir: d,
        };
        run(&["init", &f.ledger(), "--key-file", &f.key()], 0);
        std::fs::write(f.p("records.jsonl"), RECORDS).unwrap();
        let (l, r) = (f.ledger(), f.p("records.jsonl"));
        run(&strs(&f.with_key(&["ingest", &l, &r])), 0);
        f
    }
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).to_str().unwrap().to_string()
    }
    fn ledger(&self) -> String {
        self.p("L")
    }
    fn key(&self) -> String {
        self.p("L.key")
    }
    fn with_key<'a>(&'a self, args: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.push("--key-file".into());
        v.push(self.key());
        v
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.p(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn head(&self) -> u64 {
        json(&["verify", &self.ledger()])["seq"].as_u64().unwrap()
    }
    /// The excluded rows of p0 in a fresh manifest for `purpose`.
    fn excluded(&self, purpose: &str) -> Vec<u64> {
        let m = self.p("m.optm");
        let args = self.with_key(&["manifest", &self.ledger(), "--purpose", purpose, "-o", &m]);
        run(&strs(&args), 0);
        let (out, _) = run(&["export", &m, "--to", "jsonl"], 0);
        let mut rows: Vec<u64> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["row"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        rows.sort_unstable();
        rows
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_misspelt_purpose_in_an_event_is_refused_with_the_declared_one() {
    let f = Fixture::new();
    let head = f.head();
    let ev = f.write(
        "ev.jsonl",
        "{\"type\":\"erasure\",\"subject\":\"carol@example.com\",\"at\":\"2025-01-01T00:00:00Z\"}\n\
         {\"type\":\"objection\",\"subject\":\"alice@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai_training\"]}\n",
    );
    let (_, err) = run(&strs(&f.with_key(&["apply", &f.ledger(), &ev])), 2);
    assert!(
        err.contains(&format!("{ev}:2: field `purposes`"))
            && err.contains("did you mean `ai-training`?"),
        "{err}"
    );
    assert!(!err.contains("alice@"), "no subject id in errors: {err}");
    assert_eq!(f.head(), head, "nothing of the batch was written");
    // Spelt right, it excludes alice's post.
    let ok = f.write(
        "ok.jsonl",
        "{\"type\":\"objection\",\"subject\":\"alice@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n",
    );
    run(&strs(&f.with_key(&["apply", &f.ledger(), &ok])), 0);
    assert_eq!(f.excluded("ai-training"), vec![0]);
}

#[test]
fn a_misspelt_manifest_or_policy_purpose_is_refused() {
    let f = Fixture::new();
    let m = f.p("m.optm");
    let (_, err) = run(
        &strs(&f.with_key(&["manifest", &f.ledger(), "--purpose", "ai_trainig", "-o", &m])),
        2,
    );
    assert!(
        err.contains("purpose `ai_trainig` is not declared")
            && err.contains("did you mean `ai-training`?"),
        "{err}"
    );
    assert!(!Path::new(&m).exists(), "no manifest written");
    let policy = f.write("policy.json", r#"{"purpose":"ai-trainng"}"#);
    let (_, err) = run(
        &strs(&f.with_key(&["manifest", &f.ledger(), "--policy", &policy, "-o", &m])),
        2,
    );
    assert!(err.contains("did you mean `ai-training`?"), "{err}");
    // "*" events stay valid, and match every declared purpose.
    let all = f.write(
        "all.jsonl",
        "{\"type\":\"objection\",\"subject\":\"bob@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"*\"]}\n",
    );
    run(&strs(&f.with_key(&["apply", &f.ledger(), &all])), 0);
    assert_eq!(f.excluded("ai-training"), vec![1]);
}

#[test]
fn purposes_are_declared_listed_and_new_ones_need_a_flag() {
    let f = Fixture::new();
    let list = json(&["purposes", "list", &f.ledger()]);
    assert_eq!(list["purposes"][0]["name"], "ai-training", "{list}");
    assert_eq!(list["purposes"][0]["implicit"], true, "{list}");
    let ads = f.write(
        "ads.jsonl",
        "{\"type\":\"objection\",\"subject\":\"bob@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ads\"]}\n",
    );
    let (_, err) = run(&strs(&f.with_key(&["apply", &f.ledger(), &ads])), 2);
    assert!(err.contains("purpose `ads` is not declared"), "{err}");
    assert!(err.contains("--new-purpose"), "{err}");
    let a = json(&strs(&f.with_key(&[
        "apply",
        &f.ledger(),
        "--new-purpose",
        &ads,
    ])));
    assert_eq!(a["declared_purposes"], serde_json::json!(["ads"]), "{a}");
    assert_eq!(a["applied"], 1, "{a}");
    assert_eq!(f.excluded("ads"), vec![1]);
    assert_eq!(f.excluded("ai-training"), Vec::<u64>::new());
    let add = json(&strs(&f.with_key(&[
        "purposes",
        "add",
        &f.ledger(),
        "research",
        "--description",
        "internal research models",
    ])));
    assert_eq!(add["declared"], true, "{add}");
    let again = json(&strs(&f.with_key(&[
        "purposes",
        "add",
        &f.ledger(),
        "research",
    ])));
    assert_eq!(again["declared"], false, "declaring twice changes nothing");
    let list = json(&["purposes", "list", &f.ledger()]);
    let got: Vec<(String, u64, bool)> = list["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["events"].as_u64().unwrap(),
                p["implicit"].as_bool().unwrap(),
            )
        })
        .collect();
    // The first explicit declaration wrote ai-training down too.
    assert_eq!(
        got,
        vec![
            ("ai-training".into(), 0, false),
            ("ads".into(), 1, false),
            ("research".into(), 0, false),
        ]
    );
}

#[test]
fn a_dsr_export_re_applied_records_nothing() {
    let f = Fixture::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/table");
    for (csv, map) in [
        ("fides_privacy_requests.csv", "fides_mapping.json"),
        ("onetrust_requests.csv", "onetrust_mapping.json"),
    ] {
        let csv = fixtures.join(csv);
        let map = fixtures.join(map);
        let args = |l: &str| -> Vec<String> {
            f.with_key(&[
                "apply",
                l,
                "--csv",
                "--mapping",
                map.to_str().unwrap(),
                csv.to_str().unwrap(),
            ])
        };
        let l = f.ledger();
        let first = json(&strs(&args(&l)));
        assert!(first["applied"].as_u64().unwrap() >= 2, "{first}");
        assert_eq!(first["unchanged"], 0, "{first}");
        let seq = f.head();
        for _ in 0..2 {
            let again = json(&strs(&args(&l)));
            assert_eq!(again["applied"], 0, "{again}");
            assert_eq!(again["unchanged"], first["applied"], "{again}");
            assert_eq!(f.head(), seq, "a re-applied export records nothing");
        }
        let (text, _) = run(&strs(&args(&l)), 0);
        assert!(text.contains("applied 0 events"), "{text}");
        assert!(
            text.contains(&format!("{} unchanged", first["applied"])),
            "{text}"
        );
    }
}

#[test]
fn events_that_do_nothing_are_reported_and_refused_when_strict() {
    let f = Fixture::new();
    let ev = f.write(
        "ev.jsonl",
        "{\"type\":\"objection\",\"subject\":\"alice@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n\
         \n\
         {\"type\":\"erasure\",\"subject\":\"alcie@example.com\",\"at\":\"2025-01-01T00:00:00Z\"}\n\
         {\"type\":\"objection\",\"subject\":\"bob@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"],\"categories\":[\"audio\"]}\n\
         {\"type\":\"takedown\",\"key\":\"post/404\",\"at\":\"2025-01-01T00:00:00Z\"}\n\
         {\"type\":\"takedown\",\"key\":\"post/2\",\"at\":\"2025-01-01T00:00:00Z\"}\n",
    );
    let head = f.head();
    let (_, err) = run(
        &strs(&f.with_key(&["apply", &f.ledger(), "--strict", &ev])),
        2,
    );
    assert!(
        err.contains(&format!("subject has no records: {ev}:3"))
            && err.contains(&format!("scope matches no record: {ev}:4, {ev}:5")),
        "{err}"
    );
    assert!(!err.contains("alcie"), "no subject id in errors: {err}");
    assert_eq!(f.head(), head, "--strict: nothing applied");
    let mut a = vec!["--format", "json"];
    let args = f.with_key(&["apply", &f.ledger(), &ev]);
    a.extend(strs(&args));
    let o = optout(&a);
    assert_eq!(o.status.code(), Some(0));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["applied"], 5, "{j}");
    let at = |k: &str| -> Vec<String> {
        j[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x["at"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(at("no_records"), vec![format!("{ev}:3")]);
    assert_eq!(at("unmatched"), vec![format!("{ev}:4"), format!("{ev}:5")]);
    // The typo'd subject is named by pseudonym (32 hex digits), never by id.
    let p = j["no_records"][0]["subject"].as_str().unwrap();
    assert!(
        p.len() == 32 && p.bytes().all(|b| b.is_ascii_hexdigit()),
        "{p}"
    );
    assert!(err.contains(p) && err.contains(&format!("{ev}:3")), "{err}");
    assert!(
        !out.contains("alcie") && !err.contains("alcie"),
        "{out}{err}"
    );
}

#[test]
fn runs_add_require_fresh_refuses_a_manifest_newer_events_change() {
    let f = Fixture::new();
    let m = f.p("old.optm");
    let at = "2025-06-01T00:00:00Z";
    run(
        &strs(&f.with_key(&[
            "manifest",
            &f.ledger(),
            "--purpose",
            "ai-training",
            "--at",
            at,
            "-o",
            &m,
        ])),
        0,
    );
    let add = |name: &str, code: i32| {
        run(
            &strs(&f.with_key(&[
                "runs",
                "add",
                &f.ledger(),
                "--model",
                "m",
                "--manifest",
                &m,
                "--name",
                name,
                "--started-at",
                at,
                "--require-fresh",
            ])),
            code,
        )
    };
    add("fresh", 0);
    // An objection recorded after the manifest, in effect when the run starts.
    let ev = f.write(
        "ev.jsonl",
        "{\"type\":\"objection\",\"subject\":\"carol@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"]}\n",
    );
    run(&strs(&f.with_key(&["apply", &f.ledger(), &ev])), 0);
    let head = f.head();
    let (_, err) = add("stale", 2);
    assert!(
        err.contains("--require-fresh") && err.contains("exclude 1 more row"),
        "{err}"
    );
    assert_eq!(f.head(), head, "nothing registered");
    // An event that changes nothing (bob has no post in scope) keeps it fresh.
    let m2 = f.p("new.optm");
    run(
        &strs(&f.with_key(&[
            "manifest",
            &f.ledger(),
            "--purpose",
            "ai-training",
            "--at",
            at,
            "-o",
            &m2,
        ])),
        0,
    );
    let scoped = f.write(
        "scoped.jsonl",
        "{\"type\":\"objection\",\"subject\":\"bob@example.com\",\"at\":\"2025-01-01T00:00:00Z\",\"purposes\":[\"ai-training\"],\"sources\":[\"other.example\"]}\n",
    );
    run(&strs(&f.with_key(&["apply", &f.ledger(), &scoped])), 0);
    run(
        &strs(&f.with_key(&[
            "runs",
            "add",
            &f.ledger(),
            "--model",
            "m",
            "--manifest",
            &m2,
            "--started-at",
            at,
            "--require-fresh",
        ])),
        0,
    );
}

#[test]
fn errors_tell_the_fix() {
    let f = Fixture::new();
    // A conflicting re-registration names the field that differs.
    let changed = f.write(
        "changed.jsonl",
        &RECORDS.replacen("forum.example.com", "other.example.com", 1),
    );
    let (_, err) = run(&strs(&f.with_key(&["ingest", &f.ledger(), &changed])), 2);
    assert!(
        err.contains(&format!("{changed}:1")) && err.contains("different `source`"),
        "{err}"
    );
    let basis = f.write(
        "basis.jsonl",
        &RECORDS.replacen("legitimate_interest", "contract", 1),
    );
    let (_, err) = run(&strs(&f.with_key(&["ingest", &f.ledger(), &basis])), 2);
    assert!(err.contains("different `basis`"), "{err}");
    // A time without a zone says to add one.
    let naive = f.write(
        "naive.jsonl",
        "{\"type\":\"erasure\",\"subject\":\"carol@example.com\",\"at\":\"2025-01-01T00:00:00\"}\n",
    );
    let (_, err) = run(&strs(&f.with_key(&["apply", &f.ledger(), &naive])), 2);
    assert!(err.contains("add a time zone (e.g. `Z`)"), "{err}");
    // A ledger path with a trailing slash is the same ledger (its key is
    // still LEDGER.key beside it, not LEDGER/.key).
    let slash = format!("{}/", f.ledger());
    let ev = f.write(
        "ev.jsonl",
        "{\"type\":\"erasure\",\"subject\":\"carol@example.com\",\"at\":\"2025-01-01T00:00:00Z\"}\n",
    );
    run(&["apply", &slash, &ev], 0);
    let d = tempfile::tempdir().unwrap();
    let fresh = format!("{}/", d.path().join("N").display());
    run(&["init", &fresh], 0);
    assert!(d.path().join("N.key").exists(), "the key beside the ledger");
    assert!(!d.path().join("N").join(".key").exists());
}

/// `vocab add LEDGER basis NAME` (issue 21, part 1's extensions): a
/// declared basis may be named by records; a typo of a built-in basis, a
/// built-in one or an undeclared one is refused (exit 2, nothing written).
#[test]
fn vocab_add_basis_declares_it_and_refuses_typos() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("L");
    let l = l.to_str().unwrap();
    run(&["init", l], 0);
    let recs = dir.path().join("r.jsonl");
    std::fs::write(
        &recs,
        RECORDS.replace("legitimate_interest", "research_exemption"),
    )
    .unwrap();
    let recs = recs.to_str().unwrap();
    let head = |l: &str| json(&["head", l])["seq"].clone();
    let before = head(l);
    let (_, err) = run(&["ingest", l, recs], 2);
    assert!(
        err.starts_with("optout: error:") && err.contains("declare it first"),
        "{err}"
    );
    for bad in ["consnet", "consent", "Has-Dash"] {
        let (_, err) = run(&["vocab", "add", l, "basis", bad], 2);
        assert!(err.starts_with("optout: error:"), "{err}");
    }
    assert_eq!(head(l), before, "nothing written");
    let v = json(&["vocab", "add", l, "basis", "research_exemption"]);
    assert_eq!(
        (v["declared"].as_bool(), v["name"].as_str()),
        (Some(true), Some("research_exemption"))
    );
    let v = json(&["vocab", "add", l, "basis", "research_exemption"]);
    assert_eq!(v["declared"].as_bool(), Some(false));
    run(&["ingest", l, recs], 0);
}
