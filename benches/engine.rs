//! Criterion benches of the core operations at W-S sizes (PERF.md).
//! `cargo bench --bench engine`; figures go in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use optout::manifest::Manifest;
use optout::workload::{build_index, shard_batch, Layout, Spec};
use optout::{engine, Entry, Index, Query, Seq};

fn query(index: &Index, layout: Layout) -> Query {
    optout::workload::query(layout, index)
}

/// T1 / T3 at W-S/10 and W-S, for 0.1%, 1% and 10% objecting, and W-X rules.
fn evaluate(c: &mut Criterion) {
    let mut g = c.benchmark_group("evaluate");
    g.sample_size(10);
    for (name, div) in [("ws-div10", 10), ("ws", 1)] {
        for per10k in [10u64, 100, 1000] {
            let spec = Spec {
                objecting_per_10k: per10k,
                ..Spec::ws().scaled(div)
            };
            let index = build_index(&spec);
            let q = query(&index, spec.layout);
            let id = BenchmarkId::new(
                format!("{name}-uniform"),
                format!("{}permille", per10k / 10),
            );
            g.bench_with_input(id, &index, |b, ix| b.iter(|| engine::evaluate(ix, &q)));
        }
        let spec = Spec {
            layout: Layout::Mixed,
            ..Spec::ws().scaled(div)
        };
        let index = build_index(&spec);
        let q = query(&index, spec.layout);
        g.bench_with_input(
            BenchmarkId::new(format!("{name}-mixed"), "wx-rules"),
            &index,
            |b, ix| b.iter(|| engine::evaluate(ix, &q)),
        );
    }
    g.finish();
}

/// T9: save (encode) and verified load (decode) of a manifest with ~1M excluded ids.
fn manifest_codec(c: &mut Criterion) {
    let spec = Spec {
        objecting_per_10k: 1000,
        ..Spec::ws()
    };
    let index = build_index(&spec);
    let q = query(&index, spec.layout);
    let ex = engine::evaluate(&index, &q);
    let m = Manifest::build(&index, &q, &ex, [0; 16], [0; 32]);
    let bytes = m.to_bytes();
    let mut g = c.benchmark_group("manifest");
    g.sample_size(20);
    g.throughput(Throughput::Elements(m.header.excluded));
    g.bench_function(BenchmarkId::new("encode", m.header.excluded), |b| {
        b.iter(|| m.to_bytes())
    });
    g.bench_function(
        BenchmarkId::new("decode-verified", m.header.excluded),
        |b| b.iter(|| Manifest::from_bytes(&bytes).unwrap()),
    );
    g.finish();
}

/// T6: keep masks over one shard's sorted rows.
fn keep_mask(c: &mut Criterion) {
    let spec = Spec {
        objecting_per_10k: 1000,
        ..Spec::ws().scaled(10)
    };
    let index = build_index(&spec);
    let q = query(&index, spec.layout);
    let ex = engine::evaluate(&index, &q);
    let m = Manifest::build(&index, &q, &ex, [0; 16], [0; 32]);
    let shard = &m.shards[0];
    let mut g = c.benchmark_group("keep_mask");
    for n in [10_000u32, 1_000_000] {
        let rows: Vec<u32> = (0..n).collect();
        let mut out = vec![true; rows.len()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("sorted", n), |b| {
            b.iter(|| shard.keep_mask_into(&rows, &mut out))
        });
    }
    g.finish();
}

/// T8 (in-process): folding record batches into the index.
fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    for shards in [10u32, 100] {
        let spec = Spec {
            shards,
            ..Spec::ws()
        };
        let batches: Vec<Entry> = (0..shards)
            .map(|s| Entry::Records(shard_batch(&spec, s)))
            .collect();
        g.throughput(Throughput::Elements(spec.records()));
        g.bench_function(BenchmarkId::new("index-apply", spec.records()), |b| {
            b.iter(|| {
                let mut ix = Index::new();
                ix.apply_all(
                    batches
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Seq(i as u64 + 1), e)),
                )
                .unwrap();
                ix
            })
        });
    }
    g.finish();
}

/// One event line with n purposes (issue 20, finding 10: 90,000 took 10 s
/// to parse when each name was checked against the ones before it).
fn event_purposes(c: &mut Criterion) {
    let mut g = c.benchmark_group("event-purposes");
    g.sample_size(10);
    let keyer = optout::SubjectKeyer::from_secret([1; 32]);
    for n in [1_000usize, 90_000] {
        let names: Vec<String> = (0..n)
            .map(|i| format!("\"p{}\"", i % (n / 2 + 1)))
            .collect();
        let line = format!(
            r#"{{"type":"objection","subject":"a@x.org","at":"2025-01-01T00:00:00Z","purposes":[{}]}}"#,
            names.join(",")
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("parse-line", n), |b| {
            b.iter(|| optout::jsonl::parse_event_line(&keyer, "e.jsonl", 1, &line).unwrap())
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    evaluate,
    manifest_codec,
    keep_mask,
    ingest,
    event_purposes
);
criterion_main!(benches);
