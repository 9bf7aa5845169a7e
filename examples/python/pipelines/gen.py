"""A small deterministic data set, its privacy events, and an independent
reference of which rows the default ``ai-training`` policy excludes.

The reference is plain Python over the generator's own definitions (it does
not call optout), so tests can check optout's answers against it.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASET = "forum"
SHARDS: dict[str, int] = {
    "part-00000.parquet": 4000,
    "part-00001.parquet": 3000,
    "part-00002.parquet": 2500,
}
USERS = 400
AT = "2025-07-01T00:00:00Z"
"""The valid time manifests are computed at in the tests."""

OBJECTORS = {u for u in range(USERS) if u % 23 == 0}
ERASED = {7, 101}
CONSENTED = {u for u in range(USERS) if u % 2 == 0}
WITHDRAWN = {42}
OPTED_OUT_SOURCE = "blog.example.org"
TAKEDOWN_KEY = "forum/part-00001.parquet/123"
LATE_OBJECTOR = 1
"""Objects on 2025-09-01, after ``AT``: only manifests at a later time exclude them."""


def user(u: int) -> str:
    return f"user{u}@example.com"


def subjects_of(shard_idx: int, row: int) -> list[int]:
    s = [(row * 31 + shard_idx * 17) % USERS]
    if row % 50 == 7:
        s.append((row * 13 + 5) % USERS)
    return s


def basis_of(row: int) -> str:
    return "consent" if row % 10 == 3 else "legitimate_interest"


def source_of(row: int) -> str:
    return OPTED_OUT_SOURCE if row % 97 == 5 else "forum.example.com"


def records(shard_idx: int, shard: str) -> list[dict]:
    """The record registrations of one shard (one per row)."""
    out = []
    for row in range(SHARDS[shard]):
        out.append(
            {
                "dataset": DATASET,
                "shard": shard,
                "row": row,
                "subjects": [user(u) for u in subjects_of(shard_idx, row)],
                "source": source_of(row),
                "collected_at": "2024-01-01T00:00:00Z",
                "basis": basis_of(row),
                "categories": ["text"],
                "key": f"{DATASET}/{shard}/{row}",
            }
        )
    return out


def all_records() -> list[dict]:
    return [r for i, s in enumerate(SHARDS) for r in records(i, s)]


def events(include_late: bool = True) -> list[dict]:
    """The events, in the order they are applied."""
    ev: list[dict] = []
    for u in sorted(CONSENTED):
        ev.append(
            {
                "type": "consent",
                "subject": user(u),
                "at": "2024-06-01T00:00:00Z",
                "purposes": ["ai-training"],
                "method": "single_opt_in",
                "confirmed": True,
            }
        )
    for u in sorted(OBJECTORS):
        ev.append(
            {"type": "objection", "subject": user(u), "at": "2025-03-01T00:00:00Z", "purposes": ["ai-training"]}
        )
    for u in sorted(ERASED):
        ev.append({"type": "erasure", "subject": user(u), "at": "2025-04-01T00:00:00Z"})
    for u in sorted(WITHDRAWN):
        ev.append(
            {"type": "consent_withdrawn", "subject": user(u), "at": "2025-05-01T00:00:00Z", "purposes": ["ai-training"]}
        )
    ev.append(
        {
            "type": "source_optout",
            "source": OPTED_OUT_SOURCE,
            "at": "2025-02-01T00:00:00Z",
            "purposes": ["ai-training"],
            "signal": "tdmrep",
        }
    )
    ev.append({"type": "takedown", "at": "2025-02-15T00:00:00Z", "reason": "copyright", "key": TAKEDOWN_KEY})
    if include_late:
        ev.append(
            {
                "type": "objection",
                "subject": user(LATE_OBJECTOR),
                "at": "2025-09-01T00:00:00Z",
                "purposes": ["ai-training"],
            }
        )
    return ev


def reference_excluded(shard: str, late: bool = False) -> set[int]:
    """Rows of ``shard`` the default ai-training policy excludes at ``AT``
    (or, with ``late``, after the late objection too)."""
    i = list(SHARDS).index(shard)
    objectors = OBJECTORS | ({LATE_OBJECTOR} if late else set())
    out = set()
    for row in range(SHARDS[shard]):
        subs = subjects_of(i, row)
        if any(u in objectors or u in ERASED for u in subs):
            out.add(row)
        elif basis_of(row) == "consent" and any(u not in CONSENTED or u in WITHDRAWN for u in subs):
            out.add(row)
        elif source_of(row) == OPTED_OUT_SOURCE:
            out.add(row)
        elif f"{DATASET}/{shard}/{row}" == TAKEDOWN_KEY:
            out.add(row)
    return out


def reference_kept_total() -> int:
    return sum(n - len(reference_excluded(s)) for s, n in SHARDS.items())


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return path


def write_parquet_shards(directory: Path) -> list[Path]:
    """One Parquet file per shard with columns shard, row, text, n."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard, n in SHARDS.items():
        t = pa.table(
            {
                "shard": pa.array([shard] * n),
                "row": pa.array(range(n), type=pa.uint32()),
                "text": pa.array([f"post {shard} #{r}" for r in range(n)]),
                "n": pa.array([r % 7 for r in range(n)], type=pa.int64()),
            }
        )
        p = directory / shard
        pq.write_table(t, p, row_group_size=1000)
        paths.append(p)
    return paths


def setup(directory: Path):
    """The example data in ``directory``: Parquet shards, a ledger, and its
    manifest at ``AT``. Returns ``(paths, manifest)``; used by the examples'
    ``main()`` (the tests build theirs in conftest)."""
    import optout

    directory = Path(directory)
    paths = write_parquet_shards(directory / "data")
    with optout.Ledger.create(directory / "ledger") as led:
        led.ingest(write_jsonl(directory / "records.jsonl", all_records()))
        led.apply(events(include_late=False))
        return paths, led.manifest("ai-training", at=AT)


def run(example) -> None:
    """Runs ``example(paths, manifest) -> kept row count`` on fresh example
    data in a temporary directory and checks the count against the reference."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        paths, m = setup(Path(d))
        kept = example(paths, m)
        want = reference_kept_total()
        print(f"kept {kept} of {sum(SHARDS.values())} rows (reference: {want})")
        if kept != want:
            raise SystemExit(1)
