"""Deletion vectors exported into real Delta tables and Iceberg Puffin files,
read back by independent readers.

The tables are written by the ``deltalake`` package (real Parquet files).
The oracles are readers that honour Delta deletion vectors, all built on
delta-kernel-rs, not on optout: Polars ``read_delta`` / ``scan_delta`` and
deltalake's SQL ``QueryBuilder``. (``DeltaTable.to_pyarrow_table()`` does not
read deletion vectors and refuses such tables, so it is no oracle; it serves
to read the table *before* the export.) Iceberg Puffin files are read with
pyiceberg's Puffin reader and a decoder written here from the spec.

The expected rows are computed here from the same rule that generated the
ledger, independently of optout.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest

import optout

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

USERS = 13
OBJECTORS_1 = {2, 5}
OBJECTORS_2 = {5, 9}  # later: overlaps the first set


def user_of(rid: int) -> int:
    return (rid * 7 + 3) % USERS


def make_table(path: Path, other_lang: str = "de") -> None:
    """Three appends, partitioned by ``lang``: 6 data files in all. With
    ``other_lang="de fr"`` delta-rs escapes the space in the directory name
    (``lang=de%20fr``) and again in the log's ``add.path`` (``%2520``)."""
    rid = 0
    for n in (120, 90, 70_000):
        ids = list(range(rid, rid + n))
        rid += n
        t = pa.table(
            {
                "rid": pa.array(ids, pa.int64()),
                "lang": pa.array(["en" if i % 3 else other_lang for i in ids]),
                "text": pa.array([f"post {i}" for i in ids]),
            }
        )
        deltalake.write_deltalake(str(path), t, mode="append", partition_by=["lang"])


def live_files(path: Path) -> dict[str, list[int]]:
    """{decoded add.path: rid per row position}, from the log and the Parquet files."""
    live: dict[str, dict] = {}
    log = path / "_delta_log"
    for name in sorted(os.listdir(log)):
        if not name.endswith(".json"):
            continue
        for line in (log / name).read_text().splitlines():
            a = json.loads(line)
            if "add" in a:
                live[a["add"]["path"]] = a["add"]
            elif "remove" in a:
                live.pop(a["remove"]["path"], None)
    out = {}
    for raw in live:
        rel = unquote(raw)
        out[rel] = pq.read_table(path / rel, columns=["rid"])["rid"].to_pylist()
    return out


def build_manifest(tmp: Path, files: dict[str, list[int]], objectors: set[int], name: str) -> optout.Manifest:
    """A ledger whose records are the table's rows (shard = file path, row =
    position, subject = the row's user), with ``objectors`` objecting."""
    recs = [
        {
            "dataset": "forum",
            "shard": shard,
            "row": pos,
            "subjects": [f"u{user_of(rid)}@x.org"],
            "source": "forum.x.org",
            "collected_at": "2024-01-01T00:00:00Z",
            "basis": "legitimate_interest",
        }
        for shard, rids in files.items()
        for pos, rid in enumerate(rids)
    ]
    events = [
        {"type": "objection", "subject": f"u{u}@x.org", "at": "2025-01-01T00:00:00Z", "purposes": ["ai-training"]}
        for u in sorted(objectors)
    ]
    with optout.Ledger.create(tmp / name) as led:
        led.ingest(recs)
        led.apply(events)
        return led.manifest("ai-training", at="2025-06-01T00:00:00Z")


def kept(all_rids, objectors, extra_deleted=()):
    return sorted(r for r in all_rids if user_of(r) not in objectors and r not in set(extra_deleted))


def read_polars(path: Path) -> list[int]:
    return sorted(pl.read_delta(str(path))["rid"].to_list())


def scan_polars(path: Path) -> list[int]:
    return sorted(pl.scan_delta(str(path)).select("rid").collect()["rid"].to_list())


def read_sql(path: Path) -> list[int]:
    qb = deltalake.QueryBuilder().register("t", deltalake.DeltaTable(str(path)))
    return sorted(qb.execute("SELECT rid FROM t").read_all()["rid"].to_pylist())


READERS = (read_polars, scan_polars, read_sql)


