"""NCSC QAM Mapper: bits (u8 PDU, one bit per byte) to Gray QAM symbols (c32 PDU), TS 38.211."""

from __future__ import annotations

import numpy as np

from ..modulation import bits_per_symbol, modulate
from ..profiles import link_profile
from .pdu import PduBlock, PduError


class qam_mapper(PduBlock):  # noqa: N801
    def __init__(self, modulation: str | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_qam_mapper")
        modulation = modulation or link_profile(profile).modulation
        self.modulation = modulation
        self.bps = bits_per_symbol(modulation)

    def process(self, meta, data):
        if data.size == 0 or data.size % self.bps:
            raise PduError(f"{self.modulation} needs a multiple of {self.bps} bits, got {data.size}")
        try:
            sym = modulate(data, self.modulation)
        except ValueError as exc:
            raise PduError(str(exc)) from exc
        meta["modulation"] = self.modulation
        return meta, sym.astype(np.complex64)
