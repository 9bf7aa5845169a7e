//! Transparency log costs (issue 16): appending with the tree maintained
//! (T5 must hold), root and checkpoint signing at 100M leaves, inclusion
//! and consistency proofs, receipt size.
//!
//! `cargo bench --features signing --bench tlog` (OPTOUT_TLOG_LEAVES sets
//! the big tree's size, default 100,000,000; OPTOUT_BENCH_DIR the disk).
//! Figures go in BENCHMARKS.md, "Transparency log".

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use optout::event::{Event, EventKind};
use optout::storage::{FsIo, Log, LogOptions};
use optout::tlog::{
    entry_leaf_hash, leaf_hash, ledger_origin, Checkpoint, CheckpointVerifier, Hash, KeyKind,
    LeafSource, Receipt, SignerKey, StoreOptions, TlogError, TreeStore,
};
use optout::{codec, workload, Entry, Purpose, Purposes, Timestamp};

fn dir(name: &str) -> PathBuf {
    let base = std::env::var_os("OPTOUT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tlog"));
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

/// A realistic log entry: one encoded objection.
fn objection(i: u64) -> Vec<u8> {
    let e = Entry::Event(Event {
        at: Timestamp::from_unix_seconds(1_710_000_000),
        reference: Some(format!("ticket-{i}")),
        kind: EventKind::Objection {
            subject: workload::subject(i),
            purposes: Purposes::Some(vec![Purpose::new("ai-training").unwrap()]),
            categories: vec![],
            sources: vec![],
        },
    });
    codec::encode(&e).unwrap()
}

const ID: [u8; 16] = [0x42; 16];

/// T5 with and without the tree: log appends (one fsync per batch) and the
/// same with the leaf hashed, appended and the store persisted.
fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(4));
    for batch in [64usize, 1024] {
        let payloads: Vec<Vec<u8>> = (0..batch as u64).map(objection).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        g.throughput(Throughput::Elements(batch as u64));

        let d = dir(&format!("log-{batch}"));
        let mut log = Log::open(FsIo::new(), d.join("l"), LogOptions::new().create(true)).unwrap();
        g.bench_function(BenchmarkId::new("log-only", batch), |b| {
            b.iter(|| log.append_group(&refs).unwrap())
        });
        // A store kept only when asked (checkpoint, receipts): catching up
        // with everything the log-only run appended, by replaying it.
        let none: &[Hash] = &[];
        let (mut lazy, _) = TreeStore::open(
            FsIo::new(),
            d.join("tree"),
            StoreOptions::new(ID),
            0,
            &mut &*none,
        )
        .unwrap();
        let t = Instant::now();
        let added = lazy.extend_from_log(&log).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "tlog: catching up from the log: {added} entries in {:.1} ms = {:.2} M entries/s",
            s * 1e3,
            added as f64 / s / 1e6
        );

        // The tree's part alone: hash, append, persist (no log, no fsync
        // but every SYNC_EVERY_TILES tiles).
        let d = dir(&format!("tree-only-{batch}"));
        let none: &[Hash] = &[];
        let (mut store, _) = TreeStore::open(
            FsIo::new(),
            d.join("tree"),
            StoreOptions::new(ID),
            0,
            &mut &*none,
        )
        .unwrap();
        g.bench_function(BenchmarkId::new("tree-only", batch), |b| {
            b.iter(|| {
                let first = store.size() + 1;
                for (i, p) in refs.iter().enumerate() {
                    store.append(entry_leaf_hash(first + i as u64, p));
                }
                store.persist(store.size()).unwrap();
            })
        });

        let d = dir(&format!("tree-{batch}"));
        let mut log = Log::open(FsIo::new(), d.join("l"), LogOptions::new().create(true)).unwrap();
        let none: &[Hash] = &[];
        let (mut store, _) = TreeStore::open(
            FsIo::new(),
            d.join("tree"),
            StoreOptions::new(ID),
            0,
            &mut &*none,
        )
        .unwrap();
        g.bench_function(BenchmarkId::new("log-and-tree", batch), |b| {
            b.iter(|| {
                let r = log.append_group(&refs).unwrap();
                for (i, p) in refs.iter().enumerate() {
                    store.append(entry_leaf_hash(r.first.0 + i as u64, p));
                }
                store.persist(log.durable_head().0).unwrap();
            })
        });
    }
    g.finish();
}

/// Leaf `i` of the synthetic tree: 256 distinct leaves repeating, so the
/// tiles a proof reads back cost no log I/O (a real log adds the reads of
/// 256 entries to an uncached tile).
struct Periodic([Hash; 256]);

