//! The head cache (issue 19) is never wrong: over random ledgers and
//! random interleavings of appends and queries (at the head with valid
//! times moving on, and at random earlier (seq, time)), every answer of
//! the cache equals a fresh `engine::evaluate` and the reference
//! evaluator, and the manifests built from them are the same bytes.
//! Runs of one-subject events (and takedowns) after a cached query
//! exercise the patches.

mod common;

use common::Rng;
use optout::engine::{self, HeadCache, HeadStats};
use optout::event::{Entry, EventKind};
use optout::{reference, Index, Manifest, Query, Seq};
use proptest::prelude::*;

/// The sealed bytes of the manifest of `ex` (fixed ledger id and chain).
fn sealed(index: &Index, q: &Query, ex: &optout::Exclusions) -> Vec<u8> {
    Manifest::build(index, q, ex, [7u8; 16], [9u8; 32]).to_bytes()
}

/// Asks `q` of the cache and checks the answer three ways.
fn ask(cache: &mut HeadCache, index: &Index, log: &[(Seq, Entry)], q: &Query, what: &str) {
    let got = cache.evaluate(index, q);
    let fresh = engine::evaluate(index, q);
    assert_eq!(*got, fresh, "{what}: cache vs engine, {q:?}");
    assert_eq!(
        sealed(index, q, &got),
        sealed(index, q, &fresh),
        "{what}: sealed bytes, {q:?}"
    );
    assert_eq!(
        reference::from_engine(index, &got),
        reference::evaluate(log, q),
        "{what}: cache vs reference, {q:?}"
    );
}

/// A one-subject event (or a takedown), the kinds the cache patches,
/// most often taking effect at or before day `d`.
fn one_subject_event(r: &mut Rng, n_subjects: u64, d: u64) -> Entry {
    loop {
        let mut e = common::event(r, n_subjects);
        let keep = match &e.kind {
            EventKind::Objection { .. } | EventKind::Erasure { .. } => true,
            EventKind::Restriction { .. } | EventKind::Takedown { .. } => r.chance(50),
            _ => r.chance(20),
        };
        if !keep {
            continue;
        }
        if r.chance(70) {
            e.at = common::day(d.saturating_sub(r.below(3)));
        }
        return Entry::Event(e);
    }
}

/// One random interleaving; returns what the cache did.
fn check(seed: u64, len: usize, n_subjects: u64, capacity: usize) -> HeadStats {
    let base = common::ledger(seed, len, n_subjects);
    let mut r = Rng::new(seed ^ 0x4EAD);
    // A few queries asked at the head again and again, each with a
    // valid time that mostly moves forward.
    let mut heads: Vec<(Query, u64)> = (0..3)
        .map(|k| {
            let q = common::query(seed.wrapping_add(k * 31), len);
            (q, r.below(8))
        })
        .collect();
    let mut cache = HeadCache::new(capacity);
    let mut index = Index::new();
    let mut log: Vec<(Seq, Entry)> = Vec::new();
    let append = |index: &mut Index, log: &mut Vec<(Seq, Entry)>, cache: &mut HeadCache, e| {
        let seq = Seq(log.len() as u64 + 1);
        index.apply(seq, &e).expect("generated entries are valid");
        cache.appended(index, seq, &e);
        log.push((seq, e));
    };
    for (_, e) in base {
        append(&mut index, &mut log, &mut cache, e);
        let head = index.seq();
        if r.chance(60) {
            let k = r.below(heads.len() as u64) as usize;
            let (q, day) = &mut heads[k];
            if r.chance(40) {
                *day += r.below(3);
            }
            let d = *day;
            let q = Query {
                seq: head,
                at: common::day(d),
                ..q.clone()
            };
            ask(&mut cache, &index, &log, &q, &format!("seed {seed}, head"));
            // Events about one subject right after the cached query.
            if r.chance(50) {
                for _ in 0..1 + r.below(4) {
                    let e = one_subject_event(&mut r, n_subjects, d);
                    append(&mut index, &mut log, &mut cache, e);
                }
                let q = Query {
                    seq: index.seq(),
                    ..q
                };
                ask(
                    &mut cache,
                    &index,
                    &log,
                    &q,
                    &format!("seed {seed}, patched"),
                );
            }
        }
        if r.chance(20) {
            // An earlier (seq, time), with one of the head queries' rules
            // (so entries left behind at their seq can answer it).
            let (q, _) = &heads[r.below(heads.len() as u64) as usize];
            let q = Query {
                seq: Seq(r.below(index.seq().0 + 1)),
                at: common::day(r.below(13)),
                ..q.clone()
            };
            ask(
                &mut cache,
                &index,
                &log,
                &q,
                &format!("seed {seed}, earlier"),
            );
        }
        assert!(cache.len() <= capacity.max(1), "bounded");
    }
    cache.stats()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn head_cache_equals_engine_and_reference(
        seed in any::<u64>(),
        len in 1usize..70,
        n_subjects in 1u64..7,
        capacity in 1usize..6,
    ) {
        check(seed, len, n_subjects, capacity);
    }
}

