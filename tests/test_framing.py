"""Framing: blocks, CRC, scrambling, reassembly with reordering, duplicates, failures, timeouts."""

from __future__ import annotations

import numpy as np
import pytest

from gnuradio.ncsc.framing import BlockError, Framer, Reassembler, parse_block, scramble


def test_frame_and_parse_round_trip():
    data = bytes(range(256)) * 3
    blocks = Framer(1536).frame(7, data)
    assert blocks.shape == (Framer(1536).blocks_for(len(data)), 1536)
    parts = [parse_block(b) for b in blocks]
    assert {p.image_id for p in parts} == {7} and b"".join(p.payload for p in parts) == data


def test_scrambler_is_an_involution_and_whitens_padding():
    bits = np.zeros(1536, np.uint8)
    s = scramble(bits)
    assert 0.4 < s.mean() < 0.6
    np.testing.assert_array_equal(scramble(s), bits)


def test_crc_catches_a_flipped_bit():
    blk = Framer().frame(1, b"hello")[0]
    blk[100] ^= 1
    with pytest.raises(BlockError, match="CRC"):
        parse_block(blk)


def test_reassembly_reorders_and_drops_duplicates():
    data = bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8))
    blocks = Framer().frame(3, data)
    r = Reassembler()
    order = [2, 0, 2, 4, 1, 3, 5][: len(blocks) + 1]
    events = []
    for i in order:
        events += r.add(blocks[i])
    assert len(events) == 1 and events[0]["status"] == "complete" and events[0]["data"] == data
    assert r.duplicates == 1 and not r.pending


def test_failed_block_is_reported_not_guessed():
    blocks = Framer().frame(9, bytes(500))
    bad = blocks[1].copy()
    bad[5] ^= 1
    r = Reassembler()
    events = r.add(blocks[0]) + r.add(bad, {"image_id": 9, "block_index": 1, "block_count": 3})
    events += r.add(blocks[2])
    assert len(events) == 1
    ev = events[0]
    assert ev["status"] == "incomplete" and ev["failed"] == [1] and ev["data"] == b""


def test_missing_blocks_reported_when_next_image_starts_and_on_timeout():
    f = Framer()
    a, b = f.frame(1, bytes(400)), f.frame(2, bytes(10))
    r = Reassembler(timeout=1.0)
    ev = r.add(a[0], now=0.0) + r.add(b[0], now=0.1)
    assert [e["image_id"] for e in ev] == [1, 2]
    assert ev[0]["status"] == "incomplete" and ev[0]["missing"] == [1, 2]
    c = f.frame(3, bytes(400))
    assert r.add(c[0], now=1.0) == []
    ev = r.expire(now=2.5)
    assert ev[0]["image_id"] == 3 and "timed out" in ev[0]["reason"] and not r.pending


def test_garbage_blocks_without_hint_are_counted():
    r = Reassembler()
    assert r.add(np.random.default_rng(1).integers(0, 2, 1536).astype(np.uint8)) == []
    assert r.unattributed_failures == 1
    with pytest.raises(BlockError):
        parse_block(np.zeros(13, np.uint8))
