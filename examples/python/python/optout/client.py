"""``optout.Client``: the ``optout serve`` HTTP API from Python, stdlib only.

>>> import optout
>>> svc = optout.Client("https://optout.internal:8080", token)      # doctest: +SKIP
>>> svc.apply({"type": "objection", "subject": "alice@example.com",
...            "at": "2025-06-01T00:00:00Z", "purposes": ["ai-training"]})   # doctest: +SKIP
{'events': 1, 'by_type': {'objection': 1}, 'first_seq': 7, 'last_seq': 7}
>>> m = svc.manifest("ai-training")          # an optout.Manifest, seal verified   # doctest: +SKIP

Writes carry an ``Idempotency-Key`` (a fresh one per call unless given) and
are retried with the same key after a connection error, a 429 or a 503, so a
retry never records twice. Errors raise :class:`ServiceError` (an
:class:`optout.OptoutError`) with the server's ``status``, ``code``,
``line`` and ``field``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._errors import OptoutError

__all__ = ["Client", "ServiceError"]

Time = str | _dt.datetime | None


class ServiceError(OptoutError):
    """An error answer of ``optout serve``.

    Attributes: ``status`` (HTTP status, 0 when the server could not be
    reached), ``code`` (the stable error code, e.g. ``invalid_input``,
    ``forbidden``), ``line`` and ``field`` (for body input, or None).
    """

    status: int
    code: str
    line: int | None
    field: str | None


def _time(t: Time) -> str | None:
    if t is None or isinstance(t, str):
        return t
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.isoformat()


def _lines(source: Any) -> bytes:
    """JSONL bytes from a path, JSONL bytes, one dict or an iterable of dicts."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read()
    if isinstance(source, Mapping):
        source = [source]
    if isinstance(source, Iterable):
        return b"".join(json.dumps(dict(x)).encode() + b"\n" for x in source)
    raise TypeError(f"expected a path, JSONL bytes, a dict or an iterable of dicts, got {type(source).__name__}")


