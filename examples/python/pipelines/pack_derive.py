"""End to end (issue 15): a Parquet corpus of forum posts is tokenised and
packed into fixed-length sequences, the lineage (which posts each packed
row holds) is written as Parquet columns, and an objection of one author
reaches the packed rows that hold their posts and the run that trained on
them.

    python -m pipelines.pack_derive [DIR]

1. ``make_corpus``: two Parquet shards of posts (``post_id``, ``author``,
   ``text``, ``created_at``), registered as dataset ``forum`` by a mapping.
2. ``tokenize``: a whitespace tokenizer over a vocabulary built on the fly.
3. ``pack``: the posts' tokens, each followed by ``EOS``, as one stream cut
   into rows of ``SEQ_LEN`` tokens (the last one padded), ``ROWS_PER_SHARD``
   rows a shard; a packed row's parents are the posts with a token in it.
4. The packed shards and the lineage (``shard``, ``row``, ``parent_dataset``,
   ``parent_shard``, ``parent_row``: one row per link) go to Parquet; the
   lineage is registered with ``Ledger.derive_parquet``.
5. A run trains on the derived manifest; the author objects afterwards; the
   derived manifest then excludes the packed rows holding their posts
   (reason ``objection``) and ``affected`` shows the run as ``after``.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import optout

SEQ_LEN = 32
ROWS_PER_SHARD = 8
EOS, PAD = 0, 1
AUTHORS = [f"user{i}@forum.example.com" for i in range(6)]
OBJECTOR = AUTHORS[2]
SHARDS = {"posts-0.parquet": 20, "posts-1.parquet": 15}
WORDS = "the a model data post forum reply thanks question answer train token pack row shard".split()

COLLECTED = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
RUN_START = "2025-03-01T00:00:00Z"
OBJECTED_AT = "2025-04-01T00:00:00Z"
NOW = "2025-05-01T00:00:00Z"

MAPPING = {
    "dataset": "forum",
    "subjects": ["author"],
    "source": "forum.example.com",
    "basis": "legitimate_interest",
    "collected_at": {"column": "created_at"},
    "categories": ["text"],
    "key": {"column": "post_id"},
}


def make_corpus(root: Path, seed: int = 7) -> list[Path]:
    """Writes the forum shards; returns their paths (shard = file name)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard, n in SHARDS.items():
        rows = [
            {
                "post_id": f"post/{shard}/{i}",
                "author": rng.choice(AUTHORS),
                "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))),
            }
            for i in range(n)
        ]
        t = pa.table(
            {
                "post_id": [r["post_id"] for r in rows],
                "author": [r["author"] for r in rows],
                "text": [r["text"] for r in rows],
                "created_at": pa.array([COLLECTED] * n, pa.timestamp("us", "UTC")),
            }
        )
        p = root / shard
        pq.write_table(t, p, row_group_size=8)
        paths.append(p)
    return paths


class Tokenizer:
    """Whitespace tokens; ids from 2 up in order of first sight (0 = EOS, 1 = PAD)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 2) for w in text.split()]


def pack(corpus: list[Path], tok: Tokenizer) -> tuple[list[list[int]], list[set[tuple[str, int]]]]:
    """Packed rows of ``SEQ_LEN`` tokens, and per row the (shard, row) of
    every post with a token in it (its ``EOS`` included)."""
    rows: list[list[int]] = []
    parents: list[set[tuple[str, int]]] = []
    cur: list[int] = []
    cur_parents: set[tuple[str, int]] = set()
    for p in corpus:
        for i, text in enumerate(pq.read_table(p, columns=["text"]).column("text").to_pylist()):
            for t in tok(text) + [EOS]:
                cur.append(t)
                cur_parents.add((p.name, i))
                if len(cur) == SEQ_LEN:
                    rows.append(cur)
                    parents.append(cur_parents)
                    cur, cur_parents = [], set()
    if cur:
        rows.append(cur + [PAD] * (SEQ_LEN - len(cur)))
        parents.append(cur_parents)
    return rows, parents


def packed_name(i: int) -> tuple[str, int]:
    """The packed shard and row of the ``i``-th packed row."""
    return f"train-{i // ROWS_PER_SHARD:05d}.parquet", i % ROWS_PER_SHARD


def write_packed(out: Path, rows: list[list[int]], parents: list[set[tuple[str, int]]]) -> Path:
    """Writes the packed shards and the lineage file; returns the lineage path."""
    out.mkdir(parents=True, exist_ok=True)
    by_shard: dict[str, list[list[int]]] = {}
    links = {c: [] for c in ["shard", "row", "parent_dataset", "parent_shard", "parent_row"]}
    for i, (r, ps) in enumerate(zip(rows, parents)):
        shard, row = packed_name(i)
        by_shard.setdefault(shard, []).append(r)
        for ps_shard, ps_row in sorted(ps):
            links["shard"].append(shard)
            links["row"].append(row)
            links["parent_dataset"].append("forum")
            links["parent_shard"].append(ps_shard)
            links["parent_row"].append(ps_row)
    for shard, rs in by_shard.items():
        pq.write_table(pa.table({"tokens": pa.array(rs, pa.list_(pa.int32()))}), out / shard)
    lineage = out / "lineage.parquet"
    pq.write_table(pa.table(links), lineage)
    return lineage


def run(root: Path, objector: str = OBJECTOR) -> dict:
    """The whole story in ``root``; returns what it shows."""
    corpus = make_corpus(root / "corpus")
    rows, parents = pack(corpus, Tokenizer())
    lineage = write_packed(root / "packed", rows, parents)
    with optout.Ledger.create(root / "ledger") as led:
        led.ingest_parquet(corpus, MAPPING)
        d = led.derive_parquet("packed", ["forum"], lineage)
        before = led.manifest("ai-training", at=RUN_START, datasets=["packed"])
        led.add_run("tiny-lm-run-1", "tiny-lm", before, started_at=RUN_START)
        led.apply({"type": "objection", "subject": objector, "at": OBJECTED_AT, "purposes": ["ai-training"]})
        after = led.manifest("ai-training", at=NOW, datasets=["packed"])
        shards = sorted({packed_name(i)[0] for i in range(len(rows))})
        excluded = []
        for shard in shards:
            for row in after.excluded("packed", shard).tolist():
                excluded.append({"shard": shard, "row": row, "reasons": after.reasons("packed", shard, row)})
        return {
            "packed_rows": len(rows),
            "links": d["links"],
            "excluded_before": sum(len(before.excluded("packed", s)) for s in shards),
            "excluded": excluded,
            "affected": [{"run": a["run"], "status": a["status"]} for a in led.affected(objector, at=NOW)],
        }


def main(argv: list[str]) -> None:
    import tempfile

    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="optout-pack-"))
    out = run(root)
    print(f"{out['packed_rows']} packed rows of {SEQ_LEN} tokens, {out['links']} lineage links ({root})")
    print(f"after {OBJECTOR} objected, the derived manifest excludes:")
    for e in out["excluded"]:
        print(f"  packed/{e['shard']}#{e['row']}: {', '.join(e['reasons'])}")
    for a in out["affected"]:
        print(f"run {a['run']}: {a['status']}")


if __name__ == "__main__":
    main(sys.argv)
