"""Ray Data: filter Parquet shards with ``map_batches`` and a manifest.

``keep_rows`` is the batch function; it works on any dict of numpy columns,
so ``filter_without_ray`` (a FALLBACK used where Ray is not installed) runs
the very same function over pyarrow record batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import optout


class KeepRows:
    """A picklable ``map_batches`` function: drops excluded rows of a batch
    with columns ``shard`` and ``row`` (numpy format)."""

    def __init__(self, manifest: optout.Manifest, dataset: str) -> None:
        self.manifest = manifest
        self.dataset = dataset

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards, rows = batch["shard"], batch["row"]
        keep = np.ones(len(rows), dtype=bool)
        for shard in np.unique(shards):
            sel = shards == shard
            keep[sel] = self.manifest.keep_mask(self.dataset, str(shard), rows[sel])
        return {k: v[keep] for k, v in batch.items()}


def filter_with_ray(manifest: optout.Manifest, dataset: str, paths: list[Path]):
    """A Ray Dataset of the rows ``manifest`` allows (needs ``ray.init`` first)."""
    import ray.data

    ds = ray.data.read_parquet([str(p) for p in paths])
    return ds.map_batches(KeepRows(manifest, dataset), batch_format="numpy", batch_size=1024)


def filter_without_ray(manifest: optout.Manifest, dataset: str, paths: list[Path]) -> int:
    """FALLBACK: the same batch function over pyarrow batches, no Ray. Returns the kept count."""
    import pyarrow.parquet as pq

    fn = KeepRows(manifest, dataset)
    kept = 0
    for p in paths:
        for b in pq.ParquetFile(p).iter_batches(batch_size=1024):
            batch = {n: b.column(n).to_numpy(zero_copy_only=False) for n in b.schema.names}
            kept += len(fn(batch)["row"])
    return kept
