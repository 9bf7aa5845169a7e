"""Spark: drop the excluded rows of a ``spark.read.parquet`` DataFrame.

    python -m pipelines.spark_parquet      (from examples/python; starts local[2])
"""

from __future__ import annotations

import optout.spark


def kept(spark, paths, manifest, dataset: str):
    return optout.spark.filter(spark.read.parquet(*[str(p) for p in paths]), manifest, dataset)


def main() -> None:
    from pyspark.sql import SparkSession

    from pipelines import gen

    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        gen.run(lambda paths, m: kept(spark, paths, m, gen.DATASET).count())
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
