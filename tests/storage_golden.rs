//! Golden v1 fixture: a tiny ledger directory checked into
//! `tests/fixtures/ledger-v1/`, written by this code. The test opens it
//! read-only and checks seqs, payloads, the head hash and the snapshot, and
//! checks that the current code still writes exactly these bytes.
//!
//! Regenerate (only after a deliberate, versioned format change):
//! `OPTOUT_REGEN_FIXTURES=1 cargo test --test storage_golden`

use std::path::{Path, PathBuf};

use optout::storage::{verify, FsIo, LedgerId, Log, LogOptions, Seq, StorageError};

const HEAD_SEQ: u64 = 9;
const HEAD_HASH: &str = "5c3e05015753e0e7e90ff02c345dee052fa245e383df19cfa088b66939582f24";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-v1")
}

fn opts() -> LogOptions {
    LogOptions::new()
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

#[test]
fn golden_v1_fixture_reads_and_is_reproduced_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("ledger");
    generate(&fresh);
    let dir = fixture_dir();
    if std::env::var_os("OPTOUT_REGEN_FIXTURES").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, bytes) in files(&fresh) {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let log = Log::open(FsIo::new(), &dir, opts().read_only(true)).unwrap();
        eprintln!(
            "regenerated {}: head {} {}",
            dir.display(),
            log.head().0,
            log.head().1
        );
    }

    let before = files(&dir);
    let log = Log::open(FsIo::new(), &dir, opts().read_only(true)).unwrap();
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
    let snap = log.latest_valid_snapshot().unwrap();
    assert!(snap.rejected.is_empty());
    let snap = snap.snapshot.unwrap();
    assert_eq!(
        (snap.seq, snap.payload),
        (Seq(4), b"golden snapshot at 4".to_vec())
    );
    assert!(verify(&FsIo::new(), &dir).unwrap().is_clean());
    assert!(files(&dir).len() >= 4, "three segments and a snapshot");
    assert_eq!(files(&dir), before, "a read-only open modifies nothing");
    assert_eq!(
        files(&fresh),
        before,
        "the current code writes the v1 bytes exactly"
    );
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
