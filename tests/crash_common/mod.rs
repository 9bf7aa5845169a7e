//! Shared workload and checks for the crash tests (not a test target itself).
#![allow(dead_code)]

use std::collections::BTreeSet;

use optout::storage::{
    verify, ChainHash, Durability, FindingKind, LedgerId, Log, LogOptions, MemIo, Seq, StorageError,
};

/// The ledger directory inside every `MemIo`.
pub const ROOT: &str = "/ledger";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fsync,
    Buffered,
}

/// Small segments (a few frames each) so rotation happens often.
pub fn opts(mode: Mode) -> LogOptions {
    LogOptions::new()
        .snapshot_key(optout::storage::SnapshotKey::from_bytes([0x5a; 32]))
        .segment_size(350)
        .buffer_limit(200)
        .ledger_id(LedgerId::from_bytes(*b"crash-test-ledgr"))
        .durability(match mode {
            Mode::Fsync => Durability::Fsync,
            Mode::Buffered => Durability::Buffered,
        })
}

#[derive(Clone, Debug)]
pub enum Step {
    Open(Mode),
    Append(usize),
    Snapshot,
    Sync,
    Close,
}

pub struct Plan {
    pub groups: Vec<Vec<Vec<u8>>>,
    /// First seq of each group.
    pub first: Vec<u64>,
    pub steps: Vec<Step>,
}

pub fn snapshot_payload(seq: Seq) -> Vec<u8> {
    format!("snapshot state at {seq}").into_bytes()
}

/// A mixed workload: groups of 1-4 frames with payloads of 0-90 bytes, in
/// Fsync mode then (after a reopen) Buffered mode, with three snapshots (so
/// the oldest is pruned).
pub fn plan() -> Plan {
    let sizes = [
        1, 3, 1, 2, 4, 1, 1, 2, 3, 1, 2, 1, 4, 1, 2, 1, 3, 1, 1, 2, 1, 2, 3, 1,
    ];
    let mut groups = Vec::new();
    let mut first = Vec::new();
    let mut seq = 1u64;
    for (g, n) in sizes.iter().enumerate() {
        first.push(seq);
        let mut group = Vec::new();
        for _ in 0..*n {
            let len = (seq * 37 + g as u64) % 91;
            let mut p = format!("g{g}s{seq}:").into_bytes();
            p.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seq as u8)));
            if seq.is_multiple_of(11) {
                p.clear();
            }
            group.push(p);
            seq += 1;
        }
        groups.push(group);
    }
    let mut steps = vec![Step::Open(Mode::Fsync)];
    steps.extend((0..8).map(Step::Append));
    steps.push(Step::Snapshot);
    steps.extend((8..14).map(Step::Append));
    steps.push(Step::Close);
    steps.push(Step::Open(Mode::Buffered));
    steps.extend((14..19).map(Step::Append));
    steps.push(Step::Sync);
    steps.extend((19..22).map(Step::Append));
    steps.push(Step::Snapshot);
    steps.extend((22..24).map(Step::Append));
    steps.push(Step::Snapshot);
    steps.push(Step::Close);
    Plan {
        groups,
        first,
        steps,
    }
}

/// What a fault-free run produces.
pub struct Reference {
    pub ops: u64,
    /// `chains[s]`: chain value after seq `s`.
    pub chains: Vec<ChainHash>,
    /// `payloads[s - 1]`.
    pub payloads: Vec<Vec<u8>>,
    /// Seqs that end a group (and 0).
    pub boundaries: BTreeSet<u64>,
    pub head: (Seq, ChainHash),
}

pub fn reference(plan: &Plan) -> Reference {
    let io = MemIo::new();
    let out = run(&io, plan);
    let log = Log::open(io.clone(), ROOT, opts(Mode::Fsync)).unwrap();
    let head = log.head();
    assert_eq!(out.acked, head.0 .0);
    let chains = (0..=head.0 .0)
        .map(|s| log.chain_at(Seq(s)).unwrap())
        .collect();
    let payloads = plan.groups.iter().flatten().cloned().collect();
    let mut boundaries: BTreeSet<u64> = plan.first.iter().map(|f| f - 1).collect();
    boundaries.insert(head.0 .0);
    Reference {
        ops: out.ops,
        chains,
        payloads,
        boundaries,
        head,
    }
}

/// What a (possibly interrupted) run acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Highest seq acknowledged as durable.
    pub acked: u64,
    /// Highest seq of any group handed to `append_group`.
    pub attempted: u64,
    /// Operations the run made.
    pub ops: u64,
}

/// A run stopped by an error.
#[derive(Debug)]
pub struct Failure {
    /// Whether the failed handle was checked to refuse further calls.
    pub poisoned_checked: bool,
}

/// Runs the whole plan, stopping at the first error.
pub fn run(io: &MemIo, plan: &Plan) -> Outcome {
    let mut out = Outcome::default();
    let _ = run_steps(io, plan, &plan.steps, &mut out);
    out.ops = io.op_count();
    out
}