impl Periodic {
    fn new() -> Self {
        Periodic(std::array::from_fn(|i| {
            leaf_hash(&(i as u64).to_le_bytes())
        }))
    }
}

impl LeafSource for Periodic {
    fn leaf_hashes(&mut self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), TlogError> {
        out.extend((start..end).map(|i| self.0[(i % 256) as usize]));
        Ok(())
    }
}

fn big(c: &mut Criterion) {
    let n: u64 = std::env::var("OPTOUT_TLOG_LEAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000_000)
        + 37; // a partial tail tile
    let d = dir("big");
    let tree = d.join("tree");
    let mut src = Periodic::new();
    let t = Instant::now();
    {
        let none: &[Hash] = &[];
        let (mut s, _) =
            TreeStore::open(FsIo::new(), &tree, StoreOptions::new(ID), 0, &mut &*none).unwrap();
        for i in 0..n {
            s.append(src.0[(i % 256) as usize]);
            if i % (1 << 20) == 0 {
                s.persist(i + 1).unwrap();
            }
        }
        s.persist(n).unwrap();
    }
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut store, rec) =
        TreeStore::open(FsIo::new(), &tree, StoreOptions::new(ID), n, &mut src).unwrap();
    let open = t.elapsed().as_secs_f64();
    assert_eq!(rec.tiles_recomputed, 0);
    let bytes = std::fs::metadata(tree.join("nodes")).unwrap().len();
    println!(
        "tlog: {n} leaves: appended in {build:.1} s ({:.2} M leaves/s, tree only); \
         reopened in {:.1} ms; nodes file {bytes} B = {:.3} B/leaf",
        n as f64 / build / 1e6,
        open * 1e3,
        bytes as f64 / n as f64
    );

    let key = SignerKey::from_seed(
        &ledger_origin("optout.example", &ID),
        KeyKind::Ed25519,
        [3; 32],
    )
    .unwrap();
    let verifier = CheckpointVerifier::new(key.verifier()).origin(key.name());
    let mut g = c.benchmark_group("tlog-100m");
    g.bench_function("root", |b| b.iter(|| store.root()));
    g.bench_function("checkpoint-sign", |b| {
        b.iter(|| {
            Checkpoint::new(key.name(), n, store.root())
                .sign(&key)
                .unwrap()
        })
    });
    let note = Checkpoint::new(key.name(), n, store.root())
        .sign(&key)
        .unwrap();
    g.bench_function("checkpoint-verify", |b| {
        b.iter(|| verifier.verify(note.as_bytes()).unwrap())
    });

    // A different old tile every time (never cached), and the newest leaf.
    let mut x = 0x9E37_79B9u64;
    g.bench_function("inclusion-proof-old-tile", |b| {
        b.iter(|| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            store
                .inclusion_proof((x >> 11) % (n - 300), n, &mut src)
                .unwrap()
        })
    });
    g.bench_function("inclusion-proof-recent", |b| {
        b.iter(|| store.inclusion_proof(n - 1, n, &mut src).unwrap())
    });
    let leaf = n / 3;
    let proof = store.inclusion_proof(leaf, n, &mut src).unwrap();
    let root = store.root();
    let lh = src.0[(leaf % 256) as usize];
    g.bench_function("inclusion-verify", |b| {
        b.iter(|| proof.verify(&lh, &root).unwrap())
    });
    let old = n / 2 + 3;
    let old_root = store.root_at(old, &mut src).unwrap();
    g.bench_function("consistency-proof", |b| {
        b.iter(|| store.consistency_proof(old, n, &mut src).unwrap())
    });
    let cproof = store.consistency_proof(old, n, &mut src).unwrap();
    g.bench_function("consistency-verify", |b| {
        b.iter(|| cproof.verify(&old_root, &root).unwrap())
    });
    g.finish();

    // Receipt size: an objection entry in a tree of n (the proof is as in
    // a tree of real entries: the size, not the contents, sets its length).
    let entry = objection(7);
    let summary = serde_json::json!({
        "type": "objection", "subject": "7af08b522dad9f79d1332ef98a749983",
        "purposes": ["ai-training"], "at": "2024-03-09T16:00:00Z", "ref": "ticket-7"
    });
    let r = Receipt::new(&ID, leaf + 1, &entry, summary, note.clone(), proof.clone()).unwrap();
    let compact = serde_json::to_string(&r).unwrap().len();
    println!(
        "tlog: receipt at {n} leaves: {} B pretty JSON, {compact} B compact \
         ({} proof hashes, {} B entry, {} B checkpoint note)",
        r.to_json().len(),
        proof.hashes.len(),
        entry.len(),
        note.len()
    );
}

criterion_group!(benches, append, big);
criterion_main!(benches);
