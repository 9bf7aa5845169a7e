"""Benchmark: Ray Data filtering W-S shards with a manifest (PERF.md W-S).

Writes S Parquet shards of R rows (default W-S: 1,000 x 10,000 = 10M rows,
columns ``shard``, ``row``, ``text``), builds a ledger in which 1% of rows
belong to objecting subjects, computes the manifest, then times on a local
2-CPU Ray:

* ``baseline``: read_parquet + an identity map_batches + count;
* ``optout``:   read_parquet + map_batches(KeepRows(manifest)) + count;

and checks the kept count exactly. Prints rows/s of each and the overhead.
Run: ``python bench_ray.py [shards] [rows_per_shard]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import optout

sys.path.insert(0, str(Path(__file__).parent))
from pipelines.ray_data import KeepRows  # noqa: E402


def identity(batch):
    return batch


def main() -> None:
    shards = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        paths = []
        rng = np.random.default_rng(7)
        excluded = 0
        lines, events = [], []
        for s in range(shards):
            name = f"part-{s:05}.parquet"
            r = np.arange(rows, dtype=np.int64)
            table = pa.table({"shard": [name] * rows, "row": r, "text": pa.array(["x" * 16] * rows)})
            p = tmp / name
            pq.write_table(table, p)
            paths.append(p)
            for row in np.nonzero(rng.random(rows) < 0.01)[0]:
                subj = f"s{s}-{row}@x.org"
                lines.append(
                    f'{{"dataset":"ws","shard":"{name}","row":{row},"subjects":["{subj}"],'
                    f'"source":"x.org","collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}}'
                )
                events.append(
                    f'{{"type":"objection","subject":"{subj}","at":"2025-01-01T00:00:00Z","purposes":["ai-training"]}}'
                )
                excluded += 1
        print(f"wrote {shards} shards x {rows} rows in {time.perf_counter() - t:.1f} s")
        led = optout.Ledger.create(str(tmp / "ledger"))
        led.ingest("\n".join(lines).encode())
        led.apply("\n".join(events).encode())
        m = led.manifest("ai-training", at="2025-06-01T00:00:00Z")
        assert m.excluded_count == excluded, (m.excluded_count, excluded)
        total = shards * rows

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        files = [str(p) for p in paths]
        results = {}
        for name, fn in [("baseline", identity), ("optout", KeepRows(m, "ws"))]:
            best = None
            for _ in range(3):
                t = time.perf_counter()
                n = ray.data.read_parquet(files).map_batches(fn, batch_format="numpy", batch_size=10_000).count()
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            want = total if name == "baseline" else total - excluded
            assert n == want, (name, n, want)
            results[name] = best
            print(f"{name:9s}: {total / best / 1e6:6.2f} M rows/s ({best:.2f} s for {total} rows, kept {n})")
        print(f"filter overhead vs baseline: {results['optout'] / results['baseline']:.2f}x time")
        ray.shutdown()


if __name__ == "__main__":
    main()
