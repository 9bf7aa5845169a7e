"""Shared fixtures: a ledger built from the deterministic generator."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for `pipelines`

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
