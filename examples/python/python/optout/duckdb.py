"""DuckDB: a relation of the Parquet rows a manifest allows.

>>> import duckdb, optout.duckdb                                          # doctest: +SKIP
>>> rel = optout.duckdb.read_parquet(duckdb.connect(), files, m, "forum")  # doctest: +SKIP
>>> rel.aggregate("count(*)").fetchall()                                  # doctest: +SKIP

One ``read_parquet`` scan over all files. DuckDB numbers each row with
``file_row_number`` (its position in the file, counted from the row groups)
and ``file_index`` (the file's index in the list given); the pair, as one
``BIGINT`` key, is anti-joined with the keys of the rows the manifest
excludes. Needs DuckDB >= 1.3 (``file_index``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ._errors import InvalidRequestError
from ._positions import FILE, PathArg, Paths, expand, plan

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from ._optout import Manifest

__all__ = ["read_parquet"]

_KEY = "__optout_key"


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def read_parquet(
    con: duckdb.DuckDBPyConnection,
    paths: Paths,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    strict: bool = True,
) -> duckdb.DuckDBPyRelation:
    """A relation over ``paths`` (on connection ``con``) without the rows
    ``manifest`` excludes; the columns are the files' own.

    ``paths``: one path or a list (a directory stands for its ``*.parquet``
    files). The shard of a file is its path relative to ``root`` (default:
    its name); the row is DuckDB's ``file_row_number``. A file the manifest
    does not cover raises ``UnknownShardError`` now unless ``strict=False``.
    """
    files = expand(paths)
    planned = plan(files, manifest, dataset, root, strict=strict)
    listed = f"[{', '.join(_literal(f) for f in files)}]"
    # The keys say which file by its index in `listed`: check that DuckDB
    # numbers the files that way (first and last), or rows would be matched
    # to another file's exclusions.
    for i in sorted({0, len(files) - 1}):
        got = con.sql(
            f"SELECT {FILE} FROM read_parquet({listed}, filename = {_literal(FILE)}) WHERE file_index = {i} LIMIT 1"
        ).fetchall()
        if got and got[0][0] != files[i]:  # pragma: no cover - a DuckDB change
            raise InvalidRequestError(f"DuckDB numbers {got[0][0]!r} as file {i}, not {files[i]!r}")
    rel = con.sql(
        f"SELECT * EXCLUDE (file_row_number), (file_index::BIGINT << 32) + file_row_number AS {_KEY} "
        f"FROM read_parquet({listed}, file_row_number = true)"
    )
    keys = [(np.int64(i) << 32) + f.excluded.astype(np.int64) for i, f in enumerate(planned) if len(f.excluded)]
    if keys:
        excluded = con.from_arrow(pa.table({_KEY: pa.array(np.concatenate(keys))}))
        rel = rel.join(excluded, _KEY, how="anti")
    return rel.select(f"* EXCLUDE ({_KEY})")
