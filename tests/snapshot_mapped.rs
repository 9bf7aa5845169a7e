//! Snapshot format 3 (issue 19): the index in sections, memory-mapped and
//! used in place. A ledger snapshot is written in format 3, mapped on open,
//! and answers exactly as the replay of its log; a truncated, bit-flipped
//! or otherwise damaged one is never trusted (the log is replayed), and a
//! well-sealed one whose sections are malformed is refused, never a panic
//! or an out-of-bounds read.

use std::path::{Path, PathBuf};

use optout::storage::{FsIo, Log, LogOptions, Sections, StorageError, SECTION_ALIGN};
use optout::workload::{self, Layout, Spec};
use optout::{Index, Ledger, SubjectKeyer};

const SECRET: [u8; 32] = [0x17; 32];

fn spec() -> Spec {
    Spec {
        objecting_per_10k: 500,
        layout: Layout::Mixed,
        ..Spec::ws().scaled(1000)
    }
}

/// A snapshotted ledger of the workload in `dir/ledger`, and its snapshot file.
fn ledger(dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("ledger");
    let keyer = SubjectKeyer::from_secret(SECRET);
    let mut l = Ledger::create(&path, keyer).unwrap();
    let spec = spec();
    for s in 0..spec.shards {
        l.ingest(workload::shard_batch(&spec, s)).unwrap();
    }
    l.apply(workload::events(&spec)).unwrap();
    let snap = l.snapshot().unwrap();
    (path, snap)
}

/// The manifest digest of the workload's query, and the open's notes.
fn answer(path: &Path) -> (String, Vec<String>) {
    let l = Ledger::open_read_only(path, Some(SubjectKeyer::from_secret(SECRET))).unwrap();
    let q = workload::query(spec().layout, l.index());
    (l.manifest(&q).unwrap().digest_hex(), l.notes().to_vec())
}

fn log_opts() -> LogOptions {
    LogOptions::new()
        .create(false)
        .read_only(true)
        .snapshot_key(SubjectKeyer::from_secret(SECRET).snapshot_key())
}

#[test]
fn a_ledger_snapshot_is_format_3_mapped_in_place_and_answers_as_the_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, snap) = ledger(tmp.path());
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(&bytes[..8], b"OOUTSNP\0");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 3);

    let log = Log::open(FsIo::new(), &path, log_opts()).unwrap();
    let s = log.latest_valid_snapshot().unwrap().snapshot.unwrap();
    assert!(s.authenticated && s.payload.is_empty());
    let sections = s.sections.clone().unwrap();
    assert!(sections.is_mapped(), "read through a memory map");
    assert_eq!(sections.len(), 5);
    for i in 0..sections.len() {
        let p = sections.get(i).as_ptr() as usize;
        assert_eq!(p % SECTION_ALIGN, 0, "section {i} is aligned in memory");
    }
    // The mapped index is the replayed one, byte for byte.
    let mapped = Index::from_snapshot(s)
        .unwrap()
        .to_snapshot_bytes()
        .unwrap();
    drop(log);
    let (with_snapshot, notes) = answer(&path);
    assert!(notes.iter().all(|n| !n.contains("snapshot")), "{notes:?}");
    std::fs::remove_file(&snap).unwrap();
    let l = Ledger::open_read_only(&path, None).unwrap();
    assert_eq!(l.index().clone().to_snapshot_bytes().unwrap(), mapped);
    drop(l);
    let (replay_only, _) = answer(&path);
    assert_eq!(with_snapshot, replay_only);
}
#[test]
fn damaged_format_3_snapshots_are_never_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, snap) = ledger(tmp.path());
    let good = std::fs::read(&snap).unwrap();
    let (want, _) = answer(&path);
    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    let step = (good.len() / 150).max(1);
    for n in (0..good.len()).step_by(step).chain([good.len() - 1]) {
        damaged.push((format!("truncated to {n}"), good[..n].to_vec()));
    }
    // Every byte of the header, the section table and the hashes, then a
    // sample through the padding and the sections.
    let meta = 80 + 8 * 5 + 32 * 2 + 32;
    for i in (0..meta).chain((meta..good.len()).step_by(step)) {
        let mut b = good.clone();
        b[i] ^= 1 << (i % 8);
        damaged.push((format!("bit flipped at {i}"), b));
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 64]);
    damaged.push(("64 bytes appended".into(), longer));
    for (what, bytes) in damaged {
        std::fs::write(&snap, &bytes).unwrap();
        let (got, notes) = answer(&path);
        assert_eq!(got, want, "{what}: the answer is the replay's");
        assert!(
            notes.iter().any(|n| n.contains("not used")),
            "{what}: the snapshot is reported as not used: {notes:?}"
        );
    }
    // A flip inside a section is found by its chunk's hash, at its offset.
    let mut b = good.clone();
    // The middle of the last section (it starts where the file's padded end
    // minus its padded length is).
    let last = u64::from_le_bytes(good[80 + 8 * 4..80 + 8 * 5].try_into().unwrap()) as usize;
    assert!(last > 0);
    let at = good.len() - last.div_ceil(SECTION_ALIGN) * SECTION_ALIGN + last / 2;
    b[at] ^= 0x40;
    std::fs::write(&snap, &b).unwrap();
    let log = Log::open(FsIo::new(), &path, log_opts()).unwrap();
    let load = log.latest_valid_snapshot().unwrap();
    assert!(load.snapshot.is_none());
    match &load.rejected[0].error {
        StorageError::Corrupt { what, offset, .. } => {
            assert!(what.contains("chunk"), "{what}");
            assert!(*offset as usize <= at && at - (*offset as usize) < 1 << 20);
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn malformed_sections_are_refused_not_a_panic() {
    let mut ix = workload::build_index(&spec());
    let owned: Vec<Vec<u8>> = ix
        .to_snapshot_sections()
        .unwrap()
        .into_iter()
        .map(|c| c.into_owned())
        .collect();
    let with = |f: &dyn Fn(&mut Vec<Vec<u8>>)| {
        let mut s = owned.clone();
        f(&mut s);
        let refs: Vec<&[u8]> = s.iter().map(|x| &x[..]).collect();
        Index::from_snapshot_sections(&Sections::copy_of(&refs)).map(|_| ())
    };
    assert!(with(&|_| {}).is_ok(), "the unchanged sections decode");
    type Edit = Box<dyn Fn(&mut Vec<Vec<u8>>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("four sections", Box::new(|s| drop(s.pop()))),
        ("six sections", Box::new(|s| s.push(vec![]))),
        ("bad magic", Box::new(|s| s[0][0] ^= 1)),
        ("small state truncated", Box::new(|s| s[0].truncate(20))),
        (
            "ragged pseudonyms",
            Box::new(|s| {
                s[1].pop();
            }),
        ),
        (
            "ragged offsets",
            Box::new(|s| {
                s[2].pop();
            }),
        ),
        (
            "ragged targets",
            Box::new(|s| {
                s[3].pop();
            }),
        ),
        (
            "subject counts short",
            Box::new(|s| {
                s[4].pop();
            }),
        ),
        (
            "a target beyond the records",
            Box::new(|s| s[3][..4].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "offsets not ascending",
            Box::new(|s| s[2][8..16].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
        ("offsets cut by a subject", Box::new(|s| s[2].truncate(8))),
    ];
    for (what, f) in cases {
        assert!(with(&*f).is_err(), "{what}");
    }
}
