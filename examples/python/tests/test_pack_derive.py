"""The end-to-end derived-dataset example (pipelines/pack_derive.py, issue 15
part 4), checked against a ground truth computed here from the corpus and
the packed shards alone: which packed rows hold a token of the objector's
posts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from pipelines import pack_derive as ex  # noqa: E402

HERE = Path(__file__).resolve().parent.parent


def ground_truth(root: Path, objector: str) -> set[tuple[str, int]]:
    """Packed (shard, row) holding the objector's posts, by interval
    arithmetic over the token stream: a post of n words takes n + 1 tokens
    (its EOS); packed row i holds stream positions [i * L, (i + 1) * L)."""
    L = ex.SEQ_LEN
    pos, spans = 0, []
    for shard in ex.SHARDS:  # the corpus order
        t = pq.read_table(root / "corpus" / shard, columns=["author", "text"]).to_pylist()
        for r in t:
            n = len(r["text"].split()) + 1
            if r["author"] == objector:
                spans.append((pos, pos + n))
            pos += n
    rows = {i for a, b in spans for i in range(a // L, (b - 1) // L + 1)}
    return {(f"train-{i // ex.ROWS_PER_SHARD:05d}.parquet", i % ex.ROWS_PER_SHARD) for i in rows}


def test_the_objection_reaches_exactly_the_packed_rows_holding_the_posts(tmp_path):
    out = ex.run(tmp_path)
    truth = ground_truth(tmp_path, ex.OBJECTOR)
    assert truth, "the objector wrote no post"
    got = {(e["shard"], e["row"]) for e in out["excluded"]}
    assert got == truth
    assert all(e["reasons"] == ["objection"] for e in out["excluded"])
    assert out["excluded_before"] == 0
    assert out["affected"] == [{"run": "tiny-lm-run-1", "status": "after"}]
    # The packed shards are what the lineage says: fixed-length rows whose
    # EOS tokens close the posts in corpus order.
    packed = sorted((tmp_path / "packed").glob("train-*.parquet"))
    seqs = [r for p in packed for r in pq.read_table(p).column("tokens").to_pylist()]
    assert len(seqs) == out["packed_rows"] and all(len(s) == ex.SEQ_LEN for s in seqs)
    n_posts = sum(ex.SHARDS.values())
    assert sum(s.count(ex.EOS) for s in seqs) == n_posts
    links = pq.read_table(tmp_path / "packed" / "lineage.parquet")
    assert links.num_rows == out["links"]


def test_another_author_gives_other_rows(tmp_path):
    other = ex.AUTHORS[0]
    out = ex.run(tmp_path, objector=other)
    assert {(e["shard"], e["row"]) for e in out["excluded"]} == ground_truth(tmp_path, other)


def test_the_script_prints_the_affected_rows_and_run(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipelines.pack_derive", str(tmp_path / "demo")], cwd=HERE,
                       capture_output=True, text=True, check=True)
    truth = ground_truth(tmp_path / "demo", ex.OBJECTOR)
    for shard, row in truth:
        assert f"packed/{shard}#{row}: objection" in r.stdout, r.stdout
    assert r.stdout.count(": objection") == len(truth)
    assert "run tiny-lm-run-1: after" in r.stdout
