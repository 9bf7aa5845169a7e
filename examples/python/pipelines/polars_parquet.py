"""Polars: a lazy scan of Parquet shards without the excluded rows.

    python -m pipelines.polars_parquet     (from examples/python)
"""

from __future__ import annotations

import polars as pl

import optout.polars


def kept(paths, manifest, dataset: str) -> pl.LazyFrame:
    """The kept rows; later filters and projections still push into the scans."""
    return optout.polars.scan_parquet(paths, manifest, dataset)


def main() -> None:
    from pipelines import gen

    gen.run(lambda paths, m: kept(paths, m, gen.DATASET).select(pl.len()).collect().item())


if __name__ == "__main__":
    main()
