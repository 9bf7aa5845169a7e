//! Ledger benchmarks on real files (PERF.md T2, T4, T5). Prints a table;
//! `cargo bench --bench ledger [-- ws|wm]` (default W-S/10 for T2).
//! Run on the disk you care about: set OPTOUT_BENCH_DIR (default: target/).

use std::path::PathBuf;
use std::time::Instant;

use optout::event::{Event, EventKind};
use optout::workload::{self, Spec};
use optout::{Ledger, Purpose, Purposes, SubjectKeyer, Timestamp};

fn dir(name: &str) -> PathBuf {
    let base = std::env::var_os("OPTOUT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-ledgers"));
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

fn objection(i: u64) -> Event {
    Event {
        at: Timestamp::from_unix_seconds(1_710_000_000),
        reference: None,
        kind: EventKind::Objection {
            subject: workload::subject(i),
            purposes: Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
            categories: vec![],
            sources: vec![],
        },
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with('-')).collect();
    let spec = if args.iter().any(|a| a == "wm") {
        Spec::wm()
    } else if args.iter().any(|a| a == "ws") {
        Spec::ws()
    } else {
        Spec::ws().scaled(10)
    };
    let keyer = SubjectKeyer::from_secret([1; 32]);

    // T4: one durable objection (append + fsync), one call at a time.
    let d = dir("t4");
    let mut l = Ledger::create(&d.join("l"), keyer.clone()).unwrap();
    let mut lat = Vec::new();
    for i in 0..2_000u64 {
        let t = Instant::now();
        l.apply(vec![objection(i)]).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "T4 durable single objection: p50 {:.0} us, p99 {:.0} us (n=2000)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    // T5: appends in batches of 64 and 1024, one fsync per batch.
    for batch in [64u64, 1024] {
        let n = if batch == 64 { 64 * 400 } else { 1024 * 100 };
        let t = Instant::now();
        let mut i = 0;
        while i < n {
            l.apply((i..i + batch).map(objection).collect()).unwrap();
            i += batch;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "T5 append, batches of {batch}: {:.0} events/s ({n} events in {s:.2} s)",
            n as f64 / s
        );
    }
    let head = l.index().seq();
    drop(l);
    // Replay with chain verification, no snapshot: open folds every entry.
    let t = Instant::now();
    let l = Ledger::open_read_only(&d.join("l"), None).unwrap();
    let s = t.elapsed().as_secs_f64();
    assert_eq!(l.index().seq(), head);
    println!(
        "T5 replay with verification (open, no snapshot): {:.0} entries/s ({} entries in {s:.2} s)",
        head.0 as f64 / s,
        head.0
    );
    drop(l);

    // T2: cold open from a snapshot + manifest. With the subject key, as
    // `optout manifest` loads it: without it no snapshot is trusted (it
    // cannot be authenticated) and the log is replayed.
    let d = dir("t2");
    let path = d.join("l");
    let mut l = Ledger::create(&path, keyer.clone()).unwrap();
    let t = Instant::now();
    for s in 0..spec.shards {
        l.ingest(workload::shard_batch(&spec, s)).unwrap();
    }
    l.apply(workload::events(&spec)).unwrap();
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    l.snapshot().unwrap();
    let snap = t.elapsed().as_secs_f64();
    let q = l
        .query(
            None,
            "ai-training",
            Timestamp::from_unix_seconds(1_800_000_000),
        )
        .unwrap();
    let excluded = l.manifest(&q).unwrap().header.excluded;
    drop(l);
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let l = Ledger::open_read_only(&path, Some(keyer.clone())).unwrap();
        let m = l.manifest(&q).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(m.header.excluded, excluded);
        assert_eq!(m.header.seq, q.seq);
    }
    println!(
        "T2 cold open (snapshot) + manifest, {} records: median {:.3} s (ledger written in {build:.1} s, snapshot {snap:.2} s, {excluded} excluded)",
        spec.records(),
        pct(&mut times, 0.5)
    );
}
