//! Tamper evidence: every single-bit flip, every truncation, deleted /
//! duplicated / reordered / spliced frames and segments, and snapshot damage
//! in a deterministic fixture log are detected by `verify`, with an offset.
//! Every frame of the fixture was acknowledged, so damage anywhere —
//! the final frame included — is `Corrupt`, never a torn tail (G10). A cut
//! at a group or segment boundary at the end, or the deletion of the newest
//! segment, yields a shorter log that is valid by itself: the durable head
//! (`LEDGER/HEAD`) catches it; deleting the head file too is caught by the
//! segments' format version (a version 2 log keeps one), and by head
//! pinning: the pinned `(seq, chain)` is no longer the log's.

mod common;
use common::segments;

use std::path::Path;
use std::time::Instant;

use optout::storage::{
    verify, verify_keyed, FindingKind, Io, LedgerId, Log, LogOptions, MemIo, Seq, SnapshotKey,
    StorageError, VerifyReport,
};

const ROOT: &str = "/ledger";
const KEY: SnapshotKey = SnapshotKey::from_bytes([0x5a; 32]);

fn opts(id: u8) -> LogOptions {
    LogOptions::new()
        .snapshot_key(KEY)
        .segment_size(700)
        .ledger_id(LedgerId::from_bytes([id; 16]))
}

/// A fixture: 4+ segments, groups of 1-3 frames, one snapshot.
fn fixture(id: u8) -> MemIo {
    let io = MemIo::new();
    let mut log = Log::open(io.clone(), ROOT, opts(id)).unwrap();
    let mut seq = 1u64;
    for g in 0..16u64 {
        let n = [1, 2, 3][(g % 3) as usize];
        let ps: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("event {} of group {g}", seq + i).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = ps.iter().map(|p| p.as_slice()).collect();
        log.append_group(&refs).unwrap();
        seq += n;
        if g == 9 {
            let (s, c) = log.head();
            log.write_snapshot(s, c, b"snapshot payload").unwrap();
        }
    }
    drop(log);
    io.fork()
}

#[derive(Clone, Copy, Debug)]
struct FrameAt {
    offset: u64,
    len: u64,
    commit: bool,
}

fn frames(bytes: &[u8]) -> Vec<FrameAt> {
    let mut out = Vec::new();
    let mut pos = 84usize;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize + 60;
        let flags = u32::from_le_bytes(bytes[pos + 16..pos + 20].try_into().unwrap());
        out.push(FrameAt {
            offset: pos as u64,
            len: len as u64,
            commit: flags & 1 == 1,
        });
        pos += len;
    }
    out
}

fn put(io: &MemIo, path: &Path, bytes: &[u8]) {
    io.create_file(path).unwrap();
    io.write_at(path, 0, bytes).unwrap();
}

fn head(io: &MemIo) -> (Seq, optout::storage::ChainHash) {
    Log::open(io.clone(), ROOT, opts(0).read_only(true))
        .unwrap()
        .head()
}

/// A shorter log: it must not open (the ledger itself detects it), or
/// differ from the pinned head, and the pinned seq must be gone.
fn assert_caught_by_pin(img: &MemIo, pinned: (Seq, optout::storage::ChainHash), what: &str) {
    let log = match Log::open(img.clone(), ROOT, opts(0).read_only(true)) {
        Err(StorageError::Corrupt { .. }) => return,
        r => r.unwrap(),
    };
    assert_ne!(
        log.head(),
        pinned,
        "{what}: head must differ from the pinned head"
    );
    assert!(log.head().0 < pinned.0, "{what}");
    assert!(
        matches!(
            log.chain_at(pinned.0),
            Err(StorageError::SeqOutOfRange { .. })
        ),
        "{what}: pinned seq must be gone"
    );
}

fn detected(r: &VerifyReport, file: &Path) -> Option<(FindingKind, u64)> {
    r.findings
        .iter()
        .find(|f| f.kind != FindingKind::Quarantined)
        .map(|f| {
            assert!(
                f.file == file || f.kind == FindingKind::Corrupt,
                "finding names the file: {f}"
            );
            (f.kind, f.offset)
        })
}

