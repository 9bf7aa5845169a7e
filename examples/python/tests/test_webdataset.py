"""optout.webdataset: samples of tar shards kept by sample position (tar order,
grouped by key) and by ``__key__``, against the samples as they were written."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

import optout
import optout.webdataset as owds

DATASET = "images"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_tar(path, samples: list[tuple[str, dict[str, bytes]]], extras: bool = True) -> None:
    """Members in order; with ``extras``, members that belong to no sample too."""
    with tarfile.open(path, "w") as tar:
        if extras:
            d = tarfile.TarInfo("sub")
            d.type = tarfile.DIRTYPE
            tar.addfile(d)
            _add(tar, "__index__", b"meta")
            _add(tar, "README", b"no dot, no sample")
        for key, fields in samples:
            for field, data in fields.items():
                _add(tar, f"{key}.{field}", data)


def make_samples(tag: str, n: int) -> list[tuple[str, dict[str, bytes]]]:
    out = []
    for i in range(n):
        key = f"sub/{tag}{i:03}" if i % 4 == 1 else f"{tag}{i:03}"
        fields = {"jpg": f"img {tag}{i}".encode(), "cls": str(i % 3).encode()}
        if i % 5 == 2:
            fields["seg.png"] = b"mask"
        out.append((key, fields))
    return out


@pytest.fixture(scope="module")
def wds_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("wds")
    (d / "shards").mkdir()
    tars = {"a.tar": make_samples("a", 23), "b.tar": make_samples("b", 17)}
    for name, s in tars.items():
        write_tar(d / "shards" / name, s)
    write_tar(d / "shards" / "c.tar", make_samples("c", 3))  # never registered
    recs = [
        {"dataset": DATASET, "shard": name, "row": row, "subjects": [f"u{row % 6}@example.com"], "source": "cam",
         "collected_at": "2024-01-01T00:00:00Z", "basis": "legitimate_interest", "key": key}
        for name, s in tars.items() for row, (key, _) in enumerate(s)
    ]
    with optout.Ledger.create(d / "ledger") as led:
        led.ingest(recs)
        led.apply({"type": "objection", "subject": "u4@example.com", "at": "2025-01-01T00:00:00Z", "purposes": ["ai-training"]})
        led.apply({"type": "takedown", "at": "2025-01-01T00:00:00Z", "reason": "copyright", "key": "b001"})
        m = led.manifest("ai-training", at="2025-06-01T00:00:00Z")
    # Ground truth from the samples as written: row = index, out if row % 6 == 4 or taken down.
    kept = [(name, key) for name, s in tars.items() for row, (key, _) in enumerate(s) if row % 6 != 4 and key != "b001"]
    return d, tars, m, kept


def test_read_tar_groups_members_into_samples_in_tar_order(wds_data):
    d, tars, _, _ = wds_data
    got = list(owds.read_tar(d / "shards" / "a.tar"))
    assert [(s["__row__"], s["__key__"]) for s in got] == [(i, k) for i, (k, _) in enumerate(tars["a.tar"])]
    for s, (_, fields) in zip(got, tars["a.tar"]):
        assert {k: v for k, v in s.items() if not k.startswith("__")} == fields
        assert s["__url__"] == str(d / "shards" / "a.tar")


def test_samples_keeps_exactly_the_allowed_ones_by_position(wds_data):
    d, _, m, kept = wds_data
    files = [d / "shards" / "b.tar", d / "shards" / "a.tar"]
    got = [(s["__url__"].rsplit("/", 1)[1], s["__key__"]) for s in owds.samples(files, m, DATASET)]
    assert sorted(got) == sorted(kept)
    assert len(got) < 40
    # Two workers split the tars and together read each kept sample once.
    parts = [[s["__key__"] for s in owds.samples(files, m, DATASET, worker_id=w, num_workers=2)] for w in range(2)]
    assert all(parts) and sorted(parts[0] + parts[1]) == sorted(k for _, k in kept)


def test_samples_by_key_too(wds_data, tmp_path):
    d, _, m, kept = wds_data
    export = tmp_path / "excluded.jsonl"
    export.write_text(
        json.dumps({"dataset": DATASET, "shard": "a.tar", "row": 0, "reasons": ["takedown"], "key": "a000"}) + "\n"
        + json.dumps({"dataset": "other", "shard": "x.tar", "row": 0, "reasons": ["objection"], "key": "a002"}) + "\n"
        + json.dumps({"dataset": DATASET, "shard": "a.tar", "row": 3, "reasons": ["objection"], "key": None}) + "\n"
    )
    keys = owds.excluded_keys(export, DATASET)
    assert keys == {"a000"}
    got = [s["__key__"] for s in owds.samples(d / "shards" / "a.tar", m, DATASET, excluded=keys)]
    assert got == [k for t, k in kept if t == "a.tar" and k != "a000"]
    stream = owds.read_tar(d / "shards" / "c.tar")
    assert [s["__key__"] for s in owds.filter_keys(stream, {"sub/c001"})] == ["c000", "c002"]
    (tmp_path / "nokey.jsonl").write_text(json.dumps({"dataset": DATASET, "shard": "a.tar", "row": 0, "reasons": []}) + "\n")
    with pytest.raises(optout.InvalidRequestError, match="nokey.jsonl:1: field `key`"):
        owds.excluded_keys(tmp_path / "nokey.jsonl")


def test_an_unregistered_tar_fails_closed(wds_data):
    d, _, m, _ = wds_data
    files = [d / "shards" / "a.tar", d / "shards" / "c.tar"]
    with pytest.raises(optout.UnknownShardError):
        list(owds.samples(files, m, DATASET))
    got = [s["__key__"] for s in owds.samples(files, m, DATASET, strict=False)]
    assert got[-3:] == ["c000", "sub/c001", "c002"]
    # A directory stands for its tars: c.tar is among them.
    with pytest.raises(optout.UnknownShardError):
        owds.samples(d / "shards", m, DATASET)


def test_a_field_twice_in_a_sample_is_an_error(tmp_path):
    p = tmp_path / "dup.tar"
    with tarfile.open(p, "w") as tar:
        _add(tar, "k1.jpg", b"x")
        _add(tar, "k1.JPG", b"y")
    with pytest.raises(optout.InvalidRequestError, match="dup.tar: member k1.JPG: field 'jpg' twice"):
        list(owds.read_tar(p))


def test_the_webdataset_package_consumes_our_samples(wds_data):
    wds = pytest.importorskip("webdataset")
    d, _, m, kept = wds_data
    pipe = wds.DataPipeline(lambda: owds.samples(d / "shards" / "a.tar", m, DATASET), wds.to_tuple("__key__", "cls"))
    got = list(pipe)
    assert [k for k, _ in got] == [k for t, k in kept if t == "a.tar"]
    # And our grouping agrees with the package's own reader, sample for sample.
    theirs = list(wds.WebDataset(str(d / "shards" / "a.tar"), shardshuffle=False))
    ours = list(owds.read_tar(d / "shards" / "a.tar"))
    assert [s["__key__"] for s in theirs] == [s["__key__"] for s in ours]
    assert [sorted(k for k in s if not k.startswith("__")) for s in theirs] == [
        sorted(k for k in s if not k.startswith("__")) for s in ours
    ]
