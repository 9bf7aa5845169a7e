"""Shared fixtures: a ledger built from the deterministic generator."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for `pipelines`
sys.path.insert(0, str(HERE))  # for `readers_data`

import optout  # noqa: E402
from pipelines import gen  # noqa: E402


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A ledger with every record and every event but the late one, and its
    manifest at ``gen.AT``. Returns ``(ledger_path, manifest, seq_before_late)``.
    The ledger is closed again (tests open it as they need)."""
    d = tmp_path_factory.mktemp("built")
    path = d / "ledger"
    recs = gen.write_jsonl(d / "records.jsonl", gen.all_records())
    with optout.Ledger.create(path) as led:
        led.ingest(recs)
        led.apply(gen.events(include_late=False))
        seq = led.seq
        m = led.manifest("ai-training", at=gen.AT)
    return path, m, seq


@pytest.fixture()
def ledger_copy(built, tmp_path):
    """A private copy of the built ledger (and its key), for tests that write."""
    import shutil

    src, _, _ = built
    dst = tmp_path / "ledger"
    shutil.copytree(src, dst)
    shutil.copy(str(src) + ".key", str(dst) + ".key")
    return dst


@pytest.fixture(scope="session")
def manifest(built):
    return built[1]


@pytest.fixture(scope="session")
def parquet_shards(tmp_path_factory):
    return gen.write_parquet_shards(tmp_path_factory.mktemp("parquet"))


@pytest.fixture(scope="session")
def reference():
    """{shard: set of excluded rows} computed independently of optout."""
    return {s: gen.reference_excluded(s) for s in gen.SHARDS}


# --- the readers' data, ledger and engines ----------------------------------------


def register_parquet(path: Path, shard: str, dataset: str) -> list[dict]:
    """Registration records of one Parquet file as JSONL dicts: row = position
    in the file, subjects = ``author`` and ``mentions`` (nulls and empty
    strings skipped, as the mapping rule says), key = the ``uid`` column.

    The one place the tests register Parquet files; ``Ledger.ingest_parquet``
    (same shard and row rule) replaces it when it lands.
    """
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["uid", "author", "mentions"])
    out = []
    for row, (uid, a, m) in enumerate(zip(*(t.column(c).to_pylist() for c in ("uid", "author", "mentions")))):
        subjects = ([a] if a else []) + [x for x in (m or []) if x]
        out.append(
            {"dataset": dataset, "shard": shard, "row": row, "subjects": subjects, "source": "forum.example.com",
             "collected_at": "2024-01-01T00:00:00Z", "basis": "legitimate_interest", "key": uid}
        )
    return out


@pytest.fixture(scope="session")
def readers(tmp_path_factory):
    """Parquet files under a data root, a manifest over them, and the pandas
    ground truth: a namespace with ``root``, ``paths`` ({shard: path}),
    ``manifest``, ``kept`` (uids the manifest keeps)."""
    import types

    import readers_data as rd

    d = tmp_path_factory.mktemp("readers")
    root = d / "data"
    paths = rd.write_all(root)
    recs = []
    for shard in rd.FILES:
        recs += register_parquet(paths[shard], shard, rd.DATASET)
        recs += register_parquet(paths[shard], Path(shard).relative_to("train").as_posix(), rd.NESTED)
        if shard in rd.FLAT_FILES:
            recs += register_parquet(paths[shard], Path(shard).name, rd.FLAT)
    with optout.Ledger.create(d / "ledger") as led:
        led.ingest(rd.write_jsonl(d / "records.jsonl", recs))
        led.apply(rd.events())
        m = led.manifest("ai-training", at=rd.AT)
    kept = rd.truth(paths)
    assert 0 < len(kept) < sum(sum(g) for g in rd.FILES.values())
    return types.SimpleNamespace(root=root, paths=paths, manifest=m, kept=kept, rd=rd)


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray, started once (ray[data] is required: no skip)."""
    import ray

    here = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([here, str(HERE), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("RAY_ACCEPT_CLUSTER_IS_LOCAL", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local Spark (``local[2]``), started once; small file splits so that
    one Parquet file is read by several tasks (pyspark and Java 17 are
    required: no skip)."""
    from pyspark.sql import SparkSession

    wh = tmp_path_factory.mktemp("spark")
    s = (
        SparkSession.builder.master("local[2]")
        .appName("optout-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(wh / "warehouse"))
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.files.maxPartitionBytes", "16k")
        .config("spark.sql.files.openCostInBytes", "0")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={wh}")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    try:
        yield s
    finally:
        s.stop()
