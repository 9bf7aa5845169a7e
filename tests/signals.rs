//! Web opt-out signals end to end: crawl metadata for a few sites →
//! `optout signals` → a manifest that excludes exactly the reserved URLs'
//! records, with the reason each should have. The expected reasons
//! (`tests/fixtures/signals/expected.json`) were written by hand from the
//! fixtures, one comment per record in the script that wrote
//! `records.jsonl`; they are not computed by the code under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optout::event::EventKind;
use optout::signals::{self, robots::Robots, Config};
use optout::{jsonl, Ledger, Manifest, SubjectKeyer, Timestamp};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/signals")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
}

/// `(shard, row) -> key`, from the records fixture.
fn keys_by_row() -> BTreeMap<(String, u32), String> {
    read("records.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                (
                    v["shard"].as_str().unwrap().to_string(),
                    v["row"].as_u64().unwrap() as u32,
                ),
                v["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// key -> sorted reason names, for every record (empty: kept).
fn expected() -> BTreeMap<String, Vec<String>> {
    serde_json::from_str(&read("expected.json")).unwrap()
}

/// key -> reason names the manifest gives it (empty: kept).
fn judged(m: &Manifest) -> BTreeMap<String, Vec<String>> {
    keys_by_row()
        .into_iter()
        .map(|((shard, row), key)| {
            let reasons = m
                .shard("web", &shard)
                .map(|s| {
                    s.reasons_of(row)
                        .iter()
                        .map(|r| r.name().to_string())
                        .collect()
                })
                .unwrap_or_default();
            (key, reasons)
        })
        .collect()
}

fn keyer() -> SubjectKeyer {
    SubjectKeyer::from_secret([7; 32])
}

fn at() -> Timestamp {
    Timestamp::parse("2025-08-01T00:00:00Z").unwrap()
}

fn ledger(dir: &Path) -> Ledger {
    let mut l = Ledger::create(&dir.join("ledger"), keyer()).unwrap();
    let recs =
        jsonl::parse_records(read("records.jsonl").as_bytes(), "records.jsonl", &keyer()).unwrap();
    l.ingest(recs).unwrap();
    l
}

/// Runs the signals step through the library; returns the events recorded.
fn run_signals(l: &mut Ledger, crawl_file: &str) -> usize {
    let crawl = signals::parse_crawl(read(crawl_file).as_bytes(), crawl_file).unwrap();
    let keys = l.record_keys().unwrap();
    let plan = signals::plan(
        &crawl,
        keys.iter().map(String::as_str),
        l.index().events().iter().map(|(_, e)| e),
        &Config::default(),
    );
    let n = plan.events.len();
    l.apply(plan.events).unwrap();
    n
}

fn manifest(l: &Ledger) -> Manifest {
    let q = l.query(None, "ai-training", at()).unwrap();
    l.manifest(&q).unwrap()
}

#[test]
fn manifest_excludes_exactly_the_reserved_urls() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = ledger(dir.path());
    let before = judged(&manifest(&l));
    assert!(
        before.values().all(Vec::is_empty),
        "nothing excluded before: {before:?}"
    );

    assert!(run_signals(&mut l, "crawl.jsonl") > 0);
    let got = judged(&manifest(&l));
    let want = expected();
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "{k}");
    }
    // Both outcomes occur, and some records stay: the fixture is not trivial.
    let count = |r: &str| want.values().filter(|v| v.iter().any(|x| x == r)).count();
    assert!(count("source_optout") >= 10 && count("signal_unparsable") >= 4);
    assert!(want.values().filter(|v| v.is_empty()).count() >= 8);
}

