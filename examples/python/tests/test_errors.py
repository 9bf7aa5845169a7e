"""Errors: one hierarchy under optout.OptoutError, naming what went wrong."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import optout
from pipelines import gen

SHARD0 = "part-00000.parquet"


def test_bad_jsonl_line_names_file_line_field_and_applies_nothing(ledger_copy, tmp_path):
    good = gen.records(0, SHARD0)[:3]
    bad = dict(good[1], collected_at="not a time")
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(good[0]) + "\n\n" + json.dumps(bad) + "\n")
    with optout.Ledger.open(ledger_copy) as led:
        head = led.head
        m0 = led.manifest("ai-training", at=gen.AT).to_bytes()
        with pytest.raises(optout.InputError) as e:
            led.ingest(p)
        err = e.value
        assert (err.file, err.line, err.field) == (str(p), 3, "collected_at")
        assert f"{p}:3: field `collected_at`" in str(err)
        assert isinstance(err, optout.OptoutError) and isinstance(err, ValueError)
        assert led.head == head, "nothing written"
        # An event batch with one bad line (dicts: line = 1-based item index).
        events = [
            {"type": "erasure", "subject": "user3@example.com", "at": "2025-01-01T00:00:00Z"},
            {"type": "objection", "subject": "user4@example.com", "purposes": ["ai-training"]},
        ]
        with pytest.raises(optout.InputError) as e:
            led.apply(events)
        # In-memory sources are named by the caller's file and line.
        assert e.value.file.endswith(": argument 1 item"), e.value.file
        assert "test_errors.py:" in e.value.file, e.value.file
        assert (e.value.line, e.value.field) == (2, "at")
        with pytest.raises(optout.InputError) as e:
            led.apply(b'{"type":"nonsense","at":"2025-01-01T00:00:00Z"}\n')
        assert e.value.file.endswith(": argument 1 line") and "test_errors.py:" in e.value.file
        assert (e.value.line, e.value.field) == (1, "type")
        assert led.head == head, "nothing of the bad batches written"
        assert led.manifest("ai-training", at=gen.AT).to_bytes() == m0
        # Conflicting re-registration: refused, names the record.
        with pytest.raises(optout.InputError, match="already registered with a different `subjects`"):
            led.ingest(dict(good[0], subjects=["someone.else@example.com"]))
        with pytest.raises(TypeError):
            led.ingest(42)
        with pytest.raises(optout.NotFoundError):
            led.ingest(tmp_path / "missing.jsonl")


def test_locked_ledger(ledger_copy):
    with optout.Ledger.open(ledger_copy) as writer:
        with pytest.raises(optout.LockedError) as e:
            optout.Ledger.open(ledger_copy)
        # The directory itself is locked (a lock file can be deleted under its holder).
        assert e.value.path == str(ledger_copy) and "locked" in str(e.value)
        # Readers and verify take no lock.
        with optout.Ledger.open(ledger_copy, read_only=True) as ro:
            assert ro.seq == writer.seq
            with pytest.raises(optout.ReadOnlyError):
                ro.apply({"type": "erasure", "subject": "user3@example.com", "at": "2025-01-01T00:00:00Z"})
        assert writer.verify()["clean"]
    # Released on close.
    optout.Ledger.open(ledger_copy).close()


def test_verify_finds_tampering(ledger_copy):
    seg = sorted((ledger_copy / "log").glob("*.seg"))[0]
    for snap in (ledger_copy / "snap").glob("*"):
        snap.unlink()  # make open replay the log
    data = bytearray(seg.read_bytes())
    pos = len(data) // 3  # inside an early frame, well before the tail
    data[pos] ^= 0x40
    seg.write_bytes(bytes(data))
    r = optout.verify(ledger_copy)
    assert not r["clean"] and r["head_seq"] is None
    f = r["findings"][0]
    assert f["kind"] == "corrupt" and f["file"] == str(seg) and 0 < f["offset"] <= pos
    assert str(seg) in f["message"]
    with pytest.raises(optout.CorruptError) as e:
        optout.Ledger.open(ledger_copy)
    assert e.value.file == str(seg) and e.value.offset == f["offset"]


def test_verify_manifest_refuses_a_resealed_manifest(ledger_copy, tmp_path):
    """Issue 20, finding 4: the seal is a public hash; the ledger recomputes."""
    with optout.Ledger.open(ledger_copy) as led:
        m = led.manifest("ai-training", at=gen.AT)
        led.verify_manifest(m)
        led.apply({"type": "erasure", "subject": "user3@example.com", "at": "2024-01-01T00:00:00Z"})
        now = led.manifest("ai-training", at=gen.AT)
        # The old manifest's bytes with the new head written into its header,
        # re-sealed: the header is JSON between byte 16 and 16 + its length.
        b = m.to_bytes()
        hlen = int.from_bytes(b[12:16], "little")
        header = json.loads(b[16 : 16 + hlen])
        header["seq"], header["chain_head"] = now.header["seq"], now.header["chain_head"]
        h = json.dumps(header, separators=(",", ":")).encode()
        body = b[:12] + len(h).to_bytes(4, "little") + h + b[16 + hlen : -32]
        forged = optout.Manifest.from_bytes(reseal(body))
        with pytest.raises(optout.ManifestMismatchError) as e:
            led.verify_manifest(forged)
        assert isinstance(e.value, optout.InvalidRequestError)
        assert "differs from what this ledger computes" in str(e.value)
        led.verify_manifest(now)


def reseal(body: bytes) -> bytes:
    """The manifest seal (FORMAT.md): keyed blake3 of everything before it."""
    import blake3  # installed by run_tests.sh
    key = blake3.blake3(b"", derive_key_context="optout 2026-11 manifest v1").digest()
    return body + blake3.blake3(body, key=key).digest()


def test_manifest_damage_names_the_offset(manifest):
    b = bytearray(manifest.to_bytes())
    b[100] ^= 1
    with pytest.raises(optout.CorruptError) as e:
        optout.Manifest.from_bytes(bytes(b))
    assert e.value.offset == len(b) - 32, str(e.value)
    assert f"at byte {len(b) - 32}" in str(e.value)
    with pytest.raises(optout.CorruptError):
        optout.Manifest.from_bytes(b"OPTOUTMF")
    with pytest.raises(optout.InputError):
        optout.Manifest.from_bytes(12)


def test_request_errors(tmp_path, ledger_copy):
    with pytest.raises(optout.NotFoundError) as e:
        optout.Ledger.open(tmp_path / "nowhere")
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(optout.NotFoundError):
        optout.Manifest.load(tmp_path / "none.optm")
    (tmp_path / "other.key").write_text("not a key\n")
    with pytest.raises(optout.OptoutError, match="not an optout subject key file"):
        optout.Ledger.open(ledger_copy, key_file=tmp_path / "other.key")
    # Without the key: reads work, writes and subject look-ups explain what is missing.
    import shutil

    nokey = tmp_path / "nokey"
    shutil.copytree(ledger_copy, nokey)
    with optout.Ledger.open(nokey) as led:
        led.manifest("ai-training", at=gen.AT)
        with pytest.raises(optout.InvalidRequestError, match="subject key"):
            led.apply({"type": "erasure", "subject": "x", "at": "2025-01-01T00:00:00Z"})
        with pytest.raises(optout.InvalidRequestError, match="past the ledger's head"):
            led.manifest("ai-training", at_seq=led.seq + 5)
        with pytest.raises(optout.InvalidRequestError):
            led.manifest("")
    with pytest.raises(optout.InvalidRequestError, match="already exists"):
        optout.Ledger.create(ledger_copy)


def test_errors_pickle_with_their_attributes():
    e = optout.InputError("f.jsonl:3: field `at`: bad", file="f.jsonl", line=3, field="at", reason="bad")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is optout.InputError and (e2.file, e2.line, e2.field) == ("f.jsonl", 3, "at")
    assert str(e2) == str(e)
    for cls in (optout.LockedError, optout.CorruptError, optout.NotFoundError, optout.UnknownShardError):
        x = pickle.loads(pickle.dumps(cls("m", path="p")))
        assert type(x) is cls and x.path == "p" and str(x) == "m"
        assert issubclass(cls, optout.OptoutError)
    assert np.True_  # numpy imported for parity with the other tests


def test_purposes_are_declared_and_typos_refused(tmp_path):
    led = optout.Ledger.create(tmp_path / "L")
    ev = {"type": "objection", "subject": "a@x.org", "at": "2025-01-01T00:00:00Z", "purposes": ["ai_training"]}
    with pytest.raises(optout.InvalidRequestError) as e:
        led.apply(ev)
    assert (e.value.purpose, e.value.closest, e.value.event) == ("ai_training", "ai-training", 0)
    assert led.seq == 1
    with pytest.raises(optout.InvalidRequestError, match="did you mean `ai-training`"):
        led.manifest("ai-trainig")
    assert [p["name"] for p in led.purposes()] == ["ai-training"]
    assert led.purposes()[0]["implicit"] is True
    assert led.add_purpose("ads", "ad targeting") is not None
    assert led.add_purpose("ads") is None
    s = led.apply(dict(ev, purposes=["ads"]), summary=True)
    assert (s["applied"], s["unchanged"], s["no_records"]) == (1, 0, [0])
    again = led.apply(dict(ev, purposes=["ads"]), summary=True)
    assert (again["applied"], again["unchanged"], again["seq"]) == (0, 1, s["seq"])
    with pytest.raises(optout.InvalidRequestError) as e:
        led.apply(dict(ev, purposes=["ads"], ref="T-2"), strict=True)
    assert e.value.no_records == [0]
    s = led.apply(dict(ev, purposes=["research"]), new_purpose=True, summary=True)
    assert s["declared"] == ["research"]
    names = {p["name"]: p["events"] for p in led.purposes()}
    assert names == {"ai-training": 0, "ads": 1, "research": 1}
    led.close()
    with optout.Ledger.open(tmp_path / "L", wait=0.1) as held:
        with pytest.raises(optout.LockedError, match=r"pid \d+ since"):
            optout.Ledger.open(tmp_path / "L", wait=0.2)
        assert held.seq == s["seq"]


def test_a_declared_basis_is_treated_as_consent(tmp_path):
    led = optout.Ledger.create(tmp_path / "L")
    rec = {"dataset": "d", "shard": "s0", "row": 0, "subjects": ["a@x.org"], "source": "forum.example.com",
           "collected_at": "2024-03-01T12:00:00Z", "basis": "research_exemption", "categories": ["text"],
           "visibility": "public", "jurisdiction": "EU"}
    head = led.seq
    with pytest.raises(optout.InvalidRequestError, match="research_exemption"):
        led.ingest(rec)
    assert led.seq == head, "a record on an undeclared basis wrote something"
    with pytest.raises(optout.InvalidRequestError, match="consent"):
        led.add_basis("consnet")
    seq = led.add_basis("research_exemption")
    assert seq == head + 1 and led.add_basis("research_exemption") is None
    led.ingest([rec, dict(rec, row=1, basis="legitimate_interest")])
    m = led.manifest("ai-training", at="2025-01-01T00:00:00Z")
    assert m.reasons("d", "s0", 0) == ["consent_missing"]
    assert m.reasons("d", "s0", 1) == []
    led.apply({"type": "consent", "subject": "a@x.org", "at": "2024-06-01T00:00:00Z", "purposes": ["ai-training"],
               "method": "double_opt_in", "confirmed": True})
    assert led.manifest("ai-training", at="2025-01-01T00:00:00Z").reasons("d", "s0", 0) == []
    led.apply({"type": "consent_withdrawn", "subject": "a@x.org", "at": "2024-09-01T00:00:00Z", "purposes": ["ai-training"]})
    assert "consent_withdrawn" in led.manifest("ai-training", at="2025-01-01T00:00:00Z").reasons("d", "s0", 0)
    led.close()
