//! Derived datasets through the library: a packed row takes its parents'
//! exclusions and reasons, transitively, as the ledger stood at N; bad
//! derivations are refused whole.

use optout::jsonl::DerivationBuilder;
use optout::{jsonl, Error, Ledger, Reason, SubjectKeyer, Timestamp};

const SECRET: [u8; 32] = [0x31; 32];

const FORUM: &str = r#"{"dataset":"forum","shard":"p0","row":0,"subjects":["ann@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/0"}
{"dataset":"forum","shard":"p0","row":1,"subjects":["ben@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/1"}
{"dataset":"forum","shard":"p0","row":2,"subjects":["cat@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/2"}"#;

fn at() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").unwrap()
}

fn setup() -> (tempfile::TempDir, Ledger, SubjectKeyer) {
    let tmp = tempfile::tempdir().unwrap();
    let keyer = SubjectKeyer::from_secret(SECRET);
    let mut l = Ledger::create(&tmp.path().join("l"), keyer.clone()).unwrap();
    l.ingest(jsonl::parse_records(FORUM.as_bytes(), "forum.jsonl", &keyer).unwrap())
        .unwrap();
    (tmp, l, keyer)
}

fn derive(
    l: &mut Ledger,
    dataset: &str,
    from: &[&str],
    lines: &str,
) -> optout::Result<optout::DeriveSummary> {
    let sources: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    let mut b = DerivationBuilder::new(dataset, &sources, false);
    b.parse(lines.as_bytes(), "lineage.jsonl")?;
    l.derive(b.take())
}

fn object(l: &mut Ledger, keyer: &SubjectKeyer, line: &str) {
    l.apply(jsonl::parse_events(line.as_bytes(), "events", keyer).unwrap())
        .unwrap();
}

fn reasons(m: &optout::Manifest, d: &str, s: &str, row: u32) -> Vec<Reason> {
    let sh = m.shard(d, s).unwrap();
    Reason::ALL
        .iter()
        .copied()
        .filter(|r| sh.reasons[*r as usize].contains(row))
        .collect()
}

#[test]
fn a_packed_row_with_one_objected_post_is_excluded_for_objection() {
    let (_t, mut l, keyer) = setup();
    let s = derive(
        &mut l,
        "packed",
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}
{"shard":"t0","row":1,"parents":[{"dataset":"forum","shard":"p0","row":2}]}"#,
    )
    .unwrap();
    assert_eq!((s.registered, s.links, s.unchanged), (2, 3, 0));
    let before = l.index().seq();
    // A chain: a derived dataset of the derived dataset.
    derive(
        &mut l,
        "mix",
        &["packed"],
        r#"{"shard":"m0","row":0,"parents":[{"dataset":"packed","shard":"t0","row":0}]}
{"shard":"m0","row":1,"parents":[{"dataset":"packed","shard":"t0","row":1}]}"#,
    )
    .unwrap();
    let scoped = |l: &Ledger, seq: Option<optout::Seq>, ds: &str| {
        let mut q = l.query(None, "ai-training", at()).unwrap();
        if let Some(s) = seq {
            q.seq = s;
        }
        q.datasets = vec![ds.to_string()];
        l.manifest(&q).unwrap()
    };
    let old = scoped(&l, None, "packed").to_bytes();
    assert!(scoped(&l, None, "packed")
        .shard("packed", "t0")
        .unwrap()
        .excluded
        .is_empty());
    object(
        &mut l,
        &keyer,
        r#"{"type":"objection","subject":"ben@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let m = scoped(&l, None, "packed");
    assert_eq!(reasons(&m, "packed", "t0", 0), vec![Reason::Objection]);
    assert!(!m.is_excluded("packed", "t0", 1));
    assert!(m.shard("forum", "p0").is_none(), "scope kept");
    let mix = scoped(&l, None, "mix");
    assert_eq!(reasons(&mix, "mix", "m0", 0), vec![Reason::Objection]);
    assert!(!mix.is_excluded("mix", "m0", 1));
    // An erasure of cat excludes every row downstream, both reasons kept apart.
    object(
        &mut l,
        &keyer,
        r#"{"type":"erasure","subject":"cat@example.com","at":"2025-01-01T00:00:00Z"}"#,
    );
    let mix = scoped(&l, None, "mix");
    assert_eq!(reasons(&mix, "mix", "m0", 1), vec![Reason::Erasure]);
    // The manifest at the old seq is byte-identical.
    let q_old = {
        let mut q = l.query(None, "ai-training", at()).unwrap();
        q.seq = optout::Seq(before.0 + 1);
        q.datasets = vec!["packed".into()];
        q
    };
    assert_eq!(l.manifest(&q_old).unwrap().to_bytes(), old);
    // At the seq before the derivation of `mix`, `mix` does not exist yet.
    let early = scoped(&l, Some(before), "mix");
    assert!(early.shard("mix", "m0").is_none());
}

#[test]
fn a_takedown_of_the_derived_row_itself_counts() {
    let (_t, mut l, keyer) = setup();
    derive(
        &mut l,
        "packed",
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0}]}"#,
    )
    .unwrap();
    object(
        &mut l,
        &keyer,
        r#"{"type":"takedown","record":{"dataset":"packed","shard":"t0","row":0},"at":"2025-01-01T00:00:00Z"}"#,
    );
    let m = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    assert_eq!(reasons(&m, "packed", "t0", 0), vec![Reason::Takedown]);
    assert!(!m.is_excluded("forum", "p0", 0));
}

