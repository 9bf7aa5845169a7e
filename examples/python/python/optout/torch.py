"""PyTorch: an ``IterableDataset`` over Parquet files that yields only the rows
a manifest allows, splitting the files across ``DataLoader`` workers.

>>> from optout.torch import ParquetRows                                # doctest: +SKIP
>>> dl = torch.utils.data.DataLoader(ParquetRows(files, m, "forum"), batch_size=64, num_workers=4)  # doctest: +SKIP

torch is optional: without it ``ParquetRows`` is a plain iterable (and any
loader that gives each worker its ``worker_id`` and ``num_workers`` can use
it). Each row group is read whole; its rows' positions come from the footer
(the sum of the earlier row groups' counts), never from batch order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._positions import PathArg, Paths, kept_row_groups, plan, split

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from ._optout import Manifest

try:  # torch is optional
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _worker_info
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object  # type: ignore[assignment,misc]

    def _worker_info() -> Any:
        return None


__all__ = ["ParquetRows"]


class ParquetRows(_Base):  # type: ignore[misc,valid-type]
    """The kept rows of Parquet ``paths``, as dicts (``iter``) or as
    ``pyarrow.RecordBatch``es of at most ``batch_size`` rows (``batches()``).

    The shard of a file is its path relative to ``root`` (default: its name);
    a file the manifest does not cover raises ``UnknownShardError`` here,
    unless ``strict=False``. ``columns`` selects columns (default: all).

    Workers: under a ``DataLoader`` each worker reads every
    ``num_workers``-th file (``torch.utils.data.get_worker_info()``);
    ``worker_id`` and ``num_workers`` override that (other loaders, tests,
    one process per rank). Files are the unit of work, so use at least as
    many files as workers.
    """

    def __init__(
        self,
        paths: Paths,
        manifest: Manifest,
        dataset: str,
        root: PathArg | None = None,
        batch_size: int = 1024,
        columns: Sequence[str] | None = None,
        *,
        strict: bool = True,
        worker_id: int | None = None,
        num_workers: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if (worker_id is None) != (num_workers is None):
            raise ValueError("give both worker_id and num_workers, or neither")
        self.files = plan(paths, manifest, dataset, root, strict=strict)
        self.manifest = manifest
        self.dataset = dataset
        self.batch_size = batch_size
        self.columns = list(columns) if columns is not None else None
        self.strict = strict
        self.worker = None if worker_id is None else (worker_id, num_workers)
        if self.worker is not None:
            split(self.files, *self.worker)  # validate now

    def _mine(self) -> Sequence[Any]:
        if self.worker is not None:
            return split(self.files, *self.worker)
        info = _worker_info()
        return self.files if info is None else split(self.files, info.id, info.num_workers)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """This worker's kept rows as record batches of at most ``batch_size`` rows."""
        for f in self._mine():
            for t in kept_row_groups(f.path, f.shard, self.manifest, self.dataset, columns=self.columns, strict=self.strict):
                yield from t.to_batches(max_chunksize=self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for b in self.batches():
            yield from b.to_pylist()
