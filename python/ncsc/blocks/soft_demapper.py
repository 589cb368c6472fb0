"""NCSC Soft Demapper: QAM symbols (c32 PDU) to bit LLRs log P(1)/P(0) (f32 PDU).

The noise variance comes from the PDU's ``noise_var`` when present (the channel or a
receiver's estimate sets it), else from the block parameter.
"""

from __future__ import annotations

import numpy as np

from ..modulation import bits_per_symbol, demodulate
from ..profiles import link_profile
from .pdu import PduBlock, PduError


class soft_demapper(PduBlock):  # noqa: N801
    in_dtype = "complex64"

    def __init__(self, modulation: str | None = None, noise_var: float = 0.1, method: str | None = None,
                 profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_soft_demapper")
        prof = link_profile(profile)
        modulation = modulation or prof.modulation
        bits_per_symbol(modulation)
        self.modulation = modulation
        self.method = method or prof.demapper
        self.set_noise_var(noise_var)

    def warm_up(self) -> None:
        """The demapper's kernel, on a few symbols."""
        demodulate(np.zeros(4, np.complex64), 1.0, self.modulation, self.method)

    def set_noise_var(self, noise_var: float) -> None:
        if not float(noise_var) > 0:
            raise ValueError(f"noise variance must be positive, got {noise_var}")
        self.noise_var = float(noise_var)

    def process(self, meta, data):
        if data.size == 0:
            raise PduError("empty symbol vector")
        nv = float(meta.get("noise_var", self.noise_var))
        try:
            llr = demodulate(data, nv, self.modulation, self.method)
        except ValueError as exc:
            raise PduError(str(exc)) from exc
        return meta, llr