/// After an error: the handle must be poisoned if the error was a failed
/// sync, and a poisoned handle must refuse everything.
fn check_poison(log: &mut Log<MemIo>, e: &StorageError) -> bool {
    if let StorageError::Io { op, .. } = e {
        if op.starts_with("sync") {
            assert!(
                log.is_poisoned(),
                "a failed {op} must poison the handle: {e}"
            );
        }
    }
    if log.is_poisoned() {
        assert!(matches!(
            log.append_group(&[b"after poison"]),
            Err(StorageError::Poisoned)
        ));
        assert!(matches!(log.sync(), Err(StorageError::Poisoned)));
        assert!(matches!(log.read(Seq(1)), Err(StorageError::Poisoned)));
        return true;
    }
    false
}

pub fn run_steps(
    io: &MemIo,
    plan: &Plan,
    steps: &[Step],
    out: &mut Outcome,
) -> Result<(), Failure> {
    let mut log: Option<Log<MemIo>> = None;
    let fail = |poisoned_checked| Err(Failure { poisoned_checked });
    for step in steps {
        match step {
            Step::Open(mode) => match Log::open(io.clone(), ROOT, opts(*mode)) {
                Ok(l) => log = Some(l),
                Err(_) => return fail(false),
            },
            Step::Close => log = None,
            Step::Append(_) | Step::Sync | Step::Snapshot => {
                let Some(l) = log.as_mut() else {
                    panic!("plan uses a closed log")
                };
                let r = match step {
                    Step::Append(g) => {
                        assert_eq!(
                            l.head().0 .0 + 1,
                            plan.first[*g],
                            "plan out of step with the log"
                        );
                        let refs: Vec<&[u8]> =
                            plan.groups[*g].iter().map(|p| p.as_slice()).collect();
                        out.attempted = out.attempted.max(plan.first[*g] + refs.len() as u64 - 1);
                        l.append_group(&refs).map(|_| ())
                    }
                    Step::Sync => l.sync(),
                    _ => {
                        let (s, c) = l.head();
                        l.write_snapshot(s, c, &snapshot_payload(s)).map(|_| ())
                    }
                };
                match r {
                    Ok(()) => out.acked = out.acked.max(l.durable_head().0),
                    Err(e) => return fail(check_poison(l, &e)),
                }
            }
        }
    }
    Ok(())
}

/// Steps that finish the plan from the head of the log in `io` (Fsync mode).
pub fn remaining_steps(io: &MemIo, plan: &Plan) -> Vec<Step> {
    let log = Log::open(io.clone(), ROOT, opts(Mode::Fsync).read_only(true));
    let head = match log {
        Ok(l) => l.head().0 .0,
        Err(StorageError::NoLedger { .. }) => 0,
        Err(e) => panic!("cannot reopen after a fault: {e}"),
    };
    let mut steps = vec![Step::Open(Mode::Fsync)];
    steps.extend(
        (0..plan.groups.len())
            .filter(|g| plan.first[*g] > head)
            .map(Step::Append),
    );
    steps.push(Step::Close);
    steps
}

/// Reopens `img` and checks every property; `Ok(true)` if recovery cut a
/// torn tail.
pub fn check_recovered(img: &MemIo, out: &Outcome, r: &Reference) -> Result<bool, String> {
    let log = Log::open(img.clone(), ROOT, opts(Mode::Fsync))
        .map_err(|e| format!("reopen failed: {e}"))?;
    let (h, c) = log.head();
    if h.0 < out.acked {
        return Err(format!("acknowledged seq {} lost: head is {h}", out.acked));
    }
    if h.0 > out.attempted {
        return Err(format!(
            "head {h} beyond anything written ({})",
            out.attempted
        ));
    }
    if !r.boundaries.contains(&h.0) {
        return Err(format!("head {h} is inside a group"));
    }
    if Some(&c) != r.chains.get(h.0 as usize) {
        return Err(format!("chain at head {h} differs from the fault-free run"));
    }
    let mut next = 1u64;
    log.replay::<StorageError, _>(Seq(1), |s, p| {
        assert_eq!(s.0, next);
        assert_eq!(p, &r.payloads[(s.0 - 1) as usize][..], "payload of seq {s}");
        next += 1;
        Ok(())
    })
    .map_err(|e| format!("replay: {e}"))?;
    if next != h.0 + 1 {
        return Err("replay stopped early".into());
    }
    let load = log.latest_valid_snapshot().map_err(|e| e.to_string())?;
    if let Some(bad) = load.rejected.first() {
        return Err(format!(
            "snapshot rejected: {}: {}",
            bad.path.display(),
            bad.error
        ));
    }
    if let Some(s) = load.snapshot {
        if s.payload != snapshot_payload(s.seq) {
            return Err("snapshot payload differs".into());
        }
    }
    let had_tail = log.recovery().is_some();
    drop(log);
    let report = verify(img, ROOT).map_err(|e| format!("verify: {e}"))?;
    if let Some(f) = report
        .findings
        .iter()
        .find(|f| f.kind != FindingKind::Quarantined)
    {
        return Err(format!("verify after recovery: {f}"));
    }
    let again = Log::open(img.clone(), ROOT, opts(Mode::Fsync))
        .map_err(|e| format!("second reopen: {e}"))?;
    if again.recovery().is_some() || again.head() != (h, c) {
        return Err("second recovery is not a no-op".into());
    }
    Ok(had_tail)
}