class Client:
    """A client of one ``optout serve``.

    ``url`` is the server's base URL, ``token`` a secret from
    ``optout token add``. ``retries`` bounds the retries of one call
    (connection errors, 429, 503); ``ssl_context`` is passed to urllib for
    HTTPS (e.g. one trusting your CA).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        ssl_context: Any = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.retries = retries
        self._ssl = ssl_context

    def __repr__(self) -> str:
        return f"optout.Client({self.url!r})"

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        key: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        headers = {"Authorization": f"Bearer {self._token}"}
        if body is not None:
            headers["Content-Type"] = content_type
        if key is not None:
            headers["Idempotency-Key"] = key
        delay = 0.05
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as r:
                    return r.read(), {k.lower(): v for k, v in r.headers.items()}
            except urllib.error.HTTPError as e:
                raw = e.read()
                retry = e.code in (429, 503) and attempt < self.retries
                if not retry:
                    raise self._error(e.code, raw) from None
                after = e.headers.get("Retry-After")
                time.sleep(float(after) if after and after.isdigit() else delay)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt >= self.retries:
                    raise ServiceError(
                        f"{self.url}: {getattr(e, 'reason', e)}", status=0, code="unreachable", line=None, field=None
                    ) from None
                time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _error(status: int, raw: bytes) -> ServiceError:
        try:
            j = json.loads(raw)
        except ValueError:
            j = {"code": "http", "error": raw.decode(errors="replace")}
        return ServiceError(
            j.get("error", f"HTTP {status}"),
            status=status,
            code=j.get("code", "http"),
            line=j.get("line"),
            field=j.get("field"),
        )

    def _json(self, method: str, path: str, payload: Any = None, *, key: str | None = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        raw, _ = self._request(method, path, body, key=key)
        return json.loads(raw)

    def _write(self, path: str, lines: bytes, key: str | None) -> dict[str, Any]:
        raw, _ = self._request(
            "POST", path, lines, content_type="application/x-ndjson", key=key or str(uuid.uuid4())
        )
        return json.loads(raw)

    def apply(self, *sources: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        """Appends events (paths, JSONL bytes, dicts or iterables of dicts), all
        or nothing; returns ``first_seq``, ``last_seq`` and counts, once durable."""
        return self._write("/v1/events", b"".join(_lines(s) for s in sources), idempotency_key)

    def ingest(self, *sources: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        """Registers records, all or nothing; returns ``registered``, ``unchanged``, ``links`` and the seq range."""
        return self._write("/v1/records", b"".join(_lines(s) for s in sources), idempotency_key)

    def derive(
        self,
        dataset: str,
        sources: Sequence[str],
        *lineage: Any,
        allow_missing_parents: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Registers rows of a derived dataset with their parents (lineage lines:
        paths, JSONL bytes, dicts or iterables of dicts), all or nothing, as
        ``Ledger.derive``; returns ``registered``, ``unchanged``, ``links`` and the seq range."""
        q = [("dataset", dataset)] + [("from", s) for s in sources]
        if allow_missing_parents:
            q.append(("allow_missing_parents", "true"))
        path = "/v1/derive?" + urllib.parse.urlencode(q)
        return self._write(path, b"".join(_lines(s) for s in lineage), idempotency_key)

    def manifest(
        self,
        purpose: str | None = None,
        at: Time = None,
        at_seq: int | None = None,
        *,
        datasets: Iterable[str] | None = None,
        policy: Mapping[str, Any] | None = None,
    ):
        """Computes a manifest on the server: an :class:`optout.Manifest`
        (seal verified), byte-identical to ``optout manifest``'s."""
        from . import Manifest

        req: dict[str, Any] = {}
        if purpose is not None:
            req["purpose"] = purpose
        if at is not None:
            req["at"] = _time(at)
        if at_seq is not None:
            req["at_seq"] = at_seq
        if datasets is not None:
            req["datasets"] = list(datasets)
        if policy is not None:
            req["policy"] = dict(policy)
        raw, headers = self._request("POST", "/v1/manifests", json.dumps(req).encode())
        m = Manifest.from_bytes(raw)
        if headers.get("optout-manifest-digest") not in (None, m.digest):
            raise ServiceError("the manifest's seal differs from the digest the server sent", status=200, code="digest_mismatch", line=None, field=None)
        return m

    def add_run(self, name: str | None, model: str, manifest: Any, started_at: Time = None, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Registers a training run on ``manifest`` (an :class:`optout.Manifest`,
        or the digest of one this server computed). ``name`` None: ``MODEL-run-K``."""
        req: dict[str, Any] = {"model": model}
        if name is not None:
            req["name"] = name
        if started_at is not None:
            req["started_at"] = _time(started_at)
        if isinstance(manifest, str):
            req["manifest_digest"] = manifest
        else:
            req["manifest"] = base64.b64encode(manifest.to_bytes()).decode()
        return self._json("POST", "/v1/runs", req, key=idempotency_key or str(uuid.uuid4()))

    def runs(self) -> list[dict[str, Any]]:
        """The registered training runs."""
        return self._json("GET", "/v1/runs")["runs"]

    def affected(self, subject: str, at: Time = None) -> dict[str, Any]:
        """The runs that trained on the subject's records (the id goes in the body, never the URL)."""
        return self._json("POST", "/v1/subjects/affected", {"subject": subject, "at": _time(at)})

    def report(self, subject: str, at: Time = None) -> dict[str, Any]:
        """The subject's Art. 15 / 20 report, as ``optout report`` prints it."""
        return self._json("POST", "/v1/subjects/report", {"subject": subject, "at": _time(at)})

    def head(self) -> tuple[int, str]:
        """The ledger's ``(seq, chain head)``, to pin."""
        h = self._json("GET", "/v1/head")
        return h["seq"], h["chain_head"]
