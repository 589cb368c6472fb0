"""Information blocks: a small header, a payload chunk, a CRC-32, scrambled to k bits.

Block layout (big-endian bytes, before scrambling)::

    image_id u16 | block_index u16 | block_count u16 | payload_len u16 | payload ... | zero pad | crc32 u32

The CRC covers everything before it, so a block that the LDPC decoder got wrong is
caught here even when its syndrome happened to be zero. The scrambler (a fixed PN
sequence, x^15 + x^14 + 1) breaks up the zero padding and long runs.
"""

from __future__ import annotations

import logging
import struct
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

_HEAD = struct.Struct(">HHHH")
HEADER_BYTES = _HEAD.size
CRC_BYTES = 4
MAX_BLOCKS = 0xFFFF

log = logging.getLogger(__name__)


class BlockError(ValueError):
    """A block that cannot be used (CRC failure, impossible header, wrong size)."""


@lru_cache(maxsize=8)
def _pn(nbits: int) -> np.ndarray:
    state = 0x4A80  # any nonzero 15-bit seed
    out = np.empty(nbits, dtype=np.uint8)
    for i in range(nbits):
        bit = ((state >> 14) ^ (state >> 13)) & 1
        out[i] = bit
        state = ((state << 1) | bit) & 0x7FFF
    out.setflags(write=False)
    return out


def scramble(bits: np.ndarray) -> np.ndarray:
    """XOR with the PN sequence (its own inverse)."""
    return bits ^ _pn(bits.shape[-1])


@dataclass(frozen=True)
class ParsedBlock:
    image_id: int
    index: int
    count: int
    payload: bytes


