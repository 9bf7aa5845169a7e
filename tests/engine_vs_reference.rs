//! The bitmap engine must agree exactly, reasons included, with the naive
//! per-record reference evaluator on random ledgers.

mod common;

use optout::{engine, reference, Index};
use proptest::prelude::*;

fn check(seed: u64, len: usize, n_subjects: u64, queries: u64) {
    let log = common::ledger(seed, len, n_subjects);
    let mut index = Index::new();
    for (s, e) in &log {
        index.apply(*s, e).expect("generated entries are valid");
    }
    for k in 0..queries {
        let q = common::query(seed.wrapping_add(k * 7919), len);
        let got = reference::from_engine(&index, &engine::evaluate(&index, &q));
        let want = reference::evaluate(&log, &q);
        assert_eq!(got, want, "seed {seed}, query {k}: {q:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_reference(seed in any::<u64>(), len in 1usize..60, n_subjects in 1u64..7) {
        check(seed, len, n_subjects, 6);
    }
}

#[test]
fn engine_equals_reference_on_longer_logs() {
    for seed in 0..40 {
        check(seed, 200, 8, 10);
    }
}

#[test]
fn reference_is_not_trivially_empty() {
    // The oracle must actually exclude things on typical random ledgers,
    // or the comparison above proves nothing.
    let mut nonempty = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for seed in 0..60 {
        let log = common::ledger(seed, 80, 5);
        let q = common::query(seed, 80);
        let v = reference::evaluate(&log, &q);
        if !v.excluded.is_empty() {
            nonempty += 1;
        }
        for r in v.excluded.values() {
            reasons.extend(r.iter().copied());
        }
    }
    assert!(
        nonempty > 30,
        "only {nonempty} of 60 random ledgers excluded anything"
    );
    assert_eq!(
        reasons.len(),
        optout::Reason::COUNT,
        "reasons seen: {reasons:?}"
    );
}

#[test]
fn signal_lifts_occur_and_matter() {
    // The random ledgers must contain lifts that change the outcome, or the
    // comparison above says nothing about them.
    let mut mattered = 0;
    for seed in 0..200 {
        let log = common::ledger(seed, 80, 5);
        let q = common::query(seed, 80);
        let without: Vec<_> = log
            .iter()
            .filter(|(_, e)| {
                !matches!(
                    e,
                    optout::Entry::Event(optout::Event {
                        kind: optout::EventKind::SignalLifted { .. },
                        ..
                    })
                )
            })
            .cloned()
            .collect();
        if reference::evaluate(&log, &q) != reference::evaluate(&without, &q) {
            mattered += 1;
        }
    }
    assert!(
        mattered >= 5,
        "lifts changed the outcome of only {mattered} of 200 ledgers"
    );
}