def snapshot_dir(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def z85(data: bytes) -> str:
    """Z85 (ZeroMQ RFC 32), zero-padded to 4 bytes, written here from the spec."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    data = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(data), 4):
        v = int.from_bytes(data[i : i + 4], "big")
        five = []
        for _ in range(5):
            five.append(alphabet[v % 85])
            v //= 85
        out.extend(reversed(five))
    return "".join(out)


def add_foreign_dv(path: Path, rel: str, rows: list[int]) -> None:
    """Commits an inline deletion vector for ``rel`` the way another Delta
    writer would (built here from the protocol with pyroaring)."""
    import pyroaring

    payload = struct.pack("<IQI", 1681511377, 1, 0) + pyroaring.BitMap(rows).serialize()
    log = path / "_delta_log"
    version = max(int(n[:20]) for n in os.listdir(log) if n.endswith(".json"))
    live = {}
    for v in range(version + 1):
        for line in (log / f"{v:020}.json").read_text().splitlines():
            a = json.loads(line)
            if "add" in a:
                live[unquote(a["add"]["path"])] = a["add"]
    add = dict(live[rel])
    remove = {k: add[k] for k in ("path", "partitionValues", "size") if k in add}
    remove.update(deletionTimestamp=int(time.time() * 1000), dataChange=True)
    add["deletionVector"] = {
        "storageType": "i",
        "pathOrInlineDv": z85(payload),
        "sizeInBytes": len(payload),
        "cardinality": len(rows),
    }
    proto = {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": ["deletionVectors"],
        "writerFeatures": ["appendOnly", "deletionVectors", "invariants"],
    }
    with open(log / f"{version + 1:020}.json", "x") as f:
        for a in ({"commitInfo": {"operation": "DELETE"}}, {"protocol": proto}, {"remove": remove}, {"add": add}):
            f.write(json.dumps(a) + "\n")


@pytest.fixture()
def table(tmp_path):
    path = tmp_path / "table"
    make_table(path)
    files = live_files(path)
    assert len(files) == 6
    return path, files


def test_readers_see_exactly_the_kept_rows(table, tmp_path):
    path, files = table
    all_rids = sorted(r for rids in files.values() for r in rids)
    # Before: every reader sees every row.
    assert sorted(deltalake.DeltaTable(str(path)).to_pyarrow_table()["rid"].to_pylist()) == all_rids
    for read in READERS:
        assert read(path) == all_rids, read.__name__
    m = build_manifest(tmp_path, files, OBJECTORS_1, "l1")
    s = m.export_delta(path)
    want = kept(all_rids, OBJECTORS_1)
    assert s["version"] == 3 and s["read_version"] == 2 and s["files_changed"] == 6  # 3 appends: v0..v2
    assert s["rows_added"] == len(all_rids) - len(want)
    assert s["dv_file"] is not None  # the 70,000-row files' vectors are too big to inline
    for read in READERS:
        assert read(path) == want, read.__name__
    # Time travel still sees the old version.
    assert sorted(pl.read_delta(str(path), version=2)["rid"].to_list()) == all_rids


def test_reexport_changes_nothing_and_a_later_manifest_merges(table, tmp_path):
    path, files = table
    all_rids = sorted(r for rids in files.values() for r in rids)
    m1 = build_manifest(tmp_path, files, OBJECTORS_1, "l1")
    assert m1.export_delta(path)["version"] == 3
    before = snapshot_dir(path)
    again = m1.export_delta(path)
    assert again["version"] is None and again["files_changed"] == 0
    assert snapshot_dir(path) == before
    # A later manifest (u2 withdrew nothing, but it is not in this one): the
    # union stays deleted, rows are never re-included by an export.
    m2 = build_manifest(tmp_path, files, OBJECTORS_2, "l2")
    s = m2.export_delta(path)
    assert s["version"] == 4
    for read in READERS:
        assert read(path) == kept(all_rids, OBJECTORS_1 | OBJECTORS_2), read.__name__


def test_vectors_of_another_writer_are_kept(table, tmp_path):
    path, files = table
    all_rids = sorted(r for rids in files.values() for r in rids)
    rel = sorted(files)[0]
    foreign = [0, 1, len(files[rel]) - 1]
    add_foreign_dv(path, rel, foreign)
    foreign_rids = [files[rel][p] for p in foreign]
    for read in READERS:
        assert read(path) == kept(all_rids, set(), foreign_rids), read.__name__
    s = build_manifest(tmp_path, files, OBJECTORS_1, "l1").export_delta(path, inline_max_bytes=0)
    assert s["version"] == 4 and s["read_version"] == 3
    for read in READERS:
        assert read(path) == kept(all_rids, OBJECTORS_1, foreign_rids), read.__name__


def test_a_table_that_does_not_match_is_refused_untouched(table, tmp_path):
    path, files = table
    # The manifest knows only some of the table's files.
    part = dict(sorted(files.items())[:3])
    m = build_manifest(tmp_path, part, OBJECTORS_1, "l1")
    before = snapshot_dir(path)
    with pytest.raises(optout.TableMismatchError) as e:
        m.export_delta(path)
    assert len(e.value.problems) == 3 and "not a shard" in e.value.problems[0]
    assert snapshot_dir(path) == before
    # A manifest naming files the table lacks.
    renamed = {"x/" + k: v for k, v in files.items()}
    with pytest.raises(optout.TableMismatchError, match="no such file"):
        build_manifest(tmp_path, renamed, OBJECTORS_1, "l2").export_delta(path)
    assert snapshot_dir(path) == before
    # With the unknown files allowed, the known ones get their vectors.
    s = m.export_delta(path, allow_unknown_files=True)
    assert s["files_changed"] == 3


def test_escaped_paths(tmp_path):
    """A partition value with a space: the shard names are the decoded
    ``add.path`` values, which differ from the raw ones."""
    path = tmp_path / "table"
    make_table(path, other_lang="de fr")
    files = live_files(path)
    raw = [
        json.loads(line)["add"]["path"]
        for f in sorted((path / "_delta_log").glob("*.json"))
        for line in f.read_text().splitlines()
        if '"add"' in line
    ]
    assert sorted(unquote(r) for r in raw) == sorted(files)
    assert any(unquote(r) != r for r in raw)
    all_rids = sorted(r for rids in files.values() for r in rids)
    s = build_manifest(tmp_path, files, OBJECTORS_1, "l1").export_delta(path)
    assert s["files_changed"] == 6
    assert read_sql(path) == kept(all_rids, OBJECTORS_1)


@pytest.mark.xfail(
    strict=False,
    reason="Polars 2.1 ignores the deletion vectors of files whose add.path has %-escapes "
    "(here a partition value with a space): the excluded rows come back. "
    "Seen with a vector written by hand from the protocol too, so not optout's doing.",
)
def test_polars_on_escaped_paths(tmp_path):
    path = tmp_path / "table"
    make_table(path, other_lang="de fr")
    files = live_files(path)
    all_rids = sorted(r for rids in files.values() for r in rids)
    build_manifest(tmp_path, files, OBJECTORS_1, "l1").export_delta(path)
    assert read_polars(path) == kept(all_rids, OBJECTORS_1)


def parse_puffin(data: bytes) -> list[tuple[dict, list[int]]]:
    """An independent Puffin + deletion-vector-v1 decoder (Iceberg specs)."""
    import pyroaring

    assert data[:4] == b"PFA1" and data[-4:] == b"PFA1"
    assert data[-8:-4] == b"\0\0\0\0"
    n = struct.unpack("<I", data[-12:-8])[0]
    footer = json.loads(data[-12 - n : -12])
    assert data[-16 - n : -12 - n] == b"PFA1"
    out = []
    for b in footer["blobs"]:
        blob = data[b["offset"] : b["offset"] + b["length"]]
        (length,) = struct.unpack(">I", blob[:4])
        body = blob[4 : 4 + length]
        assert body[:4] == bytes([0xD1, 0xD3, 0x39, 0x64])
        assert struct.unpack(">I", blob[4 + length :])[0] == zlib.crc32(body)
        vec = body[4:]
        (count,) = struct.unpack("<Q", vec[:8])
        pos, rows = 8, []
        for _ in range(count):
            (key,) = struct.unpack("<I", vec[pos : pos + 4])
            bm = pyroaring.BitMap.deserialize(vec[pos + 4 :])
            pos += 4 + len(bm.serialize())
            rows.extend((key << 32) + r for r in bm)
        assert pos == len(vec)
        out.append((b, rows))
    return out


def test_iceberg_puffin_read_by_pyiceberg(table, tmp_path):
    _, files = table
    m = build_manifest(tmp_path, files, OBJECTORS_1, "l1")
    out = tmp_path / "dv.puffin"
    s = m.export_iceberg(out, data_root="s3://bucket/db/t/data")
    data = out.read_bytes()
    want = {
        f"s3://bucket/db/t/data/{f}": [p for p, rid in enumerate(rids) if user_of(rid) in OBJECTORS_1]
        for f, rids in files.items()
    }
    mine = {b["properties"]["referenced-data-file"]: rows for b, rows in parse_puffin(data)}
    assert mine == want
    for b, rows in parse_puffin(data):
        assert b["type"] == "deletion-vector-v1"
        assert b["snapshot-id"] == -1 and b["sequence-number"] == -1
        assert b["properties"]["cardinality"] == str(len(rows))
    assert s["rows"] == sum(len(r) for r in want.values())
    puffin = pytest.importorskip("pyiceberg.table.puffin")
    dvmod = pytest.importorskip("pyiceberg.table.deletion_vector")
    got = {
        dv.referenced_data_file: dv.to_vector().to_pylist()
        for dv in dvmod.deletion_vectors_from_puffin_file(puffin.PuffinFile(data))
    }
    assert got == want
