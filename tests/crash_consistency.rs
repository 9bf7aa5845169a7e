//! Simulated power loss at every I/O operation of a mixed workload, on
//! `MemIo` crash images (unsynced writes dropped / kept / reordered / torn,
//! unsynced directory operations lost / kept); crashes *during recovery*;
//! and I/O errors injected at every operation, once and persistently.
//!
//! Properties checked on every image: reopening does not panic and succeeds;
//! every acknowledged group is present; the log is a group-atomic prefix of
//! what was written (same payloads, same chain values as a fault-free run);
//! verify finds no damage; snapshots found are valid; a second open has
//! nothing left to recover.

mod crash_common;
use crash_common as common;

use std::path::Path;
use std::time::Instant;

use common::{check_recovered, plan, reference, run, Outcome, Step, ROOT};
use optout::storage::{Fault, Io, Log, MemIo, StorageError, QUARANTINE_DIR};

#[test]
fn crash_at_every_io_operation() {
    let t0 = Instant::now();
    let plan = plan();
    let reference = reference(&plan);
    let total = reference.ops;
    let (mut images, mut with_tail) = (0u64, 0u64);
    for k in 0..total {
        let io = MemIo::new();
        io.set_fault(Some(Fault::From(k)));
        let out = run(&io, &plan);
        for (i, img) in io.crash_images(k, 32).into_iter().enumerate() {
            let r = check_recovered(&img, &out, &reference);
            if let Err(e) = r {
                panic!("crash at op {k}, image {i}: {e}");
            }
            with_tail += u64::from(r.unwrap_or(false));
            images += 1;
        }
    }
    eprintln!(
        "crash_at_every_io_operation: {total} cut points, {images} images ({with_tail} with a torn tail), {:?}",
        t0.elapsed()
    );
    assert!(with_tail > 0, "the workload must produce torn tails");
}

#[test]
fn crash_during_recovery() {
    let t0 = Instant::now();
    let plan = plan();
    let reference = reference(&plan);
    let (mut recoveries, mut images, mut quarantined) = (0u64, 0u64, 0u64);
    // Every workload cut point, 6 images each; each image is then cut at
    // *every* operation of its recovery, and 3 images of that are recovered.
    for k in 0..reference.ops {
        let io = MemIo::new();
        io.set_fault(Some(Fault::From(k)));
        let out = run(&io, &plan);
        for (i, img) in io.crash_images(k, 6).into_iter().enumerate() {
            // The tail a recovery would cut: its bytes must end up in
            // quarantine/ whatever happens to the recovery.
            let tail = Log::open(
                img.fork(),
                ROOT,
                common::opts(common::Mode::Fsync).read_only(true),
            )
            .ok()
            .and_then(|l| l.recovery().cloned())
            .map(|t| {
                let mut b = vec![0u8; t.bytes as usize];
                img.read_at(&t.segment, t.truncated_at, &mut b).unwrap();
                b
            });
            let probe = img.fork();
            let _ = Log::open(probe.clone(), ROOT, common::opts(common::Mode::Fsync));
            let steps = probe.op_count();
            for j in 0..steps {
                let cut = img.fork();
                cut.set_fault(Some(Fault::From(j)));
                let _ = Log::open(cut.clone(), ROOT, common::opts(common::Mode::Fsync));
                recoveries += 1;
                for (n, img2) in cut.crash_images(k * 1000 + j, 3).into_iter().enumerate() {
                    if let Err(e) = check_recovered(&img2, &out, &reference) {
                        panic!(
                            "crash at op {k}, image {i}, recovery cut at op {j}, image {n}: {e}"
                        );
                    }
                    if let Some(bytes) = &tail {
                        let q = Path::new(ROOT).join(QUARANTINE_DIR);
                        let kept = img2
                            .list_dir(&q)
                            .unwrap()
                            .iter()
                            .any(|f| img2.read_all(&q.join(f)).unwrap() == *bytes);
                        assert!(kept, "crash at op {k}, image {i}, recovery cut at op {j}, image {n}: torn tail not in quarantine");
                        quarantined += 1;
                    }
                    images += 1;
                }
            }
        }
    }
    eprintln!(
        "crash_during_recovery: {recoveries} interrupted recoveries, {images} images re-recovered, \
         {quarantined} checked to keep the torn tail in quarantine, {:?}",
        t0.elapsed()
    );
    assert!(quarantined > 0);
}

#[test]
fn io_errors_at_every_operation() {
    let t0 = Instant::now();
    let plan = plan();
    let reference = reference(&plan);
    let mut poisoned_seen = 0u64;
    for k in 0..reference.ops {
        for fault in [Fault::Once(k), Fault::From(k)] {
            let io = MemIo::new();
            io.set_fault(Some(fault));
            let mut out = Outcome::default();
            // Run until the fault hits; then the failed handle must be
            // poisoned (if it was an append/sync/snapshot), and reopening
            // (after the disk "heals" for persistent faults) must recover;
            // then finish the workload on the recovered log.
            let mut steps: Vec<Step> = plan.steps.clone();
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds < 10, "fault {fault:?}: no progress");
                let r = common::run_steps(&io, &plan, &steps, &mut out);
                match r {
                    Ok(()) => break,
                    Err(common::Failure { poisoned_checked }) => {
                        poisoned_seen += u64::from(poisoned_checked);
                        io.set_fault(None);
                        // Nothing acknowledged is missing, even before any crash.
                        if let Err(e) = check_recovered(&io.fork(), &out, &reference) {
                            panic!("fault {fault:?}: after the failure: {e}");
                        }
                        steps = common::remaining_steps(&io, &plan);
                    }
                }
            }
            let final_log = Log::open(io.clone(), ROOT, common::opts(common::Mode::Fsync)).unwrap();
            assert_eq!(
                final_log.head(),
                reference.head,
                "fault {fault:?}: workload completed after recovery"
            );
            drop(final_log);
            for (i, img) in io.crash_images(k, 4).into_iter().enumerate() {
                if let Err(e) = check_recovered(&img, &out, &reference) {
                    panic!("fault {fault:?}, final image {i}: {e}");
                }
            }
        }
    }
    eprintln!(
        "io_errors_at_every_operation: {} ops x 2 fault modes, {poisoned_seen} poisoned handles checked, {:?}",
        reference.ops,
        t0.elapsed()
    );
    assert!(poisoned_seen > 0);
    let _ = StorageError::Poisoned;
}
