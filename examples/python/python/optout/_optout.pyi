"""Type stubs of the compiled module ``optout._optout`` (re-exported by ``optout``)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str
LIBRARY_VERSION: str

PathLike = Union[str, os.PathLike[str]]
Source = Union[PathLike, bytes, bytearray, Mapping[str, Any], Iterable[Union[Mapping[str, Any], str]]]
"""A JSONL file path, JSONL bytes, one record/event dict, or an iterable of dicts (or JSON lines)."""
Time = Union[str, datetime.datetime, None]
"""An RFC 3339 string or an aware datetime; None means now."""
Rows = Union[npt.NDArray[np.uint32], npt.NDArray[np.uint64], npt.NDArray[np.integer[Any]], Sequence[int]]

class IngestSummary(TypedDict):
    registered: int
    unchanged: int
    links: int
    seq: int
    gone: int

class ApplySummary(TypedDict):
    applied: int
    unchanged: int
    declared: list[str]
    no_records: list[int]
    unmatched: list[int]
    seq: int

class PurposeInfo(TypedDict):
    name: str
    description: str | None
    declared: bool
    declared_at_seq: int | None
    implicit: bool
    events: int

class Finding(TypedDict):
    kind: Literal["corrupt", "torn_tail", "quarantined", "snapshot", "note", "other"]
    file: str
    offset: int
    seq: int | None
    what: str
    message: str

class VerifyReport(TypedDict):
    clean: bool
    head_seq: int | None
    head_chain: str | None
    segments: int
    snapshots_ok: int
    entries: int
    snapshot_checked: int | None
    problems: list[str]
    findings: list[Finding]
    notes: list[Finding]

class ShardCounts(TypedDict):
    registered: int
    excluded: int
    reasons: dict[str, int]

class ShardDiff(TypedDict):
    dataset: str
    shard: str
    newly_excluded: npt.NDArray[np.uint32]
    re_included: npt.NDArray[np.uint32]

class Diff(TypedDict):
    newly_excluded: int
    re_included: int
    per_reason: dict[str, tuple[int, int]]
    shards: list[ShardDiff]

class CheckHit(TypedDict):
    dataset: str
    shard: str
    row: int
    reasons: list[str]

class Run(TypedDict):
    seq: int
    name: str
    model: str
    started_at: str
    purpose: str
    manifest_digest: str
    manifest_seq: int
    manifest_at: str
    datasets: list[str]

def verify(path: PathLike) -> VerifyReport:
    """Verifies the ledger at ``path`` (no lock, nothing modified)."""

def reason_names() -> list[str]:
    """Reason names in code order."""

class ReceiptCheck(TypedDict):
    seq: int
    origin: str
    checkpoint_size: int
    later_size: int | None
    summary: str

def verify_receipt(
    receipt: str, pubkey: PathLike, later: str | None = None, proof: str | None = None
) -> ReceiptCheck:
    """Verifies a receipt offline with the log's public key (and, given a later checkpoint and proof, that it still holds)."""

