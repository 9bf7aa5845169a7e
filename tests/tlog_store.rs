//! The tree store on `MemIo`: reopening, damage, crashes at every I/O step
//! (with dropped, torn and reordered unsynced writes), crashes during
//! recovery, and rebuilding from the log's leaves.

use std::path::Path;

use optout::storage::{Fault, Io, MemIo};
use optout::tlog::{
    leaf_hash, root_of, Hash, LeafSource, StoreOptions, StoreRecovery, TlogError, TreeStore,
    NODES_FILE, SYNC_EVERY_TILES, TAIL_FILE,
};

const DIR: &str = "/ledger/tree";
const ID: [u8; 16] = [3; 16];

fn opts(k: u32) -> StoreOptions {
    StoreOptions {
        tile_height: k,
        log_id: ID,
    }
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn setup_dir(io: &MemIo) {
    io.create_dir(Path::new("/ledger")).unwrap();
    io.sync_dir(Path::new("/")).unwrap();
}

fn open(io: &MemIo, k: u32, log: &[Hash]) -> Result<(TreeStore<MemIo>, StoreRecovery), TlogError> {
    TreeStore::open(io.clone(), DIR, opts(k), log.len() as u64, &mut &log[..])
}

/// A leaf source that must not be asked for anything.
struct NoLeaves;
impl LeafSource for NoLeaves {
    fn leaf_hashes(&mut self, start: u64, end: u64, _: &mut Vec<Hash>) -> Result<(), TlogError> {
        Err(TlogError::Leaves(format!("asked for {start}..{end}")))
    }
}

fn flip_byte(io: &MemIo, path: &Path, at: u64) {
    let mut b = [0u8; 1];
    io.read_at(path, at, &mut b).unwrap();
    io.write_at(path, at, &[b[0] ^ 4]).unwrap();
}

/// Root, size and a spread of proofs of a store equal the definition.
fn check_tree(store: &mut TreeStore<MemIo>, log: &[Hash]) {
    let n = log.len() as u64;
    assert_eq!(store.size(), n);
    assert_eq!(store.root(), root_of(log));
    if n == 0 {
        return;
    }
    for i in [0, n / 3, n / 2, n - 1] {
        let p = store.inclusion_proof(i, n, &mut &log[..]).unwrap();
        p.verify(&log[i as usize], &store.root()).unwrap();
    }
    let m = n / 2;
    let c = store.consistency_proof(m, n, &mut &log[..]).unwrap();
    c.verify(&root_of(&log[..m as usize]), &store.root())
        .unwrap();
}

#[test]
fn reopen_uses_the_files_and_reads_the_log_only_for_old_tiles() {
    for k in [0, 1, 3, 8] {
        let io = MemIo::new();
        setup_dir(&io);
        let log = leaves(1000);
        let (mut s, rec) = open(&io, k, &[]).unwrap();
        assert_eq!(rec.created, Some("missing"));
        for (i, l) in log.iter().enumerate() {
            s.append(*l);
            if i % 37 == 0 {
                s.persist(i as u64 + 1).unwrap();
            }
        }
        s.persist(1000).unwrap();
        check_tree(&mut s, &log);
        drop(s);
        // Neither whole tiles nor the filling tile come from the log.
        let (mut s, rec) = TreeStore::open(io.clone(), DIR, opts(k), 1000, &mut NoLeaves).unwrap();
        assert_eq!(rec, StoreRecovery::default(), "k = {k}");
        assert_eq!(s.root(), root_of(&log));
        // A proof below the stored levels reads that one tile from the log.
        if k > 0 {
            assert!(s.inclusion_proof(5, 1000, &mut NoLeaves).is_err());
        }
        check_tree(&mut s, &log);
        // A later open with another tile height keeps the store's own.
        drop(s);
        let (s, _) = open(&io, 5, &log).unwrap();
        assert_eq!(s.tile_height(), k);
    }
}

#[test]
fn persist_writes_only_what_the_log_made_durable() {
    let io = MemIo::new();
    setup_dir(&io);
    let log = leaves(100);
    let (mut s, _) = open(&io, 2, &[]).unwrap();
    for l in &log {
        s.append(*l);
    }
    s.persist(37).unwrap();
    assert_eq!(s.persisted_size(), 36);
    // A power loss before any fsync: the log's 37 entries are recomputed.
    let img = io.crash_image(optout::storage::CrashKind::DurableOnly, 1);
    let (mut t, rec) = open(&img, 2, &log[..37]).unwrap();
    assert_eq!((rec.tiles_recomputed, rec.tail_leaves_read), (9, 1));
    check_tree(&mut t, &log[..37]);
    // After sync, the durable tiles are not recomputed. (Leaf 36 is in a
    // tile the store has completed in memory: it is written with the
    // tile's records once the log makes the tile durable.)
    s.sync().unwrap();
    let img = io.crash_image(optout::storage::CrashKind::DurableOnly, 1);
    let (mut t, rec) = open(&img, 2, &log[..37]).unwrap();
    assert_eq!(
        (rec.tiles_recomputed, rec.records_dropped),
        (0, 0),
        "{rec:?}"
    );
    check_tree(&mut t, &log[..37]);
    // persist fsyncs by itself every SYNC_EVERY_TILES tiles.
    let log = leaves(4 * (SYNC_EVERY_TILES + 1) + 3);
    let io = MemIo::new();
    setup_dir(&io);
    let (mut s, _) = open(&io, 2, &[]).unwrap();
    for l in &log {
        s.append(*l);
        s.persist(s.size()).unwrap();
    }
    let img = io.crash_image(optout::storage::CrashKind::DurableOnly, 1);
    let (_, rec) = open(&img, 2, &log).unwrap();
    assert_eq!(
        (rec.tiles_recomputed, rec.tail_leaves_read),
        (1, 3),
        "{rec:?}"
    );
}

#[test]
fn damage_is_cut_and_recomputed_from_the_log() {
    let io = MemIo::new();
    setup_dir(&io);
    let log = leaves(500);
    let (mut s, _) = open(&io, 2, &[]).unwrap();
    for l in &log {
        s.append(*l);
    }
    s.persist(500).unwrap();
    drop(s);
    let nodes = Path::new(DIR).join(NODES_FILE);
    let len = io.file_len(&nodes).unwrap();
    // A flipped bit in the middle of the nodes file.
    flip_byte(&io, &nodes, 48 + (len - 48) / 2);
    let (mut s, rec) = open(&io, 2, &log).unwrap();
    assert!(
        rec.records_dropped > 0 && rec.tiles_recomputed > 0,
        "{rec:?}"
    );
    check_tree(&mut s, &log);
    drop(s);
    let (_, rec) = open(&io, 2, &log).unwrap();
    assert_eq!(rec, StoreRecovery::default(), "repaired for good");

    // A log shorter than the store (entries the store saw are gone).
    let (mut s, rec) = open(&io, 2, &log[..201]).unwrap();
    assert!(rec.records_dropped > 0);
    check_tree(&mut s, &log[..201]);

    // A damaged tail file: its bad records are read from the log instead.
    for l in &log[201..203] {
        s.append(*l);
    }
    s.persist(203).unwrap();
    drop(s);
    flip_byte(&io, &Path::new(DIR).join(TAIL_FILE), 48 + 36 + 5);
    let (mut s, rec) = open(&io, 2, &log[..203]).unwrap();
    assert_eq!(rec.tail_leaves_read, 2, "{rec:?}");
    check_tree(&mut s, &log[..203]);
}

#[test]
fn a_store_of_another_log_or_a_bad_header_starts_over_and_a_newer_version_is_refused() {
    let io = MemIo::new();
    setup_dir(&io);
    let log = leaves(50);
    let (mut s, _) = open(&io, 2, &[]).unwrap();
    for l in &log {
        s.append(*l);
    }
    s.persist(50).unwrap();
    drop(s);
    let other = StoreOptions {
        tile_height: 2,
        log_id: [4; 16],
    };
    let (s, rec) = TreeStore::open(io.clone(), DIR, other, 50, &mut &log[..]).unwrap();
    assert_eq!(rec.created, Some("another log"));
    assert_eq!(s.root(), root_of(&log));
    drop(s);

    let nodes = Path::new(DIR).join(NODES_FILE);
    io.write_at(&nodes, 0, b"XXXX").unwrap();
    let (s, rec) = open(&io, 2, &log).unwrap();
    assert_eq!(rec.created, Some("not a tree store header"));
    assert_eq!(s.root(), root_of(&log));
    drop(s);

    // Version 2 with a valid checksum: an error, and the file is untouched.
    let mut h = vec![0u8; 48];
    io.read_at(&nodes, 0, &mut h).unwrap();
    h[8] = 2;
    let crc = crc32fast::hash(&h[..44]);
    h[44..48].copy_from_slice(&crc.to_le_bytes());
    io.write_at(&nodes, 0, &h).unwrap();
    let before = io.read_all(&nodes).unwrap();
    match open(&io, 2, &log) {
        Err(TlogError::UnsupportedVersion { version: 2, .. }) => {}
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(io.read_all(&nodes).unwrap(), before);
}

#[test]
fn a_log_that_changed_under_a_tile_is_reported() {
    let io = MemIo::new();
    setup_dir(&io);
    let log = leaves(64);
    let (mut s, _) = open(&io, 3, &[]).unwrap();
    for l in &log {
        s.append(*l);
    }
    s.persist(64).unwrap();
    let mut rewritten = log.clone();
    rewritten[9] = leaf_hash(b"rewritten");
    match s.inclusion_proof(9, 64, &mut &rewritten[..]) {
        Err(TlogError::TileMismatch {
            tile: 1,
            first: 8,
            end: 16,
        }) => {}
        other => panic!("expected TileMismatch, got {other:?}"),
    }
}

#[test]
fn rebuilt_from_the_log_to_the_same_root() {
    let io = MemIo::new();
    setup_dir(&io);
    let log = leaves(777);
    let (mut s, rec) = open(&io, 4, &log).unwrap();
    assert_eq!(rec.created, Some("missing"));
    assert_eq!(rec.tiles_recomputed, 777 / 16);
    assert_eq!(rec.tail_leaves_read, 777 % 16);
    check_tree(&mut s, &log);
}

/// The workload of the crash tests: batches of appends, each followed by
/// `persist` of everything (the log fsyncs each batch first).
const BATCHES: [u64; 12] = [1, 3, 4, 9, 64, 2, 17, 1, 100, 5, 31, 8];

/// Runs the workload until an I/O error; returns the leaves the log holds
/// (every batch whose log append returned, including one whose store
/// persist failed).
fn run_workload(io: &MemIo, k: u32, log: &[Hash]) -> usize {
    let Ok((mut s, _)) = open(io, k, &[]) else {
        return 0;
    };
    let mut n = 0usize;
    for b in BATCHES {
        for l in &log[n..n + b as usize] {
            s.append(*l);
        }
        n += b as usize;
        if s.persist(n as u64).is_err() {
            return n;
        }
    }
    n
}

/// The nodes file of a clean build of `n` leaves.
fn clean_nodes(k: u32, log: &[Hash], n: usize) -> Vec<u8> {
    let io = MemIo::new();
    setup_dir(&io);
    let (s, _) = open(&io, k, &log[..n]).unwrap();
    drop(s);
    io.read_all(&Path::new(DIR).join(NODES_FILE)).unwrap()
}

#[test]
fn crash_at_every_io_step_recovers_to_the_log() {
    let total: u64 = BATCHES.iter().sum();
    let log = leaves(total + 50);
    for k in [0, 2, 3] {
        let probe = MemIo::new();
        setup_dir(&probe);
        run_workload(&probe, k, &log);
        let ops = probe.op_count();
        let full = clean_nodes(k, &log, total as usize);
        let mut images = 0;
        for cut in 0..ops {
            let io = MemIo::new();
            setup_dir(&io);
            io.set_fault(Some(Fault::From(io.op_count() + cut)));
            let n = run_workload(&io, k, &log);
            io.set_fault(None);
            for (i, img) in io.crash_images(cut, 8).into_iter().enumerate() {
                images += 1;
                let (mut s, _) = open(&img, k, &log[..n])
                    .unwrap_or_else(|e| panic!("k {k} cut {cut} image {i}: {e}"));
                check_tree(&mut s, &log[..n]);
                // The recovered records are a prefix of a clean build's.
                drop(s);
                let nodes = img.read_all(&Path::new(DIR).join(NODES_FILE)).unwrap();
                assert!(full.starts_with(&nodes[..]) || nodes.starts_with(&full[..]));
                assert_eq!(
                    &nodes[..],
                    &clean_nodes(k, &log, n)[..],
                    "k {k} cut {cut} image {i}"
                );
                // And it keeps working.
                let (mut s, _) = open(&img, k, &log[..n]).unwrap();
                for l in &log[n..n + 13] {
                    s.append(*l);
                }
                s.persist(n as u64 + 13).unwrap();
                check_tree(&mut s, &log[..n + 13]);
            }
        }
        assert!(images >= 8 * 20, "k {k}: only {images} images");
    }
}

#[test]
fn crash_during_recovery_recovers_too() {
    let k = 2;
    let total: u64 = BATCHES.iter().sum();
    let log = leaves(total);
    // A store that lost everything unsynced, then more entries in the log
    // than it has: opening must catch up, and may itself be cut anywhere.
    let base = MemIo::new();
    setup_dir(&base);
    let (mut s, _) = open(&base, k, &[]).unwrap();
    for l in &log[..61] {
        s.append(*l);
    }
    s.persist(61).unwrap();
    drop(s);
    let base = base.crash_image(optout::storage::CrashKind::DurableOnly, 0);
    let probe = base.fork();
    open(&probe, k, &log).unwrap();
    let ops = probe.op_count();
    for cut in 0..ops {
        let io = base.fork();
        io.set_fault(Some(Fault::From(cut)));
        assert!(open(&io, k, &log).is_err(), "cut {cut} did not fail");
        io.set_fault(None);
        for img in io.crash_images(cut ^ 0x55, 6) {
            let (mut s, _) = open(&img, k, &log).unwrap();
            check_tree(&mut s, &log);
        }
    }
}

#[test]
fn the_ledger_log_is_a_leaf_source() {
    use optout::storage::{Log, LogOptions};
    use optout::tlog::entry_leaf_hash;
    let io = MemIo::new();
    let mut log = Log::open(io.clone(), "/ledger", LogOptions::new().create(true)).unwrap();
    let payloads: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    for chunk in payloads.chunks(64) {
        let refs: Vec<&[u8]> = chunk.iter().map(|p| p.as_slice()).collect();
        log.append_group(&refs).unwrap();
    }
    let want: Vec<Hash> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| entry_leaf_hash(i as u64 + 1, p))
        .collect();
    let n = log.head().0 .0;
    assert_eq!(n, 300);
    let (mut s, rec) = TreeStore::open(io.clone(), DIR, opts(3), n, &mut &log).unwrap();
    assert_eq!(rec.tiles_recomputed, 300 / 8);
    assert_eq!(s.root(), root_of(&want));
    let p = s.inclusion_proof(100, n, &mut &log).unwrap();
    p.verify(&want[100], &s.root()).unwrap();
    // A store that lags the log catches up by replaying it.
    let (mut lagging, _) =
        TreeStore::open(io.clone(), "/ledger/tree3", opts(3), 100, &mut &log).unwrap();
    assert_eq!(lagging.extend_from_log(&log).unwrap(), 200);
    assert_eq!(lagging.root(), root_of(&want));
    assert_eq!(lagging.extend_from_log(&log).unwrap(), 0);
    // The log ends before the store's claimed size: an error, not a tree.
    assert!(TreeStore::open(io.fork(), "/ledger/tree2", opts(3), n + 1, &mut &log).is_err());
}
