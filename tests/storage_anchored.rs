//! Anchored open (issue 19): an open that trusts an authenticated format 3
//! snapshot reads only the segment headers before the segment holding the
//! snapshot's seq, and verifies every frame from there on. Damage in that
//! prefix is not seen by the open but is by `verify` (which reads
//! everything), and reads there still check their frames; damage after it
//! is seen by the open as before; a deleted or cut earlier segment is
//! refused or falls back to the full scan; a snapshot resealed with the
//! right key but a wrong pin is never trusted.

mod common;
use common::segments;

use std::path::Path;

use optout::storage::{
    verify, verify_keyed, FindingKind, Io, LedgerId, Log, LogOptions, MemIo, Seq, SnapshotKey,
    StorageError,
};

const ROOT: &str = "/ledger";
const KEY: SnapshotKey = SnapshotKey::from_bytes([0x5a; 32]);

fn opts() -> LogOptions {
    LogOptions::new()
        .snapshot_key(KEY)
        .segment_size(700)
        .ledger_id(LedgerId::from_bytes([3; 16]))
}

fn ro() -> LogOptions {
    opts().read_only(true)
}

fn payload(seq: u64) -> Vec<u8> {
    format!("event {seq} of the fixture").into_bytes()
}

/// 6+ segments of one-frame groups, a format 3 snapshot at seq `at`.
fn fixture(at: u64) -> MemIo {
    let io = MemIo::new();
    let mut log = Log::open(io.clone(), ROOT, opts()).unwrap();
    for seq in 1..=60u64 {
        log.append_group(&[&payload(seq)]).unwrap();
        if seq == at {
            let (s, c) = log.head();
            log.write_snapshot_sections(s, c, &[b"index section"])
                .unwrap();
        }
    }
    drop(log);
    io.fork()
}

fn read_all(io: &MemIo, p: &Path) -> Vec<u8> {
    let mut b = vec![0u8; io.file_len(p).unwrap() as usize];
    io.read_at(p, 0, &mut b).unwrap();
    b
}

fn flip(io: &MemIo, p: &Path, at: u64) {
    let mut b = [0u8; 1];
    io.read_at(p, at, &mut b).unwrap();
    b[0] ^= 0x10;
    io.write_at(p, at, &b).unwrap();
}

/// The first seq of segment `p` (header bytes 40..48).
fn first_seq(io: &MemIo, p: &Path) -> u64 {
    u64::from_le_bytes(read_all(io, p)[40..48].try_into().unwrap())
}

fn corrupt_findings(io: &MemIo) -> Vec<optout::storage::Finding> {
    let r = verify(io, ROOT).unwrap();
    r.findings
        .into_iter()
        .filter(|f| f.kind == FindingKind::Corrupt)
        .collect()
}

#[test]
fn a_flip_before_the_snapshot_is_not_seen_by_open_but_is_by_verify() {
    let io = fixture(50);
    let segs = segments(&io, ROOT);
    assert!(segs.len() >= 6, "{} segments", segs.len());
    assert!(first_seq(&io, &segs[1]) <= 50);
    // A payload byte of the first frame of segment 1 (seq 1).
    flip(&io, &segs[0], 84 + 24 + 2);

    for o in [ro(), opts()] {
        let log = Log::open(io.clone(), ROOT, o).unwrap();
        assert_eq!(log.head().0, Seq(60));
        let s = log.latest_valid_snapshot().unwrap().snapshot.unwrap();
        assert_eq!(s.seq, Seq(50), "the snapshot still answers");
        assert_eq!(s.sections.unwrap().get(0), b"index section");
        // Frames after the damage read as written; the damaged one is refused.
        assert_eq!(log.read(Seq(2)).unwrap(), payload(2));
        assert_eq!(log.read(Seq(55)).unwrap(), payload(55));
        assert!(matches!(
            log.read(Seq(1)),
            Err(StorageError::Corrupt { .. })
        ));
        drop(log);
    }
    // Without the snapshot key nothing is trusted: the full scan sees it.
    let full = Log::open(io.clone(), ROOT, LogOptions::new().read_only(true));
    assert!(
        matches!(full, Err(StorageError::Corrupt { .. })),
        "{full:?}"
    );
    let f = corrupt_findings(&io);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].file.clone(), f[0].offset), (segs[0].clone(), 84));
    // With the key too (`optout verify --key-file`): still every frame.
    let keyed = verify_keyed(&io, ROOT, Some(&KEY)).unwrap();
    assert!(
        keyed
            .findings
            .iter()
            .any(|x| x.kind == FindingKind::Corrupt && x.file == segs[0] && x.offset == 84),
        "{keyed:?}"
    );
}

