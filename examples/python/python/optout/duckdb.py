"""DuckDB: a relation of the Parquet rows a manifest allows.

>>> import duckdb, optout.duckdb                                          # doctest: +SKIP
>>> rel = optout.duckdb.read_parquet(duckdb.connect(), files, m, "forum")  # doctest: +SKIP
>>> rel.aggregate("count(*)").fetchone()                                  # doctest: +SKIP

One ``read_parquet`` scan over all files with ``file_row_number`` (the
position in the file, which DuckDB counts from the row groups) and the file
name, anti-joined with the ``(file, row)`` pairs the manifest excludes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ._errors import InvalidRequestError
from ._positions import FILE, PathArg, Paths, expand, footer_rows, plan

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from ._optout import Manifest

__all__ = ["read_parquet"]


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
    planned = plan(files, manifest, dataset, root, strict=strict, num_rows=footer_rows(files))
    scan = (
        f"SELECT * FROM read_parquet([{', '.join(_literal(f) for f in files)}], "
        f"filename = {_literal(FILE)}, file_row_number = true)"
    )
    # The anti-join matches file names as DuckDB reports them: make sure it
    # reports them as given, or nothing would match and nothing be excluded.
    probe = f"SELECT {FILE} FROM read_parquet({_literal(files[0])}, filename = {_literal(FILE)}) LIMIT 1"
    got = con.sql(probe).fetchall()
    if got and got[0][0] != files[0]:  # pragma: no cover - a DuckDB change
        raise InvalidRequestError(f"DuckDB reports file {files[0]!r} as {got[0][0]!r}: cannot match its rows")
    rel = con.sql(scan)
    excluded = [f for f in planned if len(f.excluded)]
    if excluded:
        pairs = pa.table(
            {
                "file": pa.array([f.path for f in excluded for _ in range(len(f.excluded))], pa.string()),
                "row": pa.concat_arrays([pa.array(f.excluded.astype("int64")) for f in excluded]),
            }
        )
        rel = rel.set_alias("t").join(
            con.from_arrow(pairs).set_alias("e"),
            f"t.{FILE} = e.file AND t.file_row_number = e.row",
            how="anti",
        )
    return rel.select(f"* EXCLUDE ({FILE}, file_row_number)")
