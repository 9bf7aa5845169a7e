//! Acknowledged is not torn (issue 20, G10): after a crash at any I/O
//! operation of the mixed workload, damage to the *acknowledged* part of
//! the log — every bit of the last acknowledged frame, a cut anywhere in
//! it, the last segment zeroed or deleted (with the newest snapshot) — must
//! never yield a ledger that opens without it. Either the open refuses
//! (`Corrupt`, read-only and read-write alike, naming the file), or it has
//! every acknowledged frame intact. Zero silent losses.
//!
//! Damage to the head file itself (every bit of its slots) never loses an
//! acknowledged frame and never makes a healthy log refuse to open.
//!
//! `OPTOUT_CRASH_FULL=1` flips every bit at every cut point and image (a
//! few minutes); by default every bit at every 5th cut point of one image
//! kind, and a byte sample elsewhere.

mod crash_common;
use crash_common as common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{plan, reference, run, Mode, Outcome, Reference, ROOT};
use optout::storage::{Fault, Io, Log, MemIo, Seq, StorageError, HEAD_FILE};

fn full() -> bool {
    std::env::var_os("OPTOUT_CRASH_FULL").is_some()
}

/// Where frame `seq` lies: (segment, offset, length), parsed from the bytes.
fn frame_of(img: &MemIo, seq: u64) -> Option<(PathBuf, u64, u64)> {
    let dir = Path::new(ROOT).join("log");
    let mut segs: Vec<String> = img.list_dir(&dir).ok()?;
    segs.sort();
    for name in segs {
        let p = dir.join(name);
        let b = img.read_all(&p).ok()?;
        let mut pos = 84usize;
        while pos + 24 <= b.len() {
            let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().ok()?) as usize + 60;
            let s = u64::from_le_bytes(b[pos + 8..pos + 16].try_into().ok()?);
            if s == seq && pos + len <= b.len() {
                return Some((p, pos as u64, len as u64));
            }
            pos += len;
        }
    }
    None
}

/// What opening `img` (read-only, then read-write on a copy) says, given
/// that `acked` was acknowledged and its chain value is `r.chains[acked]`:
/// `Ok(true)` refused as corrupt, `Ok(false)` opened with it intact,
/// `Err` a silent loss.
fn judge(img: &MemIo, acked: u64, r: &Reference, what: &str) -> Result<bool, String> {
    let mut refused = 0;
    for ro in [true, false] {
        let io = if ro { img.clone() } else { img.fork() };
        match Log::open(io, ROOT, common::opts(Mode::Fsync).read_only(ro)) {
            Err(StorageError::Corrupt { .. }) => refused += 1,
            Err(e) => {
                return Err(format!(
                    "{what}: open (ro {ro}) failed with a non-corrupt error: {e}"
                ))
            }
            Ok(log) => {
                let (h, _) = log.head();
                if h.0 < acked {
                    return Err(format!(
                        "{what}: SILENT LOSS: opened (ro {ro}) at seq {h}, seq {acked} was acknowledged"
                    ));
                }
                match log.chain_at(Seq(acked)) {
                    Ok(c) if Some(&c) == r.chains.get(acked as usize) => {}
                    other => {
                        return Err(format!(
                            "{what}: SILENT CHANGE: opened (ro {ro}) with chain {other:?} at acknowledged seq {acked}"
                        ))
                    }
                }
            }
        }
    }
    match refused {
        0 => Ok(false),
        2 => Ok(true),
        _ => Err(format!("{what}: read-only and read-write opens disagree")),
    }
}

struct Tally {
    cases: u64,
    refused: u64,
    intact: u64,
}

fn check(img: &MemIo, acked: u64, r: &Reference, what: &str, t: &mut Tally) {
    match judge(img, acked, r, what) {
        Ok(true) => t.refused += 1,
        Ok(false) => t.intact += 1,
        Err(e) => panic!("{e}"),
    }
    t.cases += 1;
}

fn put(img: &MemIo, p: &Path, bytes: &[u8]) {
    img.create_file(p).unwrap();
    img.write_at(p, 0, bytes).unwrap();
}