#[test]
fn events_carry_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = ledger(dir.path());
    run_signals(&mut l, "crawl.jsonl");
    let robots = read("shop.example.robots.txt");
    let mut seen = 0;
    let mut excerpts = 0;
    for (_, e) in l.index().events() {
        let EventKind::Signal {
            unparsable,
            evidence,
            target,
            ..
        } = &e.kind
        else {
            continue;
        };
        assert_eq!(e.at, Timestamp::parse("2025-06-01T08:00:00Z").unwrap());
        assert_eq!(evidence.fetched_at, e.at);
        assert!(evidence.raw.len() <= optout::SignalEvidence::MAX_RAW);
        if evidence.url == "https://shop.example/robots.txt" {
            seen += 1;
            assert_eq!(evidence.kind, "robots");
            // One event per file keeps its text; the others name the rule.
            if evidence.raw.is_empty() {
                excerpts += 1;
            } else {
                assert_eq!(evidence.raw, robots);
            }
            assert_eq!(evidence.raw_len, robots.len() as u64);
            assert_eq!(
                &evidence.raw_blake3,
                blake3::hash(robots.as_bytes()).as_bytes()
            );
            assert!(!unparsable);
            if *target
                == optout::SignalTarget::Key("https://shop.example/manuals/setup.html".into())
            {
                let d = evidence.detail.as_deref().unwrap();
                assert!(d.contains("Disallow: /manuals/"), "{d}");
            }
        }
        if evidence.kind == "c2pa" && *unparsable {
            assert!(evidence.detail.as_deref().unwrap().contains("not JSON"));
        }
    }
    // products, pdf, manuals, reviews (Content-Usage), cart.
    assert_eq!(seen, 5);
    assert_eq!(excerpts, 4);
}

#[test]
fn rerun_adds_nothing_and_vanished_signals_lift_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = ledger(dir.path());
    run_signals(&mut l, "crawl.jsonl");
    let first = manifest(&l);
    let head = l.head().0;
    // The same crawl again: nothing new.
    assert_eq!(run_signals(&mut l, "crawl.jsonl"), 0);
    assert_eq!(l.head().0, head);
    // A later crawl where every signal is gone: no event, same exclusions.
    assert_eq!(run_signals(&mut l, "crawl-later.jsonl"), 0);
    assert_eq!(judged(&manifest(&l)), judged(&first));
    assert_eq!(judged(&first), expected());
    // Reopened from disk: still the same.
    drop(l);
    let l = Ledger::open(&dir.path().join("ledger"), Some(keyer())).unwrap();
    assert_eq!(judged(&manifest(&l)), expected());
}

#[test]
fn only_an_explicit_evidenced_lift_re_includes() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = ledger(dir.path());
    run_signals(&mut l, "crawl.jsonl");
    let lifts = r#"{"type":"signal_lifted","key":"https://shop.example/cart","at":"2025-07-15T00:00:00Z","purposes":["ai-training"],"evidence":"licence agreement SHOP-2025-7 of 2025-07-14","ref":"legal-118"}
{"type":"signal_lifted","source":"broken.example","at":"2025-07-15T00:00:00Z","purposes":["ai-training"],"evidence":"publisher confirmed by email that no reservation is meant; tdmrep.json being fixed"}"#;
    l.apply(jsonl::parse_events(lifts.as_bytes(), "lifts.jsonl", &keyer()).unwrap())
        .unwrap();
    let mut want = expected();
    for k in [
        "https://shop.example/cart",
        "https://broken.example/page1",
        "broken-000001",
    ] {
        want.insert(k.to_string(), vec![]);
    }
    assert_eq!(judged(&manifest(&l)), want);
    // Before the lift took effect, the reservations still stand.
    let q = l
        .query(
            None,
            "ai-training",
            Timestamp::parse("2025-07-14T00:00:00Z").unwrap(),
        )
        .unwrap();
    assert_eq!(judged(&l.manifest(&q).unwrap()), expected());
    // The same crawl again finds the same signals: already recorded, still lifted.
    assert_eq!(run_signals(&mut l, "crawl.jsonl"), 0);
    assert_eq!(judged(&manifest(&l)), want);
    // A lift without evidence, or without a target, is refused.
    for bad in [
        r#"{"type":"signal_lifted","key":"https://shop.example/cart","at":"2025-07-15T00:00:00Z","purposes":["ai-training"],"evidence":" "}"#,
        r#"{"type":"signal_lifted","at":"2025-07-15T00:00:00Z","purposes":["ai-training"],"evidence":"x"}"#,
    ] {
        assert!(jsonl::parse_events(bad.as_bytes(), "bad.jsonl", &keyer()).is_err());
    }
}

