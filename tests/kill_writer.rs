//! Real process kills: a child process (this test binary, re-run with an
//! environment variable) appends groups to real files with fsync and prints
//! each acknowledged seq; the parent SIGKILLs it at random moments, reopens
//! the ledger and checks that every acknowledged seq is present, the log is
//! group-atomic, payloads are intact and the whole chain verifies.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use optout::storage::{verify, FindingKind, FsIo, LedgerId, Log, LogOptions, Seq, StorageError};

const DIR_VAR: &str = "OPTOUT_KILL_CHILD_DIR";

fn opts() -> LogOptions {
    LogOptions::new()
        .segment_size(8 << 10)
        .ledger_id(LedgerId::from_bytes(*b"kill-test-ledger"))
}

/// Payload of `seq` in a group ending at `last`: the group end is recorded
/// so the parent can check group atomicity.
fn payload(seq: u64, last: u64) -> Vec<u8> {
    let mut p = format!("seq {seq} last {last} ").into_bytes();
    p.resize(p.len() + (seq as usize * 13) % 300, b'a' + (seq % 26) as u8);
    p
}

fn parse_last(p: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(p).ok()?;
    let mut it = s.split(' ');
    let (_, seq, _, last) = (
        it.next()?,
        it.next()?.parse().ok()?,
        it.next()?,
        it.next()?.parse().ok()?,
    );
    Some((seq, last))
}

/// The child: appends until killed (or 20 s pass), printing `ACK <seq>`
/// after each durable group.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let mut log = Log::open(FsIo::new(), &dir, opts()).expect("child open");
    let out = std::io::stdout();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let first = log.head().0 .0 + 1;
        let last = first + first % 3;
        let ps: Vec<Vec<u8>> = (first..=last).map(|s| payload(s, last)).collect();
        let refs: Vec<&[u8]> = ps.iter().map(|p| p.as_slice()).collect();
        let r = log.append_group(&refs).expect("child append");
        let mut o = out.lock();
        writeln!(o, "ACK {}", r.last.0).unwrap();
        o.flush().unwrap();
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn check(dir: &Path, acked: u64) -> (u64, bool) {
    let log =
        Log::open(FsIo::new(), dir, opts()).unwrap_or_else(|e| panic!("reopen after kill: {e}"));
    let head = log.head().0 .0;
    assert!(head >= acked, "acknowledged seq {acked} lost: head {head}");
    let mut next = 1;
    log.replay::<StorageError, _>(Seq(1), |s, p| {
        let (seq, last) = parse_last(p).expect("payload readable");
        assert_eq!((s.0, seq), (next, next));
        assert_eq!(p, payload(seq, last), "payload of seq {seq}");
        assert!(
            last >= seq && (last <= head),
            "group of seq {seq} ends at {last} beyond head {head}"
        );
        next += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(next, head + 1);
    let torn = log.recovery().is_some();
    drop(log);
    let report = verify(&FsIo::new(), dir).unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind == FindingKind::Quarantined),
        "verify: {:?}",
        report.findings
    );
    (head, torn)
}

#[test]
fn sigkill_never_loses_acknowledged_groups() {
    let rounds: u64 = std::env::var("OPTOUT_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let exe = std::env::current_exe().unwrap();
    let seed = 0x5EED_u64;
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let (mut acked, mut torn_rounds, mut acks_total) = (0u64, 0u64, 0u64);
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse::<u64>().ok()))
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        acks_total += acks.len() as u64;
        if let Some(m) = acks.iter().max() {
            acked = acked.max(*m);
        }
        let (head, torn) = check(&dir, acked);
        torn_rounds += u64::from(torn);
        assert!(head >= acked, "round {round}");
    }
    eprintln!(
        "sigkill: {rounds} kills (seed {seed:#x}), {acks_total} acknowledged groups, final seq {acked}, \
         {torn_rounds} reopen(s) cut a torn tail, {:?}",
        t0.elapsed()
    );
    assert!(acked > 0, "the child never acknowledged anything");
}
