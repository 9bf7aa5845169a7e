"""WebDataset: the samples of tar shards a manifest allows, by sample position
and by ``__key__``.

>>> import optout.webdataset as owds                                      # doctest: +SKIP
>>> for sample in owds.samples(["shards/train-000.tar"], m, "images"):  # doctest: +SKIP
...     jpg, cls = sample["jpg"], sample["cls"]

A sample is a run of consecutive tar members with the same key (the
WebDataset convention: a member ``dir/abc.seg.jpg`` has key ``dir/abc``, up
to the first dot of the name, and field ``seg.jpg``, lower-cased); its
**row** is its index among the samples of its tar in tar order, as
``optout ingest --webdataset`` registers it. Members that are not regular
files, whose name has no dot after its first character, or that match
``__*__`` (metadata such as ``__index__``) belong to no sample. Pure Python (``tarfile``); the samples are dicts like those of the
``webdataset`` package (``__key__``, ``__url__``, one ``bytes`` per field,
plus ``__row__``), so ``wds.DataPipeline(owds.samples(...), wds.decode(),
...)`` works when that package is installed.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._errors import InvalidRequestError
from ._positions import File, PathArg, Paths, plan, split

if TYPE_CHECKING:  # pragma: no cover
    from ._optout import Manifest

__all__ = ["read_tar", "samples", "filter_keys", "excluded_keys"]

Sample = dict[str, Any]


_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
"""webdataset's ``base_plus_ext``: the key ends at the first dot of the name."""
_META = re.compile(r"__[^/]*__($|/)")
"""webdataset's ``skip_meta``: members such as ``__index__`` carry no sample."""


def _key_field(name: str) -> tuple[str, str] | None:
    if _META.match(name):
        return None
    m = _KEY.match(name)
    return None if m is None else (m.group(1), m.group(2).lower())


def read_tar(path: PathArg, url: str | None = None) -> Iterator[Sample]:
    """Every sample of one tar file, in tar order, with ``__row__`` = its position.

    A field that repeats within a sample is an error naming the tar and the
    member (it would silently shift every later position otherwise).
    """
    url = url if url is not None else str(path)
    cur: Sample | None = None
    row = -1
    with tarfile.open(path, mode="r|*") as tar:
        for m in tar:
            if not m.isfile():
                continue
            kf = _key_field(m.name)
            if kf is None:
                continue
            key, field = kf
            if cur is None or cur["__key__"] != key:
                if cur is not None:
                    yield cur
                row += 1
                cur = {"__key__": key, "__url__": url, "__row__": row}
            if field in cur:
                raise InvalidRequestError(f"{path}: member {m.name}: field {field!r} twice in sample {key!r}")
            f = tar.extractfile(m)
            cur[field] = f.read() if f is not None else b""
    if cur is not None:
        yield cur


def samples(
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    strict: bool = True,
    excluded: Collection[str] = (),
    worker_id: int = 0,
    num_workers: int = 1,
) -> Iterator[Sample]:
    """The samples of tar ``paths`` that ``manifest`` allows, in order.

    The shard of a tar is its path relative to ``root`` (default: its name);
    a tar the manifest does not cover raises ``UnknownShardError`` before any
    is read, unless ``strict=False``. ``excluded``: keys to drop as well (for
    instance from ``excluded_keys``). ``worker_id`` / ``num_workers``: read
    every ``num_workers``-th tar only.
    """
    files = split(plan(paths, manifest, dataset, root, strict=strict, suffix=".tar"), worker_id, num_workers)
    return _kept(files, excluded)


def _kept(files: Iterable[File], excluded: Collection[str]) -> Iterator[Sample]:
    for f in files:
        rows = set(f.excluded.tolist())
        for s in read_tar(f.path):
            if s["__row__"] not in rows and s["__key__"] not in excluded:
                yield s


def filter_keys(stream: Iterable[Sample], excluded: Collection[str]) -> Iterator[Sample]:
    """The samples of ``stream`` (from this module, the ``webdataset`` package
    or anything yielding dicts with ``__key__``) whose key is not ``excluded``."""
    for s in stream:
        if s["__key__"] not in excluded:
            yield s


def excluded_keys(export_jsonl: PathArg, dataset: str | None = None) -> set[str]:
    """The keys of the excluded records in ``optout export MANIFEST --to jsonl
    --ledger LEDGER`` output (each line ``{"dataset", "shard", "row", "reasons", "key"}``),
    optionally of one dataset. Records registered without a key (``"key": null``)
    have none to add."""
    import json

    out = set()
    with open(export_jsonl, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if dataset is not None and rec.get("dataset") != dataset:
                continue
            if "key" not in rec:
                raise InvalidRequestError(f"{export_jsonl}:{n}: field `key` missing (export with --ledger LEDGER)")
            if rec["key"] is not None:  # a record registered without a key
                out.add(rec["key"])
    return out
