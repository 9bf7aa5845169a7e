"""Parquet, Arrow and DSR-export intake from Python: ``Ledger.ingest_parquet``,
``Ledger.ingest_arrow`` and ``Ledger.apply_table`` give the same rows,
positions and errors as the CLI (the rules are the library's)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import optout

MAPPING = {
    "dataset": "forum",
    "subjects": ["author_email", "mentions"],
    "source": "forum.example.com",
    "basis": "legitimate_interest",
    "collected_at": {"column": "created_at"},
    "categories": ["text"],
    "visibility": "public",
    "key": {"column": "url"},
}

EVENTS = {
    "type": {"column": "request_type", "values": {"objection": "objection", "delete": "erasure"}},
    "subject": {"column": "email"},
    "at": {"column": "received_at"},
    "purposes": ["ai-training"],
    "ref": {"column": "ticket"},
}


def forum(authors, mentions):
    n = len(authors)
    return pa.table(
        {
            "author_email": pa.array(authors, pa.string()),
            "mentions": pa.array(mentions, pa.list_(pa.string())),
            "created_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)] * n, pa.timestamp("us", "UTC")),
            "url": [f"https://forum.example.com/{i}" for i in range(n)],
        }
    )


@pytest.fixture()
def led(tmp_path):
    with optout.Ledger.create(tmp_path / "L") as led:
        yield led


def test_ingest_parquet_rows_are_positions_across_row_groups(led, tmp_path):
    data = tmp_path / "data"
    (data / "forum").mkdir(parents=True)
    t = forum(
        ["a@x.org", "b@x.org", None, "c@x.org", ""],
        [["b@x.org"], [], None, ["a@x.org", ""], ["B@X.org"]],
    )
    pq.write_table(t, data / "forum" / "part-0.parquet", row_group_size=2)
    (tmp_path / "map.json").write_text(json.dumps(MAPPING))
    s = led.ingest_parquet([data / "forum" / "part-0.parquet"], tmp_path / "map.json", root=data)
    assert (s["registered"], s["unchanged"]) == (5, 0)
    again = led.ingest_parquet(str(data / "forum" / "part-0.parquet"), MAPPING, root=str(data))
    assert (again["registered"], again["unchanged"]) == (0, 5)
    led.apply({"type": "objection", "subject": "b@x.org", "at": "2025-01-01T00:00:00Z", "purposes": ["ai-training"]})
    m = led.manifest("ai-training")
    assert m.excluded("forum", "forum/part-0.parquet").tolist() == [0, 1, 4]
    keep = m.keep_mask("forum", "forum/part-0.parquet", np.arange(5, dtype=np.uint64))
    assert keep.tolist() == [False, False, True, True, False]


def test_a_changed_file_needs_replace(led, tmp_path):
    p = tmp_path / "part-0.parquet"
    pq.write_table(forum(["a@x.org", "b@x.org"], [None, None]), p)
    led.ingest_parquet(p, MAPPING)
    seq = led.seq
    again = led.ingest_parquet(p, MAPPING)  # recognised by its footer: nothing written
    assert (again["registered"], again["unchanged"]) == (0, 2) and led.seq == seq
    pq.write_table(forum(["a@x.org", "z@x.org"], [None, None]), p)
    with pytest.raises(optout.InputError) as e:
        led.ingest_parquet(p, MAPPING)
    assert e.value.kind == "changed" and e.value.file == str(p), e.value
    assert "changed since the ledger registered it as forum/part-0.parquet (" in str(e.value)
    assert led.seq == seq
    s = led.ingest_parquet(p, MAPPING, replace=True)
    assert s["registered"] == 2


def test_errors_name_file_row_column_and_field(led, tmp_path):
    p = tmp_path / "bad.parquet"
    t = forum(["a@x.org", "b@x.org"], [None, None])
    t = t.set_column(2, "created_at", pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), None], pa.timestamp("us", "UTC")))
    pq.write_table(t, p, row_group_size=1)
    good = tmp_path / "good.parquet"
    pq.write_table(forum(["q@x.org"], [None]), good)
    seq = led.seq
    with pytest.raises(optout.InputError) as e:
        led.ingest_parquet([good, p], MAPPING)
    assert (e.value.file, e.value.row, e.value.column, e.value.field) == (str(p), 1, "created_at", "collected_at")
    assert e.value.kind == "null" and e.value.line is None
    assert led.seq == seq  # all or nothing: good.parquet is not registered either
    with pytest.raises(optout.InputError) as e:
        led.ingest_parquet(good, dict(MAPPING, collected_at={"column": "nope"}))
    assert (e.value.column, e.value.kind) == ("nope", "missing_column")
    with pytest.raises(optout.InputError) as e:
        led.ingest_parquet(good, dict(MAPPING, colour="red"))
    assert e.value.kind == "mapping" and e.value.file == "<mapping>"


def test_ingest_arrow_and_polars(led):
    pl = pytest.importorskip("polars")
    t = forum(["a@x.org", "b@x.org", "c@x.org"], [None, None, None])
    assert led.ingest_arrow(t, MAPPING, shard="s-0")["registered"] == 3
    # A Polars DataFrame exports the same Arrow C stream.
    assert led.ingest_arrow(pl.from_arrow(t), MAPPING, shard="s-0")["unchanged"] == 3
    led.apply({"type": "erasure", "subject": "c@x.org", "at": "2025-01-01T00:00:00Z"})
    assert led.manifest("ai-training").excluded("forum", "s-0").tolist() == [2]


def test_apply_table_from_csv_parquet_and_arrow(led, tmp_path):
    led.ingest_arrow(forum(["a@x.org", "b@x.org", "c@x.org"], [None, None, None]), MAPPING, shard="s")
    csv = tmp_path / "dsr.csv"
    csv.write_text(
        "ticket,request_type,email,received_at\n"
        "T-1,objection,a@x.org,2025-06-01 09:00:00+02:00\n"
        "T-2,delete,b@x.org,2025-06-02T10:00:00Z\n"
    )
    led.apply_table(csv, EVENTS)
    m = led.manifest("ai-training")
    assert m.excluded("forum", "s").tolist() == [0, 1]
    assert m.excluded("forum", "s", reason="erasure").tolist() == [1]

    exp = pa.table(
        {
            "ticket": ["T-3"],
            "request_type": ["delete"],
            "email": ["c@x.org"],
            "received_at": pa.array([dt.datetime(2025, 6, 3, tzinfo=dt.timezone.utc)], pa.timestamp("us", "UTC")),
        }
    )
    pq.write_table(exp, tmp_path / "dsr.parquet")
    seq = led.apply_table([tmp_path / "dsr.parquet"], EVENTS)
    assert seq == led.seq
    assert led.manifest("ai-training").excluded("forum", "s").tolist() == [0, 1, 2]

    # A bad line of a CSV names its line; nothing applied.
    bad = tmp_path / "bad.csv"
    bad.write_text("ticket,request_type,email,received_at\nT-9,objection,a@x.org,2025-06-01T00:00:00Z\nT-10,objection,b@x.org,soon\n")
    before = led.seq
    with pytest.raises(optout.InputError) as e:
        led.apply_table(bad, EVENTS)
    assert (e.value.file, e.value.line, e.value.column) == (str(bad), 3, "received_at")
    assert led.seq == before
    # Arrow data directly: the same request again is a no-op (unchanged).
    s = led.apply_table(exp, EVENTS, summary=True)
    assert (s["applied"], s["unchanged"], s["seq"]) == (0, 1, before)
    assert led.seq == before
    # Another request records.
    led.apply_table(exp.set_column(0, "ticket", pa.array(["T-4"])), EVENTS)
    assert led.seq == before + 1


def test_ingest_arrow_replace_by_a_shorter_stream_leaves_no_row_behind(led, tmp_path):
    # Issue 14: no fingerprint for a stream (a re-run compares row by row),
    # and a replace by a shorter one makes the rows past its end gone, as in
    # a ledger that only ever saw the short stream.
    five = forum([f"u{i}@x.org" for i in range(5)], [None] * 5)
    assert led.ingest_arrow(five, MAPPING, shard="s")["registered"] == 5
    again = led.ingest_arrow(five, MAPPING, shard="s")
    assert (again["registered"], again["unchanged"], again["gone"]) == (0, 5, 0)
    led.apply({"type": "erasure", "subject": "u4@x.org", "at": "2025-01-01T00:00:00Z"})
    s = led.ingest_arrow(five.slice(0, 3), MAPPING, shard="s", replace=True)
    assert (s["registered"], s["gone"]) == (3, 2)
    with optout.Ledger.create(tmp_path / "fresh") as fresh:
        fresh.ingest_arrow(five.slice(0, 3), MAPPING, shard="s")
        fresh.apply({"type": "erasure", "subject": "u4@x.org", "at": "2025-01-01T00:00:00Z"})
        a, b = led.manifest("ai-training"), fresh.manifest("ai-training")
        assert a.excluded("forum", "s").tolist() == b.excluded("forum", "s").tolist() == []
        assert a.registered_count == b.registered_count == 3
