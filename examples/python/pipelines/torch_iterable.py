"""PyTorch: a ``DataLoader`` over Parquet shards that never yields an excluded row.

    python -m pipelines.torch_iterable     (from examples/python; torch optional)
"""

from __future__ import annotations

from optout.torch import ParquetRows


def loader(paths, manifest, dataset: str, *, num_workers: int = 2, batch_size: int = 256):
    """A DataLoader over the kept rows when torch is installed, else the dataset itself."""
    ds = ParquetRows(paths, manifest, dataset, columns=["text", "n"])
    try:
        import torch
    except ImportError:
        return ds
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers)


def main() -> None:
    from pipelines import gen

    def count(paths, m) -> int:
        dl = loader(paths, m, gen.DATASET)
        return sum(len(b["n"]) for b in dl) if not isinstance(dl, ParquetRows) else sum(1 for _ in dl)

    gen.run(count)


if __name__ == "__main__":
    main()
