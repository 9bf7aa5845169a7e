"""A PyTorch-style ``IterableDataset`` over Parquet shards that skips excluded rows.

Duck-typed: it subclasses ``torch.utils.data.IterableDataset`` when torch is
installed and plain ``object`` otherwise. Under a ``DataLoader`` with workers
each worker gets a copy (the Manifest pickles) and reads every
``num_workers``-th shard; without torch, pass ``worker=(id, count)``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

import optout

try:  # pragma: no cover - torch is optional
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _worker_info
except ImportError:  # pragma: no cover
    _Base = object

    def _worker_info():
        return None


class ExcludingParquetRows(_Base):
    """Yields the rows (as dicts) of ``paths`` that ``manifest`` lets through.

    The shard name is the file name; the row number is the position in the
    file (or the ``row_column`` when given).
    """

    def __init__(
        self,
        paths: list[Path],
        manifest: optout.Manifest,
        dataset: str,
        *,
        row_column: str | None = "row",
        batch_size: int = 1024,
        worker: tuple[int, int] | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.manifest = manifest
        self.dataset = dataset
        self.row_column = row_column
        self.batch_size = batch_size
        self.worker = worker

    def _my_paths(self) -> list[Path]:
        info = _worker_info()
        wid, n = (info.id, info.num_workers) if info is not None else (self.worker or (0, 1))
        return self.paths[wid::n]

    def __iter__(self):
        import numpy as np

        for path in self._my_paths():
            f = pq.ParquetFile(path)
            offset = 0
            for batch in f.iter_batches(batch_size=self.batch_size):
                if self.row_column is not None:
                    rows = batch.column(self.row_column).to_numpy(zero_copy_only=False)
                else:
                    rows = np.arange(offset, offset + batch.num_rows, dtype=np.uint64)
                offset += batch.num_rows
                keep = self.manifest.keep_mask(self.dataset, path.name, rows)
                yield from batch.filter(keep).to_pylist()
