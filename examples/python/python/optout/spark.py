"""Spark: drop the rows a manifest excludes from a DataFrame read with
``spark.read.parquet``.

>>> import optout.spark                                                    # doctest: +SKIP
>>> df = optout.spark.filter(spark.read.parquet("/data/forum"), m, "forum", root="/data/forum")  # doctest: +SKIP

Spark knows each row's file and position: ``_metadata.file_path`` and
``_metadata.row_index`` (the position in the file, which Spark's Parquet
reader counts from the row groups). The driver lists the DataFrame's input
files (``df.inputFiles()``), names their shards, fails closed on any the
manifest does not cover, and anti-joins the DataFrame with a broadcast table
of the excluded ``(file_path, row_index)`` pairs; the rows never leave the JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import InvalidRequestError
from ._positions import FILE, POSITION, PathArg, _location, shards_of

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from ._optout import Manifest

__all__ = ["filter"]

BROADCAST_MAX_ROWS = 5_000_000
"""Above this many excluded rows, the anti-join is left to Spark's planner instead of a broadcast."""


def filter(  # noqa: A001 - the name the interface promises
    df: DataFrame,
    manifest: Manifest,
    dataset: str,
    root: PathArg | None = None,
    *,
    strict: bool = True,
) -> DataFrame:
    """``df`` without the rows ``manifest`` excludes; the columns are ``df``'s.

    ``df`` must scan Parquet files (``spark.read.parquet(...)``, optionally
    filtered or projected after this call, not before: ``_metadata`` is a
    column of the file scan). The shard of a file is its path relative to
    ``root`` (a path or URI; default: its name). A file the manifest does not
    cover raises ``UnknownShardError`` now, unless ``strict=False``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    files = sorted(df.inputFiles())
    if not files:
        raise InvalidRequestError("the DataFrame reads no files (df.inputFiles() is empty)")
    shards = shards_of(files, root)
    excluded = [manifest.excluded(dataset, s, strict=strict) for s in shards]
    if not any(len(e) for e in excluded):
        return df
    spark = df.sparkSession
    # How the scan spells file paths, from a one-file read of a file with
    # rows (cheaper than a limit over `df`, whose plan lists every file).
    one = files[next(i for i, e in enumerate(excluded) if len(e))]
    probe = spark.read.parquet(one).select(F.col("_metadata.file_path")).limit(1).collect()
    spell = _spelling(files, probe[0][0])
    marked = df.withColumn(FILE, F.col("_metadata.file_path")).withColumn(POSITION, F.col("_metadata.row_index"))
    ids = spark.createDataFrame(
        [(spell(f), i) for i, f in enumerate(files)],
        T.StructType([T.StructField(FILE, T.StringType(), False), T.StructField(_ID, T.IntegerType(), False)]),
    )
    pairs = spark.createDataFrame(
        [(i, int(r)) for i, e in enumerate(excluded) for r in e],
        T.StructType([T.StructField(_ID, T.IntegerType(), False), T.StructField(POSITION, T.LongType(), False)]),
    )
    if sum(len(e) for e in excluded) <= BROADCAST_MAX_ROWS:
        pairs = F.broadcast(pairs)
    # Every row's file must be one of ours: a row whose path matches none
    # stops the job instead of passing the filter unexamined.
    unmatched = F.raise_error(F.concat(F.lit("optout.spark.filter: a row of file "), F.col(FILE), F.lit(" matches no input file")))
    return (
        marked.join(F.broadcast(ids), on=FILE, how="left")
        .withColumn(_ID, F.coalesce(F.col(_ID), unmatched.cast("int")))
        .join(pairs, on=[_ID, POSITION], how="left_anti")
        .drop(FILE, POSITION, _ID)
    )


_ID = "__optout_file_id"


def _spelling(files: list[str], reported: str):
    """How the scan spells the paths ``inputFiles()`` lists, learnt from one
    file it reported (Spark lists ``file:///a/b`` and reports ``file:/a/b``):
    the two spellings of that file differ by a prefix, which is rewritten in
    every path. A path without that prefix raises."""
    same = [f for f in files if _location(f) == _location(reported)]
    if len(same) != 1:
        raise InvalidRequestError(f"Spark reports file {reported!r}, which matches no single input file")
    listed = same[0]
    k = 0
    while k < min(len(listed), len(reported)) and listed[-1 - k] == reported[-1 - k]:
        k += 1
    old, new = listed[: len(listed) - k], reported[: len(reported) - k]

    def spell(f: str) -> str:
        if not f.startswith(old):
            raise InvalidRequestError(f"input file {f!r} does not start with {old!r} like {listed!r}")
        return new + f[len(old) :]

    return spell
