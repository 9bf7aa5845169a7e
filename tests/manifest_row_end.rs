//! Rows past a shard's end (issue 21 part 5): a manifest of format 3
//! records, per shard, one past the largest row the ledger knew at its seq,
//! and `keep_mask` and `check` refuse a row at or past it (the manifest says
//! nothing about a row the ledger never registered). Version 2 manifests,
//! which carry no row end, still load and re-encode to their own bytes and
//! fall back to a lower bound. On main, `keep_mask` kept row 9,999 of a
//! shard of 3 rows and `check` reported nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optout::manifest::{check, Manifest};
use optout::{engine, Entry, Index, Ledger, Timestamp};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The sparse fixture ledger (`forum/part-0.parquet` rows 0, 1, 5 and
/// `forum/part-1.parquet` row 2; alice, at rows 0 and 5, objected), copied.
fn sparse_ledger(dir: &Path) -> Ledger {
    let l = dir.join("s.ledger");
    common::copy_dir(&fixture("manifest-v2/ledger"), &l);
    Ledger::open_read_only(&l, None).unwrap()
}

fn sparse_manifest(l: &Ledger) -> Manifest {
    let at = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
    let q = l.query(None, "ai-training", at).unwrap();
    l.manifest(&q).unwrap()
}

#[test]
fn the_row_end_is_one_past_the_largest_row_not_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let l = sparse_ledger(dir.path());
    let m = sparse_manifest(&l);
    assert_eq!(m.version, 3);
    let s = m.shard("forum", "part-0.parquet").unwrap();
    assert_eq!((s.registered, s.row_end), (3, Some(6)));
    let s1 = m.shard("forum", "part-1.parquet").unwrap();
    assert_eq!((s1.registered, s1.row_end), (1, Some(3)));
    // Rows 2..4 were never registered but lie below the end: kept (the
    // manifest covers the shard up to its end); row 5 is alice's.
    assert_eq!(
        s.keep_mask(&[0, 1, 2, 4, 5]).unwrap(),
        vec![false, true, true, true, false]
    );
}

#[test]
fn keep_mask_refuses_a_row_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let m = sparse_manifest(&sparse_ledger(dir.path()));
    let s = m.shard("forum", "part-0.parquet").unwrap();
    for rows in [vec![1, 9_999], vec![9_999, 1], vec![6]] {
        let e = s.keep_mask(&rows).unwrap_err();
        assert_eq!((e.row_end, e.exact), (6, true));
        assert_eq!(u64::from(rows[e.index]), e.row);
        let mut out = vec![true; rows.len()];
        assert!(s.keep_mask_into(&rows, &mut out).is_err());
    }
    let e = s.keep_mask(&[0, 9_999]).unwrap_err();
    assert!(
        e.to_string()
            .contains("row 9999 of shard forum/part-0.parquet"),
        "{e}"
    );
    assert!(e.to_string().contains("no row at or past 6"), "{e}");
}

#[test]
fn check_reports_rows_past_the_end_as_uncovered() {
    let dir = tempfile::tempdir().unwrap();
    let m = sparse_manifest(&sparse_ledger(dir.path()));
    let used = [
        ("forum", "part-0.parquet", 1),
        ("forum", "part-1.parquet", 9_999),
        ("forum", "part-0.parquet", 5),
        ("forum", "part-1.parquet", 2),
    ];
    let r = check(&m, used.iter().copied());
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].row, 5);
    assert_eq!(r.past_end.len(), 1);
    let p = &r.past_end[0];
    assert_eq!((p.index, p.row, p.row_end), (1, 9_999, 3));
    assert!(r.found(false), "a row past the end is a finding");
    let only_past = check(&m, [("forum", "part-1.parquet", 3)]);
    assert!(only_past.hits.is_empty());
    assert!(only_past.found(false));
    assert!(!only_past.found(true), "allowed like an unknown shard");
}

