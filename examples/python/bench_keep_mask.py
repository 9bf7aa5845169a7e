"""Benchmark: Manifest.keep_mask vs the numpy dense-mask peer (``~mask[rows]``).

Builds a ledger whose one shard has N rows of which a fraction is excluded
(records registered only for those rows, their subjects objected), computes
the manifest, then times both ways over the same row arrays:

* ``optout``: ``manifest.keep_mask(dataset, shard, rows)``: no per-shard set-up;
* ``numpy``:  ``~mask[rows]`` with ``mask`` a dense bool array of N entries,
  built once from ``manifest.excluded(...)`` (its build time is shown apart).

Prints ids/s for each and the ratio. Run: ``python bench_keep_mask.py [N]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import optout


def best(f, repeat=5):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def build_manifest(tmp: Path, n: int, rate: float) -> tuple[optout.Manifest, float]:
    rng = np.random.default_rng(42)
    k = int(n * rate)
    rows = np.sort(rng.choice(n, size=k, replace=False))
    lines = [
        b'{"dataset":"d","shard":"s","row":%d,"subjects":["obj%d"],"source":"x.org",'
        b'"collected_at":"2024-01-01T00:00:00Z","basis":"legitimate_interest"}\n' % (r, i % 100)
        for i, r in enumerate(rows.tolist())
    ]
    events = b"".join(
        b'{"type":"objection","subject":"obj%d","at":"2025-01-01T00:00:00Z","purposes":["*"]}\n' % i for i in range(100)
    )
    t = time.perf_counter()
    with optout.Ledger.create(tmp / f"l{rate}") as led:
        led.ingest(b"".join(lines))
        led.apply(events)
        m = led.manifest("ai-training", at="2025-06-01T00:00:00Z")
    assert m.excluded_count == k
    return m, time.perf_counter() - t


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    rng = np.random.default_rng(1)
    full64 = np.arange(n, dtype=np.uint64)
    cases = {
        "sorted all rows, uint64": full64,
        "sorted all rows, uint32": full64.astype(np.uint32),
        "sorted 10% sample, uint64": np.sort(rng.choice(n, size=n // 10, replace=False)).astype(np.uint64),
        "shuffled all rows, uint64": rng.permutation(full64),
    }
    print(f"N = {n:,} rows in one shard; numpy {np.__version__}; best of 5\n")
    print(f"{'excluded':>9}  {'rows':<27} {'optout ids/s':>14} {'numpy ids/s':>14} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as d:
        for rate in (0.001, 0.01, 0.05):
            m, build_s = build_manifest(Path(d), n, rate)
            t = time.perf_counter()
            mask = np.zeros(n, dtype=bool)
            mask[m.excluded("d", "s")] = True
            dense_s = time.perf_counter() - t
            for name, rows in cases.items():
                got = m.keep_mask("d", "s", rows)
                np.testing.assert_array_equal(got, ~mask[rows])
                t_o = best(lambda: m.keep_mask("d", "s", rows))
                t_n = best(lambda: ~mask[rows])
                print(
                    f"{rate:>9.1%}  {name:<27} {len(rows) / t_o / 1e6:>10.0f} M/s {len(rows) / t_n / 1e6:>10.0f} M/s"
                    f" {t_n / t_o:>5.1f}x"
                )
            print(f"{'':>9}  (ledger+manifest {build_s:.1f}s; numpy dense mask build {dense_s * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
