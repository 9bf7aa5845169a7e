"""Hugging Face ``datasets``: load Parquet files without the rows a manifest
excludes, or filter a data set that carries its own shard and row columns.

>>> import optout.hf                                                  # doctest: +SKIP
>>> ds = optout.hf.load_parquet(files, m, "forum")                    # doctest: +SKIP
>>> ds = optout.hf.filter(ds_with_positions, m, "forum", num_proc=4)  # doctest: +SKIP

``load_parquet`` reads each row group whole, asks the manifest about its
rows' positions (from the footer) and writes the kept rows to one Arrow file
in the cache, which becomes a memory-mapped ``datasets.Dataset``; the same
files, manifest and options reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ._positions import PathArg, Paths, kept_row_groups, plan

if TYPE_CHECKING:  # pragma: no cover
    from ._optout import Manifest

__all__ = ["load_parquet", "filter", "keep_batch"]


def _cache_key(files: list, manifest: Manifest, dataset: str, columns: Sequence[str] | None, strict: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([manifest.digest, dataset, columns, strict]).encode())
    for f in files:
        st = os.stat(f.path)
        h.update(json.dumps([os.path.abspath(f.path), f.shard, st.st_size, st.st_mtime_ns]).encode())
    return h.hexdigest()[:32]


def load_parquet(
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    columns: Sequence[str] | None = None,
    strict: bool = True,
    cache_dir: PathArg | None = None,
    keep_in_memory: bool = False,
    **load_dataset_kwargs: Any,
) -> datasets.Dataset:
    """A ``datasets.Dataset`` of the rows of ``paths`` that ``manifest`` allows,
    in file order.

    The shard of a file is its path relative to ``root`` (default: its
    name). A file the manifest does not cover raises ``UnknownShardError``
    before anything is read, unless ``strict=False``. ``columns`` selects
    columns. The kept rows are written once to ``cache_dir`` (default:
    ``datasets``' cache, subfolder ``optout``) and memory-mapped
    (``keep_in_memory`` loads them instead). With ``load_dataset_kwargs``
    (``features``, ``num_proc``, ``streaming``, ...) that file is loaded
    with ``datasets.load_dataset("arrow", ...)``, split ``train``.
    """
    files = plan(paths, manifest, dataset, root, strict=strict)
    base = os.fspath(cache_dir) if cache_dir is not None else os.path.join(datasets.config.HF_DATASETS_CACHE, "optout")
    os.makedirs(base, exist_ok=True)
    out = os.path.join(base, f"kept-{_cache_key(files, manifest, dataset, columns, strict)}.arrow")
    if not os.path.exists(out):
        _write_kept(files, manifest, dataset, columns, strict, out)
    if load_dataset_kwargs:
        kw = {"split": "train", **load_dataset_kwargs}
        return datasets.load_dataset("arrow", data_files=out, cache_dir=cache_dir and os.fspath(cache_dir), **kw)
    return datasets.Dataset.from_file(out, in_memory=keep_in_memory)


def _write_kept(files: list, manifest: Manifest, dataset: str, columns: Any, strict: bool, out: str) -> None:
    """The kept rows of every file, as one Arrow stream file, written atomically."""
    schema = pq.read_schema(files[0].path)
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
            for f in files:
                for t in kept_row_groups(f.path, f.shard, manifest, dataset, columns=columns, strict=strict):
                    w.write_table(t.cast(schema) if t.schema != schema else t)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def keep_batch(manifest: Manifest, dataset: str, shard_column: str = "shard", row_column: str = "row", *, strict: bool = True):
    """A batched predicate for ``Dataset.filter(..., batched=True)`` over data
    that carries the shard name and the row position as columns."""

    def predicate(batch: dict) -> list[bool]:
        shards = np.asarray(batch[shard_column])
        rows = np.asarray(batch[row_column], dtype=np.uint64)
        keep = np.ones(len(rows), dtype=bool)
        for shard in np.unique(shards):
            sel = shards == shard
            keep[sel] = manifest.keep_mask(dataset, str(shard), rows[sel], strict=strict)
        return keep.tolist()

    return predicate


def filter(  # noqa: A001 - the name the interface promises
    ds: Any,
    manifest: Manifest,
    dataset: str,
    shard_column: str = "shard",
    row_column: str = "row",
    *,
    strict: bool = True,
    batch_size: int = 1000,
    num_proc: int | None = None,
) -> Any:
    """``ds`` (a ``Dataset`` or ``IterableDataset``) without the rows
    ``manifest`` excludes, for data sets whose ``shard_column`` and
    ``row_column`` hold each row's shard and position (as registered). An
    unknown shard raises ``UnknownShardError`` unless ``strict=False``. The
    manifest pickles, so ``num_proc`` works."""
    kw: dict[str, Any] = {"batched": True, "batch_size": batch_size}
    if num_proc is not None:
        kw["num_proc"] = num_proc
    return ds.filter(keep_batch(manifest, dataset, shard_column, row_column, strict=strict), **kw)
