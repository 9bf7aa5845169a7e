"""Polars: a ``LazyFrame`` of the Parquet rows a manifest allows.

>>> import optout.polars                                              # doctest: +SKIP
>>> lf = optout.polars.scan_parquet(["data/part-0.parquet"], m, "forum")  # doctest: +SKIP
>>> lf.filter(pl.col("lang") == "nl").collect()                       # doctest: +SKIP

Each file is scanned on its own with a row index (Polars' row index over a
multi-file scan keeps counting across files, so it is not a position in the
file); rows whose index the manifest excludes are filtered out inside the
scan, and the per-file frames are concatenated in the order given. Files with
nothing excluded are scanned without a row index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from ._positions import POSITION, PathArg, Paths, expand, plan

if TYPE_CHECKING:  # pragma: no cover
    from ._optout import Manifest

__all__ = ["scan_parquet"]


def scan_parquet(
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    strict: bool = True,
    **scan_kwargs: Any,
) -> pl.LazyFrame:
    """A ``LazyFrame`` over ``paths`` without the rows ``manifest`` excludes.

    ``paths``: one path or a list (a directory stands for its ``*.parquet``
    files). The shard of a file is its path relative to ``root`` (default:
    its name); the row is its position in the file. A file the manifest does
    not cover raises ``UnknownShardError`` now, before anything is scanned,
    unless ``strict=False`` (then all its rows are kept). ``scan_kwargs`` go
    to every ``pl.scan_parquet`` call (not ``row_index_name``).
    """
    files = expand(paths)
    parts = []
    for f in plan(files, manifest, dataset, root, strict=strict):
        if len(f.excluded) == 0:
            parts.append(pl.scan_parquet(f.path, **scan_kwargs))
            continue
        excluded = pl.Series(POSITION, f.excluded, dtype=pl.UInt32)
        parts.append(
            pl.scan_parquet(f.path, row_index_name=POSITION, **scan_kwargs)
            .filter(~pl.col(POSITION).is_in(pl.lit(excluded).implode()))
            .drop(POSITION)
        )
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
