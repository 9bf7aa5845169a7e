//! Replays every fuzz seed (`fuzz/seeds/<target>/`) and every reproducer of
//! a past finding (`fuzz/regressions/<target>/`) through the same check the
//! cargo-fuzz target runs (`fuzz/src/lib.rs`, included here), so `cargo test`
//! covers them without cargo-fuzz or a nightly toolchain.
//!
//! Regenerate the seeds: `cargo test --test fuzz_replay -- --ignored write_seeds`.

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use fuzz::base_payloads;

use std::path::{Path, PathBuf};

use optout::event::Entry;
use optout::{codec, Index, Policy, Purpose};

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir(kind, target)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn replay(target: &str) -> usize {
    let mut n = 0;
    for kind in ["seeds", "regressions"] {
        for f in files(kind, target) {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| fuzz::run(target, &data));
            assert!(r.is_ok(), "{} panicked", f.display());
            n += 1;
        }
    }
    n
}

macro_rules! replay_tests {
    ($($name:ident => $target:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            let n = replay($target);
            assert!(n > 0, "no seeds for {}", $target);
        }
    )*};
}

replay_tests! {
    replay_segment => "segment",
    replay_snapshot => "snapshot",
    replay_snapshot_file => "snapshot_file",
    replay_snapshot_sections => "snapshot_sections",
    replay_manifest => "manifest",
    replay_entry => "entry",
    replay_jsonl_record => "jsonl_record",
    replay_jsonl_event => "jsonl_event",
    replay_lineage_jsonl => "lineage_jsonl",
    replay_policy => "policy",
    replay_ops => "ops",
    replay_crawl => "crawl",
    replay_ops_arbitrary => "ops_arbitrary",
}

/// The seeds of the op-sequence targets reach every operation and every
/// comparison (a comparison that never runs cannot fail).
#[test]
fn op_seeds_exercise_every_check() {
    let mut total = fuzz::OpsStats::default();
    let mut kinds = std::collections::HashSet::new();
    for f in files("seeds", "ops_arbitrary") {
        let ops = fuzz::ops_of_arbitrary(&std::fs::read(&f).unwrap());
        kinds.extend(ops.iter().map(std::mem::discriminant));
        total += fuzz::run_ops(&ops);
    }
    assert_eq!(kinds.len(), 8, "an Op variant no seed uses");
    assert!(total.ledger_vs_reference > 0 && total.past > 0, "{total:?}");
    assert!(
        total.engine_vs_reference > 0 && total.reopens > 0,
        "{total:?}"
    );
    assert!(total.runs > 0 && total.affected_nonempty > 0, "{total:?}");
    let mut bytes = fuzz::OpsStats::default();
    for f in files("seeds", "ops") {
        bytes += fuzz::run_ops(&fuzz::ops_of_bytes(&std::fs::read(&f).unwrap()));
    }
    assert!(bytes.ledger_vs_reference > 0 && bytes.past > 0, "{bytes:?}");
}

/// How active the op-sequence checks are over a corpus directory:
/// `OPS_CORPUS=fuzz/corpus/ops_arbitrary OPS_TARGET=ops_arbitrary cargo test
/// --test fuzz_replay -- --ignored --nocapture ops_corpus_stats`.
#[test]
#[ignore = "reads a local corpus; run by hand"]
fn ops_corpus_stats() {
    let dir = std::env::var("OPS_CORPUS").expect("OPS_CORPUS");
    let target = std::env::var("OPS_TARGET").unwrap_or_else(|_| "ops_arbitrary".into());
    let mut total = fuzz::OpsStats::default();
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let ops = match target.as_str() {
            "ops" => fuzz::ops_of_bytes(&data),
            _ => fuzz::ops_of_arbitrary(&data),
        };
        total += fuzz::run_ops(&ops);
        n += 1;
    }
    println!("{n} inputs: {total:#?}");
}

/// Reproducers of findings not fixed yet (`fuzz/known-bugs/<target>/`, empty
/// while every finding is fixed): they fail until the library is fixed; then
/// move them to `fuzz/regressions/`, which the `replay_*` tests replay.
#[test]
#[ignore = "reproducers of unfixed findings; run by hand"]
fn replay_known_bugs() {
    for t in fuzz::TARGETS {
        for f in files("known-bugs", t) {
            fuzz::run(t, &std::fs::read(&f).unwrap());
        }
    }
}