#[test]
fn reservations_apply_from_their_fetch_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = ledger(dir.path());
    run_signals(&mut l, "crawl.jsonl");
    let q = l
        .query(
            None,
            "ai-training",
            Timestamp::parse("2025-05-31T00:00:00Z").unwrap(),
        )
        .unwrap();
    let m = l.manifest(&q).unwrap();
    assert_eq!(m.header.excluded, 0);
}

#[test]
fn fixture_robots_edge_cases_agree_with_rfc9309() {
    // Independent expectations for the shop's robots.txt, per agent.
    let r = Robots::parse(&read("shop.example.robots.txt"), None).unwrap();
    let allowed = |a: &str, p: &str| r.allowed(a, &format!("https://shop.example{p}")).unwrap();
    assert!(!allowed("GPTBot", "/products/widget"));
    assert!(allowed("GPTBot", "/products/public/widget"));
    assert!(!allowed("GPTBot", "/manuals/x")); // second gptbot group, merged
    assert!(allowed("GPTBot", "/cart")); // GPTBot has its own groups: `*` does not bind it
    assert!(!allowed("CCBot", "/cart")); // no own group: `*`
    assert!(allowed("ClaudeBot", "/blog")); // equal length: Allow wins
    assert!(!allowed("GPTBot", "/a/b.pdf"));
    assert!(allowed("GPTBot", "/a/b.pdf?x=1"));
    assert!(allowed(
        "GPTBot/1.1 (+https://openai.com/gptbot)",
        "/products/public/x"
    ));
    assert!(!allowed("gptbot", "/products/x")); // product tokens are case-insensitive
    let news = Robots::parse(&read("news.example.robots.txt"), None).unwrap();
    assert!(news.site_verdict(&Config::default().agents).is_reserved());
    assert!(!news.site_verdict(&["Googlebot".to_string()]).is_reserved());
}

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use std::process::Command;

    fn optout(args: &[&str]) -> std::process::Output {
        let o = Command::new(env!("CARGO_BIN_EXE_optout"))
            .args(args)
            .env_remove("OPTOUT_KEY_FILE")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn json(args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--format", "json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&optout(&a).stdout).unwrap()
    }

    #[test]
    fn cli_signals_then_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let led = dir.path().join("ledger");
        let led = led.to_str().unwrap();
        let crawl = fixture("crawl.jsonl");
        let crawl = crawl.to_str().unwrap();
        optout(&["init", led]);
        optout(&["ingest", led, fixture("records.jsonl").to_str().unwrap()]);
        let dry = json(&["signals", led, crawl, "--dry-run"]);
        assert!(dry["events"].as_u64().unwrap() > 0);
        let v = json(&["signals", led, crawl]);
        assert_eq!(v["events"], dry["events"]);
        assert_eq!(
            v["seq"].as_u64().unwrap(),
            v["seq_before"].as_u64().unwrap() + v["events"].as_u64().unwrap()
        );
        assert!(v["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["unparsable"] == true && s["target"] == "flaky.example"));
        let again = json(&["signals", led, crawl]);
        assert_eq!(again["events"], 0);
        let m = dir.path().join("m.optm");
        let m = m.to_str().unwrap();
        optout(&[
            "manifest",
            led,
            "--purpose",
            "ai-training",
            "--at",
            "2025-08-01T00:00:00Z",
            "-o",
            m,
        ]);
        let got = judged(&Manifest::load(Path::new(m)).unwrap());
        assert_eq!(got, expected());
    }

    #[test]
    fn cli_rejects_bad_crawl_lines_whole() {
        let dir = tempfile::tempdir().unwrap();
        let led = dir.path().join("ledger");
        let led = led.to_str().unwrap();
        optout(&["init", led]);
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"url\":\"https://a.example/\",\"fetched_at\":\"2025-06-01T00:00:00Z\",\"robots_txt\":\"User-agent: *\\nDisallow: /\"}\n{\"url\":\"https://b.example/\",\"fetched_at\":\"yesterday\"}\n",
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_optout"))
            .args(["signals", led, bad.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("bad.jsonl:2:") && err.contains("fetched_at"),
            "{err}"
        );
        // Nothing of the batch was recorded.
        let v = json(&[
            "signals",
            led,
            "--dry-run",
            fixture("crawl-later.jsonl").to_str().unwrap(),
        ]);
        assert_eq!(v["seq_before"], 1);
    }
}

mod laws {
    use super::*;
    use optout::signals::{aipref, c2pa, headers, tdmrep, Verdict};
    use proptest::prelude::*;

    const AGENTS: &[&str] = &[
        "GPTBot",
        "gptbot",
        "CCBot",
        "*",
        "Googlebot",
        "ClaudeBot/1.0",
        "Google-Extended",
    ];
    const PATTERNS: &[&str] = &[
        "/", "/a", "/a/", "/a/b", "/*.pdf$", "/a*b", "", "/$", "*", "/b/",
    ];
    const PATHS: &[&str] = &["/", "/a", "/a/b", "/a/x.pdf", "/b/c", "/ab", "/a/b?x=1"];

    fn robots_file() -> impl Strategy<Value = String> {
        let group = (
            prop::collection::vec(prop::sample::select(AGENTS), 1..3),
            prop::collection::vec((any::<bool>(), prop::sample::select(PATTERNS)), 0..4),
        );
        prop::collection::vec(group, 0..4).prop_map(|gs| {
            let mut s = String::new();
            for (agents, rules) in gs {
                for a in agents {
                    s += &format!("User-agent: {a}\n");
                }
                for (allow, p) in rules {
                    s += &format!("{}: {p}\n", if allow { "Allow" } else { "Disallow" });
                }
                s += "\n";
            }
            s
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Reserved exactly when the RFC 9309 matcher disallows some
        /// configured agent: asking only one agent per `*` fallback loses nothing.
        #[test]
        fn robots_verdict_is_any_agent_disallowed(text in robots_file(), path in prop::sample::select(PATHS)) {
            let r = Robots::parse(&text, None).unwrap();
            let agents = Config::default().agents;
            let url = format!("https://x.example{path}");
            let any = agents.iter().any(|a| r.allowed(a, &url) == Some(false));
            prop_assert_eq!(r.verdict(&agents, &url, path).is_reserved(), any, "{}", text);
            // Site-wide implies every path is disallowed for that agent.
            if r.site_verdict(&agents).is_reserved() {
                prop_assert!(any);
            }
        }

        /// No parser panics, whatever the input.
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}", b in prop::collection::vec(any::<u8>(), 0..200)) {
            let lossy = String::from_utf8_lossy(&b).into_owned();
            let agents = Config::default().agents;
            for t in [&s, &lossy] {
                if let Some(r) = Robots::parse(t, None) {
                    let _ = r.verdict(&agents, "https://x.example/a", "/a");
                    let _ = r.site_verdict(&agents);
                }
                let _ = tdmrep::parse_file(t).map(|f| f.verdict("/a"));
                let _ = aipref::parse(t);
                let _ = headers::noai_verdict(t, None, &agents);
                let v = c2pa::verdict(&serde_json::Value::String(t.clone()));
                prop_assert!(v != Verdict::Open || serde_json::from_str::<serde_json::Value>(t).is_ok());
            }
        }
    }
}
