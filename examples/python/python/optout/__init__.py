"""optout: GDPR privacy events beside ML training data, as exclusion manifests.

>>> import optout
>>> with optout.Ledger.create("ledger") as led:                 # doctest: +SKIP
...     led.ingest("records.jsonl")
...     led.apply("events.jsonl")
...     m = led.manifest("ai-training")
>>> keep = m.keep_mask("forum", "part-00000.parquet", rows)     # doctest: +SKIP

See ``Ledger`` and ``Manifest``. Every error derives from ``OptoutError``.
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
    StorageIOError,
    TableMismatchError,
    UnknownShardError,
)
from ._optout import LIBRARY_VERSION, Ledger, Manifest, __version__, reason_names, verify

REASONS: tuple[str, ...] = tuple(reason_names())
"""Reason names in code order: objection, consent_missing, ..., filtered."""

__all__ = [
    "Ledger",
    "Manifest",
    "verify",
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
    "TableMismatchError",
    "CommitConflictError",
    "ManifestMismatchError",
    "LedgerReplacedError",
]