/// Every kept reproducer of a past finding is replayed by `cargo test`.
#[test]
fn regressions_are_kept_and_replayed() {
    let kept: usize = fuzz::TARGETS
        .iter()
        .map(|t| files("regressions", t).len())
        .sum();
    assert!(kept >= 4, "fuzz/regressions/ lost its reproducers");
    for d in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")).unwrap()
    {
        let name = d.unwrap().file_name().into_string().unwrap();
        assert!(
            fuzz::TARGETS.contains(&name.as_str()),
            "fuzz/regressions/{name} is not a target: it would never be replayed"
        );
    }
}

#[test]
fn lineage_seeds_reach_both_outcomes() {
    // The valid seed registers (so the manifest step runs); the one naming
    // a dataset that is not a source is refused.
    let seed = |n: &str| std::fs::read(dir("seeds", "lineage_jsonl").join(n)).unwrap();
    assert!(fuzz::lineage_jsonl_registered(&seed("valid")));
    assert!(!fuzz::lineage_jsonl_registered(&seed("chain")));
}

#[test]
fn every_target_has_a_seed_directory() {
    for t in fuzz::TARGETS {
        assert!(dir("seeds", t).is_dir(), "fuzz/seeds/{t} missing");
    }
}

/// The `(flags, payload)` of every frame of the base segment, in order.
fn base_frames() -> Vec<(u8, Vec<u8>)> {
    let seg = fuzz::base_segment();
    let mut at = 84;
    let mut out = Vec::new();
    while at < seg.len() {
        let len = u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize;
        let flags = seg[at + 16];
        out.push((flags, seg[at + 24..at + 24 + len].to_vec()));
        at += 60 + len;
    }
    out
}

