"""Checkpoints and receipts from Python (issue 16): the same library calls as the CLI."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

from pathlib import Path

import pytest

import optout

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def optout_bin() -> str:
    """The optout binary (run_tests.sh sets OPTOUT_BIN)."""
    if os.environ.get("OPTOUT_BIN"):
        return os.environ["OPTOUT_BIN"]
    for target in [os.environ.get("CARGO_TARGET_DIR"), ROOT / "target"]:
        for profile in ["release", "debug"]:
            if target and (p := Path(target) / profile / "optout").exists():
                return str(p)
    pytest.fail("no optout binary: cargo build --features cli (or set OPTOUT_BIN)")


def objection(i: int) -> dict:
    return {"type": "objection", "subject": f"p{i}@x.org", "at": "2025-01-01T00:00:00Z", "purposes": ["ai-training"]}


def test_create_makes_the_signing_key_and_apply_returns_receipts(tmp_path):
    path = tmp_path / "L"
    with optout.Ledger.create(path) as led:
        key = tmp_path / "L.signing.key"
        pub = tmp_path / "L.signing.pub"
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert pub.read_text().startswith("optout/")
        assert led.apply(objection(0)) == 2  # without receipts: the head, as before
        seq, receipts = led.apply(objection(1), objection(2), receipts=True)
        assert seq == 4 and len(receipts) == 2
        for r in receipts:
            assert "@x.org" not in r
        first = json.loads(receipts[0])
        assert first["seq"] == 3 and first["summary"]["type"] == "objection"
        v = optout.verify_receipt(receipts[0], pub)
        assert v["seq"] == 3 and v["checkpoint_size"] == 4
        note = led.checkpoint()
        lines = note.split("\n")
        assert lines[0].startswith("optout/") and lines[1] == "4"
        one = led.receipt(2)
        assert optout.verify_receipt(one, pub)["seq"] == 2


def test_a_tampered_receipt_is_refused(tmp_path):
    with optout.Ledger.create(tmp_path / "L") as led:
        _, receipts = led.apply(objection(0), receipts=True)
    pub = tmp_path / "L.signing.pub"
    r = json.loads(receipts[0])
    r["summary"]["type"] = "consent"
    with pytest.raises(optout.OptoutError, match="summary"):
        optout.verify_receipt(json.dumps(r), pub)
    r = json.loads(receipts[0])
    r["seq"] = 5
    with pytest.raises(optout.OptoutError):
        optout.verify_receipt(json.dumps(r), pub)


def test_a_later_checkpoint_with_a_proof_keeps_the_receipt(tmp_path, optout_bin):
    path = tmp_path / "L"
    with optout.Ledger.create(path) as led:
        _, receipts = led.apply(objection(0), receipts=True)
        led.apply(objection(1), objection(2))
        later = led.checkpoint()
    proof = subprocess.run(
        [optout_bin, "prove-consistency", str(path), "2", "4"], check=True, capture_output=True, text=True
    ).stdout
    v = optout.verify_receipt(receipts[0], tmp_path / "L.signing.pub", later=later, proof=proof)
    assert v["later_size"] == 4


def test_a_ledger_without_a_signing_key_says_how_to_make_one(tmp_path):
    with optout.Ledger.create(tmp_path / "L") as led:
        os.remove(tmp_path / "L.signing.key")
        with pytest.raises(optout.InvalidRequestError, match="optout keygen"):
            led.checkpoint()
        with pytest.raises(optout.InvalidRequestError, match="optout keygen"):
            led.apply(objection(0), receipts=True)
        assert led.apply(objection(0)) == 2  # nothing was applied by the refused call


def test_create_refuses_a_signing_key_it_was_not_given(tmp_path):
    # Like `optout init`: an existing PATH.signing.key (here another
    # ledger's) is not reused unasked, and nothing is left behind.
    with optout.Ledger.create(tmp_path / "A"):
        pass
    other = (tmp_path / "A.signing.key").read_bytes()
    (tmp_path / "B.signing.key").write_bytes(other)
    with pytest.raises(optout.InvalidRequestError, match="signing key file already exists"):
        optout.Ledger.create(tmp_path / "B")
    assert not (tmp_path / "B").exists()
    assert not (tmp_path / "B.key").exists()
    assert not (tmp_path / "B.signing.pub").exists()
    # Named on purpose, it is used (and its public key written beside).
    with optout.Ledger.create(tmp_path / "B", signing_key=tmp_path / "B.signing.key") as led:
        assert (tmp_path / "B.signing.pub").read_text() == (tmp_path / "A.signing.pub").read_text()
        seq, receipts = led.apply(objection(0), receipts=True)
        assert optout.verify_receipt(receipts[0], tmp_path / "A.signing.pub")["seq"] == seq
    # A key inside the ledger directory is refused.
    (tmp_path / "C").mkdir()
    (tmp_path / "C" / "k").write_bytes(other)
    with pytest.raises(optout.InvalidRequestError, match="outside the ledger directory"):
        optout.Ledger.create(tmp_path / "C", signing_key=tmp_path / "C" / "k")


def test_the_subject_report_carries_the_receipts_of_their_events(tmp_path):
    pub = tmp_path / "L.signing.pub"
    with optout.Ledger.create(tmp_path / "L") as led:
        led.ingest({"dataset": "forum", "shard": "p0", "row": 0, "subjects": ["p0@x.org"],
                    "source": "forum.x.org", "collected_at": "2024-03-01T00:00:00Z",
                    "basis": "legitimate_interest"})
        led.apply(objection(0), objection(1))
        led.apply({"type": "erasure", "subject": "p0@x.org", "at": "2025-02-01T00:00:00Z"})
        plain = led.report("p0@x.org")
        assert "receipts" not in plain
        r = led.report("p0@x.org", receipts=True)
        assert len(r["receipts"]) == len(r["events"]) == 2
        seqs = sorted(optout.verify_receipt(x, pub)["seq"] for x in r["receipts"])
        assert seqs == sorted(e["seq"] for e in r["events"])
        assert all("@x.org" not in x for x in r["receipts"])
        with pytest.raises(optout.InvalidRequestError, match="optout keygen"):
            led.report("p0@x.org", receipts=True, signing_key=tmp_path / "none.key")


def test_a_manifest_records_its_checkpoint_on_request(tmp_path):
    with optout.Ledger.create(tmp_path / "L") as led:
        led.ingest({"dataset": "forum", "shard": "p0", "row": 0, "subjects": ["p0@x.org"],
                    "source": "forum.x.org", "collected_at": "2024-03-01T00:00:00Z",
                    "basis": "legitimate_interest"})
        led.apply(objection(0))
        plain = led.manifest("ai-training", at="2025-06-01T00:00:00Z")
        assert plain.header.get("checkpoint") is None
        m = led.manifest("ai-training", at="2025-06-01T00:00:00Z", record_checkpoint=True)
        cp = m.header["checkpoint"]
        # The tree head at the manifest's seq is the one a signed checkpoint of the
        # same size carries (C2SP note: origin, size, base64 root).
        note = led.checkpoint().splitlines()
        assert cp["size"] == m.seq == int(note[1])
        root = cp["root"] if isinstance(cp["root"], str) else bytes(cp["root"]).hex()
        assert root == base64.b64decode(note[2]).hex()
        # Same answer otherwise: only the header differs.
        assert m.excluded("forum", "p0").tolist() == plain.excluded("forum", "p0").tolist()
        led.verify_manifest(m)
