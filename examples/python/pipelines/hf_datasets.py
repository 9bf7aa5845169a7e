"""Hugging Face ``datasets``: load Parquet shards without the excluded rows, or
filter a data set that carries its own shard and row columns.

    python -m pipelines.hf_datasets        (from examples/python)
"""

from __future__ import annotations

import optout.hf


def load(paths, manifest, dataset: str, **kw):
    """The kept rows of ``paths`` as a ``datasets.Dataset`` (positions from the files)."""
    return optout.hf.load_parquet(paths, manifest, dataset, **kw)


def filter_dataset(ds, manifest, dataset: str, *, num_proc: int | None = None, batch_size: int = 1000):
    """``ds`` (with ``shard`` and ``row`` columns) without the excluded rows; the
    manifest pickles, so ``num_proc`` works."""
    return optout.hf.filter(ds, manifest, dataset, num_proc=num_proc, batch_size=batch_size)


def main() -> None:
    from pipelines import gen

    gen.run(lambda paths, m: len(load(paths, m, gen.DATASET, cache_dir=paths[0].parent / "hf")))


if __name__ == "__main__":
    main()
