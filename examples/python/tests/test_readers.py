"""Every reader keeps exactly the rows a manifest allows, by their position in
their file, checked against the pandas ground truth (tests/readers_data.py):
files in nested directories with uneven row groups, read in shuffled order
and by several workers; unknown files fail closed; ``root`` names the shards."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import optout


def _polars(paths, m, dataset, root, strict, request):
    import optout.polars

    return optout.polars.scan_parquet(paths, m, dataset, root, strict=strict).select("uid").collect()["uid"].to_list()


def _duckdb(paths, m, dataset, root, strict, request):
    import duckdb

    import optout.duckdb

    rel = optout.duckdb.read_parquet(duckdb.connect(), paths, m, dataset, root, strict=strict)
    return [r[0] for r in rel.select("uid").fetchall()]


def _ray(paths, m, dataset, root, strict, request):
    request.getfixturevalue("ray_session")
    import optout.ray

    ds = optout.ray.read_parquet(paths, m, dataset, root, strict=strict, columns=["uid", "n"], override_num_blocks=5)
    return ds.to_pandas()["uid"].tolist()


def _hf(paths, m, dataset, root, strict, request):
    import optout.hf

    cache = request.getfixturevalue("tmp_path") / "hf"
    return optout.hf.load_parquet(paths, m, dataset, root, strict=strict, cache_dir=cache)["uid"]


def _torch_workers(paths, m, dataset, root, strict, request):
    """Three workers, each a pickled copy (as DataLoader workers get)."""
    from optout.torch import ParquetRows

    out = []
    for w in range(3):
        ds = ParquetRows(paths, m, dataset, root, batch_size=100, strict=strict, worker_id=w, num_workers=3)
        out += [r["uid"] for r in pickle.loads(pickle.dumps(ds))]
    return out


def _spark(paths, m, dataset, root, strict, request):
    spark = request.getfixturevalue("spark")
    import optout.spark

    df = spark.read.parquet(*[str(p) for p in paths])
    assert df.rdd.getNumPartitions() > len(paths)  # files are split across tasks
    return [r.uid for r in optout.spark.filter(df, m, dataset, root, strict=strict).select("uid").collect()]


READERS = {
    "polars": _polars,
    "duckdb": _duckdb,
    "ray": _ray,
    "hf": _hf,
    "torch": _torch_workers,
    "spark": _spark,
}


def shuffled(paths: list[Path], seed: int = 5) -> list[Path]:
    return [paths[i] for i in np.random.default_rng(seed).permutation(len(paths))]


@pytest.mark.parametrize("engine", READERS)
def test_reader_keeps_exactly_the_allowed_rows(engine, readers, request):
    rd = readers.rd
    paths = shuffled([readers.paths[s] for s in rd.FILES])
    got = READERS[engine](paths, readers.manifest, rd.DATASET, readers.root, True, request)
    assert sorted(got) == sorted(readers.kept)  # no row lost, none twice, none excluded


@pytest.mark.parametrize("engine", READERS)
def test_reader_honours_root(engine, readers, request):
    rd = readers.rd
    paths = shuffled([readers.paths[s] for s in rd.FILES], seed=9)
    got = READERS[engine](paths, readers.manifest, rd.NESTED, readers.root / "train", True, request)
    assert sorted(got) == sorted(readers.kept)
    # The same files named from the data root are other shards: unknown to NESTED.
    with pytest.raises(optout.UnknownShardError):
        READERS[engine](paths, readers.manifest, rd.NESTED, readers.root, True, request)


@pytest.mark.parametrize("engine", READERS)
def test_default_root_is_the_file_name(engine, readers, request):
    rd = readers.rd
    paths = [readers.paths[s] for s in reversed(rd.FLAT_FILES)]
    got = READERS[engine](paths, readers.manifest, rd.FLAT, None, True, request)
    assert sorted(got) == sorted(u for u in readers.kept if u.split("#")[0] in rd.FLAT_FILES)


@pytest.mark.parametrize("engine", READERS)
def test_reader_fails_closed_on_a_file_the_manifest_does_not_cover(engine, readers, request):
    rd = readers.rd
    paths = [readers.paths[s] for s in rd.FILES] + [readers.paths[rd.EXTRA]]
    with pytest.raises(optout.UnknownShardError) as e:
        READERS[engine](paths, readers.manifest, rd.DATASET, readers.root, True, request)
    assert e.value.shard == rd.EXTRA and e.value.dataset == rd.DATASET
    # strict=False: the uncovered file is read whole, the others filtered.
    got = READERS[engine](paths, readers.manifest, rd.DATASET, readers.root, False, request)
    extra = {f"{rd.EXTRA}#{r}" for r in range(49)}
    assert sorted(got) == sorted(readers.kept | extra)


def test_two_files_with_one_shard_name_are_refused(readers):
    import optout.polars

    rd = readers.rd
    same = [readers.paths["train/2024/part-0.parquet"], readers.paths["train/2025/eu/part-0.parquet"]]
    with pytest.raises(optout.InvalidRequestError, match="both shard 'part-0.parquet'.*root="):
        optout.polars.scan_parquet(same, readers.manifest, rd.FLAT)


def test_a_file_outside_root_is_refused(readers):
    from optout._positions import shard_name

    with pytest.raises(optout.InvalidRequestError, match="not under root"):
        shard_name(readers.paths[readers.rd.EXTRA], readers.root / "train" / "2024")
    assert shard_name("file:///data/x/a%20b.parquet", "/data") == "x/a b.parquet"
    assert shard_name("file:/data/x/a%20b.parquet") == "a b.parquet"
    assert shard_name("s3a://bucket/t/y=1/p.parquet", "s3a://bucket/t") == "y=1/p.parquet"
    with pytest.raises(optout.InvalidRequestError):
        shard_name("s3a://other/t/p.parquet", "s3a://bucket/t")


def test_a_directory_stands_for_its_parquet_files(readers):
    import optout.polars

    rd = readers.rd
    with pytest.raises(optout.UnknownShardError):  # the directory holds EXTRA too
        optout.polars.scan_parquet(readers.root, readers.manifest, rd.DATASET, readers.root)
    lf = optout.polars.scan_parquet(readers.root / "train" / "2024", readers.manifest, rd.DATASET, readers.root)
    want = {u for u in readers.kept if u.startswith("train/2024/")}
    assert sorted(lf.collect()["uid"].to_list()) == sorted(want)


def test_spark_reads_a_directory_and_fails_closed_on_its_extra_file(readers, spark):
    import optout.spark

    rd = readers.rd
    df = spark.read.option("recursiveFileLookup", "true").parquet(str(readers.root))
    with pytest.raises(optout.UnknownShardError):
        optout.spark.filter(df, readers.manifest, rd.DATASET, readers.root)
    out = optout.spark.filter(df, readers.manifest, rd.DATASET, str(readers.root), strict=False)
    got = [r.uid for r in out.select("uid").collect()]
    assert sorted(got) == sorted(readers.kept | {f"{rd.EXTRA}#{r}" for r in range(49)})
    # Columns are the DataFrame's own; a filter after ours still works.
    assert out.columns == df.columns
    assert out.filter("n < 500").count() == sum(1 for r in out.select("n").collect() if r.n < 500)


def test_torch_workers_split_files_and_batches_are_bounded(readers):
    from optout.torch import ParquetRows

    rd = readers.rd
    paths = [readers.paths[s] for s in rd.FILES]
    parts = [
        [b for b in ParquetRows(paths, readers.manifest, rd.DATASET, readers.root, batch_size=64, columns=["uid"], worker_id=w, num_workers=2).batches()]
        for w in range(2)
    ]
    uids = [[u for b in p for u in b.column("uid").to_pylist()] for p in parts]
    assert all(uids) and not set(uids[0]) & set(uids[1])
    assert sorted(uids[0] + uids[1]) == sorted(readers.kept)
    assert all(b.num_rows <= 64 and b.schema.names == ["uid"] for p in parts for b in p)
    with pytest.raises(optout.InvalidRequestError):
        ParquetRows(paths, readers.manifest, rd.DATASET, readers.root, worker_id=2, num_workers=2)


def test_torch_dataloader_with_workers(readers):
    torch = pytest.importorskip("torch")
    from optout.torch import ParquetRows

    rd = readers.rd
    ds = ParquetRows([readers.paths[s] for s in rd.FILES], readers.manifest, rd.DATASET, readers.root, columns=["uid"])
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert sorted(r["uid"] for r in dl) == sorted(readers.kept)


def test_hf_filter_by_position_columns(readers, tmp_path):
    datasets = pytest.importorskip("datasets")
    import optout.hf

    rd = readers.rd
    shard, row = zip(*(u.rsplit("#", 1) for s in rd.FILES for u in [f"{s}#{r}" for r in range(sum(rd.FILES[s]))]))
    order = np.random.default_rng(3).permutation(len(shard))
    ds = datasets.Dataset.from_dict(
        {"shard": [shard[i] for i in order], "row": [int(row[i]) for i in order], "uid": [f"{shard[i]}#{row[i]}" for i in order]}
    )
    out = optout.hf.filter(ds, readers.manifest, rd.DATASET, num_proc=2, batch_size=500)
    assert sorted(out["uid"]) == sorted(readers.kept)
    bad = datasets.Dataset.from_dict({"shard": ["nope.parquet"], "row": [0]})
    with pytest.raises(optout.UnknownShardError):
        optout.hf.filter(bad, readers.manifest, rd.DATASET)
    assert len(optout.hf.filter(bad, readers.manifest, rd.DATASET, strict=False)) == 1


def test_hf_load_parquet_caches_and_passes_load_dataset_kwargs(readers, tmp_path):
    import optout.hf

    rd = readers.rd
    paths = [readers.paths[s] for s in rd.FILES]
    a = optout.hf.load_parquet(paths, readers.manifest, rd.DATASET, readers.root, cache_dir=tmp_path, columns=["uid", "n"])
    assert a.column_names == ["uid", "n"] and sorted(a["uid"]) == sorted(readers.kept)
    files = sorted(p.name for p in (tmp_path).glob("kept-*.arrow"))
    b = optout.hf.load_parquet(paths, readers.manifest, rd.DATASET, readers.root, cache_dir=tmp_path, columns=["uid", "n"])
    assert sorted(p.name for p in tmp_path.glob("kept-*.arrow")) == files and b["uid"] == a["uid"]
    c = optout.hf.load_parquet(paths, readers.manifest, rd.DATASET, readers.root, cache_dir=tmp_path, split="train[:10]")
    assert c["uid"] == a["uid"][:10]


def test_torch_splits_by_get_worker_info(readers, monkeypatch):
    """Under a DataLoader, torch's get_worker_info() decides the split (faked
    here: torch is not installed in CI)."""
    import types

    import optout.torch

    rd = readers.rd
    ds = optout.torch.ParquetRows([readers.paths[s] for s in rd.FILES], readers.manifest, rd.DATASET, readers.root)
    got = []
    for w in range(3):
        monkeypatch.setattr(optout.torch, "_worker_info", lambda w=w: types.SimpleNamespace(id=w, num_workers=3))
        part = [r["uid"] for r in pickle.loads(pickle.dumps(ds))]
        assert len({u.split("#")[0] for u in part}) <= 2  # 4 files over 3 workers
        got += part
    assert sorted(got) == sorted(readers.kept)


def test_spark_stops_on_a_row_whose_file_it_cannot_match(readers, spark, monkeypatch):
    """If the file paths were spelt otherwise than the scan reports them, the
    job fails instead of letting every row through."""
    import optout.spark

    rd = readers.rd
    monkeypatch.setattr(optout.spark, "_spelling", lambda files, reported: (lambda f: f + "#not-this"))
    df = spark.read.parquet(*[str(readers.paths[s]) for s in rd.FILES])
    out = optout.spark.filter(df, readers.manifest, rd.DATASET, readers.root)
    with pytest.raises(Exception, match="matches no input file"):
        out.count()


def test_ray_refuses_a_file_that_changed_after_planning(readers, ray_session, tmp_path):
    """The driver plans row groups from the footers; a task that finds another
    row count (the file was rewritten) raises instead of guessing positions."""
    import shutil

    import pyarrow.parquet as pq

    import optout.ray

    rd = readers.rd
    shard = "train/2024/part-1.parquet"
    copy = tmp_path / "train" / "2024" / "part-1.parquet"
    copy.parent.mkdir(parents=True)
    shutil.copy(readers.paths[shard], copy)
    ds = optout.ray.read_parquet([copy], readers.manifest, rd.DATASET, tmp_path)
    t = pq.read_table(copy)
    pq.write_table(t.slice(1), copy)  # one row fewer: every later position shifts
    with pytest.raises(Exception, match="when the read was planned: the file changed"):
        ds.take_all()
