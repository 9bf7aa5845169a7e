//! Builds a PERF.md workload in memory and times index build and manifest.
//!
//! `cargo run --release --example workload -- ws|wm|wc|wx [objecting_per_10k] [--head]`
//!
//! `--head` also times the head cache (issue 19): a manifest (evaluation,
//! build, seal) at the head from a warm cache, after one objection is
//! appended (patched; at the time of the workload's events, and at a time
//! between them and the query's), and at an earlier (seq, time) (a miss).
//! Every cached answer is checked against a fresh evaluation once.

use std::time::Instant;

use optout::engine::{self, HeadCache};
use optout::event::{Entry, Event, EventKind};
use optout::workload::{cached_index, objects, query, subject, Spec};
use optout::{Index, Manifest, Purpose, Purposes, Query, Seq, Timestamp};

fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
            })
        })
        .unwrap_or(0)
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let head = args.iter().any(|a| a == "--head");
    args.retain(|a| a != "--head");
    let name = args.get(1).map_or("ws", String::as_str);
    let mut spec = Spec::named(name)
        .unwrap_or_else(|| panic!("unknown workload {name:?} (ws, wm, wc, wx, wsx)"));
    if let Some(p) = args.get(2) {
        spec.objecting_per_10k = p.parse().expect("objecting per 10k");
    }
    let t = Instant::now();
    // OPTOUT_WORKLOAD_CACHE=DIR keeps the built index as a snapshot there,
    // so repeated runs (profiling) skip the build.
    let cache = std::env::var_os("OPTOUT_WORKLOAD_CACHE").map(|d| {
        std::path::PathBuf::from(d).join(format!(
            "{}-{:?}-{}.snap",
            name, spec.layout, spec.objecting_per_10k
        ))
    });
    let (mut index, _) = cached_index(&spec, cache.as_deref());
    let build = t.elapsed();
    let st = index.stats();
    let q = query(spec.layout, &index);
    let mut times = Vec::new();
    let mut excluded = 0;
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    for _ in 0..reps.max(4) {
        let t = Instant::now();
        let ex = engine::evaluate(&index, &q);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        excluded = ex.excluded();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{:?} records={} subjects={} links={} build={:.2}s manifest_median={:.2}ms (min {:.2}) excluded={} link_bytes/link={:.2} index_heap={}MB peak_rss={}MB",
        spec.layout, st.records, st.subjects, st.links, build.as_secs_f64(), times[3], times[0], excluded,
        st.link_bytes as f64 / st.links.max(1) as f64, st.heap_bytes >> 20, rss_mb()
    );
    if head {
        head_cache(&spec, &mut index, &q, reps.max(4));
    }
}

/// Median and min of `times` (ms), sorted in place.
fn median(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// A manifest of `ex` built and sealed (fixed ledger id and chain head).
fn seal(index: &Index, q: &Query, ex: &optout::Exclusions) -> usize {
    Manifest::build(index, q, ex, [1u8; 16], [2u8; 32])
        .to_bytes()
        .len()
}

/// Appends an objection of a subject that had none, taking effect at `at`.
fn object(spec: &Spec, index: &mut Index, next: &mut u64, at: Timestamp) -> (Seq, Entry) {
    while objects(spec, *next) {
        *next += 1;
    }
    let ai = Purpose::new(Purpose::AI_TRAINING).expect("a purpose");
    let e = Entry::Event(Event {
        at,
        reference: None,
        kind: EventKind::Objection {
            subject: subject(*next),
            purposes: Purposes::Some(vec![ai]),
            categories: vec![],
            sources: vec![],
        },
    });
    *next += 1;
    let seq = Seq(index.seq().0 + 1);
    index.apply(seq, &e).expect("an objection applies");
    (seq, e)
}

/// The `--head` figures (see the module doc).
fn head_cache(spec: &Spec, index: &mut Index, q: &Query, reps: usize) {
    let mut cache = HeadCache::default();
    let t = Instant::now();
    cache.evaluate(index, q);
    let cold = t.elapsed().as_secs_f64() * 1e3;
    let mut hit = Vec::new();
    let mut build = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let ex = cache.evaluate(index, q);
        let n = seal(index, q, &ex);
        hit.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(seal(index, q, &ex) + n);
        build.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Late-filed objections: at the workload's events' time (patched in
    // place), and between it and the query's time (the entry split: the
    // earlier part kept, the patched part copied).
    let mut next = spec.subjects / 3;
    let mut line = String::new();
    for (what, at) in [
        (
            "objection_at_lo",
            Timestamp::from_unix_seconds(1_710_000_000),
        ),
        ("objection_mid", Timestamp::from_unix_seconds(1_750_000_000)),
    ] {
        let mut patch = Vec::new();
        for k in 0..reps {
            let t = Instant::now();
            let (seq, e) = object(spec, index, &mut next, at);
            cache.appended(index, seq, &e);
            let q = Query { seq, ..q.clone() };
            let ex = cache.evaluate(index, &q);
            seal(index, &q, &ex);
            patch.push(t.elapsed().as_secs_f64() * 1e3);
            if k == 0 {
                assert_eq!(*ex, engine::evaluate(index, &q), "{what}: patched vs fresh");
            }
        }
        let (m, min) = median(&mut patch);
        line += &format!(" {what}_median={m:.2}ms (min {min:.2})");
    }
    // An earlier (seq, time): a miss, evaluated then kept.
    let mut earlier = Vec::new();
    for k in 0..reps {
        let q = Query {
            seq: q.seq,
            at: Timestamp(q.at.0 - 1_000_000_000 * (1 + k as i64)),
            ..q.clone()
        };
        let mut c = HeadCache::default();
        let t = Instant::now();
        let ex = c.evaluate(index, &q);
        seal(index, &q, &ex);
        earlier.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let s = cache.stats();
    let ((h, hmin), (b, _), (e, emin)) =
        (median(&mut hit), median(&mut build), median(&mut earlier));
    println!(
        "head: cold={cold:.2}ms hit_manifest_median={h:.2}ms (min {hmin:.2}; build+seal {b:.2}ms){line} earlier_seq_manifest_median={e:.2}ms (min {emin:.2}) stats={s:?} peak_rss={}MB",
        rss_mb()
    );
}
