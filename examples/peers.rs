//! The Rust side of the peer comparison (`benches/peers/run.py` drives it).
//!
//! ```text
//! peers dump    WORKLOAD OBJECTING_PER_10K DIR    # the workload as raw arrays, for the Python peers
//! peers optout  WORKLOAD OBJECTING_PER_10K REPS   # optout: index build, then evaluate REPS times
//! peers roaring WORKLOAD OBJECTING_PER_10K REPS   # roaring-rs: a bitmap per subject, then MultiOps::union
//! peers ledger  WORKLOAD OBJECTING_PER_10K DIR    # a snapshotted ledger DIR/ledger (key DIR/ledger.key), for whole-process runs of `optout manifest`
//! ```
//!
//! WORKLOAD is `ws`, `wm`, `wc` or `wx` (PERF.md), optionally scaled down
//! as `NAME/DIV` (`wm/50`: 2M records, 200k subjects). Every subcommand prints
//! one JSON line: times in milliseconds, the excluded count and a checksum
//! of the excluded global record numbers (`shard * rows + row`), so the
//! harness can check that every peer computed the same set.
//! `OPTOUT_WORKLOAD_CACHE=DIR` keeps optout's built index as a snapshot.

use std::io::Write;
use std::time::Instant;

use optout::engine;
use optout::workload::{cached_index, objects, query, subjects_of, Layout, Spec};
use roaring::{MultiOps, RoaringBitmap};

fn spec_of(name: &str, objecting: u64) -> Spec {
    let (base, div) = match name.split_once('/') {
        Some((b, d)) => (b, d.parse::<u32>().expect("scale divisor")),
        None => (name, 1),
    };
    let mut spec = Spec::named(base)
        .unwrap_or_else(|| panic!("unknown workload {name:?} (ws, wm, wc, wx, wsx)"))
        .scaled(div);
    spec.objecting_per_10k = objecting;
    spec
}

/// Writes the workload as a ledger at `dir/ledger` through the library's
/// ingest (buffered, one sync at the end), its events, and a snapshot, so
/// `optout manifest` opens it from the snapshot with nothing to replay.
fn ledger(spec: &Spec, dir: &std::path::Path) {
    use optout::storage::Durability;
    use optout::{Ledger, LedgerOptions, SubjectKeyer};
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("ledger");
    let key = dir.join("ledger.key");
    let _ = std::fs::remove_dir_all(&path);
    let _ = std::fs::remove_file(&key);
    let keyer = SubjectKeyer::create_key_file(&key).expect("key file");
    let opts = LedgerOptions {
        durability: Durability::Buffered,
        ..Default::default()
    };
    let t = Instant::now();
    let mut l = Ledger::create_with(optout::storage::FsIo::new(), &path, keyer, opts)
        .expect("create the ledger");
    for s in 0..spec.shards {
        l.ingest(optout::workload::shard_batch(spec, s))
            .expect("ingest");
    }
    l.apply(optout::workload::events(spec)).expect("events");
    l.sync().expect("sync");
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let snap = l.snapshot().expect("snapshot");
    let snap_s = t.elapsed().as_secs_f64();
    let q = query(spec.layout, l.index());
    let excluded = l.manifest(&q).expect("manifest").header.excluded;
    println!(
        "{{\"ledger\":{:?},\"build_s\":{build:.1},\"snapshot_s\":{snap_s:.2},\"snapshot_bytes\":{},\"excluded\":{excluded},\"peak_rss_mb\":{}}}",
        path.display().to_string(),
        std::fs::metadata(&snap).map_or(0, |m| m.len()),
        peak_rss_mb()
    );
}

/// Peak resident set of this process so far, in MiB.
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Order-independent checksum of a set of record numbers.
fn checksum(ids: impl Iterator<Item = u64>) -> u64 {
    ids.fold(0u64, |acc, r| acc.wrapping_add(splitmix(r)))
}

fn splitmix(x: u64) -> u64 {
    optout::workload::splitmix64(x)
}

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn write_u32s(path: &std::path::Path, v: &[u32]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for x in v {
        f.write_all(&x.to_le_bytes()).expect("write");
    }
    f.flush().expect("flush");
}

/// Links as (record number, subject) pairs, in record order.
fn links(spec: &Spec) -> (Vec<u32>, Vec<u32>) {
    let n = spec.records();
    let mut rid = Vec::with_capacity(n as usize);
    let mut sid = Vec::with_capacity(n as usize);
    let mut subj = Vec::new();
    for r in 0..n {
        subjects_of(spec, r, &mut subj);
        for &s in &subj {
            rid.push(r as u32);
            sid.push(s as u32);
        }
    }
    (rid, sid)
}

