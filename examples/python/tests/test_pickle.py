"""Manifests travel: pickle, copy, bytes, other processes."""

from __future__ import annotations

import copy
import multiprocessing as mp
import pickle

import numpy as np
import pytest

import optout
from pipelines import gen

SHARD0 = "part-00000.parquet"


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(manifest, protocol):
    b = pickle.dumps(manifest, protocol=protocol)
    m = pickle.loads(b)
    assert type(m) is optout.Manifest and m == manifest
    assert m.to_bytes() == manifest.to_bytes() and m.digest == manifest.digest
    rows = np.arange(gen.SHARDS[SHARD0], dtype=np.uint32)
    np.testing.assert_array_equal(m.keep_mask("forum", SHARD0, rows), manifest.keep_mask("forum", SHARD0, rows))


def test_copy_bytes_and_buffers(manifest):
    assert copy.copy(manifest) == manifest and copy.deepcopy(manifest) == manifest
    raw = manifest.to_bytes()
    for form in (raw, bytearray(raw), memoryview(raw), np.frombuffer(raw, dtype=np.uint8)):
        assert optout.Manifest.from_bytes(form) == manifest
    assert optout.Manifest(raw) == manifest


def test_pickled_tampering_is_refused(manifest):
    b = bytearray(pickle.dumps(manifest, protocol=4))
    i = b.index(b"OPTOUTMF") + 40
    b[i] ^= 0xFF
    with pytest.raises(optout.CorruptError):
        pickle.loads(bytes(b))


def _worker(args):
    m, shard = args
    rows = np.arange(gen.SHARDS[shard], dtype=np.uint64)
    return int(m.keep_mask("forum", shard, rows).sum())


def test_spawned_processes(manifest, reference):
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        kept = pool.map(_worker, [(manifest, s) for s in gen.SHARDS])
    assert kept == [n - len(reference[s]) for s, n in gen.SHARDS.items()]
