"""optout.Client against the real ``optout serve`` binary on a free 127.0.0.1 port.

The binary is ``$OPTOUT_BIN`` (run_tests.sh builds it with ``--features
cli,server``), else ``target/release/optout`` or ``target/debug/optout``
under ``$CARGO_TARGET_DIR`` or the repository; the test fails, never
skips, when none is there.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import optout

ROOT = Path(__file__).resolve().parents[3]
RECORDS = [
    {"dataset": "forum", "shard": "part-0.parquet", "row": r, "subjects": [f"user{r}@example.com"],
     "source": "forum.example.com", "collected_at": "2024-03-01T12:00:00Z", "basis": "legitimate_interest"}
    for r in range(10)
]


def binary() -> Path:
    if os.environ.get("OPTOUT_BIN"):
        return Path(os.environ["OPTOUT_BIN"])
    for target in [os.environ.get("CARGO_TARGET_DIR"), ROOT / "target"]:
        for profile in ["release", "debug"]:
            if target and (p := Path(target) / profile / "optout").exists():
                if "serve" in subprocess.run([p, "--help"], capture_output=True, text=True).stdout:
                    return p
    pytest.fail("no optout binary with `serve`: cargo build --release --features cli,server (or set OPTOUT_BIN)")


def run(*args: str) -> str:
    return subprocess.run([str(binary()), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def server(tmp_path):
    ledger = tmp_path / "L"
    tokens = tmp_path / "tokens.json"
    run("init", str(ledger))
    secrets = {}
    for name, scopes in {"pipeline": ["records:write", "manifests:read", "runs:write"],
                         "desk": ["events:write", "audit:read"], "reader": ["manifests:read"]}.items():
        args = ["token", "add", str(tokens), "--name", name]
        for s in scopes:
            args += ["--scope", s]
        secrets[name] = run(*args).splitlines()[0].strip()
    proc = subprocess.Popen([str(binary()), "serve", str(ledger), "--tokens", str(tokens), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://"), (line, proc.stderr.read() if proc.poll() is not None else "")
    url = line.removeprefix("listening on ")
    yield url, secrets, ledger
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    log = proc.stderr.read()
    assert "@example.com" not in log, log


def test_a_training_job_fetches_its_manifest_from_the_service(server, tmp_path):
    url, secrets, ledger = server
    pipeline = optout.Client(url, secrets["pipeline"])
    desk = optout.Client(url, secrets["desk"])
    s = pipeline.ingest(RECORDS)
    assert (s["registered"], s["unchanged"], s["first_seq"], s["last_seq"]) == (10, 0, 2, 2)
    assert pipeline.ingest(RECORDS)["unchanged"] == 10      # re-ingest: nothing new
    a = desk.apply({"type": "objection", "subject": "User3@Example.com", "at": "2025-02-01T00:00:00Z",
                    "purposes": ["ai-training"], "ref": "ticket-1"},
                   [{"type": "erasure", "subject": "user5@example.com", "at": "2025-02-02T00:00:00Z"}])
    assert a["events"] == 2 and a["by_type"] == {"erasure": 1, "objection": 1}
    m = pipeline.manifest("ai-training", at="2025-03-01T00:00:00Z")
    assert isinstance(m, optout.Manifest)
    assert m.excluded("forum", "part-0.parquet").tolist() == [3, 5]
    # Byte-identical to the CLI's manifest at the same clocks.
    out = tmp_path / "m.optm"
    run("manifest", str(ledger), "--purpose", "ai-training", "--at", "2025-03-01T00:00:00Z",
        "--at-seq", str(m.seq), "-o", str(out))
    assert out.read_bytes() == m.to_bytes()
    import datetime as dt
    m2 = pipeline.manifest(policy={"purpose": "ai-training"}, at=dt.datetime(2025, 3, 1), at_seq=m.seq,
                           datasets=["forum"])
    assert m2.excluded("forum", "part-0.parquet").tolist() == [3, 5]
    r = pipeline.add_run("run-1", "chat-v1", m, started_at="2025-03-02T00:00:00Z")
    assert r["name"] == "run-1" and r["manifest_digest"] == m.digest
    assert pipeline.add_run(None, "chat-v1", m.digest)["name"] == "chat-v1-run-2"
    assert [x["run"] for x in desk.affected("user3@example.com")["runs"]] == []   # excluded before the runs
    rep = desk.report("user3@example.com")
    assert rep["records"][0]["row"] == 3 and rep["events"][0]["ref"] == "ticket-1"
    assert pipeline.head()[0] == 6
    # A derived dataset through the service: its row 0 comes from forum row 3 (user3, objected).
    d = pipeline.derive("train", ["forum"], [{"shard": "t-0.mds", "row": 0,
                                               "parents": [{"dataset": "forum", "shard": "part-0.parquet", "row": 3}]}])
    assert (d["registered"], d["links"], d["first_seq"]) == (1, 1, 7)
    with pytest.raises(optout.ServiceError) as e:
        pipeline.derive("train", ["forum"], {"shard": "t-0.mds", "row": 1,
                                             "parents": [{"dataset": "forum", "shard": "nope", "row": 0}]})
    assert (e.value.status, e.value.line, e.value.field) == (400, 1, "parents[0]")
    assert pipeline.head()[0] == 7
    assert pipeline.manifest("ai-training", at="2025-03-01T00:00:00Z").excluded("train", "t-0.mds").tolist() == [0]


def test_errors_carry_status_code_line_and_field(server):
    url, secrets, _ = server
    desk = optout.Client(url, secrets["desk"])
    with pytest.raises(optout.ServiceError) as e:
        desk.apply(b'{"type":"objection","subject":"a@example.com","at":"2025-02-01T00:00:00Z","purposes":["ai-training"]}\n'
                   b'{"type":"objection","subject":"b@example.com","purposes":["ai-training"]}\n')
    assert (e.value.status, e.value.code, e.value.line, e.value.field) == (400, "invalid_input", 2, "at")
    assert str(e.value).startswith("body:2: field `at`")
    assert isinstance(e.value, optout.OptoutError)
    with pytest.raises(optout.ServiceError) as e:
        optout.Client(url, secrets["reader"]).apply({"type": "erasure", "subject": "x", "at": "2025-01-01T00:00:00Z"})
    assert (e.value.status, e.value.code) == (403, "forbidden")
    with pytest.raises(optout.ServiceError) as e:
        optout.Client(url, "optout_wrong").report("x")
    assert e.value.status == 401
    with pytest.raises(optout.ServiceError) as e:
        optout.Client("http://127.0.0.1:9", "t", retries=1).head()
    assert (e.value.status, e.value.code) == (0, "unreachable")


def test_a_retry_with_the_same_key_records_once(server):
    url, secrets, ledger = server
    desk = optout.Client(url, secrets["desk"])
    ev = {"type": "objection", "subject": "user1@example.com", "at": "2025-02-01T00:00:00Z", "purposes": ["ai-training"]}
    first = desk.apply(ev, idempotency_key="portal-77")
    again = desk.apply(ev, idempotency_key="portal-77")
    assert first == again
    with pytest.raises(optout.ServiceError) as e:
        desk.apply(dict(ev, subject="user2@example.com"), idempotency_key="portal-77")
    assert e.value.code == "idempotency_key_reused"
    assert desk.report("user1@example.com")["events"] == desk.report("user1@example.com")["events"]
    assert len(desk.report("user1@example.com")["events"]) == 1
    assert json.loads(json.dumps(first))["first_seq"] == first["last_seq"]


def test_the_readme_training_job_runs(server):
    """README "Running the service": the Python block, pasted, against this server."""
    import re

    import numpy as np

    url, secrets, _ = server
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Running the service\n"):]
    section = section[: section.index("\n## ", 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    records = [dict(r, shard="part-00000.parquet") for r in RECORDS]
    optout.Client(url, secrets["pipeline"]).ingest(records)
    code = code.replace('"https://optout.internal:8080"', repr(url))
    ns = {"token": secrets["pipeline"], "rows": np.arange(10, dtype=np.uint64)}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["keep"].tolist() == [True] * 10
    assert [r["run"] for r in optout.Client(url, secrets["desk"]).affected("user1@example.com")["runs"]] == ["run-42"]
