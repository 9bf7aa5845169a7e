//! Golden fixtures: tiny ledger directories checked into
//! `tests/fixtures/ledger-v1/` (log format 1, snapshot format 1, no head
//! file: what builds before the durable head wrote) and
//! `tests/fixtures/ledger-v2/` (log format 2, snapshot format 2, `HEAD`),
//! both from the same appends. The tests open them and check seqs,
//! payloads, the head hash and the snapshot; the current code must write
//! exactly the v2 bytes, and must still open the v1 ledger (never trusting
//! its unauthenticated snapshot), give it a head file and leave its
//! segments as they are.
//!
//! Regenerate v2 (only after a deliberate, versioned format change):
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test storage_golden`

use std::path::{Path, PathBuf};

use optout::storage::{verify, FsIo, LedgerId, Log, LogOptions, Seq, StorageError};

const HEAD_SEQ: u64 = 9;
const HEAD_HASH: &str = "5c3e05015753e0e7e90ff02c345dee052fa245e383df19cfa088b66939582f24";

fn fixture_dir(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/ledger-v{v}"))
}

const KEY: [u8; 32] = [0x5a; 32];

fn opts() -> LogOptions {
    LogOptions::new()
        .snapshot_key(optout::storage::SnapshotKey::from_bytes(KEY))
        .segment_size(300)
        .ledger_id(LedgerId::from_bytes(*b"golden-ledger-v1"))
}

fn payload(seq: u64) -> Vec<u8> {
    format!("golden event {seq}").into_bytes()
}

/// Writes the fixture ledger into `root`: groups of 1, 3, 2, 3 frames, a
/// snapshot after seq 4, three segments.
fn generate(root: &Path) {
    let mut log = Log::open(FsIo::new(), root, opts()).unwrap();
    let mut seq = 1;
    for (i, n) in [1u64, 3, 2, 3].into_iter().enumerate() {
        let ps: Vec<Vec<u8>> = (seq..seq + n).map(payload).collect();
        let refs: Vec<&[u8]> = ps.iter().map(|p| p.as_slice()).collect();
        log.append_group(&refs).unwrap();
        seq += n;
        if i == 1 {
            let (s, c) = log.head();
            log.write_snapshot(s, c, b"golden snapshot at 4").unwrap();
        }
    }
}

/// Relative paths and bytes of the ledger's files (LOCK excluded).
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(b) = std::fs::read(root.join("HEAD")) {
        out.push(("HEAD".to_string(), b));
    }
    for sub in ["log", "snap"] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            out.push((
                format!("{sub}/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// Reads `dir` read-only and checks everything the fixtures hold.
fn check_reads(dir: &Path) -> Log {
    let log = Log::open(FsIo::new(), dir, opts().read_only(true)).unwrap();
    assert!(log.recovery().is_none());
    assert_eq!(log.head().0, Seq(HEAD_SEQ));
    assert_eq!(log.head().1.to_hex(), HEAD_HASH);
    assert_eq!(log.ledger_id().as_bytes(), b"golden-ledger-v1");
    for s in 1..=HEAD_SEQ {
        assert_eq!(log.read(Seq(s)).unwrap(), payload(s));
    }
    let mut n = 0;
    log.replay::<StorageError, _>(Seq(1), |s, p| {
        assert_eq!(p, payload(s.0));
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, HEAD_SEQ);
    log
}

#[test]
fn golden_v2_fixture_reads_and_is_reproduced_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("ledger");
    generate(&fresh);
    let dir = fixture_dir(2);
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, bytes) in files(&fresh) {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        eprintln!("regenerated {}", dir.display());
    }
    let before = files(&dir);
    let log = check_reads(&dir);
    let d = log
        .opened_head()
        .expect("a version 2 ledger has a head file");
    assert_eq!(
        (d.seq, d.chain.to_hex()),
        (Seq(HEAD_SEQ), HEAD_HASH.to_string())
    );
    let snap = log.latest_valid_snapshot().unwrap();
    assert!(snap.rejected.is_empty());
    let snap = snap.snapshot.unwrap();
    assert_eq!(
        (snap.seq, snap.payload, snap.authenticated),
        (Seq(4), b"golden snapshot at 4".to_vec(), true)
    );
    let key = optout::storage::SnapshotKey::from_bytes(KEY);
    let r = optout::storage::verify_keyed(&FsIo::new(), &dir, Some(&key)).unwrap();
    assert!(r.is_clean() && r.notes.is_empty(), "{r:?}");
    assert!(
        files(&dir).len() >= 5,
        "head, three segments and a snapshot"
    );
    assert_eq!(files(&dir), before, "a read-only open modifies nothing");
    assert_eq!(
        files(&fresh),
        before,
        "the current code writes the v2 bytes exactly"
    );
}

#[test]
fn golden_v1_fixture_still_opens_and_gets_a_head_file() {
    let dir = fixture_dir(1);
    let before = files(&dir);
    let log = check_reads(&dir);
    assert!(log.opened_head().is_none(), "written before the head file");
    // Its snapshot (format 1, sealed with a key anyone can derive) is
    // never trusted: opens replay the log instead.
    let snap = log.latest_valid_snapshot().unwrap();
    assert!(snap.snapshot.is_none());
    assert!(matches!(
        snap.rejected[0].error,
        StorageError::SnapshotUnauthenticated { .. }
    ));
    let r = verify(&FsIo::new(), &dir).unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(r.notes.len(), 2, "no head file; snapshot format 1: {r:?}");
    assert_eq!(files(&dir), before, "a read-only open modifies nothing");
    // A writer of this version gives it a head file, and nothing else changes.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("ledger");
    for (rel, bytes) in &before {
        let p = copy.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let w = Log::open(FsIo::new(), &copy, opts()).unwrap();
    assert!(w.head_created());
    drop(w);
    let log = check_reads(&copy);
    assert_eq!(log.opened_head().map(|d| d.seq), Some(Seq(HEAD_SEQ)));
    let mut after = files(&copy);
    assert_eq!(after.remove(0).0, "HEAD");
    assert_eq!(after, before, "segments and snapshot unchanged");
}

/// The chain recomputed from docs/FORMAT.md with blake3 alone (a test
/// oracle independent of the storage code).
#[test]
fn head_hash_matches_the_documented_chain() {
    let id = *b"golden-ledger-v1";
    let key = blake3::derive_key("optout 2026-11 event chain v1", &id);
    let mut chain = *blake3::keyed_hash(&key, &id).as_bytes();
    let commits = [1u64, 4, 6, 9];
    for seq in 1..=HEAD_SEQ {
        let p = payload(seq);
        let flags: u32 = u32::from(commits.contains(&seq));
        let mut h = blake3::Hasher::new_keyed(&key);
        h.update(&chain);
        h.update(&seq.to_le_bytes());
        h.update(&flags.to_le_bytes());
        h.update(&(p.len() as u32).to_le_bytes());
        h.update(&p);
        chain = *h.finalize().as_bytes();
    }
    assert_eq!(blake3::Hash::from(chain).to_hex().as_str(), HEAD_HASH);
}

/// The v2 fixture's head file and snapshot MAC recomputed from
/// docs/FORMAT.md with blake3 and crc32 alone.
#[test]
fn head_file_and_snapshot_mac_match_the_documented_layouts() {
    let dir = fixture_dir(2);
    let head = std::fs::read(dir.join("HEAD")).unwrap();
    assert_eq!(head.len(), 8192);
    let slot = |i: usize| &head[i * 4096..i * 4096 + 100];
    let le = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    // Generation g lives in slot g % 2; the valid slot with the higher one wins.
    let valid: Vec<&[u8]> = (0..2)
        .map(slot)
        .filter(|s| {
            &s[0..8] == b"OOUTHEAD"
                && crc32fast::hash(&s[..96]) == u32::from_le_bytes(s[96..100].try_into().unwrap())
        })
        .collect();
    let best = valid.iter().max_by_key(|s| le(&s[32..40])).unwrap();
    let generation = le(&best[32..40]);
    assert!(std::ptr::eq(*best, slot((generation % 2) as usize)));
    assert_eq!(&best[16..32], b"golden-ledger-v1");
    assert_eq!(le(&best[40..48]), HEAD_SEQ);
    assert_eq!(
        blake3::Hash::from(<[u8; 32]>::try_from(&best[48..80]).unwrap())
            .to_hex()
            .as_str(),
        HEAD_HASH
    );
    let last = std::fs::metadata(dir.join("log/00000000000000000004.seg"))
        .unwrap()
        .len();
    assert_eq!((le(&best[80..88]), le(&best[88..96])), (4, last));

    let snap = std::fs::read(dir.join("snap/00000000000000000004.snap")).unwrap();
    let n = snap.len() - 32;
    // Here the log was opened with the snapshot key [0x5a; 32] itself; a
    // ledger derives it from the subject key (FORMAT.md, "Snapshots").
    let mut h = blake3::Hasher::new_keyed(&KEY);
    h.update(&snap[..80]);
    h.update(blake3::hash(&snap[80..n]).as_bytes());
    assert_eq!(h.finalize().as_bytes(), &snap[n..]);
    assert_eq!(u32::from_le_bytes(snap[8..12].try_into().unwrap()), 2);
}