fn derive_err(l: &mut Ledger, from: &[&str], lines: &str) -> (String, String) {
    let head = l.index().seq();
    match derive(l, "packed", from, lines) {
        Err(Error::Derive(e)) => {
            assert_eq!(l.index().seq(), head, "nothing written");
            (e.field, e.what)
        }
        other => panic!("expected a derive error, got {other:?}"),
    }
}

#[test]
fn bad_derivations_are_refused_whole_naming_the_field() {
    let (_t, mut l, _) = setup();
    let ok = r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0}]}"#;
    let (f, w) = derive_err(
        &mut l,
        &["forum"],
        &format!(
            "{ok}\n{}",
            r#"{"shard":"t0","row":1,"parents":[{"dataset":"forum","shard":"p0","row":9}]}"#
        ),
    );
    assert_eq!(f, "parents[0]");
    assert!(w.contains("matches no record"), "{w}");
    let (f, _) = derive_err(
        &mut l,
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"key":"post/77"}]}"#,
    );
    assert_eq!(f, "parents[0].key");
    let (f, _) = derive_err(&mut l, &["other"], ok);
    assert_eq!(f, "parents[0].dataset");
    let (f, w) = derive_err(
        &mut l,
        &["forum", "packed"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"packed","shard":"t0","row":1}]}
{"shard":"t0","row":1,"parents":[{"dataset":"packed","shard":"t0","row":0}]}"#,
    );
    assert_eq!(f, "parents");
    assert!(w.contains("cycle"), "{w}");
    let (f, _) = derive_err(&mut l, &["forum"], &format!("{ok}\n{ok}"));
    assert_eq!(f, "row");
    // The same parents again are unchanged; different ones are refused.
    assert_eq!(
        derive(&mut l, "packed", &["forum"], ok).unwrap().registered,
        1
    );
    let s = derive(&mut l, "packed", &["forum"], ok).unwrap();
    assert_eq!((s.registered, s.unchanged), (0, 1));
    let (f, w) = derive_err(
        &mut l,
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":1}]}"#,
    );
    assert_eq!(f, "row");
    assert!(w.contains("different parents"), "{w}");
}

#[test]
fn a_missing_parent_allowed_resolves_once_registered() {
    let (_t, mut l, keyer) = setup();
    let mut b = DerivationBuilder::new("packed", &["forum".to_string()], true);
    b.parse(
        r#"{"shard":"t0","row":0,"parents":[{"key":"post/late"}]}"#.as_bytes(),
        "lineage.jsonl",
    )
    .unwrap();
    l.derive(b.take()).unwrap();
    let linked = l.index().seq();
    l.ingest(
        jsonl::parse_records(
            r#"{"dataset":"forum","shard":"p1","row":0,"subjects":["dan@example.com"],"source":"forum.example.com","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest","key":"post/late"}"#.as_bytes(),
            "late.jsonl",
            &keyer,
        )
        .unwrap(),
    )
    .unwrap();
    object(
        &mut l,
        &keyer,
        r#"{"type":"objection","subject":"dan@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let m = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    assert_eq!(reasons(&m, "packed", "t0", 0), vec![Reason::Objection]);
    // At the seq of the link, the parent was not known: nothing excluded.
    let mut q = l.query(None, "ai-training", at()).unwrap();
    q.seq = linked;
    assert!(!l.manifest(&q).unwrap().is_excluded("packed", "t0", 0));
}

#[test]
fn lineage_survives_a_snapshot_and_a_reopen() {
    let (t, mut l, keyer) = setup();
    derive(
        &mut l,
        "packed",
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}"#,
    )
    .unwrap();
    object(
        &mut l,
        &keyer,
        r#"{"type":"objection","subject":"ann@example.com","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let want = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap()
        .to_bytes();
    l.snapshot().unwrap();
    drop(l);
    let l = Ledger::open(&t.path().join("l"), Some(keyer.clone())).unwrap();
    assert!(l.snapshot_note().is_none(), "{:?}", l.snapshot_note());
    assert_eq!(l.index().stats().lineage_links, 2);
    let got = l
        .manifest(&l.query(None, "ai-training", at()).unwrap())
        .unwrap();
    assert_eq!(got.to_bytes(), want);
    assert!(got.is_excluded("packed", "t0", 0));
}

#[test]
fn a_cycle_closed_through_a_pending_parent_is_refused() {
    let (_t, mut l, _) = setup();
    let sources = vec!["forum".to_string(), "packed".to_string()];
    let mut b = DerivationBuilder::new("packed", &sources, true);
    b.parse(
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"packed","shard":"t1","row":0}]}"#
            .as_bytes(),
        "a.jsonl",
    )
    .unwrap();
    l.derive(b.take()).unwrap();
    let (f, w) = derive_err(
        &mut l,
        &["forum", "packed"],
        r#"{"shard":"t1","row":0,"parents":[{"dataset":"packed","shard":"t0","row":0}]}"#,
    );
    assert_eq!(f, "parents");
    assert!(w.contains("cycle"), "{w}");
}

