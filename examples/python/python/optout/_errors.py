"""The exceptions optout raises. All derive from :class:`OptoutError`.

Each carries, as attributes, what is needed to find the problem (the input
file, line and field; the damaged file and byte offset; the lock file).
They pickle with their attributes, so an error raised in a DataLoader or Ray
worker arrives intact in the driver.
"""

from __future__ import annotations

__all__ = [
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


class OptoutError(Exception):
    """Base class of every optout error."""

    def __init__(self, message: str, **attrs: object) -> None:
        super().__init__(message)
        self.message = message
        for k, v in attrs.items():
            setattr(self, k, v)

    def __str__(self) -> str:
        return self.message


class InputError(OptoutError, ValueError):
    """Bad input (a JSONL line, a policy, an argument); nothing of the batch was applied.

    Attributes: ``file`` (a path, or for in-memory input the caller's
    ``file.py:LINE: argument N`` (a dict), ``... item`` (an iterable of dicts),
    ``... line`` (JSONL bytes)), ``line``
    (1-based; 0 = the whole input), ``field`` (the offending field or None),
    ``reason`` (what is wrong, without the location).

    From tabular intake (``ingest_parquet``, ``ingest_arrow``,
    ``apply_table``) also ``row`` (the 0-based position in a Parquet file or
    Arrow stream, the row the ledger registers; None for a CSV, whose
    ``line`` is set instead), ``column`` (the data column to blame) and
    ``kind`` (``mapping``, ``missing_column``, ``wrong_type``, ``null``,
    ``bad_value``, ``corrupt``, ``unsupported``, ``io``, ``path``,
    ``too_large``).
    """

    file: str
    line: int
    field: str | None
    reason: str


class InvalidRequestError(OptoutError, ValueError):
    """A request the ledger cannot honour: wrong key, unknown dataset, a seq past the head, ..."""


class ReadOnlyError(InvalidRequestError):
    """A write on a ledger opened read-only (or closed)."""


class CorruptError(OptoutError):
    """Damaged bytes: a ledger log/snapshot or a manifest.

    Attributes: ``file`` (or None), ``offset`` (byte offset of the damage),
    ``seq`` (ledger sequence number concerned, or None).
    """

    file: str | None
    offset: int
    seq: int | None


class LockedError(OptoutError):
    """Another writer holds the ledger's lock. Attribute ``path``: the lock file."""

    path: str


class NotFoundError(OptoutError, FileNotFoundError):
    """No ledger (or file) at the path given. Attribute ``path``."""

    path: str

    def __init__(self, message: str, **attrs: object) -> None:
        # FileNotFoundError's constructor would treat extra args as errno.
        OptoutError.__init__(self, message, **attrs)


class StorageIOError(OptoutError, OSError):
    """An operating-system I/O error. Attributes ``path`` and ``op``."""

    path: str
    op: str

    def __init__(self, message: str, **attrs: object) -> None:
        OptoutError.__init__(self, message, **attrs)


class UnknownShardError(OptoutError, KeyError):
    """The manifest does not cover this ``(dataset, shard)`` (with ``strict=True``)."""

    dataset: str
    shard: str


class RowPastEndError(OptoutError, IndexError):
    """A row past its shard's end in the manifest (with ``strict=True``): the
    ledger knew no such row at the manifest's seq, so the manifest says
    nothing about it. A version 1 or 2 manifest records no row end; its
    bound is the registered row count or one past the largest excluded row.

    Attributes: ``dataset``, ``shard``, ``row``, ``row_end`` (one past the
    last row covered), ``index`` (position of the row in the input).
    """

    dataset: str
    shard: str
    row: int
    row_end: int
    index: int


class TableMismatchError(InvalidRequestError):
    """A table's data files do not match the manifest's shards; nothing was written.

    Attributes: ``table``, ``dataset``, ``problems`` (one line per problem).
    """

    table: str
    dataset: str
    problems: list[str]


class CommitConflictError(OptoutError):
    """Another writer committed the table version first and touched the same files
    (or the retries ran out); nothing was committed. Attributes ``table``, ``version``."""

    table: str
    version: int


class ManifestMismatchError(InvalidRequestError):
    """A manifest that is not what the ledger computes at the seq, time,
    policy and scope it claims: from another ledger, a rewritten or rolled
    back history, or altered and re-sealed (``Ledger.verify_manifest``)."""


class LedgerReplacedError(StorageIOError):
    """The ledger directory, or a file the writer writes, was moved, removed
    or replaced under it (or another process wrote the log): nothing more is
    written or acknowledged through this handle. Attributes ``path``, ``op``."""
