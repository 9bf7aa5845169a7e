"""Ray Data: read Parquet shards without the excluded rows, then map as usual.

    python -m pipelines.ray_data           (from examples/python; starts a local Ray)
"""

from __future__ import annotations

import optout.ray


def kept(paths, manifest, dataset: str):
    """A Ray Dataset of the kept rows (needs ``ray.init`` or starts one)."""
    return optout.ray.read_parquet(paths, manifest, dataset)


def main() -> None:
    import ray

    from pipelines import gen

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        gen.run(lambda paths, m: kept(paths, m, gen.DATASET).map_batches(lambda b: b, batch_format="pyarrow").count())
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
