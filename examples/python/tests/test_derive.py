"""Derived datasets from Python (issue 15): Ledger.derive goes through the library's Ledger::derive."""

from __future__ import annotations

import pytest

import optout

AT = "2025-06-01T00:00:00Z"


def post(row: int, author: str) -> dict:
    return {
        "dataset": "forum",
        "shard": "part-0.parquet",
        "row": row,
        "subjects": [author],
        "source": "forum.example.com",
        "collected_at": "2025-01-01T00:00:00Z",
        "basis": "legitimate_interest",
    }


@pytest.fixture()
def ledger(tmp_path):
    with optout.Ledger.create(tmp_path / "L") as led:
        led.ingest([post(0, "ann@x.org"), post(1, "ben@x.org"), post(2, "cy@x.org")])
        yield led


# Packed row 0 holds posts 0 and 1; packed row 1 holds post 2.
LINEAGE = [
    {"shard": "t0", "row": 0, "parents": [
        {"dataset": "forum", "shard": "part-0.parquet", "row": 0},
        {"dataset": "forum", "shard": "part-0.parquet", "row": 1},
    ]},
    {"shard": "t0", "row": 1, "parents": [{"dataset": "forum", "shard": "part-0.parquet", "row": 2}]},
]


def test_a_packed_row_with_one_objected_post_is_excluded_with_objection(ledger):
    s = ledger.derive("packed", ["forum"], LINEAGE)
    assert (s["registered"], s["unchanged"], s["links"]) == (2, 0, 3)
    assert s["seq"] == ledger.seq
    ledger.apply({"type": "objection", "subject": "ben@x.org", "at": "2025-02-01T00:00:00Z",
                  "purposes": ["ai-training"]})
    m = ledger.manifest("ai-training", at=AT, datasets=["packed"])
    assert m.excluded("packed", "t0").tolist() == [0]
    assert m.reasons("packed", "t0", 0) == ["objection"]
    assert m.reasons("packed", "t0", 1) == []
    # The report of the objector lists the packed row made from their post.
    report = ledger.report("ben@x.org", at=AT)
    assert "derived" in report, report.keys()


def test_the_same_lineage_again_is_unchanged(ledger):
    ledger.derive("packed", ["forum"], LINEAGE)
    seq = ledger.seq
    s = ledger.derive("packed", ["forum"], LINEAGE)
    assert (s["registered"], s["unchanged"]) == (0, 2)
    assert ledger.seq == seq


@pytest.mark.parametrize(
    "lineage, field",
    [
        ([{"shard": "t0", "row": 0, "parents": [{"dataset": "forum", "shard": "part-0.parquet", "row": 9}]}],
         "parents"),
        ([{"shard": "t0", "row": 0, "parents": [{"dataset": "other", "shard": "s", "row": 0}]}], "parents"),
    ],
    ids=["missing parent", "parent outside sources"],
)
def test_bad_lineage_raises_and_writes_nothing(ledger, lineage, field):
    seq = ledger.seq
    with pytest.raises(optout.InputError) as e:
        ledger.derive("packed", ["forum"], lineage)
    assert field in (e.value.field or "") or field in str(e.value), str(e.value)
    assert ledger.seq == seq


def test_a_missing_parent_may_be_recorded_on_purpose(ledger):
    lineage = [{"shard": "t0", "row": 0, "parents": [{"dataset": "forum", "shard": "part-0.parquet", "row": 9}]}]
    s = ledger.derive("packed", ["forum"], lineage, allow_missing_parents=True)
    assert s["registered"] == 1


# The same lineage as Parquet columns: one row per link (Ledger.derive_parquet).
def links_table(rows):
    import pyarrow as pa

    cols = ["shard", "row", "parent_dataset", "parent_shard", "parent_row", "parent_key", "parent_content_hash"]
    types = [pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64(), pa.string(), pa.string()]
    return pa.table({c: pa.array([r.get(c) for r in rows], type=t) for c, t in zip(cols, types)})


def lineage_links(lineage):
    out = []
    for line in lineage:
        for p in line["parents"]:
            link = {"shard": line["shard"], "row": line["row"]}
            if "dataset" in p:
                link.update(parent_dataset=p["dataset"], parent_shard=p["shard"], parent_row=p["row"])
            elif "key" in p:
                link["parent_key"] = p["key"]
            else:
                link["parent_content_hash"] = p["content_hash"]
            out.append(link)
    return out


def write_links(path, rows, **kw):
    import pyarrow.parquet as pq

    pq.write_table(links_table(rows), path, **kw)
    return path


def test_derive_parquet_equals_derive_of_the_same_lineage(ledger, tmp_path):
    pytest.importorskip("pyarrow")
    p = write_links(tmp_path / "links.parquet", lineage_links(LINEAGE), row_group_size=2)
    s = ledger.derive_parquet("packed", ["forum"], p)
    assert (s["registered"], s["unchanged"], s["links"]) == (2, 0, 3)
    # The JSONL form of the same lineage is the same derivation: unchanged.
    seq = ledger.seq
    s = ledger.derive("packed", ["forum"], LINEAGE)
    assert (s["registered"], s["unchanged"]) == (0, 2)
    assert ledger.seq == seq
    ledger.apply({"type": "objection", "subject": "ben@x.org", "at": "2025-02-01T00:00:00Z",
                  "purposes": ["ai-training"]})
    m = ledger.manifest("ai-training", at=AT, datasets=["packed"])
    assert m.excluded("packed", "t0").tolist() == [0]
    assert m.reasons("packed", "t0", 0) == ["objection"]


GOOD = {"shard": "t0", "row": 0, "parent_dataset": "forum", "parent_shard": "part-0.parquet", "parent_row": 0}


@pytest.mark.parametrize(
    "rows, drop, row, column, kind",
    [
        ([GOOD], ["row"], None, "row", "missing_column"),
        ([GOOD, {"row": 1, "parent_key": "k"}], [], 1, "shard", "null"),
        ([GOOD, {**GOOD, "row": 1, "parent_key": "k"}], [], 1, "parent_key", "bad_value"),
        ([GOOD, {"shard": "t0", "row": 1}], [], 1, "parent_dataset", "null"),
        ([GOOD, {**GOOD, "row": 1, "parent_row": 9}], [], 1, "parent_dataset", "bad_value"),
        ([{**GOOD, "parent_dataset": "other"}], [], 0, "parent_dataset", "bad_value"),
    ],
    ids=["missing column", "null shard", "two parent forms", "no parent", "missing parent", "outside sources"],
)
def test_bad_parquet_lineage_raises_with_row_and_column_and_writes_nothing(ledger, tmp_path, rows, drop, row, column,
                                                                          kind):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    t = links_table(rows)
    t = t.drop_columns(drop)
    p = tmp_path / "bad.parquet"
    pq.write_table(t, p)
    seq = ledger.seq
    with pytest.raises(optout.InputError) as e:
        ledger.derive_parquet("packed", ["forum"], [p])
    assert (e.value.row, e.value.column, e.value.kind) == (row, column, kind), str(e.value)
    assert e.value.file == str(p)
    assert ledger.seq == seq
    assert pa is not None


def test_derive_parquet_wrong_type(ledger, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "str-row.parquet"
    pq.write_table(pa.table({"shard": ["t0"], "row": ["0"], "parent_key": ["k"]}), p)
    with pytest.raises(optout.InputError) as e:
        ledger.derive_parquet("packed", ["forum"], p)
    assert (e.value.column, e.value.kind) == ("row", "wrong_type"), str(e.value)