#[test]
fn runs_on_a_derived_dataset_and_the_report_reach_the_subject() {
    let (_t, mut l, keyer) = setup();
    derive(
        &mut l,
        "packed",
        &["forum"],
        r#"{"shard":"t0","row":0,"parents":[{"dataset":"forum","shard":"p0","row":0},{"key":"post/1"}]}
{"shard":"t0","row":1,"parents":[{"dataset":"forum","shard":"p0","row":2}]}"#,
    )
    .unwrap();
    derive(
        &mut l,
        "mix",
        &["packed"],
        r#"{"shard":"m0","row":0,"parents":[{"dataset":"packed","shard":"t0","row":0}]}"#,
    )
    .unwrap();
    let mut q = l.query(None, "ai-training", at()).unwrap();
    q.datasets = vec!["mix".into()];
    let m = l.manifest(&q).unwrap();
    let started = Timestamp::parse("2025-03-01T00:00:00Z").unwrap();
    l.register_run("r-mix", "model-a", &m, started).unwrap();
    // Ben (post/1, in packed t0#0, in mix m0#0) objects after the run.
    object(
        &mut l,
        &keyer,
        r#"{"type":"objection","subject":"ben@example.com","at":"2025-04-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let ben = l.pseudonym("ben@example.com").unwrap();
    let now = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
    let runs = optout::lineage::affected(l.index(), &ben, l.index().seq(), now);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].run, "r-mix");
    assert_eq!(runs[0].status, optout::lineage::Use::After);
    let r = &runs[0].records[0];
    assert_eq!(
        (r.dataset.as_str(), r.shard.as_str(), r.row),
        ("mix", "m0", 0)
    );
    assert_eq!(r.reasons, vec![Reason::Objection]);
    assert_eq!(r.path, vec!["forum/p0#1", "packed/t0#0", "mix/m0#0"]);
    // Cat's data is in packed t0#1 only, which the run did not read.
    let cat = l.pseudonym("cat@example.com").unwrap();
    assert!(optout::lineage::affected(l.index(), &cat, l.index().seq(), now).is_empty());
    // A second run trained after the objection on a stale manifest: a violation.
    l.register_run("r-late", "model-b", &m, now).unwrap();
    let runs = optout::lineage::affected(l.index(), &ben, l.index().seq(), now);
    let late = runs.iter().find(|r| r.run == "r-late").unwrap();
    assert_eq!(late.status, optout::lineage::Use::Violation);
    // The Art. 15 report lists the derived rows with their paths.
    let rep = optout::report::subject_report(&l, "ben@example.com", now).unwrap();
    let rows: Vec<(String, Vec<String>)> = rep
        .derived
        .iter()
        .map(|d| {
            (
                format!("{}/{}#{}", d.dataset, d.shard, d.row),
                d.path.clone(),
            )
        })
        .collect();
    let packed = vec!["forum/p0#1".to_string(), "packed/t0#0".to_string()];
    let mut mix = packed.clone();
    mix.push("mix/m0#0".into());
    assert_eq!(
        rows,
        vec![
            ("packed/t0#0".to_string(), packed),
            ("mix/m0#0".to_string(), mix)
        ]
    );
}
