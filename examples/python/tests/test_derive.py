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