class Framer:
    """Splits one image's bitstream into scrambled k-bit information blocks."""

    def __init__(self, k: int = 1536):
        if k % 8 or k // 8 <= HEADER_BYTES + CRC_BYTES:
            raise ValueError(f"k must be a multiple of 8 with room for the {HEADER_BYTES + CRC_BYTES}-byte overhead")
        self.k = k
        self.capacity = k // 8 - HEADER_BYTES - CRC_BYTES

    def blocks_for(self, n_bytes: int) -> int:
        return max(1, -(-n_bytes // self.capacity))

    def frame(self, image_id: int, data: bytes) -> np.ndarray:
        """(n_blocks, k) uint8 bits for ``data``."""
        if not 0 <= image_id <= 0xFFFF:
            raise ValueError(f"image_id must fit 16 bits, got {image_id}")
        count = self.blocks_for(len(data))
        if count > MAX_BLOCKS:
            raise ValueError(f"{len(data)} bytes need {count} blocks, more than {MAX_BLOCKS}")
        out = np.empty((count, self.k), dtype=np.uint8)
        for i in range(count):
            chunk = data[i * self.capacity : (i + 1) * self.capacity]
            body = _HEAD.pack(image_id, i, count, len(chunk)) + chunk
            body += bytes(self.k // 8 - CRC_BYTES - len(body))
            body += struct.pack(">I", zlib.crc32(body))
            out[i] = scramble(np.unpackbits(np.frombuffer(body, dtype=np.uint8)))
        return out


def parse_block(bits: np.ndarray) -> ParsedBlock:
    """Descramble and check one block; raise :class:`BlockError` with the reason."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.ndim != 1 or bits.size % 8:
        raise BlockError(f"block must be a multiple of 8 bits, got {bits.shape}")
    if bits.size < 8 * (HEADER_BYTES + CRC_BYTES):
        raise BlockError(f"block of {bits.size} bits is shorter than its {HEADER_BYTES + CRC_BYTES}-byte overhead")
    raw = np.packbits(scramble(bits)).tobytes()
    body, crc = raw[:-CRC_BYTES], struct.unpack(">I", raw[-CRC_BYTES:])[0]
    if zlib.crc32(body) != crc:
        raise BlockError("CRC mismatch")
    image_id, index, count, length = _HEAD.unpack_from(body)
    if count == 0 or index >= count or length > len(body) - HEADER_BYTES:
        raise BlockError(f"impossible header (index {index}, count {count}, length {length})")
    return ParsedBlock(image_id, index, count, body[HEADER_BYTES : HEADER_BYTES + length])


@dataclass
class _Pending:
    count: int
    parts: dict = field(default_factory=dict)
    failed: set = field(default_factory=set)
    last_seen: float = 0.0
    meta: dict = field(default_factory=dict)


class Reassembler:
    """Collects blocks per image; reorders, drops duplicates, reports what is missing or failed.

    ``add`` and ``expire`` return finished images as dicts with ``image_id``, ``status``
    (``complete`` or ``incomplete``), ``data`` (bytes, empty when incomplete),
    ``blocks``, ``missing`` and ``failed`` block indices; an incomplete image also has
    ``parts`` (block index -> payload of each block that passed its CRC). An image is finished when each
    of its blocks is in or known failed, when a block of a newer image arrives (links
    deliver images in order; blocks within an image may come in any order), or after
    ``timeout`` seconds without a new block.

    A finished image's id is remembered for ``timeout`` seconds, so late copies of its
    blocks count as duplicates; after that, or at once when a block's count differs from
    the finished image's, the id is taken as reused (a transmitter that restarted its ids)
    and starts a new image, with a log line and ``reused_ids`` counted.
    """

    def __init__(self, timeout: float = 5.0, max_images: int = 64):
        self.timeout = timeout
        self.max_images = max_images
        self.pending: dict[int, _Pending] = {}
        self.done: dict[int, tuple[float, int]] = {}  # image_id -> (finished at, block count)
        self.duplicates = 0
        self.unattributed_failures = 0
        self.bad_hints = 0
        self.reused_ids = 0

    def _finish(self, image_id: int, reason: str = "", now: float | None = None) -> dict:
        p = self.pending.pop(image_id)
        self.done[image_id] = (time.monotonic() if now is None else now, p.count)
        if len(self.done) > 4 * self.max_images:
            for k in sorted(self.done, key=lambda i: self.done[i][0])[: len(self.done) // 2]:
                del self.done[k]
        return _event(image_id, p, reason)

    def snapshot(self, image_id: int, reason: str) -> dict:
        """An unfinished image as it stands, in the form of a finished one (``incomplete``, with
        the blocks in so far), which stays pending: for a display of a picture still arriving."""
        return _event(image_id, self.pending[image_id], reason)

    def _is_done(self, image_id: int, count: int, now: float) -> bool:
        """Whether a block belongs to an image already finished (else its id is free again)."""
        if image_id not in self.done:
            return False
        finished, done_count = self.done[image_id]
        if count == done_count and now - finished < self.timeout:
            return True
        del self.done[image_id]
        self.reused_ids += 1
        log.warning("image id %d reused %.1f s after it finished (%d blocks, was %d): a new image "
                    "(transmitter restarted?)", image_id, now - finished, count, done_count)
        return False

    def _get(self, image_id: int, count: int, now: float) -> _Pending:
        p = self.pending.get(image_id)
        if p is None:
            p = self.pending[image_id] = _Pending(count=count, last_seen=now)
        return p

    def add(self, bits: np.ndarray, hint: dict | None = None, now: float | None = None) -> list[dict]:
        """Add one received block; ``hint`` (image_id, block_index, block_count from metadata) places
        a block whose CRC failed."""
        now = time.monotonic() if now is None else now
        hint = hint or {}
        events = []
        try:
            blk = parse_block(bits)
        except BlockError:
            where = _valid_hint(hint)
            if where is None:
                self.unattributed_failures += 1
                if any(k in hint for k in ("image_id", "block_index", "block_count")):
                    self.bad_hints += 1
                return self.expire(now)
            iid, idx, cnt = where
            pend = self.pending.get(iid)
            if (iid in self.done and now - self.done[iid][0] < self.timeout) or (
                    pend is not None and (pend.count != cnt or idx in pend.parts)):
                # a failed copy of a block already in, or a hint that contradicts the image
                self.duplicates += 1
                return self.expire(now)
            self.done.pop(iid, None)
            p = self._get(iid, cnt, now)
            p.failed.add(idx)
            p.last_seen = now
            blk_id = iid
        else:
            if self._is_done(blk.image_id, blk.count, now):
                self.duplicates += 1
                return self.expire(now)
            p = self._get(blk.image_id, blk.count, now)
            if blk.index in p.parts or blk.count != p.count:
                self.duplicates += 1
                return self.expire(now)
            p.parts[blk.index] = blk.payload
            p.failed.discard(blk.index)
            p.last_seen = now
            blk_id = blk.image_id
        if hint:
            p.meta.update({k: v for k, v in hint.items() if k not in ("block_index", "ldpc_ok", "ldpc_iterations")})
        # Images older than this one are finished: in-order links do not bring their blocks back.
        for other in [i for i in self.pending if _older(i, blk_id)]:
            events.append(self._finish(other, "blocks missing when a newer image arrived", now))
        q = self.pending[blk_id]
        if len(q.parts) + len(q.failed) == q.count:  # every block is in or known failed
            events.append(self._finish(blk_id, now=now))
        while len(self.pending) > self.max_images:
            oldest = min(self.pending, key=lambda i: self.pending[i].last_seen)
            events.append(self._finish(oldest, "too many images in flight", now))
        return events + self.expire(now)

    def expire(self, now: float | None = None) -> list[dict]:
        """Finish images that have seen no block for ``timeout`` seconds (frees their memory)."""
        now = time.monotonic() if now is None else now
        old = [i for i, p in self.pending.items() if now - p.last_seen >= self.timeout]
        return [self._finish(i, f"timed out after {self.timeout:g} s", now) for i in old]

    def flush(self) -> list[dict]:
        return [self._finish(i, "stream ended") for i in list(self.pending)]


def _event(image_id: int, p: _Pending, reason: str = "") -> dict:
    missing = [i for i in range(p.count) if i not in p.parts and i not in p.failed]
    complete = len(p.parts) == p.count
    data = b"".join(p.parts[i] for i in range(p.count)) if complete else b""
    rec = {"image_id": image_id, "status": "complete" if complete else "incomplete", "data": data,
           "blocks": p.count, "received": len(p.parts), "missing": missing, "failed": sorted(p.failed),
           "meta": p.meta}
    if not complete:
        rec["reason"] = reason or f"{len(p.failed)} failed and {len(missing)} missing of {p.count} blocks"
        rec["parts"] = dict(p.parts)  # the CRC-checked blocks that did arrive, for a partial decode
    return rec


def checked_int(value, lo: int, hi: int) -> int | None:
    """An integer from untrusted metadata within [lo, hi], else None (bools and floats are not integers)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        return None
    return int(value)


def _valid_hint(hint) -> tuple[int, int, int] | None:
    """(image_id, block_index, block_count) from a failed block's metadata, if they make sense."""
    if not isinstance(hint, dict):
        return None
    iid = checked_int(hint.get("image_id"), 0, 0xFFFF)
    cnt = checked_int(hint.get("block_count"), 1, MAX_BLOCKS)
    idx = checked_int(hint.get("block_index"), 0, (cnt or 1) - 1)
    return None if None in (iid, idx, cnt) else (iid, idx, cnt)


def _older(a: int, b: int) -> bool:
    """16-bit sequence comparison: a comes before b (wraps around)."""
    return a != b and ((b - a) & 0xFFFF) < 0x8000


def partial_stream(parts: dict, count: int, capacity: int) -> bytes:
    """An incomplete image's stream: the blocks that arrived in place, each lost block as
    ``capacity`` zero bytes (every block but the last is full), for a decoder told which."""
    return b"".join(parts.get(i, bytes(capacity)) for i in range(count))


def handoff(event: dict, capacity: int) -> tuple[dict, bytes]:
    """A finished image as the Deframer hands it on: (metadata, payload). An incomplete image
    that has blocks carries them in place (lost ones as zeros) with the loss map (``lost``,
    ``block_bytes``), so a sliced stream can be decoded in part; never a corrupted bit."""
    ev = dict(event)
    meta = dict(ev.pop("meta"))
    meta.pop("block_count", None)
    data = ev.pop("data")
    parts = ev.pop("parts", None)
    if parts:
        data = partial_stream(parts, ev["blocks"], capacity)
        ev.update(lost=sorted(set(ev["failed"]) | set(ev["missing"])), block_bytes=capacity)
    meta.update(ev)
    return meta, data
