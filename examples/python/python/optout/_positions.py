"""What every reader shares: which shard a file is, and which of its rows a
manifest lets through, by their true position in the file.

The rules (the same as ``optout ingest --parquet`` and ``export --to delta``):

* the **shard** of a file is its path relative to ``root``, with ``/``
  separators (the string a Delta table's ``add.path`` carries, URL-decoded);
  without ``root`` it is the file's name;
* the **row** is the position of the row in that file, counted from the
  Parquet footer (the row counts of its row groups), never from the order in
  which an engine happens to deliver batches, nor from a data column;
* a file the manifest does not cover fails closed (``UnknownShardError``)
  unless the caller passes ``strict=False``.

Every reader asks ``Manifest.keep_mask`` (or ``Manifest.excluded``) about
those positions, so the manifest's own rules apply unchanged.
"""

from __future__ import annotations

import os
import posixpath
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._errors import InvalidRequestError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ._optout import Manifest

PathArg = Union[str, "os.PathLike[str]"]
Paths = Union[PathArg, Iterable[PathArg]]

POSITION = "__optout_row"
"""The name of the position column readers add internally (and drop again)."""
FILE = "__optout_file"
"""The name of the file column readers add internally (and drop again)."""


def expand(paths: Paths, suffix: str = ".parquet") -> list[str]:
    """``paths`` as a list of file paths, in the order given.

    ``paths`` is one path or an iterable of paths; a directory stands for every
    file under it whose name ends with ``suffix`` (recursively, sorted).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(
                os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith(suffix)
            )
            if not found:
                raise InvalidRequestError(f"{p}: a directory without any *{suffix} file")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise InvalidRequestError("no files given")
    return out


def _location(loc: str) -> tuple[str, str]:
    """``(scheme://netloc, path)`` of a local path or a URI; URIs are URL-decoded
    (``file:/a%20b`` is the file ``/a b``), local paths made absolute."""
    u = urllib.parse.urlsplit(loc)
    if len(u.scheme) > 1:  # not a Windows drive letter
        prefix = "" if u.scheme == "file" else f"{u.scheme}://{u.netloc}"
        path = urllib.parse.unquote(u.path)
        return prefix, path if prefix else os.path.abspath(path)
    return "", os.path.abspath(loc)


def shard_name(location: PathArg, root: PathArg | None = None) -> str:
    """The shard of a data file: its path relative to ``root`` with ``/``
    separators, or its name when ``root`` is None.

    ``location`` is a local path or a URI such as Spark's
    ``_metadata.file_path`` (``file:/data/a%20b.parquet``: URIs are
    URL-decoded, local paths are taken as they are). A file outside ``root``
    raises ``InvalidRequestError``.
    """
    prefix, path = _location(os.fspath(location))
    if root is None:
        return posixpath.basename(path.replace(os.sep, "/"))
    rprefix, rpath = _location(os.fspath(root))
    rel = os.path.relpath(path, rpath) if not prefix else posixpath.relpath(path, rpath or "/")
    rel = rel.replace(os.sep, "/")
    if prefix != rprefix or rel == "." or rel == ".." or rel.startswith("../"):
        raise InvalidRequestError(f"{location}: not under root {os.fspath(root)}")
    return rel


@dataclass(frozen=True)
class File:
    """A data file, its shard name, and its position-excluded rows (sorted)."""

    path: str
    shard: str
    excluded: np.ndarray


def shards_of(paths: Sequence[str], root: PathArg | None) -> list[str]:
    """The shard of each path; two files naming the same shard is an error
    (both would get that shard's exclusions)."""
    seen: dict[str, str] = {}
    out = []
    for p in paths:
        s = shard_name(p, root)
        if s in seen:
            hint = "" if root is not None else "; pass root= so shards are paths relative to it"
            raise InvalidRequestError(f"{seen[s]} and {p} are both shard {s!r}{hint}")
        seen[s] = p
        out.append(s)
    return out


def plan(
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    strict: bool = True,
    num_rows: Sequence[int] | None = None,
    suffix: str = ".parquet",
) -> list[File]:
    """Every file with its shard and excluded rows, before anything is read.

    Fails closed here, on the driver: an unknown shard raises
    ``UnknownShardError`` (``strict``). With ``num_rows`` (each file's row
    count from its footer), the excluded rows are what ``keep_mask`` says of
    every position ``0..num_rows``; otherwise ``Manifest.excluded``.
    """
    files = expand(paths, suffix)
    shards = shards_of(files, root)
    out = []
    for i, (p, s) in enumerate(zip(files, shards)):
        if num_rows is None:
            ex = manifest.excluded(dataset, s, strict=strict)
        else:
            keep = manifest.keep_mask(dataset, s, np.arange(num_rows[i], dtype=np.uint64), strict=strict)
            ex = np.flatnonzero(~keep).astype(np.uint32)
        out.append(File(p, s, ex))
    return out


def row_group_starts(metadata: pq.FileMetaData) -> np.ndarray:
    """Position of the first row of each row group, plus the file's row count
    at the end (``len = num_row_groups + 1``), from the footer."""
    counts = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def kept_row_groups(
    path: str,
    shard: str,
    manifest: Manifest,
    dataset: str,
    *,
    columns: Sequence[str] | None = None,
    row_groups: Sequence[int] | None = None,
    strict: bool = True,
    expect_rows: int | None = None,
) -> Iterator[pa.Table]:
    """The kept rows of one Parquet file, one table per row group (in file order).

    A row group's rows are at positions ``start .. start + num_rows`` where
    ``start`` is the sum of the earlier row groups' counts in the footer;
    ``keep_mask`` is asked about exactly those. With ``expect_rows`` (the
    row count when the read was planned), a file with another count now
    raises ``InvalidRequestError``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    md = pf.metadata
    if expect_rows is not None and md.num_rows != expect_rows:
        raise InvalidRequestError(f"{path}: {md.num_rows} rows, {expect_rows} when the read was planned: the file changed")
    starts = row_group_starts(md)
    for g in range(md.num_row_groups) if row_groups is None else row_groups:
        t = pf.read_row_group(g, columns=columns)
        n = int(starts[g + 1] - starts[g])
        if t.num_rows != n:  # pragma: no cover - a reader bug or a damaged file
            raise InvalidRequestError(f"{path}: row group {g} has {t.num_rows} rows, its footer says {n}")
        pos = np.arange(starts[g], starts[g + 1], dtype=np.uint64)
        keep = manifest.keep_mask(dataset, shard, pos, strict=strict)
        yield t if keep.all() else t.filter(pa.array(keep))


def split(items: Sequence[Any], worker_id: int, num_workers: int) -> Sequence[Any]:
    """The share of ``items`` worker ``worker_id`` of ``num_workers`` reads (round robin)."""
    if num_workers < 1 or not 0 <= worker_id < num_workers:
        raise InvalidRequestError(f"worker {worker_id} of {num_workers}: need 0 <= worker_id < num_workers")
    return items[worker_id::num_workers]
