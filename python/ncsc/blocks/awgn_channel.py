"""NCSC AWGN Channel: adds seeded complex Gaussian noise to a symbol PDU at a stated Eb/N0 or Es/N0.

Writes ``noise_var``, ``esn0_db`` and ``snr_type`` into the metadata so that the soft
demapper downstream scales its LLRs correctly.
"""

from __future__ import annotations

import numpy as np

from ..channel import AwgnChannel
from ..profiles import link_profile
from .pdu import PduBlock, PduError


class awgn_channel(PduBlock):  # noqa: N801
    in_dtype = "complex64"

    def __init__(self, snr_db: float = 3.0, snr_type: str | None = None, bits_per_symbol: int | None = None,
                 code_rate: float | None = None, seed: int = 0, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_awgn_channel")
        prof = link_profile(profile)
        self.channel = AwgnChannel(snr_db, snr_type or prof.snr_type, bits_per_symbol or prof.bits_per_symbol,
                                   code_rate or prof.code_rate, seed=seed if seed >= 0 else None)

    def set_snr_db(self, snr_db: float) -> None:
        self.channel.set_snr(snr_db)

    def process(self, meta, data):
        if data.size == 0:
            raise PduError("empty symbol vector")
        if not np.all(np.isfinite(data)):
            raise PduError("symbols contain NaN or infinite values")
        meta.update(noise_var=self.channel.noise_var, esn0_db=self.channel.esn0_db,
                    snr_db=self.channel.snr_db, snr_type=self.channel.snr_type)
        return meta, self.channel(data)