#[test]
fn a_flip_after_the_snapshot_is_seen_by_open() {
    let io = fixture(20);
    let segs = segments(&io, ROOT);
    let last = segs.last().unwrap();
    assert!(first_seq(&io, last) > 20);
    flip(&io, last, 84 + 24 + 1);
    for o in [ro(), opts()] {
        let r = Log::open(io.clone(), ROOT, o);
        assert!(matches!(r, Err(StorageError::Corrupt { .. })), "{r:?}");
    }
}

#[test]
fn a_flip_in_the_snapshot_segment_before_its_seq_is_seen_by_open() {
    let io = fixture(52);
    let segs = segments(&io, ROOT);
    let i = segs.iter().rposition(|p| first_seq(&io, p) <= 52).unwrap();
    assert!(
        first_seq(&io, &segs[i]) < 52,
        "the snapshot's seq is mid-segment"
    );
    flip(&io, &segs[i], 84 + 24 + 1);
    let r = Log::open(io.clone(), ROOT, ro());
    assert!(matches!(r, Err(StorageError::Corrupt { .. })), "{r:?}");
}

#[test]
fn a_deleted_first_segment_is_refused() {
    let io = fixture(50);
    let segs = segments(&io, ROOT);
    io.remove_file(&segs[0]).unwrap();
    let r = Log::open(io.clone(), ROOT, ro());
    match r {
        Err(StorageError::Corrupt { what, .. }) => {
            assert!(what.contains("segment 1 is missing"), "{what}")
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn a_cut_earlier_segment_is_refused() {
    for cut in [1u64, 36, 60] {
        let io = fixture(50);
        let segs = segments(&io, ROOT);
        let len = io.file_len(&segs[1]).unwrap();
        io.truncate(&segs[1], len - cut).unwrap();
        let r = Log::open(io.clone(), ROOT, ro());
        assert!(
            matches!(r, Err(StorageError::Corrupt { .. })),
            "cut {cut}: {r:?}"
        );
    }
}

/// Re-seals the format 3 snapshot at `path` (one section of one chunk)
/// with the right key but the chain value `chain` in its header.
fn reseal(io: &MemIo, path: &Path, chain: &[u8; 32]) {
    let mut b = read_all(io, path);
    b[40..72].copy_from_slice(chain);
    let meta_end = 80 + 8 + 32;
    let mac = blake3::keyed_hash(&[0x5a; 32], &b[..meta_end]);
    b[meta_end..meta_end + 32].copy_from_slice(mac.as_bytes());
    io.write_at(path, 0, &b).unwrap();
}

#[test]
fn a_resealed_snapshot_with_a_wrong_pin_is_never_trusted() {
    let io = fixture(50);
    let (snap, wrong) = {
        let log = Log::open(io.clone(), ROOT, ro()).unwrap();
        let s = log.latest_valid_snapshot().unwrap().snapshot.unwrap();
        (s.path, log.chain_at(Seq(49)).unwrap())
    };
    reseal(&io, &snap, wrong.as_bytes());
    // Authenticated, but not the log's state at 50: the open verifies the
    // whole log instead, and the snapshot is rejected, not loaded.
    let log = Log::open(io.clone(), ROOT, ro()).unwrap();
    assert_eq!(log.head().0, Seq(60));
    let load = log.latest_valid_snapshot().unwrap();
    assert!(load.snapshot.is_none());
    assert!(
        matches!(
            load.rejected[0].error,
            StorageError::SnapshotMismatch { .. }
        ),
        "{:?}",
        load.rejected[0].error
    );
    drop(log);
    // With a damaged frame before seq 50 that the anchor would have hidden,
    // the full scan it falls back to sees it.
    flip(&io, &segments(&io, ROOT)[0], 84 + 24 + 2);
    let r = Log::open(io.clone(), ROOT, ro());
    assert!(matches!(r, Err(StorageError::Corrupt { .. })), "{r:?}");
}

#[test]
fn the_resealing_in_these_tests_is_what_the_format_authenticates() {
    // Control for `reseal`: with the snapshot's own chain value the file
    // still authenticates and is loaded (so a rejection above is the pin's).
    let io = fixture(50);
    let log = Log::open(io.clone(), ROOT, ro()).unwrap();
    let s = log.latest_valid_snapshot().unwrap().snapshot.unwrap();
    drop(log);
    reseal(&io, &s.path, s.chain_head.as_bytes());
    let log = Log::open(io.clone(), ROOT, ro()).unwrap();
    assert_eq!(
        log.latest_valid_snapshot().unwrap().snapshot.unwrap().seq,
        Seq(50)
    );
}
