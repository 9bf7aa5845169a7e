"""The manifest bytes, parsed in Python from docs/FORMAT.md, read by pyroaring."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import optout

pyroaring = pytest.importorskip("pyroaring")


def parse(b: bytes):
    """Yields (dataset, shard, registered, row_end, [bitmaps...]) from manifest bytes."""
    assert b[:8] == b"OPTOUTMF"
    version, reserved, hlen = struct.unpack_from("<HHI", b, 8)
    # Format 3: each shard's row end after its registered count; 1 + 9
    # bitmaps per shard (format 2 added reason 8, signal_unparsable).
    assert (version, reserved) == (3, 0)
    header = json.loads(b[16 : 16 + hlen])
    pos = 16 + hlen
    (count,) = struct.unpack_from("<I", b, pos)
    pos += 4
    shards = []

    def take_str():
        nonlocal pos
        (n,) = struct.unpack_from("<I", b, pos)
        s = b[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        return s

    for _ in range(count):
        d, s = take_str(), take_str()
        registered, row_end, nb = struct.unpack_from("<QQI", b, pos)
        pos += 20
        bitmaps = []
        for _ in range(nb):
            (n,) = struct.unpack_from("<I", b, pos)
            bitmaps.append(pyroaring.BitMap.deserialize(b[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        shards.append((d, s, registered, row_end, bitmaps))
    assert pos == len(b) - 32, "only the 32-byte seal follows"
    return header, shards


def test_pyroaring_reads_the_same_rows(manifest):
    header, shards = parse(manifest.to_bytes())
    assert header == manifest.header
    assert [(d, s) for d, s, _, _, _ in shards] == manifest.shards()
    for d, s, registered, row_end, bitmaps in shards:
        assert len(bitmaps) == 1 + len(optout.REASONS)
        excluded, reasons = bitmaps[0], bitmaps[1:]
        np.testing.assert_array_equal(np.array(excluded.to_array(), dtype=np.uint32), manifest.excluded(d, s))
        union = pyroaring.BitMap()
        for name, bm in zip(optout.REASONS, reasons):
            assert list(bm) == manifest.excluded(d, s, reason=name).tolist()
            union |= bm
        assert union == excluded
        assert manifest.shard_counts(d, s)["registered"] == registered
        # The row end: the first row keep_mask refuses.
        assert row_end >= registered and (len(excluded) == 0 or excluded.max() < row_end)
        manifest.keep_mask(d, s, np.array([row_end - 1], dtype=np.uint64))
        with pytest.raises(optout.RowPastEndError):
            manifest.keep_mask(d, s, np.array([row_end], dtype=np.uint64))
    # And pyroaring's serialisation is byte-identical (canonical portable format).
    b = manifest.to_bytes()
    _, shards = parse(b)
    assert shards[0][4][0].serialize() in b
