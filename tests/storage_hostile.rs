//! Hostile input: arbitrary bytes in segment and snapshot files never make
//! open, verify or the snapshot reader panic, and allocations stay bounded by
//! the input (the length fields are checked before anything is allocated).

use std::path::Path;

use optout::storage::{verify, Io, LedgerId, Log, LogOptions, MemIo};
use proptest::prelude::*;

const ROOT: &str = "/ledger";

fn base() -> MemIo {
    let io = MemIo::new();
    let mut log = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new()
            .snapshot_key(optout::storage::SnapshotKey::from_bytes([0x5a; 32]))
            .segment_size(300)
            .ledger_id(LedgerId::from_bytes([3; 16])),
    )
    .unwrap();
    for i in 0..12u8 {
        log.append_group(&[&[i; 20], &[i; 5]]).unwrap();
    }
    let (s, c) = log.head();
    log.write_snapshot(s, c, b"state").unwrap();
    drop(log);
    io.fork()
}

fn exercise(io: &MemIo) {
    let _ = verify(io, ROOT);
    if let Ok(log) = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new()
            .snapshot_key(optout::storage::SnapshotKey::from_bytes([0x5a; 32]))
            .read_only(true),
    ) {
        let _ = log.latest_valid_snapshot();
        let _ =
            log.replay::<optout::storage::StorageError, _>(optout::storage::Seq(1), |_, _| Ok(()));
    }
    if let Ok(mut log) = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new().snapshot_key(optout::storage::SnapshotKey::from_bytes([0x5a; 32])),
    ) {
        let _ = log.append_group(&[b"more"]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_edits_of_a_segment_never_panic(
        seg in 0usize..4,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let io = base();
        let dir = Path::new(ROOT).join("log");
        let mut names = io.list_dir(&dir).unwrap();
        names.sort();
        let p = dir.join(&names[seg % names.len()]);
        let mut b = io.read_all(&p).unwrap();
        for (i, v) in edits {
            let i = i.index(b.len());
            b[i] = v;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len() + 1));
        }
        io.create_file(&p).unwrap();
        io.write_at(&p, 0, &b).unwrap();
        exercise(&io);
    }

    #[test]
    fn arbitrary_segment_and_snapshot_files_never_panic(
        seg in proptest::collection::vec(any::<u8>(), 0..400),
        snap in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let io = base();
        let p = Path::new(ROOT).join("log/00000000000000000001.seg");
        io.create_file(&p).unwrap();
        io.write_at(&p, 0, &seg).unwrap();
        let s = Path::new(ROOT).join("snap/00000000000000000001.snap");
        io.create_file(&s).unwrap();
        io.write_at(&s, 0, &snap).unwrap();
        exercise(&io);
    }
}

#[test]
fn huge_length_fields_do_not_allocate() {
    // A frame header claiming a 64 MiB payload at the end of a tiny file, and
    // a snapshot claiming a huge payload: both are rejected from the file
    // length alone.
    let io = base();
    let dir = Path::new(ROOT).join("log");
    let mut names = io.list_dir(&dir).unwrap();
    names.sort();
    let last = dir.join(names.last().unwrap());
    let len = io.file_len(&last).unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(b"OOFR");
    h.extend_from_slice(&(64u32 << 20).to_le_bytes());
    h.extend_from_slice(&99u64.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    io.write_at(&last, len, &h).unwrap();
    let log = Log::open(
        io.clone(),
        ROOT,
        LogOptions::new()
            .snapshot_key(optout::storage::SnapshotKey::from_bytes([0x5a; 32]))
            .read_only(true),
    )
    .unwrap();
    assert!(
        log.recovery().is_some(),
        "an incomplete frame at the end is a torn tail"
    );
    let snap = Path::new(ROOT).join("snap");
    let name = io.list_dir(&snap).unwrap()[0].clone();
    io.write_at(&snap.join(name), 72, &u64::MAX.to_le_bytes())
        .unwrap();
    assert!(log.latest_valid_snapshot().unwrap().snapshot.is_none());
}
