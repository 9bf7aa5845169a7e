"""The pipeline examples (pipelines/), each with an exact kept-row count and the
kept (shard, row) pairs checked against the independent reference
(pipelines/gen.py). The example files carry their own ``shard`` and ``row``
columns: the readers ignore them, the tests compare them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import gen

HERE = Path(__file__).resolve().parent.parent


def expected_kept(reference) -> int:
    return sum(n - len(reference[s]) for s, n in gen.SHARDS.items())


def kept_keys(reference) -> set[tuple[str, int]]:
    return {(s, r) for s, n in gen.SHARDS.items() for r in range(n) if r not in reference[s]}


def test_hf_load(parquet_shards, manifest, reference, tmp_path):
    from pipelines.hf_datasets import load

    ds = load(parquet_shards, manifest, gen.DATASET, cache_dir=tmp_path)
    assert len(ds) == expected_kept(reference)
    assert set(zip(ds["shard"], ds["row"])) == kept_keys(reference)


def test_hf_filter_num_proc_2(parquet_shards, manifest, reference):
    datasets = pytest.importorskip("datasets")
    from pipelines.hf_datasets import filter_dataset

    ds = datasets.load_dataset("parquet", data_files=[str(p) for p in parquet_shards], split="train",
                               cache_dir=str(parquet_shards[0].parent / "hf"))
    out = filter_dataset(ds, manifest, gen.DATASET, num_proc=2, batch_size=500)
    assert len(out) == expected_kept(reference)
    assert set(zip(out["shard"], out["row"])) == kept_keys(reference)


def test_torch_loader(parquet_shards, manifest, reference):
    from pipelines.torch_iterable import loader

    dl = loader(parquet_shards, manifest, gen.DATASET)
    n = sum(len(b["n"]) for b in dl) if hasattr(dl, "num_workers") else sum(1 for _ in dl)
    assert n == expected_kept(reference)


def test_polars(parquet_shards, manifest, reference):
    from pipelines.polars_parquet import kept

    df = kept(parquet_shards, manifest, gen.DATASET).collect()
    assert df.height == expected_kept(reference)
    assert set(zip(df["shard"], df["row"])) == kept_keys(reference)


def test_duckdb(parquet_shards, manifest, reference):
    import duckdb

    from pipelines.duckdb_parquet import kept

    rows = kept(duckdb.connect(), parquet_shards, manifest, gen.DATASET).select("shard, row").fetchall()
    assert len(rows) == expected_kept(reference) and set(rows) == kept_keys(reference)


def test_ray(ray_session, parquet_shards, manifest, reference):
    from pipelines.ray_data import kept

    got = kept(parquet_shards, manifest, gen.DATASET).select_columns(["shard", "row"]).to_pandas()
    assert len(got) == expected_kept(reference)
    assert set(zip(got["shard"], got["row"].astype(int))) == kept_keys(reference)


def test_spark(spark, parquet_shards, manifest, reference):
    from pipelines.spark_parquet import kept

    rows = kept(spark, parquet_shards, manifest, gen.DATASET).select("shard", "row").collect()
    assert len(rows) == expected_kept(reference) and {(r.shard, r.row) for r in rows} == kept_keys(reference)


@pytest.mark.parametrize("example", ["polars_parquet", "duckdb_parquet", "hf_datasets", "torch_iterable"])
def test_examples_run_as_scripts(example):
    """``python -m pipelines.X`` runs end to end and exits 0 (its count matches the reference)."""
    r = subprocess.run([sys.executable, "-m", f"pipelines.{example}"], cwd=HERE, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"(reference: {gen.reference_kept_total()})" in r.stdout