/// The comparisons above prove something only if the cache answers
/// from its entries, carries them and patches them: over a fixed set of
/// ledgers each happens many times.
#[test]
fn head_cache_hits_carries_and_patches() {
    let mut all = HeadStats::default();
    for seed in 0..120 {
        let s = check(seed, 120, 6, 4);
        all.hits += s.hits;
        all.misses += s.misses;
        all.carried += s.carried;
        all.patched += s.patched;
        all.dropped += s.dropped;
    }
    assert!(all.hits > 500, "{all:?}");
    assert!(all.patched > 200, "{all:?}");
    assert!(all.carried > 500, "{all:?}");
    assert!(all.dropped > 0, "{all:?}");
    assert!(all.misses > 0, "{all:?}");
}

/// Through the `Ledger`: a manifest at the head after an objection was
/// applied comes from the patched entry, and is what a fresh evaluation
/// (`verify_manifest`) computes; a consent withdrawal (not patched) is
/// still seen.
#[test]
fn ledger_manifests_at_the_head_follow_appends() {
    use optout::{jsonl, Ledger, SubjectKeyer, Timestamp};
    let keyer = SubjectKeyer::from_secret([9; 32]);
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::create(&dir.path().join("l"), keyer.clone()).unwrap();
    let records: String = (0..40)
        .map(|r| {
            format!(
                r#"{{"dataset":"forum","shard":"p0","row":{r},"subjects":["u{}@x.org"],"source":"forum.x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}"#,
                r % 9
            ) + "\n"
        })
        .collect();
    l.ingest(jsonl::parse_records(records.as_bytes(), "r.jsonl", &keyer).unwrap())
        .unwrap();
    let apply = |l: &mut Ledger, text: &str| {
        l.apply(jsonl::parse_events(text.as_bytes(), "e.jsonl", &keyer).unwrap())
            .unwrap()
    };
    let at = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
    let head = |l: &Ledger| l.query(None, "ai-training", at).unwrap();
    let m0 = l.manifest(&head(&l)).unwrap();
    assert_eq!(m0.header.excluded, 0);
    apply(
        &mut l,
        r#"{"type":"objection","subject":"u1@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}"#,
    );
    let before = l.head_stats();
    let m1 = l.manifest(&head(&l)).unwrap();
    let after = l.head_stats();
    assert_eq!(after.hits, before.hits + 1, "{after:?}");
    assert!(after.patched >= 1, "{after:?}");
    assert_eq!(m1.header.excluded, 5, "rows 1, 10, 19, 28, 37");
    l.verify_manifest(&m1).unwrap();
    apply(
        &mut l,
        r#"{"type":"erasure","subject":"u2@x.org","at":"2025-01-02T00:00:00Z"}"#,
    );
    let m2 = l.manifest(&head(&l)).unwrap();
    assert_eq!(m2.header.excluded, 10);
    l.verify_manifest(&m2).unwrap();
    // Still answered at the earlier seq, as it was.
    let mut old = head(&l);
    old.seq = m1.header.seq;
    assert_eq!(l.manifest(&old).unwrap().to_bytes(), m1.to_bytes());
}
