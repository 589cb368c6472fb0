"""NCSC Deframer: decoded information blocks -> one PDU per image, or a report of what is missing.

Checks each block's CRC, reorders, drops duplicates and reassembles per image. An image
with failed or missing blocks is emitted with ``status: incomplete``, the lists of
``failed`` and ``missing`` block indices and, when any block arrived, the blocks that passed
their CRC with lost ones as zeros and the loss map (``lost``, ``block_bytes``): never a
corrupted bit, and enough for a sliced stream to be decoded in part. Images
that stop receiving blocks are reported after ``timeout`` seconds and their memory freed.
"""

from __future__ import annotations

import threading

import numpy as np
import pmt

from ..framing import Framer, Reassembler, handoff
from ..profiles import link_profile
from ._stream import Ticker
from .pdu import PORT_OUT, PduBlock, PduError, to_pdu


class deframer(PduBlock):  # noqa: N801
    def __init__(self, k: int | None = None, timeout: float = 5.0, profile=None, progressive: int = 0):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn).
        ``progressive``: also hand on an unfinished image every that many new blocks (``interim``
        PDUs: what has arrived so far, for a viewer that shows a sliced picture as it builds up)."""
        PduBlock.__init__(self, "ncsc_deframer")
        self.k = int(k or link_profile(profile).k)
        self.capacity = Framer(self.k).capacity
        self.reasm = Reassembler(timeout=float(timeout))
        self.progressive = max(0, int(progressive))
        self._shown = {}  # image id -> blocks in at its last interim PDU
        self._lock = threading.Lock()
        self._ticker = Ticker(self._tick, 0.25, "ncsc_deframer_timeout")

    def set_timeout(self, timeout: float) -> None:
        self.reasm.timeout = float(timeout)

    def start(self):
        self._ticker.start()
        return PduBlock.start(self)

    def stop(self):
        self._ticker.stop()
        return PduBlock.stop(self)

    def _tick(self):
        with self._lock:
            events = self.reasm.expire()
        self._publish(events)

    def _publish(self, events):
        for ev in events:
            meta, data = handoff(ev, self.capacity)
            if meta["status"] != "complete":
                self.logger.warn(f"image {meta['image_id']}: {meta.get('reason')}")
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(meta, np.frombuffer(data, np.uint8)))

    def process(self, meta, data):
        if data.size == 0 or data.size % self.k:
            raise PduError(f"expected a multiple of k={self.k} bits, got {data.size}")
        blocks = data.reshape(-1, self.k)
        events = []
        with self._lock:
            for j, bits in enumerate(blocks):
                hint = dict(meta)
                if "block_index" in meta:
                    hint["block_index"] = int(meta["block_index"]) + j
                events += self.reasm.add(bits, hint)
            interim = self._interim() if self.progressive else []
        self._publish(events)
        for meta_i, data_i in interim:
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(meta_i, np.frombuffer(data_i, np.uint8)))
        return None

    def _interim(self) -> list[tuple[dict, bytes]]:
        """Unfinished images with ``progressive`` new blocks since their last interim PDU."""
        out = []
        for iid, p in self.reasm.pending.items():
            got = len(p.parts)
            if got and got - self._shown.get(iid, 0) >= self.progressive:
                self._shown[iid] = got
                meta, data = handoff(self.reasm.snapshot(iid, f"arriving: {got} of {p.count} blocks"), self.capacity)
                meta["interim"] = True
                out.append((meta, data))
        for iid in [i for i in self._shown if i not in self.reasm.pending]:
            del self._shown[iid]
        return out