class Ledger:
    """A ledger of records and privacy events (see the module docs)."""

    @staticmethod
    def create(path: PathLike, key_file: PathLike | None = None, *, signing_key: PathLike | None = None) -> Ledger:
        """Creates a ledger (and ``PATH.key`` unless it exists or is given; ``PATH.signing.key``/``.pub``
        unless ``signing_key`` is given; an existing ``PATH.signing.key`` not given raises ``InvalidRequestError``)."""
    @staticmethod
    def open(
        path: PathLike, key_file: PathLike | None = None, *, read_only: bool = False, wait: float | None = None
    ) -> Ledger:
        """Opens a ledger; waits up to ``wait`` seconds for the writer lock, then raises ``LockedError`` (naming the holder's PID)."""
    def close(self) -> None:
        """Releases the writer lock. Idempotent."""
    def __enter__(self) -> Ledger: ...
    def __exit__(self, *args: object) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def seq(self) -> int:
        """The head sequence number."""
    @property
    def head(self) -> tuple[int, str]:
        """``(seq, chain hash hex)`` of the last entry."""
    @property
    def ledger_id(self) -> str: ...
    def pseudonym(self, subject: str) -> str:
        """The ledger's pseudonym (hex) of an external subject id."""
    def ingest(self, *sources: Source) -> IngestSummary:
        """Registers records, all or nothing; ``InputError`` names file/line/field. A JSONL line ``{"dataset", "shard", "end"}`` makes the shard's rows at or past ``end`` gone (``gone`` counts them)."""
    @overload
    def apply(
        self,
        *sources: Source,
        new_purpose: bool = False,
        strict: bool = False,
        summary: Literal[False] = False,
        receipts: Literal[False] = False,
        signing_key: PathLike | None = None,
    ) -> int: ...
    @overload
    def apply(
        self,
        *sources: Source,
        new_purpose: bool = False,
        strict: bool = False,
        summary: Literal[True],
        receipts: Literal[False] = False,
        signing_key: PathLike | None = None,
    ) -> ApplySummary: ...
    @overload
    def apply(
        self,
        *sources: Source,
        new_purpose: bool = False,
        strict: bool = False,
        summary: bool = False,
        receipts: Literal[True],
        signing_key: PathLike | None = None,
    ) -> tuple[int | ApplySummary, list[str]]: ...
    def apply(
        self,
        *sources: Source,
        new_purpose: bool = False,
        strict: bool = False,
        summary: bool = False,
        receipts: bool = False,
        signing_key: PathLike | None = None,
    ) -> Any:
        """Records events, all or nothing (identical ones skipped as unchanged); returns the head seq, or the
        summary; with ``receipts=True`` ``(answer, receipts)``."""
    def purposes(self) -> list[PurposeInfo]:
        """The declared purposes (and undeclared ones named by old events), with event counts."""
    def add_purpose(self, name: str, description: str | None = None) -> int | None:
        """Declares a purpose; the seq of the declaration, or None when already declared."""
    def add_basis(self, name: str) -> int | None:
        """Declares an extension legal basis records may name (every policy treats it as consent); the seq of the declaration, or None when already declared."""
    def checkpoint(self, signing_key: PathLike | None = None) -> str:
        """A signed checkpoint (C2SP note text) of the log at its head."""
    def receipt(self, seq: int, signing_key: PathLike | None = None) -> str:
        """The receipt (JSON text) of the entry at ``seq`` in a checkpoint at the head."""
    def derive(
        self,
        dataset: str,
        sources: Sequence[str],
        lineage: Source,
        *,
        allow_missing_parents: bool = False,
    ) -> IngestSummary:
        """Registers rows of a derived dataset with their parents, all or nothing; a derived row is excluded when any ancestor is."""
    def derive_parquet(
        self,
        dataset: str,
        sources: Sequence[str],
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        allow_missing_parents: bool = False,
    ) -> IngestSummary:
        """Registers rows of a derived dataset from Parquet lineage columns (one row per link: ``shard``, ``row``, ``parent_dataset``/``parent_shard``/``parent_row``, ``parent_key`` or ``parent_content_hash``)."""
    def ingest_parquet(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        mapping: Mapping[str, Any] | str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        *,
        replace: bool = False,
    ) -> IngestSummary:
        """Registers Parquet rows by a record mapping; row = position in the file, shard = path under ``root``."""
    def ingest_arrow(
        self,
        data: Any,
        mapping: Mapping[str, Any] | str | os.PathLike[str],
        shard: str,
        *,
        replace: bool = False,
    ) -> IngestSummary:
        """Registers Arrow data (``__arrow_c_stream__``) as one shard; row = position in the stream. No fingerprint (a re-run compares row by row); with ``replace``, a shorter stream makes the shard's rows past its end gone."""
    def apply_table(
        self,
        data: Any,
        mapping: Mapping[str, Any] | str | os.PathLike[str],
        *,
        new_purpose: bool = False,
        strict: bool = False,
        summary: bool = False,
    ) -> int | ApplySummary:
        """Records a DSR export's events (Arrow data, or .csv / .parquet paths) by an event mapping."""
    def manifest(
        self,
        purpose: str,
        at: Time = None,
        at_seq: int | None = None,
        *,
        datasets: Sequence[str] | None = None,
        policy: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        record_checkpoint: bool = False,
    ) -> Manifest:
        """Computes the exclusion manifest (byte-reproducible for the same arguments);
        ``record_checkpoint=True`` records the log's tree head at its seq (``header["checkpoint"]``)."""
    def verify_manifest(self, manifest: Manifest) -> None:
        """Raises ``ManifestMismatchError`` (an ``InvalidRequestError``) unless ``manifest`` is
        exactly what this ledger computes at its seq, time, policy and scope (a manifest from
        another ledger or history, or one altered and re-sealed, is refused)."""
    def add_run(self, name: str, model: str, manifest: Manifest, started_at: Time = None) -> int:
        """Registers a training run on ``manifest``; returns its seq."""
    def runs(self) -> list[Run]:
        """The training runs registered."""
    def affected(self, subject: str, at: Time = None) -> list[dict[str, Any]]:
        """Runs that trained on the subject's records, with status violation/after/used."""
    def report(
        self, subject: str, at: Time = None, *, receipts: bool = False, signing_key: PathLike | None = None
    ) -> dict[str, Any]:
        """The subject's Art. 15/20 report; with ``receipts=True`` also the receipts of their events."""
    def verify(self) -> VerifyReport:
        """Verifies the ledger on disk."""
    def snapshot(self) -> str:
        """Writes a snapshot of the index; returns its path."""

