"""NCSC Framer: an image PDU (bitstream bytes) -> one PDU per LDPC information block (k bits).

Each block carries a header (image id, block index, block count, payload length) and a
CRC-32, scrambled; the metadata gains block_index and block_count. When the profile repeats
a sliced image's head (``ldpc.head_repeat``), the image's first ``head_blocks`` blocks also
get ``ldpc_repeat``: the LDPC encoder sends their codewords that many times and the decoder
adds their LLRs.
"""

from __future__ import annotations

import numpy as np
import pmt  # noqa: E402  (after the package imports, as GNU Radio's own blocks do)

from ..framing import Framer, checked_int
from ..profiles import link_profile
from .pdu import PORT_OUT, PduBlock, PduError, to_pdu


class framer(PduBlock):  # noqa: N801
    def __init__(self, k: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_framer")
        prof = link_profile(profile)
        self.framer = Framer(int(k or prof.k))
        self.head_repeat = prof.head_repeat

    def process(self, meta, data):
        if "image_id" not in meta:
            raise PduError("image PDU lacks image_id metadata")
        if data.size == 0:
            raise PduError("empty image bitstream")
        blocks = self.framer.frame(int(meta["image_id"]), data.astype(np.uint8).tobytes())
        protect = (checked_int(meta.get("head_blocks"), 0, 0xFFFF) or 0) if self.head_repeat > 1 else 0
        for i, bits in enumerate(blocks):
            m = dict(meta, block_index=i, block_count=int(blocks.shape[0]), ldpc_k=self.framer.k)
            m.pop("ldpc_repeat", None)  # set here only: never inherited from the image's metadata
            if i < protect:
                m["ldpc_repeat"] = self.head_repeat
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(m, bits))
        return None
