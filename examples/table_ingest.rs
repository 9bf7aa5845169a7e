//! Parquet -> RecordBatch throughput at W-S scale (PERF.md T8's core),
//! beside DuckDB reading the same files' subject column, in the same run.
//!
//! ```text
//! cargo run --release --features parquet --example table_ingest -- [ws|DIV] [--reps K] [--threads N]
//! ```
//!
//! Generates (once, cached under `target/table-bench/`) 1,000 Parquet files
//! of 10,000 rows with one string subject column (`user<i>@example.com`,
//! subjects from `optout::workload`'s W-S spec, snappy, as pyarrow writes
//! by default) and a timestamp column, then times `table::parquet_records`
//! over all files (median of K runs) and, if `.venv/bin/python` has duckdb,
//! `SELECT sum(hash(subject)) FROM read_parquet(...)` in one DuckDB process
//! (median of K runs after a warm-up). `DIV` scales the file count down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use optout::table::{parquet_records, FileOptions, RecordMapping};
use optout::workload::{subjects_of, Spec};
use optout::SubjectKeyer;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

fn write_files(dir: &Path, spec: &Spec) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("bench dir");
    let schema = Arc::new(Schema::new(vec![
        Field::new("subject", DataType::Utf8, false),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut subj = Vec::new();
    for s in 0..spec.shards {
        let path = dir.join(format!("part-{s:05}.parquet"));
        out.push(path.clone());
        if path.exists() {
            continue;
        }
        let mut emails = Vec::with_capacity(spec.rows as usize);
        for r in 0..spec.rows {
            subjects_of(spec, s as u64 * spec.rows as u64 + r as u64, &mut subj);
            emails.push(format!("user{}@example.com", subj[0]));
        }
        let times =
            TimestampMicrosecondArray::from(vec![1_700_000_000_000_000i64; spec.rows as usize])
                .with_timezone("UTC");
        let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(emails)), Arc::new(times)];
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        let tmp = path.with_extension("tmp");
        let f = std::fs::File::create(&tmp).expect("create");
        let mut w = ArrowWriter::try_new(f, schema.clone(), Some(props.clone())).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        std::fs::rename(&tmp, &path).expect("rename");
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn duckdb(dir: &Path, reps: usize) -> Option<f64> {
    let py = Path::new(".venv/bin/python");
    if !py.exists() {
        return None;
    }
    let script = format!(
        "import duckdb, time, statistics as st\n\
         con = duckdb.connect()\n\
         q = \"SELECT sum(hash(subject)) FROM read_parquet('{}/*.parquet')\"\n\
         con.sql(q).fetchall()\n\
         ts = []\n\
         for _ in range({reps}):\n\
         \x20   t = time.perf_counter(); con.sql(q).fetchall(); ts.append(time.perf_counter() - t)\n\
         print(st.median(ts))\n",
        dir.display()
    );
    let out = Command::new(py).arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        eprintln!("duckdb failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut spec = Spec::ws();
    let mut reps = 5;
    let mut threads = optout::table::FileOptions::default().threads;
    let mut duck = true;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "ws" => {}
            "--no-duckdb" => duck = false,
            "--reps" => {
                i += 1;
                reps = args[i].parse().expect("--reps K");
            }
            "--threads" => {
                i += 1;
                threads = args[i].parse().expect("--threads N");
            }
            d => spec = spec.scaled(d.parse().expect("ws or a divisor")),
        }
        i += 1;
    }
    let dir = PathBuf::from(format!("target/table-bench/ws-{}", spec.shards));
    let t = Instant::now();
    let files = write_files(&dir, &spec);
    eprintln!(
        "{} files in {} ({:.1} s to write or find)",
        files.len(),
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    let m = RecordMapping::from_json(
        r#"{"dataset":"bench","subjects":["subject"],"source":"forum.example.com","basis":"legitimate_interest","collected_at":{"column":"created_at"},"categories":["text"],"jurisdiction":"EU"}"#,
        "bench.json",
    )
    .expect("mapping");
    let keyer = SubjectKeyer::from_secret([1; 32]);
    let opts = FileOptions {
        threads,
        ..FileOptions::default()
    };
    let rows = spec.records() as f64;
    let mut ts = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let got = parquet_records(&files, &m, &keyer, &opts).expect("ingest");
        ts.push(t.elapsed().as_secs_f64());
        assert_eq!(got.batch.len() as f64, rows);
        drop(got);
    }
    let ours = median(ts);
    println!(
        "optout parquet_records: {} rows in {} files, {threads} threads: median {:.3} s = {:.2} M rows/s",
        rows, files.len(), ours, rows / ours / 1e6
    );
    match duck.then(|| duckdb(&dir, reps)).flatten() {
        Some(d) => println!(
            "duckdb sum(hash(subject)) over the same files: median {:.3} s = {:.2} M rows/s; ratio optout/duckdb time {:.2}",
            d,
            rows / d / 1e6,
            ours / d
        ),
        None => println!("duckdb: not run (needs .venv/bin/python with duckdb)"),
    }
}