class Manifest:
    """An exclusion manifest: immutable, thread-safe, picklable."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        """Decodes and verifies manifest bytes."""
    @staticmethod
    def load(path: PathLike) -> Manifest:
        """Reads and verifies a manifest file."""
    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Manifest:
        """Decodes and verifies manifest bytes."""
    def to_bytes(self) -> bytes:
        """The sealed bytes."""
    def save(self, path: PathLike) -> None:
        """Writes the manifest atomically."""
    def __reduce__(self) -> tuple[type[Manifest], tuple[bytes]]: ...
    @property
    def header(self) -> dict[str, Any]:
        """tool, purpose, policy, policy_digest, ledger_id, seq, chain_head, at, at_ns, datasets, registered, excluded, counts."""
    @property
    def digest(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> str: ...
    @property
    def excluded_count(self) -> int: ...
    @property
    def registered_count(self) -> int: ...
    def shards(self) -> list[tuple[str, str]]:
        """``(dataset, shard)`` pairs covered, sorted."""
    def shard_counts(self, dataset: str, shard: str, *, strict: bool = True) -> ShardCounts: ...
    def excluded(
        self, dataset: str, shard: str, *, reason: str | None = None, strict: bool = True
    ) -> npt.NDArray[np.uint32]:
        """Sorted excluded rows of a shard."""
    def keep_mask(self, dataset: str, shard: str, rows: Rows, *, strict: bool = True) -> npt.NDArray[np.bool_]:
        """True where the row may be used."""
    def contains_many(self, dataset: str, shard: str, rows: Rows, *, strict: bool = True) -> npt.NDArray[np.bool_]:
        """True where the row is excluded."""
    def contains(self, dataset: str, shard: str, row: int) -> bool: ...
    def reasons(self, dataset: str, shard: str, row: int) -> list[str]: ...
    def diff(self, new: Manifest) -> Diff:
        """What changed from this (older) manifest to ``new``."""
    def check(
        self, used: Iterable[tuple[str, str, int] | Mapping[str, Any]], *, strict: bool = True
    ) -> list[CheckHit]:
        """The used records that this manifest excludes, in input order.

        A record of a shard the manifest does not cover raises ``UnknownShardError``,
        and a row past its shard's end ``RowPastEndError``, unless ``strict=False``."""
    def export_delta(
        self,
        table: PathLike,
        *,
        dataset: str | None = None,
        allow_unknown_files: bool = False,
        inline_max_bytes: int = 64,
    ) -> dict[str, Any]:
        """Commits the exclusions to a Delta table as deletion vectors; ``version`` None when nothing changed."""
    def export_iceberg(
        self, path: PathLike, *, dataset: str | None = None, data_root: str | None = None
    ) -> dict[str, Any]:
        """Writes the exclusions as an Iceberg v3 Puffin file of deletion-vector-v1 blobs."""
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
