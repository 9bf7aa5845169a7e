"""Benchmark: each reader's filtering overhead against the same engine reading
the same files without a manifest.

Writes F Parquet files of R rows (default W-S: 1,000 x 10,000 = 10M rows;
columns ``text`` (16-31 bytes), ``n`` int64, one subject per row out of
R*F/10 subjects; row groups of R/4 rows), registers every row through the
JSONL ``Ledger.ingest`` (row = position in the file), lets 1% of subjects
object, computes the manifest (about 1% of rows excluded), then, per engine,
alternately runs the same query (``count(*)``, ``sum(n)``, ``sum(len(text))``
over every row it returns) through the engine alone ("plain") and through the
optout reader, and reports the median of ``--reps`` runs of each and their
ratio. Every optout run must return exactly the kept rows, and every plain run
all rows (exit 1 otherwise). Engines: polars, duckdb, pyarrow (what
``optout.torch.ParquetRows.batches()`` reads with), hf (``load_dataset``
into a fresh cache), ray (local, 2 CPUs), spark (``local[2]``).

Run: ``python bench_readers.py [--files F] [--rows R] [--reps K] [--engines a,b]``
(``--json OUT`` writes the figures as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import optout

DATASET = "ws"


def write_data(d: Path, files: int, rows: int, seed: int = 7):
    """The files, the ledger's manifest, and the expected (rows, sum n, sum len) kept."""
    rng = np.random.default_rng(seed)
    subjects = max(1, files * rows // 10)
    objecting = rng.random(subjects) < 0.01
    paths, totals, kept = [], np.zeros(3, np.int64), np.zeros(3, np.int64)
    (d / "data").mkdir()
    with open(d / "records.jsonl", "w") as out:
        for f in range(files):
            name = f"part-{f:05}.parquet"
            n = rng.integers(0, 1000, rows)
            lens = rng.integers(16, 32, rows)
            text = pa.array(["x" * int(k) for k in lens])
            subj = rng.integers(0, subjects, rows)
            pq.write_table(pa.table({"text": text, "n": n}), d / "data" / name, row_group_size=max(1, rows // 4))
            paths.append(d / "data" / name)
            keep = ~objecting[subj]
            totals += [rows, n.sum(), lens.sum()]
            kept += [keep.sum(), n[keep].sum(), lens[keep].sum()]
            out.writelines(
                f'{{"dataset":"{DATASET}","shard":"{name}","row":{r},"subjects":["s{s}@x.org"],'
                f'"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}\n'
                for r, s in enumerate(subj.tolist())
            )
    events = [
        {"type": "objection", "subject": f"s{s}@x.org", "at": "2025-01-01T00:00:00Z", "purposes": ["ai-training"]}
        for s in np.flatnonzero(objecting).tolist()
    ]
    with optout.Ledger.create(d / "ledger") as led:
        led.ingest(d / "records.jsonl")
        led.apply(events)
        m = led.manifest("ai-training", at="2025-06-01T00:00:00Z")
    os.unlink(d / "records.jsonl")
    assert m.registered_count == files * rows and m.excluded_count == totals[0] - kept[0], (m.excluded_count, kept)
    return paths, m, tuple(int(x) for x in totals), tuple(int(x) for x in kept)


# Each engine: (plain(paths) -> (rows, sum n, sum len), optout(paths, m) -> the same).


def polars_engine():
    import polars as pl

    import optout.polars

    q = [pl.len(), pl.col("n").sum(), pl.col("text").str.len_bytes().sum()]

    def run(lf):
        return tuple(int(x) for x in lf.select(q).collect().row(0))

    return lambda p: run(pl.scan_parquet(p)), lambda p, m: run(optout.polars.scan_parquet(p, m, DATASET))


def duckdb_engine():
    import duckdb

    import optout.duckdb

    con = duckdb.connect()
    agg = "count(*), sum(n), sum(strlen(text))"

    def run(rel):
        return tuple(int(x) for x in rel.aggregate(agg).fetchall()[0])

    return (
        lambda p: run(con.read_parquet([str(x) for x in p])),
        lambda p, m: run(optout.duckdb.read_parquet(con, p, m, DATASET)),
    )


def _sums(batches) -> tuple[int, int, int]:
    import pyarrow.compute as pc

    out = [0, 0, 0]
    for b in batches:
        out[0] += b.num_rows
        out[1] += pc.sum(b.column("n")).as_py() or 0
        out[2] += pc.sum(pc.binary_length(b.column("text"))).as_py() or 0
    return tuple(out)


def pyarrow_engine():
    from optout.torch import ParquetRows

    def plain(p):
        return _sums(b for f in p for b in pq.ParquetFile(f).iter_batches(batch_size=1024))

    return plain, lambda p, m: _sums(ParquetRows(p, m, DATASET, batch_size=1024).batches())


def hf_engine():
    import datasets

    import optout.hf

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()

    def run(ds):
        t = ds.with_format("arrow").data.table
        return _sums(t.to_batches())

    def plain(p):
        with tempfile.TemporaryDirectory() as c:
            return run(datasets.load_dataset("parquet", data_files=[str(x) for x in p], split="train", cache_dir=c))

    def ours(p, m):
        with tempfile.TemporaryDirectory() as c:
            return run(optout.hf.load_parquet(p, m, DATASET, cache_dir=c))

    return plain, ours


def ray_engine():
    import ray

    import optout.ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False

    def run(ds):
        def part(b):
            return pa.table({k: [v] for k, v in zip(("rows", "n", "len"), _sums(b.to_batches()))})

        t = ds.map_batches(part, batch_format="pyarrow", batch_size=None).to_arrow_refs()
        tables = ray.get(t)
        return tuple(int(sum(pa.concat_tables(tables).column(c).to_pylist())) for c in ("rows", "n", "len"))

    return (
        lambda p: run(ray.data.read_parquet([str(x) for x in p])),
        lambda p, m: run(optout.ray.read_parquet(p, m, DATASET)),
    )


def spark_engine():
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    import optout.spark

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def run(df):
        r = df.agg(F.count(F.lit(1)), F.sum("n"), F.sum(F.length("text"))).collect()[0]
        return tuple(int(x or 0) for x in r)

    def read(p):
        return spark.read.parquet(*[str(x) for x in p])

    return lambda p: run(read(p)), lambda p, m: run(optout.spark.filter(read(p), m, DATASET))


ENGINES = {
    "polars": polars_engine,
    "duckdb": duckdb_engine,
    "pyarrow": pyarrow_engine,
    "hf": hf_engine,
    "ray": ray_engine,
    "spark": spark_engine,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths, m, total, kept = write_data(Path(tmp), a.files, a.rows)
        print(
            f"{a.files} files x {a.rows} rows, {total[0] - kept[0]} excluded "
            f"({100 * (total[0] - kept[0]) / total[0]:.2f}%); data and ledger in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        results = {}
        failed = False
        for name in a.engines.split(","):
            plain, ours = ENGINES[name]()
            plain(paths[:2]), ours(paths[:2], m)  # warm up (imports, JIT, sessions)
            times: dict[str, list[float]] = {"plain": [], "optout": []}
            for _ in range(a.reps):
                for label, fn, want in (("plain", lambda: plain(paths), total), ("optout", lambda: ours(paths, m), kept)):
                    t = time.perf_counter()
                    got = fn()
                    times[label].append(time.perf_counter() - t)
                    if got != want:
                        print(f"{name} {label}: got {got}, want {want}", file=sys.stderr)
                        failed = True
            p, o = statistics.median(times["plain"]), statistics.median(times["optout"])
            results[name] = {"plain_s": p, "optout_s": o, "ratio": o / p, "rows": total[0], "kept": kept[0]}
            print(
                f"{name:8s} plain {p:7.3f} s ({total[0] / p / 1e6:6.1f} M rows/s)   "
                f"optout {o:7.3f} s ({total[0] / o / 1e6:6.1f} M rows/s)   overhead {100 * (o / p - 1):+6.1f}%",
                flush=True,
            )
        if a.json:
            a.json.write_text(json.dumps({"files": a.files, "rows": a.rows, "reps": a.reps, "engines": results}, indent=1))
        if failed:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
