"""optout: GDPR privacy events beside ML training data, as exclusion manifests.

>>> import optout
>>> with optout.Ledger.create("ledger") as led:                 # doctest: +SKIP
...     led.ingest("records.jsonl")
...     led.apply("events.jsonl")
...     m = led.manifest("ai-training")
>>> keep = m.keep_mask("forum", "part-00000.parquet", rows)     # doctest: +SKIP

See ``Ledger`` and ``Manifest``. Every error derives from ``OptoutError``.

Readers that apply a manifest by each row's true position in its file, one
module per engine, imported on first use (each needs its engine installed):
``optout.polars``, ``optout.duckdb``, ``optout.ray``, ``optout.hf``,
``optout.torch`` (works without torch), ``optout.spark``, ``optout.webdataset``.

``Client(url, token)`` talks to ``optout serve`` (stdlib only).
"""

from ._errors import (
    CommitConflictError,
    CorruptError,
    InputError,
    InvalidRequestError,
    LedgerReplacedError,
    LockedError,
    ManifestMismatchError,
    NotFoundError,
    OptoutError,
    ReadOnlyError,
    RowPastEndError,
    StorageIOError,
    TableMismatchError,
    UnknownShardError,
)
from ._optout import LIBRARY_VERSION, Ledger, Manifest, __version__, reason_names, verify, verify_receipt
from .client import Client, ServiceError

REASONS: tuple[str, ...] = tuple(reason_names())
"""Reason names in code order: objection, consent_missing, ..., filtered."""

__all__ = [
    "Ledger",
    "Manifest",
    "Client",
    "ServiceError",
    "verify",
    "verify_receipt",
    "reason_names",
    "REASONS",
    "LIBRARY_VERSION",
    "__version__",
    "OptoutError",
    "InputError",
    "InvalidRequestError",
    "ReadOnlyError",
    "CorruptError",
    "LockedError",
    "NotFoundError",
    "StorageIOError",
    "UnknownShardError",
    "RowPastEndError",
    "TableMismatchError",
    "CommitConflictError",
    "ManifestMismatchError",
    "LedgerReplacedError",
]

READERS = ("polars", "duckdb", "ray", "hf", "torch", "spark", "webdataset")
"""The reader submodules, imported on first attribute access (``optout.polars``)."""


def __getattr__(name: str):
    if name in READERS:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