#[test]
fn damage_to_acknowledged_frames_is_never_silent() {
    let t0 = Instant::now();
    let plan = plan();
    let r = reference(&plan);
    let mut t = Tally {
        cases: 0,
        refused: 0,
        intact: 0,
    };
    for k in 0..r.ops {
        let io = MemIo::new();
        io.set_fault(Some(Fault::From(k)));
        let out: Outcome = run(&io, &plan);
        if out.acked == 0 {
            continue;
        }
        let images = if full() { 8 } else { 2 };
        for (i, img) in io.crash_images(k, images).into_iter().enumerate() {
            let Some((seg, off, len)) = frame_of(&img, out.acked) else {
                panic!(
                    "op {k} image {i}: acknowledged seq {} is not on disk",
                    out.acked
                );
            };
            let bytes = img.read_all(&seg).unwrap();
            let every_bit = full() || (i == 0 && k % 5 == 0);
            // Bit flips in the last acknowledged frame.
            let step = if every_bit { 1 } else { 7 };
            for bit in (0..len * 8).step_by(step) {
                let dmg = img.fork();
                let mut b = bytes.clone();
                b[(off + bit / 8) as usize] ^= 1 << (bit % 8);
                put(&dmg, &seg, &b);
                check(
                    &dmg,
                    out.acked,
                    &r,
                    &format!("op {k} image {i} bit {bit} of seq {}", out.acked),
                    &mut t,
                );
            }
            // Cuts inside and at the end of it.
            for cut in (off..off + len).step_by(if every_bit { 1 } else { 5 }) {
                let dmg = img.fork();
                dmg.truncate(&seg, cut).unwrap();
                check(
                    &dmg,
                    out.acked,
                    &r,
                    &format!("op {k} image {i} cut at {cut}"),
                    &mut t,
                );
            }
            // The segment zeroed; deleted with every snapshot.
            let dmg = img.fork();
            put(&dmg, &seg, &vec![0u8; bytes.len()]);
            check(
                &dmg,
                out.acked,
                &r,
                &format!("op {k} image {i} zeroed"),
                &mut t,
            );
            let dmg = img.fork();
            dmg.remove_file(&seg).unwrap();
            let snap = Path::new(ROOT).join("snap");
            for s in dmg.list_dir(&snap).unwrap_or_default() {
                dmg.remove_file(&snap.join(s)).unwrap();
            }
            check(
                &dmg,
                out.acked,
                &r,
                &format!("op {k} image {i} deleted"),
                &mut t,
            );
        }
    }
    eprintln!(
        "damage_to_acknowledged_frames: {} cut points, {} damaged images: {} refused as corrupt, \
         {} still hold every acknowledged frame, 0 silent losses ({:?})",
        r.ops,
        t.cases,
        t.refused,
        t.intact,
        t0.elapsed()
    );
    assert!(
        t.refused > 1000,
        "the damage must reach acknowledged frames"
    );
}

#[test]
fn damage_to_the_head_file_never_loses_an_acknowledged_frame() {
    let plan = plan();
    let r = reference(&plan);
    let io = MemIo::new();
    let out = run(&io, &plan);
    assert!(out.acked > 0);
    let img = io.fork();
    let head = Path::new(ROOT).join(HEAD_FILE);
    let bytes = img.read_all(&head).unwrap();
    let mut t = Tally {
        cases: 0,
        refused: 0,
        intact: 0,
    };
    for slot in [0usize, 4096] {
        for bit in 0..100 * 8 {
            let dmg = img.fork();
            let mut b = bytes.clone();
            b[slot + bit / 8] ^= 1 << (bit % 8);
            put(&dmg, &head, &b);
            check(
                &dmg,
                out.acked,
                &r,
                &format!("head slot {slot} bit {bit}"),
                &mut t,
            );
        }
    }
    // One flipped bit leaves the other slot: the log opens, whole.
    assert_eq!(
        t.intact, t.cases,
        "a single-slot flip never refuses a healthy log"
    );
    // Both slots gone: refused, never guessed.
    let dmg = img.fork();
    put(&dmg, &head, &vec![0u8; bytes.len()]);
    assert!(matches!(
        Log::open(dmg, ROOT, common::opts(Mode::Fsync)),
        Err(StorageError::Corrupt { .. })
    ));
    eprintln!(
        "head file: {} single-bit flips, the log opened whole every time",
        t.cases
    );
}
