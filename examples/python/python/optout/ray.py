"""Ray Data: a ``ray.data.Dataset`` of the Parquet rows a manifest allows.

>>> import optout.ray                                                     # doctest: +SKIP
>>> ds = optout.ray.read_parquet(files, m, "forum", columns=["text"])     # doctest: +SKIP

Ray Data's own ``read_parquet`` knows a row's file but not its position in
it, so this reads through a ``Datasource`` whose read tasks are runs of row
groups: the driver reads each footer, a task reads its row groups whole and
asks the manifest about positions ``start .. start + num_rows`` of each
(``start`` from the footer). The manifest travels to the tasks pickled.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from ._positions import File, PathArg, Paths, expand, kept_row_groups, plan, row_group_starts

if TYPE_CHECKING:  # pragma: no cover
    from ._optout import Manifest

__all__ = ["read_parquet", "ParquetRowsDatasource"]

_TASK_ARGS = inspect.signature(ReadTask.__init__).parameters
_META_ARGS = set(getattr(BlockMetadata, "__dataclass_fields__", {}))


def _metadata(num_rows: int, size_bytes: int, files: list[str], schema: Any) -> BlockMetadata:
    kw: dict[str, Any] = {"num_rows": num_rows, "size_bytes": size_bytes, "input_files": files, "exec_stats": None}
    if "schema" in _META_ARGS:  # pragma: no cover - older Ray
        kw["schema"] = schema
    return BlockMetadata(**{k: v for k, v in kw.items() if k in _META_ARGS})


class ParquetRowsDatasource(Datasource):
    """Reads Parquet files as runs of row groups, keeping the rows ``manifest`` allows."""

    def __init__(
        self,
        files: Sequence[File],
        footers: Sequence[pq.FileMetaData],
        manifest: Manifest,
        dataset: str,
        *,
        columns: Sequence[str] | None = None,
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.files = list(files)
        self.manifest = manifest
        self.dataset = dataset
        self.columns = list(columns) if columns is not None else None
        self.strict = strict
        # (file index, row group, kept rows, bytes), from the footers.
        self.units: list[tuple[int, int, int, int]] = []
        self.num_rows = [md.num_rows for md in footers]
        schema = footers[0].schema.to_arrow_schema()
        self.schema = schema if self.columns is None else pa.schema([schema.field(c) for c in self.columns])
        for i, (f, md) in enumerate(zip(self.files, footers)):
            starts = row_group_starts(md)
            cut = np.searchsorted(f.excluded, starts)
            for g in range(md.num_row_groups):
                kept = int(starts[g + 1] - starts[g]) - int(cut[g + 1] - cut[g])
                self.units.append((i, g, kept, md.row_group(g).total_byte_size))

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(u[3] for u in self.units)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, **_: Any) -> list[ReadTask]:
        n = max(1, min(parallelism, len(self.units)))
        tasks = []
        for chunk in np.array_split(np.arange(len(self.units)), n):
            if len(chunk) == 0:
                continue
            units = [self.units[j] for j in chunk]
            groups: dict[int, list[int]] = {}
            for i, g, _, _ in units:
                groups.setdefault(i, []).append(g)
            work = [(self.files[i], gs, self.num_rows[i]) for i, gs in groups.items()]
            meta = _metadata(
                sum(u[2] for u in units), sum(u[3] for u in units), [self.files[i].path for i in groups], self.schema
            )
            read = _Read(work, self.manifest, self.dataset, self.columns, self.strict)
            kw: dict[str, Any] = {}
            if "schema" in _TASK_ARGS:
                kw["schema"] = self.schema
            if "per_task_row_limit" in _TASK_ARGS:
                kw["per_task_row_limit"] = per_task_row_limit
            tasks.append(ReadTask(read, meta, **kw))
        return tasks


class _Read:
    """One read task: some row groups of some files (picklable)."""

    def __init__(self, work: list[tuple[File, list[int], int]], manifest: Manifest, dataset: str, columns: Any, strict: bool):
        self.work, self.manifest, self.dataset, self.columns, self.strict = work, manifest, dataset, columns, strict

    def __call__(self) -> Iterable[Any]:
        for f, groups, rows in self.work:
            yield from kept_row_groups(
                f.path,
                f.shard,
                self.manifest,
                self.dataset,
                columns=self.columns,
                row_groups=groups,
                strict=self.strict,
                expect_rows=rows,
            )


def read_parquet(
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    columns: Sequence[str] | None = None,
    strict: bool = True,
    **read_kwargs: Any,
) -> ray.data.Dataset:
    """A Ray ``Dataset`` of the rows of ``paths`` that ``manifest`` allows.

    ``paths``: one local path or a list (a directory stands for its
    ``*.parquet`` files; made absolute here, they must be readable from every
    Ray worker). The shard of a
    file is its path relative to ``root`` (default: its name). A file the
    manifest does not cover raises ``UnknownShardError`` now, unless
    ``strict=False``. ``columns`` selects columns; ``read_kwargs`` go to
    ``ray.data.read_datasource`` (``override_num_blocks``,
    ``ray_remote_args``, ``concurrency``, ...).
    """
    files = [os.path.abspath(f) for f in expand(paths)]  # read by workers elsewhere
    footers = [pq.read_metadata(p) for p in files]
    planned = plan(files, manifest, dataset, root, strict=strict, num_rows=[f.num_rows for f in footers])
    source = ParquetRowsDatasource(planned, footers, manifest, dataset, columns=columns, strict=strict)
    return ray.data.read_datasource(source, **read_kwargs)
