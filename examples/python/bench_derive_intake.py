"""Lineage intake: the same lineage as Parquet columns (Ledger.derive_parquet)
and as JSONL (Ledger.derive), into two copies of one ledger.

    python examples/python/bench_derive_intake.py [--rows N] [--fan-in K]

N derived rows (default 100,000) with K parents each (default 10) drawn
from 2N source records (one Parquet shard of forum posts). Prints the
seconds of each intake (read + checks + one durable entry) and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import optout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--fan-in", type=int, default=10)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="optout-bench-derive-"))
    try:
        n_src = 2 * a.rows
        src = d / "posts.parquet"
        pq.write_table(pa.table({
            "author": [f"u{i % 5000}@x.org" for i in range(n_src)],
            "created_at": pa.array([dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)] * n_src,
                                   pa.timestamp("us", "UTC")),
        }), src)
        mapping = {"dataset": "forum", "subjects": ["author"], "source": "forum.example.com",
                   "basis": "legitimate_interest", "collected_at": {"column": "created_at"}}
        rng = random.Random(1)
        shard, row, pshard, prow = [], [], [], []
        jsonl = []
        for r in range(a.rows):
            ps = rng.sample(range(n_src), a.fan_in)
            s = f"train-{r // 10000:05d}"
            jsonl.append(json.dumps({"shard": s, "row": r % 10000, "parents": [
                {"dataset": "forum", "shard": "posts.parquet", "row": p} for p in ps]}))
            for p in ps:
                shard.append(s)
                row.append(r % 10000)
                pshard.append("posts.parquet")
                prow.append(p)
        links = d / "links.parquet"
        pq.write_table(pa.table({"shard": shard, "row": pa.array(row, pa.uint32()),
                                 "parent_dataset": ["forum"] * len(shard), "parent_shard": pshard,
                                 "parent_row": pa.array(prow, pa.uint32())}), links)
        lines = d / "links.jsonl"
        lines.write_text("\n".join(jsonl) + "\n")
        with optout.Ledger.create(d / "L") as led:
            led.ingest_parquet(src, mapping)
        shutil.copytree(d / "L", d / "L2")
        shutil.copy(d / "L.key", d / "L2.key")
        out = {}
        for name, path, ledger in [("parquet", links, d / "L"), ("jsonl", lines, d / "L2")]:
            with optout.Ledger.open(ledger) as led:
                t = time.perf_counter()
                s = (led.derive_parquet("packed", ["forum"], path) if name == "parquet"
                     else led.derive("packed", ["forum"], path))
                out[name] = time.perf_counter() - t
                assert s["links"] == a.rows * a.fan_in, s
        n = a.rows * a.fan_in
        print(f"{a.rows:,} derived rows, {n:,} links: parquet {out['parquet']:.2f} s "
              f"({n / out['parquet'] / 1e6:.2f}M links/s, {links.stat().st_size / 1e6:.1f} MB), "
              f"jsonl {out['jsonl']:.2f} s ({n / out['jsonl'] / 1e6:.2f}M links/s, "
              f"{lines.stat().st_size / 1e6:.1f} MB); parquet/jsonl {out['parquet'] / out['jsonl']:.2f}")
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