#[test]
fn base_ledger_frames_round_trip_through_frames_from() {
    // The structure-aware segment mode rebuilds the base log exactly.
    let payloads = base_frames();
    let p: Vec<Vec<u8>> = payloads.iter().map(|f| f.1.clone()).collect();
    assert_eq!(p, base_payloads());
    let input = fuzz::frames_input(&payloads);
    assert_eq!(fuzz::frames_from(&input[1..]), fuzz::base_segment());
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_seeds() {
    let put = |target: &str, name: &str, data: &[u8]| {
        let d = dir("seeds", target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    let payloads = base_payloads();
    // segment
    let seg = fuzz::base_segment();
    put("segment", "raw-valid", &[&[0u8][..], &seg].concat());
    put("segment", "raw-empty", &[0u8]);
    put(
        "segment",
        "raw-header-only",
        &[&[0u8][..], &seg[..84]].concat(),
    );
    let frames = base_frames();
    put("segment", "frames-valid", &fuzz::frames_input(&frames));
    put(
        "segment",
        "frames-init-only",
        &fuzz::frames_input(&frames[..1]),
    );
    put("segment", "edits", &[2, 100, 0, 0xff, 200, 0, 1, 7]);
    // entry
    for (i, p) in payloads.iter().enumerate() {
        put("entry", &format!("base-{i}"), p);
    }
    // snapshot
    let mut ix = Index::new();
    for (i, p) in payloads.iter().enumerate() {
        let e: Entry = codec::decode(p).unwrap();
        ix.apply(optout::Seq(i as u64 + 1), &e).unwrap();
    }
    put("snapshot", "base", &ix.to_snapshot_bytes().unwrap());
    put(
        "snapshot",
        "empty-index",
        &Index::new().to_snapshot_bytes().unwrap(),
    );
    // snapshot_sections
    let owned: Vec<Vec<u8>> = ix
        .to_snapshot_sections()
        .unwrap()
        .into_iter()
        .map(|c| c.into_owned())
        .collect();
    let refs: Vec<&[u8]> = owned.iter().map(|s| &s[..]).collect();
    put("snapshot_sections", "base", &fuzz::sections_input(&refs));
    let empty: Vec<Vec<u8>> = Index::new()
        .to_snapshot_sections()
        .unwrap()
        .into_iter()
        .map(|c| c.into_owned())
        .collect();
    let refs: Vec<&[u8]> = empty.iter().map(|s| &s[..]).collect();
    put(
        "snapshot_sections",
        "empty-index",
        &fuzz::sections_input(&refs),
    );
    // snapshot_file
    let file = fuzz::base_snapshot_file();
    put("snapshot_file", "raw-valid", &[&[0u8][..], &file].concat());
    put(
        "snapshot_file",
        "payload-valid",
        &[&[1u8][..], &file[80..file.len() - 32]].concat(),
    );
    put("snapshot_file", "edits", &[2, 40, 0, 1, 100, 0, 0x80]);
    put(
        "snapshot_file",
        "edits-resealed",
        &[6, 90, 0, 1, 200, 0, 0x10],
    );
    // manifest
    let m = fuzz::base_manifests()[0].clone();
    put("manifest", "base", &[&[0u8][..], &m].concat());
    put("manifest", "base-fixup", &[&[1u8][..], &m].concat());
    // jsonl
    put("jsonl_record", "full", br#"{"dataset":"d","shard":"p0","row":3,"subjects":["a@x.org"," B@X.org "],"source":"Forum.X.org","collected_at":"2024-01-01T00:00:00+02:00","basis":"consent","categories":["Text","audio"],"visibility":"public","jurisdiction":"EU","license":"cc-by","obtained_from":"dmp:acme","key":"k","content_hash":"0000000000000000000000000000000000000000000000000000000000000000","replace":true}"#);
    put("jsonl_record", "minimal", br#"{"dataset":"d","shard":"p0","row":0,"subjects":[],"source":"x","collected_at":"2024-01-01T00:00:00Z","basis":"contract"}"#);
    let events = [
        r#"{"type":"objection","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["ai-training"],"categories":["text"],"sources":["x.org"],"ref":"t-1"}"#,
        r#"{"type":"objection_withdrawn","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#,
        r#"{"type":"consent","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["ads","ai-training"],"method":"delegated","confirmed":true,"granted_by":"admin@x.org"}"#,
        r#"{"type":"consent_withdrawn","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":["*"]}"#,
        r#"{"type":"erasure","subject":"a@x.org","at":"2025-01-01T00:00:00Z"}"#,
        r#"{"type":"restriction","subject":"a@x.org","at":"2025-01-01T00:00:00Z","until":"2025-02-01T00:00:00Z"}"#,
        r#"{"type":"takedown","key":"k1","at":"2025-01-01T00:00:00Z","reason":"copyright"}"#,
        r#"{"type":"takedown","dataset":"d","shard":"p0","row":1,"at":"2025-01-01T00:00:00Z"}"#,
        r#"{"type":"source_optout","source":"x.org","at":"2025-01-01T00:00:00Z","purposes":["*"],"signal":"tdmrep"}"#,
    ];
    for (i, e) in events.iter().enumerate() {
        put("jsonl_event", &format!("e{i}"), e.as_bytes());
    }
    // policy
    put(
        "policy",
        "default",
        Policy::default_for(Purpose::new("ai-training").unwrap())
            .to_json()
            .as_bytes(),
    );
    put("policy", "full", br#"{"purpose":"ai-training","consent_required_for":["consent","legitimate_interest"],"require_double_opt_in":true,"accept_delegated_consent":true,"exclude_categories":["audio"],"require_visibility":"public","jurisdictions":["EU"]}"#);
    // ops: deterministic byte programs
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for s in 0..6 {
        let prog: Vec<u8> = (0..40 + 30 * s)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        put("ops", &format!("prog-{s}"), &prog);
    }
    // ops_arbitrary: random bytes (any bytes decode to ops), kept when
    // they register a run that used a subject's records, or reach a past
    // checkpoint comparison
    let mut kept = 0;
    for _ in 0..2000 {
        if kept == 8 {
            break;
        }
        let prog: Vec<u8> = (0..600 + 100 * kept)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let st = fuzz::run_ops(&fuzz::ops_of_arbitrary(&prog));
        if (kept % 2 == 0 && st.affected_nonempty > 0) || (kept % 2 == 1 && st.past > 1) {
            put("ops_arbitrary", &format!("prog-{kept}"), &prog);
            kept += 1;
        }
    }
    assert_eq!(kept, 8);
    put(
        "ops",
        "ingest-event-manifest-reopen",
        &[
            0, 0, 0, 1, 2, 1, 0, 5, 0, 1, 0, 0, 1, 2, 0, 3, 1, 2, 0, 1, 2, 0, 7, 3, 4, 0, 9, 5, 2,
            3, 5, 4,
        ],
    );
}
