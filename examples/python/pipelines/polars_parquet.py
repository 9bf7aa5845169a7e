"""Polars over Parquet shards: keep only the rows a manifest allows.

Two ways: eager (read a shard, ``keep_mask`` over its ``row`` column, filter),
and lazy (``scan_parquet`` with an anti-filter on the shard's excluded rows,
so Polars can push the predicate into the scan).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import optout


def kept_eager(manifest: optout.Manifest, dataset: str, paths: list[Path]) -> pl.DataFrame:
    frames = []
    for p in paths:
        df = pl.read_parquet(p)
        keep = manifest.keep_mask(dataset, Path(p).name, df["row"].to_numpy())
        frames.append(df.filter(pl.Series(keep)))
    return pl.concat(frames)


def kept_lazy(manifest: optout.Manifest, dataset: str, paths: list[Path]) -> pl.LazyFrame:
    parts = []
    for p in paths:
        excluded = pl.Series("excluded", manifest.excluded(dataset, Path(p).name))
        parts.append(pl.scan_parquet(p).filter(~pl.col("row").is_in(excluded.implode())))
    return pl.concat(parts)