#[test]
fn every_bit_flip_is_detected() {
    let t0 = Instant::now();
    let base = fixture(1);
    let segs = segments(&base, ROOT);
    assert!(segs.len() >= 4, "fixture has {} segments", segs.len());
    let (mut flips, mut torn) = (0u64, 0u64);
    for (si, seg) in segs.iter().enumerate() {
        let bytes = base.read_all(seg).unwrap();
        let fr = frames(&bytes);
        let last_frame = fr.last().unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let img = base.fork();
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                put(&img, seg, &b);
                let r = verify(&img, ROOT).unwrap();
                let (kind, offset) = detected(&r, seg)
                    .unwrap_or_else(|| panic!("flip {seg:?} byte {i} bit {bit} undetected"));
                flips += 1;
                let in_final_frame = si + 1 == segs.len() && i as u64 >= last_frame.offset;
                match kind {
                    FindingKind::Corrupt => {
                        assert!(offset <= i as u64, "offset {offset} after flipped byte {i}");
                        if in_final_frame {
                            // The acknowledged last frame: never a torn tail.
                            assert_eq!(offset, last_frame.offset);
                            torn += 1;
                        }
                    }
                    k => panic!("flip {seg:?} byte {i}: acknowledged damage reported as {k:?}"),
                }
            }
        }
    }
    assert!(torn > 0);
    eprintln!("every_bit_flip_is_detected: {flips} flips, 100% detected as corrupt ({torn} in the acknowledged final frame), {:?}", t0.elapsed());
}

#[test]
fn every_snapshot_bit_flip_and_truncation_is_detected() {
    let base = fixture(1);
    let dir = Path::new(ROOT).join("snap");
    let snap = dir.join(&base.list_dir(&dir).unwrap()[0]);
    let bytes = base.read_all(&snap).unwrap();
    let mut n = 0;
    for i in 0..bytes.len() * 8 {
        let img = base.fork();
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        put(&img, &snap, &b);
        let r = verify_keyed(&img, ROOT, Some(&KEY)).unwrap();
        assert_eq!(
            detected(&r, &snap).map(|d| d.0),
            Some(FindingKind::Snapshot),
            "bit {i}"
        );
        let log = Log::open(img, ROOT, opts(0).read_only(true)).unwrap();
        assert!(log.latest_valid_snapshot().unwrap().snapshot.is_none());
        n += 1;
    }
    for cut in 0..bytes.len() {
        let img = base.fork();
        put(&img, &snap, &bytes[..cut]);
        assert_eq!(
            detected(&verify_keyed(&img, ROOT, Some(&KEY)).unwrap(), &snap).map(|d| d.0),
            Some(FindingKind::Snapshot)
        );
        n += 1;
    }
    eprintln!("snapshot: {n} flips/truncations, 100% detected");
}

#[test]
fn every_truncation_is_detected_or_caught_by_pinning() {
    let base = fixture(1);
    let pinned = head(&base);
    let segs = segments(&base, ROOT);
    let head_file = Path::new(ROOT).join("HEAD");
    let (mut total, mut boundaries) = (0, 0);
    for (si, seg) in segs.iter().enumerate() {
        let bytes = base.read_all(seg).unwrap();
        let fr = frames(&bytes);
        let last = si + 1 == segs.len();
        let boundary = |n: u64| n == 84 || fr.iter().any(|f| f.commit && f.offset + f.len == n);
        for n in 0..bytes.len() as u64 {
            let img = base.fork();
            img.truncate(seg, n).unwrap();
            let r = verify(&img, ROOT).unwrap();
            total += 1;
            // Every cut loses acknowledged frames: corrupt, with the offset.
            match detected(&r, seg) {
                Some((FindingKind::Corrupt, off)) => assert!(off <= n, "cut at {n}: offset {off}"),
                d => panic!("truncation at {n} of {seg:?}: {d:?}"),
            }
            if last && boundary(n) {
                boundaries += 1;
                // A clean cut, and the head file deleted too: caught by the
                // format version (and by a pinned head).
                img.remove_file(&head_file).unwrap();
                let r = verify(&img, ROOT).unwrap();
                assert_eq!(
                    r.first_damage().map(|f| f.file.clone()),
                    Some(head_file.clone())
                );
                assert_caught_by_pin(&img, pinned, &format!("truncation at {n}"));
            }
        }
    }
    // Deleting the whole last segment (and the newest snapshot with it).
    let img = base.fork();
    img.remove_file(segs.last().unwrap()).unwrap();
    for snap in img.list_dir(&Path::new(ROOT).join("snap")).unwrap() {
        img.remove_file(&Path::new(ROOT).join("snap").join(snap))
            .unwrap();
    }
    let r = verify(&img, ROOT).unwrap();
    let f = r.first_damage().expect("deleted newest segment detected");
    assert_eq!(
        (f.file.clone(), f.offset),
        (segs.last().unwrap().clone(), 0)
    );
    img.remove_file(&head_file).unwrap();
    assert!(verify(&img, ROOT).unwrap().first_damage().is_some());
    assert_caught_by_pin(&img, pinned, "last segment deleted");
    assert!(boundaries > 0);
    eprintln!("truncations: {total}, 100% corrupt ({boundaries} clean cuts at group boundaries in the last segment)");
}

