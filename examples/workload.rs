//! Builds a PERF.md workload in memory and times index build and manifest.
//!
//! `cargo run --release --example workload -- ws|wm|wc|wx [objecting_per_10k]`

use std::time::Instant;

use optout::engine;
use optout::workload::{cached_index, query, Spec};

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
    let args: Vec<String> = std::env::args().collect();
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
    let (index, _) = cached_index(&spec, cache.as_deref());
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
}
