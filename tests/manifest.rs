//! Manifests: encoding round trips, tamper detection, diff, check, keep masks.

mod common;

use optout::manifest::{check, Manifest, ManifestDiff};
use optout::{engine, Index, Query, Reason};

fn index_of(seed: u64, len: usize) -> (Vec<(optout::Seq, optout::Entry)>, Index) {
    let log = common::ledger(seed, len, 6);
    let mut index = Index::new();
    for (s, e) in &log {
        index.apply(*s, e).unwrap();
    }
    (log, index)
}

fn manifest(index: &Index, q: &Query) -> Manifest {
    let ex = engine::evaluate(index, q);
    Manifest::build(index, q, &ex, [7; 16], [9; 32])
}

/// A query with at least some exclusions.
fn busy_query(index: &Index, seed: u64, len: usize) -> Query {
    (0..200)
        .map(|k| {
            let mut q = common::query(seed + k, len);
            q.seq = index.seq();
            q
        })
        .find(|q| engine::evaluate(index, q).excluded() >= 3)
        .expect("some random query excludes something")
}

#[test]
fn roundtrip_is_exact_and_deterministic() {
    for seed in 0..30 {
        let (_, index) = index_of(seed, 80);
        let q = common::query(seed, 80);
        let m = manifest(&index, &q);
        let bytes = m.to_bytes();
        let back = Manifest::from_bytes(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), bytes, "same manifest, same bytes");
        assert_eq!(
            manifest(&index, &q).to_bytes(),
            bytes,
            "recomputing gives the same bytes"
        );
    }
}

#[test]
fn every_bit_flip_and_truncation_is_rejected() {
    let (_, index) = index_of(3, 60);
    let q = busy_query(&index, 3, 60);
    let bytes = manifest(&index, &q).to_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let err = Manifest::from_bytes(&b).expect_err("a flipped bit must be detected");
            assert!(err.offset as usize <= bytes.len());
        }
    }
    for n in 0..bytes.len() {
        assert!(
            Manifest::from_bytes(&bytes[..n]).is_err(),
            "truncation to {n} bytes accepted"
        );
    }
}

#[test]
fn check_finds_exactly_the_excluded_records() {
    let (_, index) = index_of(5, 120);
    let q = busy_query(&index, 5, 120);
    let m = manifest(&index, &q);
    // "Used": every registered row 0..12 of every shard, plus an unknown shard.
    let mut used = Vec::new();
    for s in &m.shards {
        for row in 0..14 {
            used.push((s.dataset.as_str(), s.shard.as_str(), row));
        }
    }
    used.push(("nope", "nope", 1));
    used.push(("nope", "nope", 2));
    let report = check(&m, used.iter().copied());
    let hits = &report.hits;
    let want: usize = m
        .shards
        .iter()
        .map(|s| s.excluded.iter().filter(|&r| r < 14).count())
        .sum();
    assert_eq!(hits.len(), want);
    assert!(want > 0);
    for h in hits {
        assert!(m.is_excluded(&h.dataset, &h.shard, h.row));
        assert!(!h.reasons.is_empty());
        assert_eq!(used[h.index], (h.dataset.as_str(), h.shard.as_str(), h.row));
    }
    // The shard the manifest does not cover fails closed: reported once,
    // at its first use, every row of it counted, and the check has found
    // something even if nothing is excluded (issue 18).
    assert_eq!(report.unknown_rows, 2);
    assert_eq!(report.unknown_shards.len(), 1);
    let u = &report.unknown_shards[0];
    assert_eq!(
        (u.index, u.dataset.as_str(), u.shard.as_str()),
        (used.len() - 2, "nope", "nope")
    );
    let unknown_only = check(&m, [("nope", "nope", 1)]);
    assert!(unknown_only.hits.is_empty());
    assert!(unknown_only.found(false));
    assert!(!unknown_only.found(true));
    assert!(!check(&m, []).found(false));
}

#[test]
fn keep_mask_agrees_with_contains() {
    let (_, index) = index_of(11, 120);
    let q = busy_query(&index, 11, 120);
    let m = manifest(&index, &q);
    for s in &m.shards {
        // Rows up to the shard's end (past it keep_mask refuses; see
        // tests/manifest_row_end.rs).
        let end = s.end() as u32;
        let sorted: Vec<u32> = (0..end).flat_map(|r| [r, r]).collect();
        let unsorted: Vec<u32> = (0..end).rev().collect();
        for rows in [sorted, unsorted] {
            let mask = s.keep_mask(&rows).unwrap();
            for (k, r) in mask.iter().zip(&rows) {
                assert_eq!(*k, !s.excluded.contains(*r));
            }
        }
    }
}

#[test]
fn diff_matches_set_arithmetic() {
    let (log, index) = index_of(21, 150);
    let mut q = busy_query(&index, 21, 150);
    q.seq = optout::Seq(log.len() as u64 / 2);
    let old = manifest(&index, &q);
    q.seq = index.seq();
    let new = manifest(&index, &q);
    let d = ManifestDiff::between(&old, &new);
    let mut added = 0;
    let mut removed = 0;
    for s in &new.shards {
        let o = old
            .shard(&s.dataset, &s.shard)
            .map(|x| x.excluded.clone())
            .unwrap_or_default();
        added += (&s.excluded - &o).len();
    }
    for s in &old.shards {
        let n = new
            .shard(&s.dataset, &s.shard)
            .map(|x| x.excluded.clone())
            .unwrap_or_default();
        removed += (&s.excluded - &n).len();
    }
    assert_eq!(d.newly_excluded(), added);
    assert_eq!(d.re_included(), removed);
    assert!(ManifestDiff::between(&new, &new).shards.is_empty());
    let per = d.per_reason();
    assert_eq!(per.len(), Reason::COUNT);
}

