"""Parquet files for the reader tests, and an independent pandas ground truth
of which rows a manifest keeps (their registration is in conftest).

The files sit in nested directories (two share the name ``part-0.parquet``),
have several row groups of uneven sizes, and carry two subject columns: a
string column with nulls and empty strings, and a list<string> column with
null lists, empty lists and null elements. Every row has a ``uid`` data
column (``shard#row``) that the readers never look at: the tests use it to
name the rows a reader returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DATASET = "forum"
NESTED = "forum-nested"
"""The same files registered with shards relative to ``root/train`` instead of ``root``."""
FLAT = "forum-flat"
"""The files with distinct names registered under their names (the default ``root``)."""
FLAT_FILES = ("train/2024/part-1.parquet", "train/2025/eu/part-2.parquet")
AT = "2025-07-01T00:00:00Z"
USERS = 60
OBJECTORS = {u for u in range(USERS) if u % 7 == 3}
ERASED = {11}
FILES = {
    # shard (relative to the data root): row-group sizes, uneven
    "train/2024/part-0.parquet": [700, 13, 1290, 1],
    "train/2024/part-1.parquet": [5, 900],
    "train/2025/eu/part-0.parquet": [1500],
    "train/2025/eu/part-2.parquet": [333, 334, 2, 500, 77],
}
EXTRA = "train/2025/late.parquet"
"""A file written but never registered: readers must refuse it (fail closed)."""


def user(u: int) -> str:
    return f"user{u}@example.com"


def _table(shard: str, n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    authors: list[str | None] = []
    mentions: list[list[str | None] | None] = []
    for r in range(n):
        k = rng.integers(0, 10)
        authors.append(None if k == 0 else "" if k == 1 else user(int(rng.integers(0, USERS))))
        j = rng.integers(0, 8)
        if j == 0:
            mentions.append(None)
        elif j == 1:
            mentions.append([])
        elif j == 2:
            mentions.append([None, user(int(rng.integers(0, USERS)))])
        elif j == 3:
            mentions.append([user(int(rng.integers(0, USERS))), user(int(rng.integers(0, USERS))), ""])
        else:
            mentions.append(["nobody@example.net"])
    return pa.table(
        {
            "uid": pa.array([f"{shard}#{r}" for r in range(n)]),
            "author": pa.array(authors, pa.string()),
            "mentions": pa.array(mentions, pa.list_(pa.string())),
            "text": pa.array([f"post {r} of {shard}" for r in range(n)]),
            "n": pa.array(rng.integers(0, 1000, n), pa.int64()),
        }
    )


def write_file(root: Path, shard: str, groups: list[int], seed: int) -> Path:
    """One Parquet file with exactly the row groups ``groups``."""
    t = _table(shard, sum(groups), seed)
    p = root / shard
    p.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(p, t.schema) as w:
        start = 0
        for g in groups:
            w.write_table(t.slice(start, g), row_group_size=g)
            start += g
    assert [pq.ParquetFile(p).metadata.row_group(i).num_rows for i in range(len(groups))] == groups
    return p


def write_all(root: Path) -> dict[str, Path]:
    """Every file of ``FILES`` plus ``EXTRA`` under ``root``: {shard: path}."""
    out = {s: write_file(root, s, g, seed=i) for i, (s, g) in enumerate(FILES.items())}
    out[EXTRA] = write_file(root, EXTRA, [40, 9], seed=99)
    return out


TAKEDOWN = "train/2024/part-1.parquet#4"


def events() -> list[dict]:
    ev = [
        {"type": "objection", "subject": user(u), "at": "2025-03-01T00:00:00Z", "purposes": ["ai-training"]}
        for u in sorted(OBJECTORS)
    ]
    ev += [{"type": "erasure", "subject": user(u), "at": "2025-04-01T00:00:00Z"} for u in sorted(ERASED)]
    ev.append({"type": "takedown", "at": "2025-02-15T00:00:00Z", "reason": "copyright", "key": TAKEDOWN})
    return ev


def truth(paths: dict[str, Path]) -> set[str]:
    """The uids of the rows the default policy keeps, from pandas alone: a row
    is out if a subject objected or was erased, or it was taken down."""
    bad = {user(u) for u in OBJECTORS | ERASED}
    kept = set()
    for shard in FILES:
        df = pd.read_parquet(paths[shard])
        for pos, (uid, a, m) in enumerate(zip(df["uid"], df["author"], df["mentions"])):
            assert uid == f"{shard}#{pos}"
            subs = {a} if isinstance(a, str) else set()
            subs |= set() if m is None else {x for x in m if isinstance(x, str)}
            if not (subs & bad) and uid != TAKEDOWN:
                kept.add(uid)
    return kept


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path
