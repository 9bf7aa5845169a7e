"""The pipeline examples, each with an exact kept-row count checked against
the independent reference (pipelines/gen.py)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from pipelines import gen


def expected_kept(reference) -> int:
    return sum(n - len(reference[s]) for s, n in gen.SHARDS.items())


def kept_keys(reference) -> set[tuple[str, int]]:
    return {(s, r) for s, n in gen.SHARDS.items() for r in range(n) if r not in reference[s]}


# --- (1) Hugging Face datasets -------------------------------------------------


@pytest.fixture(scope="module")
def hf_dataset(parquet_shards):
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(
        "parquet", data_files=[str(p) for p in parquet_shards], split="train", cache_dir=str(parquet_shards[0].parent / "hf")
    )


def test_hf_datasets_filter_batched(hf_dataset, manifest, reference):
    from pipelines.hf_datasets import filter_dataset

    assert len(hf_dataset) == sum(gen.SHARDS.values())
    out = filter_dataset(hf_dataset, manifest, gen.DATASET)
    assert len(out) == expected_kept(reference)
    assert set(zip(out["shard"], out["row"])) == kept_keys(reference)


def test_hf_datasets_filter_num_proc_2(hf_dataset, manifest, reference):
    from pipelines.hf_datasets import filter_dataset

    out = filter_dataset(hf_dataset, manifest, gen.DATASET, num_proc=2, batch_size=500)
    assert len(out) == expected_kept(reference)
    assert set(zip(out["shard"], out["row"])) == kept_keys(reference)


# --- (2) PyTorch-style IterableDataset -----------------------------------------


def test_torch_style_iterable(parquet_shards, manifest, reference):
    from pipelines.torch_iterable import ExcludingParquetRows

    ds = ExcludingParquetRows(parquet_shards, manifest, gen.DATASET)
    rows = list(ds)
    assert len(rows) == expected_kept(reference)
    assert {(r["shard"], r["row"]) for r in rows} == kept_keys(reference)
    # Positional rows (no row column) give the same answer.
    assert sum(1 for _ in ExcludingParquetRows(parquet_shards, manifest, gen.DATASET, row_column=None)) == len(rows)
    # Two "workers", each a pickled copy, split the shards between them.
    per_worker = [
        sum(1 for _ in pickle.loads(pickle.dumps(ExcludingParquetRows(parquet_shards, manifest, gen.DATASET, worker=(w, 2)))))
        for w in range(2)
    ]
    assert sum(per_worker) == len(rows) and all(per_worker)


def test_torch_dataloader_workers(parquet_shards, manifest, reference):
    torch = pytest.importorskip("torch")
    from pipelines.torch_iterable import ExcludingParquetRows

    dl = torch.utils.data.DataLoader(
        ExcludingParquetRows(parquet_shards, manifest, gen.DATASET), batch_size=None, num_workers=2
    )
    assert sum(1 for _ in dl) == expected_kept(reference)


# --- (3) Polars over Parquet shards -------------------------------------------


def test_polars_eager_and_lazy(parquet_shards, manifest, reference):
    pytest.importorskip("polars")
    from pipelines.polars_parquet import kept_eager, kept_lazy

    eager = kept_eager(manifest, gen.DATASET, parquet_shards)
    lazy = kept_lazy(manifest, gen.DATASET, parquet_shards).collect()
    assert eager.height == lazy.height == expected_kept(reference)
    assert set(zip(eager["shard"], eager["row"])) == kept_keys(reference)
    assert eager.sort(["shard", "row"]).equals(lazy.sort(["shard", "row"]))


# --- (4) Ray Data ---------------------------------------------------------------


def test_map_batches_fallback_without_ray(parquet_shards, manifest, reference):
    """FALLBACK path: the same map_batches function, driven by pyarrow instead of Ray."""
    from pipelines.ray_data import filter_without_ray

    assert filter_without_ray(manifest, gen.DATASET, parquet_shards) == expected_kept(reference)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    here = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("RAY_ACCEPT_CLUSTER_IS_LOCAL", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        yield ray
    finally:
        ray.shutdown()


def test_ray_data_map_batches(ray_local, parquet_shards, manifest, reference):
    from pipelines.ray_data import filter_with_ray

    ds = filter_with_ray(manifest, gen.DATASET, parquet_shards)
    assert ds.count() == expected_kept(reference)
    got = ds.select_columns(["shard", "row"]).to_pandas()
    assert set(zip(got["shard"], got["row"].astype(int))) == kept_keys(reference)
    assert got.groupby("shard").size().to_dict() == {s: gen.SHARDS[s] - len(reference[s]) for s in gen.SHARDS}
