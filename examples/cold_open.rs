//! The phases of a cold open of a snapshotted ledger, timed one by one:
//! the log's open (its recovery scan, anchored at the snapshot), the same
//! open without the snapshot key (the full scan every open did before the
//! anchored open), finding and checking the newest snapshot, building the
//! index from it, and one manifest.
//!
//! `cargo run --release --example cold_open -- LEDGER KEY_FILE`

use std::path::Path;
use std::time::Instant;

use optout::storage::{FsIo, Log, LogOptions};
use optout::{workload, Index, Ledger, SubjectKeyer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: cold_open LEDGER KEY_FILE");
        std::process::exit(2);
    };
    let path = Path::new(path);
    let keyer = SubjectKeyer::load_key_file(Path::new(key)).expect("key file");
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let opts = LogOptions::new()
        .create(false)
        .read_only(true)
        .snapshot_key(keyer.snapshot_key());
    let t = Instant::now();
    let full = Log::open(
        FsIo::new(),
        path,
        LogOptions::new().create(false).read_only(true),
    )
    .expect("open the log");
    let full_scan = ms(t);
    drop(full);
    let t = Instant::now();
    let log = Log::open(FsIo::new(), path, opts).expect("open the log");
    let open = ms(t);
    let t = Instant::now();
    let snap = log
        .latest_valid_snapshot()
        .expect("snapshots")
        .snapshot
        .expect("a valid snapshot");
    let check = ms(t);
    let t = Instant::now();
    let index = Index::from_snapshot(snap).expect("index");
    let build = ms(t);
    drop(log);
    let t = Instant::now();
    let q = workload::query(workload::Layout::Uniform, &index);
    let ex = optout::engine::evaluate(&index, &q);
    let eval = ms(t);
    let t = Instant::now();
    let l = Ledger::open_read_only(path, Some(keyer)).expect("ledger");
    let m = l.manifest(&q).expect("manifest");
    let whole = ms(t);
    println!(
        "log open (anchored scan) {open:.1} ms; full scan (no key) {full_scan:.1} ms; snapshot found and checked {check:.1} ms; \
         index from it {build:.1} ms; evaluate {eval:.1} ms ({} excluded); \
         Ledger::open_read_only + manifest {whole:.1} ms ({} excluded)",
        ex.excluded(),
        m.header.excluded
    );
}
