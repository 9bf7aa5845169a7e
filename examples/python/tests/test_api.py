"""The Ledger and Manifest API against the independent reference."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

import optout
from pipelines import gen

SHARD0 = "part-00000.parquet"


def test_manifest_matches_the_reference(manifest, reference):
    assert manifest.purpose == "ai-training"
    assert manifest.at == gen.AT
    assert manifest.shards() == [(gen.DATASET, s) for s in sorted(gen.SHARDS)]
    assert len(manifest) == len(gen.SHARDS)
    total = 0
    for s, n in gen.SHARDS.items():
        ex = manifest.excluded(gen.DATASET, s)
        assert ex.dtype == np.uint32
        assert ex.tolist() == sorted(reference[s]), s
        c = manifest.shard_counts(gen.DATASET, s)
        assert c["registered"] == n and c["excluded"] == len(reference[s])
        total += len(reference[s])
    assert manifest.excluded_count == total
    assert manifest.registered_count == sum(gen.SHARDS.values())
    h = manifest.header
    assert h["excluded"] == total and h["purpose"] == "ai-training" and h["at"] == gen.AT
    assert [name for name, _ in h["counts"]] == list(optout.REASONS)
    assert len(manifest.digest) == 64 and f"digest={manifest.digest[:16]}" in repr(manifest)
    assert manifest.to_bytes()[-32:].hex() == manifest.digest


def test_reasons_per_row(manifest):
    # Row 0 of shard 0: subject user0 (0 % 23 == 0) objected.
    assert gen.subjects_of(0, 0) == [0]
    assert manifest.reasons(gen.DATASET, SHARD0, 0) == ["objection"]
    assert manifest.contains(gen.DATASET, SHARD0, 0)
    # The taken-down key.
    assert "takedown" in manifest.reasons(gen.DATASET, "part-00001.parquet", 123)
    # Source opt-out rows: row % 97 == 5.
    assert "source_optout" in manifest.reasons(gen.DATASET, SHARD0, 5)
    by_reason = manifest.excluded(gen.DATASET, SHARD0, reason="source_optout")
    assert set(by_reason.tolist()) == {r for r in range(gen.SHARDS[SHARD0]) if r % 97 == 5}
    with pytest.raises(optout.InputError) as e:
        manifest.excluded(gen.DATASET, SHARD0, reason="nope")
    assert e.value.field == "reason"


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64, np.int64, np.int32])
@pytest.mark.parametrize("order", ["sorted", "shuffled", "dups"])
def test_keep_mask_equals_numpy(manifest, reference, dtype, order):
    rng = np.random.default_rng(7)
    n = gen.SHARDS[SHARD0]
    rows = np.arange(n + 50, dtype=dtype)  # 50 rows past the registered ones
    if order == "shuffled":
        rows = rng.permutation(rows)
    elif order == "dups":
        rows = np.sort(rng.integers(0, n + 50, size=3 * n)).astype(dtype)
    # Rows past the shard's end are refused by default (the manifest says
    # nothing about them); strict=False keeps them.
    for f in (manifest.keep_mask, manifest.contains_many):
        with pytest.raises(optout.RowPastEndError) as e:
            f(gen.DATASET, SHARD0, rows)
        assert (e.value.row_end, e.value.shard) == (n, SHARD0)
        assert e.value.row >= n and rows[e.value.index] == e.value.row
    keep = manifest.keep_mask(gen.DATASET, SHARD0, rows, strict=False)
    ex = np.fromiter(sorted(reference[SHARD0]), dtype=np.int64)
    expected = ~np.isin(rows.astype(np.int64), ex)
    assert keep.dtype == np.bool_ and keep.shape == rows.shape
    np.testing.assert_array_equal(keep, expected)
    np.testing.assert_array_equal(manifest.contains_many(gen.DATASET, SHARD0, rows, strict=False), ~expected)
    inside = rows[rows < n]
    np.testing.assert_array_equal(manifest.keep_mask(gen.DATASET, SHARD0, inside), expected[rows < n])


def test_keep_mask_edge_inputs(manifest, reference):
    ex = sorted(reference[SHARD0])
    # Plain lists, non-contiguous views, empty arrays, rows beyond u32.
    assert manifest.keep_mask(gen.DATASET, SHARD0, [ex[0], ex[0] + 1000000], strict=False).tolist() == [False, True]
    big = np.arange(20, dtype=np.uint32)[::2]
    np.testing.assert_array_equal(
        manifest.keep_mask(gen.DATASET, SHARD0, big), ~np.isin(big, np.array(ex))
    )
    assert manifest.keep_mask(gen.DATASET, SHARD0, np.array([], dtype=np.uint64)).shape == (0,)
    wide = np.array([ex[0], 2**32 + ex[0], 2**63], dtype=np.uint64)
    assert manifest.keep_mask(gen.DATASET, SHARD0, wide, strict=False).tolist() == [False, True, True]
    with pytest.raises(optout.RowPastEndError):
        manifest.keep_mask(gen.DATASET, SHARD0, wide)
    with pytest.raises(optout.InputError, match="row numbers must be >= 0"):
        manifest.keep_mask(gen.DATASET, SHARD0, np.array([1, -1]))
    with pytest.raises(optout.InputError, match="integer"):
        manifest.keep_mask(gen.DATASET, SHARD0, np.array([1.5]))
    with pytest.raises(optout.InputError, match="1-D"):
        manifest.keep_mask(gen.DATASET, SHARD0, np.zeros((2, 2), dtype=np.uint32))


def test_unknown_shard(manifest):
    rows = np.arange(10, dtype=np.uint32)
    # Fail closed by default: a shard name the manifest does not know raises.
    with pytest.raises(optout.UnknownShardError):
        manifest.excluded("forum", "nope.parquet")
    with pytest.raises(optout.UnknownShardError):
        manifest.contains_many("forum", "nope.parquet", rows)
    assert manifest.keep_mask("forum", "nope.parquet", rows, strict=False).all()
    assert manifest.excluded("forum", "nope.parquet", strict=False).size == 0
    with pytest.raises(optout.UnknownShardError) as e:
        manifest.keep_mask("forum", "nope.parquet", rows)
    assert isinstance(e.value, KeyError) and e.value.shard == "nope.parquet"
    assert "nope.parquet" in str(e.value)


def test_ingest_accepts_paths_bytes_and_dicts(tmp_path):
    recs = gen.records(0, SHARD0)[:30]
    with optout.Ledger.create(tmp_path / "a") as led:
        s = led.ingest(gen.write_jsonl(tmp_path / "r.jsonl", recs[:10]), "".join(json.dumps(r) + "\n" for r in recs[10:20]).encode(), recs[20:])
        assert s["registered"] == 30 and s["links"] == sum(len(r["subjects"]) for r in recs)
        again = led.ingest(iter(recs))
        assert (again["registered"], again["unchanged"], again["seq"]) == (0, 30, s["seq"])
        assert led.ingest(recs[0])["unchanged"] == 1
        seq = led.apply({"type": "erasure", "subject": recs[3]["subjects"][0], "at": "2025-01-01T00:00:00Z"})
        assert seq == led.seq == s["seq"] + 1
        m = led.manifest("ai-training", at="2025-02-01T00:00:00Z")
        assert 3 in m.excluded("forum", SHARD0).tolist()


def test_manifest_regenerates_byte_identical(ledger_copy, built):
    _, m0, seq0 = built
    with optout.Ledger.open(ledger_copy) as led:
        assert led.manifest("ai-training", at=gen.AT).to_bytes() == m0.to_bytes()
        led.apply(gen.events()[-1:])  # the late objection
        led.ingest({**gen.records(0, SHARD0)[0], "shard": "part-00009.parquet"})
        led.snapshot()
        assert led.manifest("ai-training", at=gen.AT, at_seq=seq0).to_bytes() == m0.to_bytes()
        later = led.manifest("ai-training", at="2025-10-01T00:00:00Z")
    # Reopened (from the snapshot), read-only without the key: same bytes.
    with optout.Ledger.open(ledger_copy, read_only=True) as ro:
        again = ro.manifest("ai-training", at=gen.AT, at_seq=seq0)
        assert again.to_bytes() == m0.to_bytes() and again == m0 and hash(again) == hash(m0)
        ro.verify_manifest(m0)
    d = m0.diff(later)
    late_rows = gen.reference_excluded(SHARD0, late=True) - gen.reference_excluded(SHARD0)
    assert late_rows, "the generator's late objector has rows in shard 0"
    shard0 = [s for s in d["shards"] if s["shard"] == SHARD0][0]
    assert set(shard0["newly_excluded"].tolist()) == late_rows
    assert d["re_included"] == 0 and d["per_reason"]["objection"][0] == d["newly_excluded"]


def test_valid_time_travel_and_datetimes(ledger_copy):
    with optout.Ledger.open(ledger_copy, read_only=True) as led:
        before = led.manifest("ai-training", at="2025-01-01T00:00:00Z")
        at = led.manifest("ai-training", at=dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
        assert at.to_bytes() == led.manifest("ai-training", at=gen.AT).to_bytes()
        assert before.excluded_count < at.excluded_count
        with pytest.raises(optout.InputError) as e:
            led.manifest("ai-training", at=dt.datetime(2025, 7, 1))
        assert e.value.field == "at" and "naive" in str(e.value)
        with pytest.raises(optout.InputError) as e:
            led.manifest("ai-training", at="yesterday")
        assert e.value.field == "at"


def test_policy_and_dataset_scope(ledger_copy):
    with optout.Ledger.open(ledger_copy, read_only=True) as led:
        strict = led.manifest(
            "ai-training", at=gen.AT, policy={"purpose": "ai-training", "exclude_categories": ["text"]}
        )
        assert strict.excluded_count == strict.registered_count
        assert strict.header["policy"]["exclude_categories"] == ["text"]
        scoped = led.manifest("ai-training", at=gen.AT, datasets=["forum"])
        assert scoped.header["datasets"] == ["forum"]
        with pytest.raises(optout.InvalidRequestError, match="unknown dataset"):
            led.manifest("ai-training", at=gen.AT, datasets=["nope"])
        with pytest.raises(optout.InputError):
            led.manifest("ai-training", policy={"purpose": "ai-training", "bogus": 1})


def test_check_runs_affected_report(ledger_copy, reference):
    with optout.Ledger.open(ledger_copy) as led:
        m = led.manifest("ai-training", at=gen.AT)
        excluded_row = min(reference[SHARD0])
        kept_row = min(set(range(100)) - reference[SHARD0])
        hits = m.check([("forum", SHARD0, kept_row), {"dataset": "forum", "shard": SHARD0, "row": excluded_row}])
        assert [(h["row"], bool(h["reasons"])) for h in hits] == [(excluded_row, True)]
        # Fail closed, like `optout check`: a shard the manifest does not
        # cover proves nothing (issue 18: it used to pass silently).
        unknown = [("forum", SHARD0, kept_row), ("forum", "no/such-shard.jsonl", excluded_row)]
        with pytest.raises(optout.UnknownShardError) as ei:
            m.check(unknown)
        assert (ei.value.dataset, ei.value.shard) == ("forum", "no/such-shard.jsonl")
        assert m.check(unknown, strict=False) == []
        with pytest.raises(optout.UnknownShardError):
            m.check([("elsewhere", SHARD0, excluded_row)])
        seq = led.add_run("run-1", "llm-small", m, started_at="2025-07-02T00:00:00Z")
        runs = led.runs()
        assert [(r["seq"], r["name"], r["model"], r["manifest_digest"]) for r in runs] == [
            (seq, "run-1", "llm-small", m.digest)
        ]
        led.apply(gen.events()[-1:])  # the late objection, after the run
        aff = led.affected(gen.user(gen.LATE_OBJECTOR), at="2025-10-01T00:00:00Z")
        assert [a["run"] for a in aff] == ["run-1"] and aff[0]["status"] == "after"
        assert {r["status"] for r in aff[0]["records"]} == {"after"}
        rep = led.report(gen.user(gen.LATE_OBJECTOR), at="2025-10-01T00:00:00Z")
        assert rep["subject"] == gen.user(gen.LATE_OBJECTOR)
        assert rep["pseudonym"] == led.pseudonym(gen.user(gen.LATE_OBJECTOR))
        assert len(rep["records"]) > 0 and rep["runs"][0]["run"] == "run-1"
        assert json.dumps(rep)  # plain JSON-able values


def test_ledger_properties_and_close(ledger_copy):
    led = optout.Ledger.open(ledger_copy)
    seq, chain = led.head
    assert seq == led.seq and len(chain) == 64 and len(led.ledger_id) == 32
    assert str(led.path) == str(ledger_copy) and not led.read_only and not led.closed
    assert "Ledger(" in repr(led)
    led.close()
    led.close()
    assert led.closed and "closed" in repr(led)
    with pytest.raises(optout.ReadOnlyError, match="closed"):
        led.seq
    assert optout.verify(ledger_copy)["clean"]


def test_manifest_save_load_and_threads(manifest, tmp_path):
    p = tmp_path / "m.optm"
    manifest.save(p)
    m = optout.Manifest.load(p)
    assert m == manifest and m.to_bytes() == p.read_bytes()
    # keep_mask releases the GIL; concurrent calls agree.
    from concurrent.futures import ThreadPoolExecutor

    rows = np.arange(gen.SHARDS[SHARD0], dtype=np.uint64)
    want = m.keep_mask("forum", SHARD0, rows)
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: m.keep_mask("forum", SHARD0, rows), range(16)))
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_keep_mask_without_dense_bitset(tmp_path):
    """Rows past 2**27 make the kernel use the merge (sorted) and contains (shuffled) paths."""
    rng = np.random.default_rng(3)
    rows = np.unique(np.concatenate([rng.integers(0, 2**32 - 2, 3000), [0, 5, 2**27, 2**32 - 2]]))
    recs = [
        {"dataset": "big", "shard": "s", "row": int(r), "subjects": [f"s{i % 3}"], "source": "x.org",
         "collected_at": "2024-01-01T00:00:00Z", "basis": "legitimate_interest"}
        for i, r in enumerate(rows)
    ]
    with optout.Ledger.create(tmp_path / "big") as led:
        led.ingest(recs)
        led.apply({"type": "objection", "subject": "s1", "at": "2025-01-01T00:00:00Z", "purposes": ["*"]})
        m = led.manifest("ai-training", at="2025-02-01T00:00:00Z")
    ex = np.array([r for i, r in enumerate(rows) if i % 3 == 1], dtype=np.uint64)
    np.testing.assert_array_equal(m.excluded("big", "s"), ex.astype(np.uint32))
    probe = np.unique(np.concatenate([rows, rows + 1, rng.integers(0, 2**33, 5000)])).astype(np.uint64)
    for q in (probe, probe[probe < 2**32].astype(np.uint32), rng.permutation(probe), probe[::7]):
        np.testing.assert_array_equal(m.keep_mask("big", "s", q, strict=False), ~np.isin(q.astype(np.uint64), ex))


FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


def test_rows_past_the_shard_end_are_refused():
    # forum/part-0.parquet has rows 0, 1, 5 registered (end 6), part-1 row 2 (end 3).
    m = optout.Manifest.load(FIXTURES / "manifest-v3" / "sparse.optm")
    used = [("forum", "part-0.parquet", 5), ("forum", "part-1.parquet", 9999)]
    with pytest.raises(optout.RowPastEndError) as e:
        m.check(used)
    assert (e.value.index, e.value.row, e.value.row_end) == (1, 9999, 3)
    assert [h["row"] for h in m.check(used, strict=False)] == [5]
    assert m.keep_mask("forum", "part-0.parquet", np.array([0, 4, 5])).tolist() == [False, True, False]
    with pytest.raises(optout.RowPastEndError, match="row 6 of shard forum/part-0.parquet"):
        m.contains_many("forum", "part-0.parquet", np.array([6], dtype=np.uint64))
    # A version 2 manifest records no row end: the bound is what it knows.
    v2 = optout.Manifest.load(FIXTURES / "manifest-v2" / "sparse.optm")
    with pytest.raises(optout.RowPastEndError, match="version 1 or 2 manifest"):
        v2.keep_mask("forum", "part-1.parquet", [2])
    assert v2.keep_mask("forum", "part-1.parquet", [2], strict=False).tolist() == [True]