#[test]
fn deleted_duplicated_reordered_spliced_frames_are_detected() {
    let base = fixture(1);
    let other = fixture(2); // same shape, another ledger id
    let pinned = head(&base);
    let segs = segments(&base, ROOT);
    let mut cases = 0;
    for (si, seg) in segs.iter().enumerate() {
        let bytes = base.read_all(seg).unwrap();
        let foreign = other.read_all(seg).unwrap();
        let fr = frames(&bytes);
        let final_seg = si + 1 == segs.len();
        let span = |f: &FrameAt| f.offset as usize..(f.offset + f.len) as usize;
        for (j, f) in fr.iter().enumerate() {
            let is_final = final_seg && j + 1 == fr.len();
            let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
            // Delete frame j.
            let mut b = bytes.clone();
            b.drain(span(f));
            variants.push(("delete", b));
            // Duplicate frame j.
            let mut b = bytes.clone();
            let copy = bytes[span(f)].to_vec();
            b.splice(f.offset as usize..f.offset as usize, copy);
            variants.push(("duplicate", b));
            // Swap frames j and j+1.
            if let Some(g) = fr.get(j + 1) {
                let mut b = bytes[..f.offset as usize].to_vec();
                b.extend_from_slice(&bytes[span(g)]);
                b.extend_from_slice(&bytes[span(f)]);
                b.extend_from_slice(&bytes[(g.offset + g.len) as usize..]);
                variants.push(("swap", b));
            }
            // Splice in the other ledger's frame at the same position.
            let ofr = frames(&foreign);
            if let Some(o) = ofr.get(j) {
                let mut b = bytes.clone();
                b.splice(
                    span(f),
                    foreign[o.offset as usize..(o.offset + o.len) as usize]
                        .iter()
                        .copied(),
                );
                variants.push(("splice", b));
            }
            for (what, b) in variants {
                let img = base.fork();
                put(&img, seg, &b);
                let r = verify(&img, ROOT).unwrap();
                cases += 1;
                match detected(&r, seg) {
                    Some((FindingKind::Corrupt, off)) => {
                        assert!(off <= f.offset + f.len, "{what} frame {j}")
                    }
                    d => panic!("{what} frame {j} of {seg:?} (final: {is_final}): {d:?}"),
                }
                if is_final && what == "delete" && fr.len() >= 2 && fr[j - 1].commit {
                    // With the head file gone too: caught by a pinned head.
                    img.remove_file(&Path::new(ROOT).join("HEAD")).unwrap();
                    assert!(verify(&img, ROOT).unwrap().first_damage().is_some());
                    assert_caught_by_pin(&img, pinned, "final single-frame group deleted");
                }
            }
        }
    }
    eprintln!("frame tampering: {cases} cases, 100% detected or caught by pinning");
}

#[test]
fn deleted_duplicated_reordered_spliced_segments_are_detected() {
    let base = fixture(1);
    let other = fixture(2);
    let segs = segments(&base, ROOT);
    let n = segs.len();
    let corrupt = |img: &MemIo, what: &str| {
        let r = verify(img, ROOT).unwrap();
        assert_eq!(
            r.first_damage().map(|f| f.kind),
            Some(FindingKind::Corrupt),
            "{what}: {r:?}"
        );
    };
    for (k, seg) in segs.iter().enumerate().take(n - 1) {
        let img = base.fork();
        img.remove_file(seg).unwrap();
        corrupt(&img, &format!("delete segment {k}"));
    }
    for k in 0..n {
        // Duplicate segment k as the next number.
        let img = base.fork();
        let next = segs[0].with_file_name(format!("{:020}.seg", n + 1));
        put(&img, &next, &base.read_all(&segs[k]).unwrap());
        corrupt(&img, &format!("duplicate segment {k}"));
        // Splice in the other ledger's segment k.
        let img = base.fork();
        put(&img, &segs[k], &other.read_all(&segs[k]).unwrap());
        corrupt(&img, &format!("splice segment {k}"));
        // A renamed (non-canonical) segment file.
        let img = base.fork();
        img.rename(&segs[k], &segs[k].with_file_name(format!("{}.seg", k + 1)))
            .unwrap();
        corrupt(&img, &format!("rename segment {k}"));
    }
    for k in 0..n - 1 {
        let img = base.fork();
        let (a, b) = (
            base.read_all(&segs[k]).unwrap(),
            base.read_all(&segs[k + 1]).unwrap(),
        );
        put(&img, &segs[k], &b);
        put(&img, &segs[k + 1], &a);
        corrupt(&img, &format!("swap segments {k} and {}", k + 1));
    }
}
