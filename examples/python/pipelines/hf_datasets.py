"""Hugging Face ``datasets``: drop excluded rows with ``Dataset.filter``.

The data set needs the shard name and the row number within that shard as
columns (here ``shard`` and ``row``); a data set built by
``load_dataset("parquet", data_files=...)`` can get them from the file name
and a per-file row counter. The Manifest pickles, so ``num_proc`` works.
"""

from __future__ import annotations

import numpy as np

import optout


def keep_batch(manifest: optout.Manifest, dataset: str, shard_column: str = "shard", row_column: str = "row"):
    """A batched predicate for ``Dataset.filter(..., batched=True)``."""

    def predicate(batch: dict) -> list[bool]:
        shards = np.asarray(batch[shard_column])
        rows = np.asarray(batch[row_column], dtype=np.uint64)
        keep = np.ones(len(rows), dtype=bool)
        for shard in np.unique(shards):
            sel = shards == shard
            keep[sel] = manifest.keep_mask(dataset, str(shard), rows[sel])
        return keep.tolist()

    return predicate


def filter_dataset(ds, manifest: optout.Manifest, dataset: str, *, num_proc: int | None = None, batch_size: int = 1000):
    """``ds`` without the rows ``manifest`` excludes."""
    return ds.filter(keep_batch(manifest, dataset), batched=True, batch_size=batch_size, num_proc=num_proc)
