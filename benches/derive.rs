//! W-D: the manifest of a derived dataset (packed rows with 1-20 parents
//! each, drawn from the W-S sources) beside the source manifest, in the
//! same run, and the lineage's bytes per link.
//! `cargo bench --bench derive`; figures go in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use optout::workload::{build_index, Spec};
use optout::{engine, Index, Query};

fn derive(c: &mut Criterion) {
    let mut g = c.benchmark_group("wd");
    g.sample_size(10);
    // div 10: 1M source rows, 1M derived rows; div 1: 10M and 10M.
    let div: u32 = std::env::var("OPTOUT_WD_DIV")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let spec = Spec::ws().scaled(div);
    let index: Index = build_index(&spec);
    let q: Query = optout::workload::query(spec.layout, &index);
    let source_rows = spec.shards as u64 * spec.rows as u64;
    g.bench_with_input(
        BenchmarkId::new("source-manifest", source_rows),
        &index,
        |b, ix| b.iter(|| engine::evaluate(ix, &q)),
    );
    let mut derived = index.clone();
    derived.derive_synthetic("packed", spec.shards, spec.rows, 42);
    derived.compact();
    let st = derived.stats();
    eprintln!(
        "W-D/{div}: {} derived rows, {} links, {} lineage bytes = {:.2} bytes per link",
        st.derived,
        st.lineage_links,
        st.lineage_bytes,
        st.lineage_bytes as f64 / st.lineage_links as f64
    );
    let mut qd = q.clone();
    qd.seq = derived.seq();
    qd.datasets = vec!["packed".into()];
    let ex = engine::evaluate(&derived, &qd);
    eprintln!("W-D/{div}: {} derived rows excluded", ex.excluded());
    g.bench_with_input(
        BenchmarkId::new("derived-manifest", st.derived),
        &derived,
        |b, ix| b.iter(|| engine::evaluate(ix, &qd)),
    );
    g.finish();
}

criterion_group!(benches, derive);
criterion_main!(benches);