#[test]
fn snapshot_roundtrip_preserves_every_answer() {
    for seed in 0..20 {
        let (_, mut index) = index_of(seed, 100);
        let bytes = index.to_snapshot_bytes().unwrap();
        let back = Index::from_snapshot_bytes(&bytes).unwrap();
        for k in 0..5 {
            let q = common::query(seed * 31 + k, 100);
            assert_eq!(
                manifest(&index, &q).to_bytes(),
                manifest(&back, &q).to_bytes(),
                "seed {seed} query {k}"
            );
        }
        // Truncated snapshots are refused, not misread.
        for cut in [0, 7, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(Index::from_snapshot_bytes(&bytes[..cut]).is_err());
        }
    }
}

#[test]
fn inconsistent_header_fields_are_rejected() {
    let (_, index) = index_of(2, 40);
    let q = common::query(2, 40);
    let m = manifest(&index, &q);
    let mut bad = m.clone();
    bad.header.policy.require_double_opt_in = !bad.header.policy.require_double_opt_in;
    let err = Manifest::from_bytes(&bad.to_bytes()).unwrap_err();
    assert!(err.what.contains("disagree"), "{err}");
    let mut bad = m.clone();
    bad.header.at_ns += 1;
    assert!(Manifest::from_bytes(&bad.to_bytes()).is_err());
}

proptest::proptest! {
    /// keep_mask (dense merge, sparse jumps, unsorted probes) equals contains.
    #[test]
    fn keep_mask_equals_contains(
        excluded in proptest::collection::btree_set(0u32..5_000, 0..400),
        mut rows in proptest::collection::vec(0u32..6_000, 0..2_000),
        sort in proptest::bool::ANY,
    ) {
        if sort {
            rows.sort_unstable();
        }
        let s = optout::manifest::ManifestShard {
            dataset: "d".into(),
            shard: "s".into(),
            registered: 0,
            row_end: Some(6_000),
            excluded: excluded.iter().copied().collect(),
            reasons: Default::default(),
        };
        let mask = s.keep_mask(&rows).unwrap();
        for (k, r) in mask.iter().zip(&rows) {
            proptest::prop_assert_eq!(*k, !excluded.contains(r));
        }
    }
}

/// A version 1 manifest (8 reasons, written before `signal_unparsable`
/// existed) still loads, with reason 8 empty, and re-encodes to exactly its
/// own bytes, so its digest (pinned by training runs) is unchanged.
#[test]
fn version_1_manifests_still_load_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifest-v1");
    let bytes = std::fs::read(dir.join("demo.optm")).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1);
    let m = Manifest::from_bytes(&bytes).unwrap();
    assert_eq!(m.version, 1);
    assert_eq!(m.to_bytes(), bytes);
    assert_eq!(m.header.counts.len(), 8);
    assert!(m
        .shards
        .iter()
        .all(|s| s.reasons[Reason::SignalUnparsable as usize].is_empty()));
    // The totals the old build printed for it (`optout show --format json`).
    let shown: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.show.json")).unwrap())
            .unwrap();
    assert_eq!(shown["digest"].as_str(), Some(m.digest_hex().as_str()));
    assert_eq!(
        shown["header"]["excluded"].as_u64(),
        Some(m.header.excluded)
    );
    assert!(m.header.excluded > 0);
}

/// The header is typed (purpose, ids, N, T) and gives back the query it
/// answers; the digest is the file's last 32 bytes, kept once known, and an
/// edited clone (or a resealed manifest) gets its own.
#[test]
fn typed_header_and_digest_kept_once() {
    let (_, index) = index_of(11, 300);
    let q = busy_query(&index, 11, 300);
    let m = manifest(&index, &q);
    let h = &m.header;
    assert_eq!(h.purpose, *q.purpose());
    assert_eq!((h.seq, h.at), (q.seq, q.at));
    assert_eq!(h.ledger_id, optout::LedgerId::from_bytes([7; 16]));
    assert_eq!(h.ledger_id.to_string(), "07".repeat(16));
    assert_eq!(h.chain_head.to_hex(), "09".repeat(32));
    let mut want = q.clone();
    want.policy.normalise();
    want.datasets.sort();
    assert_eq!(h.query(), want);
    // In the file: ids as hex text, T as RFC 3339 and in nanoseconds.
    let json: serde_json::Value = serde_json::to_value(h).unwrap();
    assert_eq!(json["ledger_id"], "07".repeat(16));
    assert_eq!(json["seq"], q.seq.0);
    assert_eq!(json["at"], q.at.to_rfc3339());
    assert_eq!(json["purpose"], q.purpose().as_str());
    let bytes = m.to_bytes();
    assert_eq!(m.digest()[..], bytes[bytes.len() - 32..]);
    let back = Manifest::from_bytes(&bytes).unwrap();
    assert_eq!(back.digest(), m.digest());
    let mut edited = m.clone();
    edited.header.excluded += 1;
    assert_ne!(edited.digest(), m.digest(), "a clone keeps no digest");
    let mut again = back;
    let _ = again.digest();
    again.header.tool.push('!');
    again.reseal();
    let b2 = again.to_bytes();
    assert_eq!(again.digest()[..], b2[b2.len() - 32..]);
    assert_ne!(again.digest(), m.digest());
}