/// The row end equals one past the largest row registered at the
/// manifest's seq, computed here from the log entries alone, for random
/// ledgers (sparse rows, re-registrations) and random seqs.
#[test]
fn row_ends_match_the_log() {
    for seed in 0..40 {
        let log = common::ledger(seed, 60, 6);
        let mut index = Index::new();
        for (s, e) in &log {
            index.apply(*s, e).unwrap();
        }
        let mut q = common::query(seed, 60);
        q.seq = optout::Seq(q.seq.0.min(index.seq().0));
        let ex = engine::evaluate(&index, &q);
        let m = Manifest::build(&index, &q, &ex, [7; 16], [9; 32]);
        let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (s, e) in &log {
            if let (true, Entry::Records(b)) = (*s <= q.seq, e) {
                for sh in &b.shards {
                    let e = want
                        .entry((sh.dataset.clone(), sh.shard.clone()))
                        .or_default();
                    for r in &sh.rows {
                        *e = (*e).max(u64::from(r.row) + 1);
                    }
                }
            }
        }
        for s in &m.shards {
            let w = want[&(s.dataset.clone(), s.shard.clone())];
            assert_eq!(s.row_end, Some(w), "seed {seed}: {}/{}", s.dataset, s.shard);
            assert!(s.excluded.max().is_none_or(|x| u64::from(x) < w));
        }
        let back = Manifest::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
    }
}

/// A version 2 manifest (written by the build before format 3, from the
/// fixture ledger) loads, re-encodes to its own bytes and digest, still
/// verifies against its ledger, and bounds rows by what it knows: the
/// registered count or one past the largest excluded row.
#[test]
fn version_2_manifests_load_and_fall_back_to_a_lower_bound() {
    let dir = fixture("manifest-v2");
    let bytes = std::fs::read(dir.join("sparse.optm")).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    let m = Manifest::from_bytes(&bytes).unwrap();
    assert_eq!(m.version, 2);
    assert_eq!(m.to_bytes(), bytes);
    let shown: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sparse.show.json")).unwrap())
            .unwrap();
    assert_eq!(shown["digest"].as_str(), Some(m.digest_hex().as_str()));
    let s = m.shard("forum", "part-0.parquet").unwrap();
    // 3 registered, largest excluded row 5: the bound is 6 here ...
    assert_eq!((s.row_end, s.end()), (None, 6));
    assert!(s.keep_mask(&[5]).is_ok());
    // ... and 1 for part-1 (one row registered, at row 2, nothing
    // excluded): its row 2 is refused, failing closed.
    let s1 = m.shard("forum", "part-1.parquet").unwrap();
    assert_eq!(s1.end(), 1);
    let e = s1.keep_mask(&[2]).unwrap_err();
    assert!(!e.exact);
    assert!(e.to_string().contains("version 1 or 2 manifest"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let l = sparse_ledger(tmp.path());
    l.verify_manifest(&m).unwrap();
}

/// The format 3 golden file: what this build computes from the fixture
/// ledger, byte for byte (a change to the encoding fails here).
#[test]
fn version_3_golden_fixture() {
    let bytes = std::fs::read(fixture("manifest-v3/sparse.optm")).unwrap();
    let m = Manifest::from_bytes(&bytes).unwrap();
    assert_eq!(m.version, 3);
    assert_eq!(m.to_bytes(), bytes);
    let tmp = tempfile::tempdir().unwrap();
    let l = sparse_ledger(tmp.path());
    assert_eq!(sparse_manifest(&l).to_bytes(), bytes);
    l.verify_manifest(&m).unwrap();
    // The v2 file of the same ledger differs only by the row ends.
    let v2 =
        Manifest::from_bytes(&std::fs::read(fixture("manifest-v2/sparse.optm")).unwrap()).unwrap();
    assert_eq!(v2.header.seq, m.header.seq);
    assert_eq!(v2.header.excluded, m.header.excluded);
}

/// `optout check`: a used row past its shard's end is a finding (exit 1)
/// naming the line, unless `--allow-uncovered` (exit 0); both in the JSON.
#[cfg(feature = "cli")]
#[test]
fn cli_check_refuses_a_row_past_the_end() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let used = dir.path().join("used.jsonl");
    std::fs::write(
        &used,
        "{\"dataset\":\"forum\",\"shard\":\"part-0.parquet\",\"row\":1}\n\
         {\"dataset\":\"forum\",\"shard\":\"part-1.parquet\",\"row\":9999}\n",
    )
    .unwrap();
    let m = fixture("manifest-v3/sparse.optm");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_optout"))
            .arg("check")
            .arg(&m)
            .arg(&used)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("used.jsonl:2: row 9999 of shard forum/part-1.parquet is past"),
        "{out}"
    );
    let o = run(&["--allow-uncovered", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows_past_end"][0]["line"], 2);
    assert_eq!(v["rows_past_end"][0]["row_end"], 3);
    let o = run(&["--allow-unknown-shards"]);
    assert_eq!(o.status.code(), Some(0), "the old flag name still works");
}
