"""DuckDB: a relation over Parquet shards without the excluded rows.

    python -m pipelines.duckdb_parquet     (from examples/python)
"""

from __future__ import annotations

import duckdb

import optout.duckdb


def kept(con: duckdb.DuckDBPyConnection, paths, manifest, dataset: str) -> duckdb.DuckDBPyRelation:
    return optout.duckdb.read_parquet(con, paths, manifest, dataset)


def main() -> None:
    from pipelines import gen

    gen.run(lambda paths, m: kept(duckdb.connect(), paths, m, gen.DATASET).aggregate("count(*)").fetchall()[0][0])


if __name__ == "__main__":
    main()