fn objectors(spec: &Spec) -> Vec<u32> {
    (0..spec.subjects)
        .filter(|&i| objects(spec, i))
        .map(|i| i as u32)
        .collect()
}

fn dump(spec: &Spec, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let (rid, sid) = links(spec);
    write_u32s(&dir.join("link_record.u32"), &rid);
    write_u32s(&dir.join("link_subject.u32"), &sid);
    let obj = objectors(spec);
    write_u32s(&dir.join("objectors.u32"), &obj);
    if spec.layout == Layout::Mixed {
        // The subjects who consented (see workload::events).
        let consenting: Vec<u32> = (0..spec.subjects)
            .filter(|&i| splitmix(i ^ 0xc0).is_multiple_of(10))
            .map(|i| i as u32)
            .collect();
        write_u32s(&dir.join("consenting.u32"), &consenting);
    }
    println!(
        "{{\"records\":{},\"rows\":{},\"shards\":{},\"subjects\":{},\"links\":{},\"objectors\":{},\"mixed\":{}}}",
        spec.records(),
        spec.rows,
        spec.shards,
        spec.subjects,
        rid.len(),
        obj.len(),
        spec.layout == Layout::Mixed
    );
}

fn optout_peer(spec: &Spec, name: &str, reps: usize) {
    let t = Instant::now();
    let cache = std::env::var_os("OPTOUT_WORKLOAD_CACHE").map(|d| {
        std::path::PathBuf::from(d).join(format!(
            "{}-{}.snap",
            name.replace('/', "-"),
            spec.objecting_per_10k
        ))
    });
    let (index, built) = cached_index(spec, cache.as_deref());
    let setup_kind = if built { "build" } else { "snapshot" };
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let q = query(spec.layout, &index);
    let mut times = Vec::new();
    let mut ex = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let e = engine::evaluate(&index, &q);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        ex = Some(e);
    }
    let ex = ex.expect("at least one run");
    let rows = spec.rows as u64;
    // Shard ids follow generation order (shard s is part-s).
    let sum = checksum(ex.shards.iter().flat_map(|(id, s)| {
        let base = id.0 as u64 * rows;
        s.excluded.iter().map(move |r| base + r as u64)
    }));
    let st = index.stats();
    let (med, min) = median(times);
    println!(
        "{{\"peer\":\"optout\",\"median_ms\":{med:.3},\"min_ms\":{min:.3},\"setup_ms\":{build_ms:.0},\"setup_kind\":\"{setup_kind}\",\"excluded\":{},\"checksum\":{sum},\"index_bytes\":{},\"link_bytes\":{},\"links\":{},\"peak_rss_mb\":{}}}",
        ex.excluded(),
        st.heap_bytes,
        st.link_bytes,
        st.links,
        peak_rss_mb()
    );
}

fn roaring_peer(spec: &Spec, reps: usize) {
    assert!(
        spec.layout != Layout::Mixed,
        "the per-subject union answers objections only; W-X has rules it cannot express"
    );
    let t = Instant::now();
    let (rid, sid) = links(spec);
    let mut per: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); spec.subjects as usize];
    for (&r, &s) in rid.iter().zip(&sid) {
        per[s as usize].push(r);
    }
    drop((rid, sid));
    let obj = objectors(spec);
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    let mut out = RoaringBitmap::new();
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        out = obj.iter().map(|&s| &per[s as usize]).union();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (med, min) = median(times);
    println!(
        "{{\"peer\":\"roaring-rs\",\"median_ms\":{med:.3},\"min_ms\":{min:.3},\"setup_ms\":{build_ms:.0},\"excluded\":{},\"checksum\":{},\"peak_rss_mb\":{}}}",
        out.len(),
        checksum(out.iter().map(u64::from)),
        peak_rss_mb()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: peers dump|optout|roaring|ledger WORKLOAD OBJECTING_PER_10K DIR|REPS";
    let (Some(cmd), Some(w), Some(obj), Some(last)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let spec = spec_of(w, obj.parse().expect("objecting per 10k"));
    match cmd.as_str() {
        "dump" => dump(&spec, std::path::Path::new(last)),
        "optout" => optout_peer(&spec, w, last.parse().expect("reps")),
        "roaring" => roaring_peer(&spec, last.parse().expect("reps")),
        "ledger" => ledger(&spec, std::path::Path::new(last)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
