"""NCSC Burst Modulator: LDPC code bits (u8 PDU, one codeword) -> one burst of complex samples (c32 PDU).

Each burst is followed by ``guard`` zero samples (ramp-down, room for receiver windows). A
codeword repeated by the LDPC encoder (``ldpc_repeat: r``) goes out as r bursts, one copy
each, its header's code_id saying which copy of how many it is (``phy.copies``): Burst RX
adds the copies' LLRs before the LDPC decoder.

Preamble, robust header, pilots, the payload in QAM, RRC pulses (see ``gnuradio.ncsc.phy``).
"""

from __future__ import annotations

import numpy as np
import pmt

from ..fec import check_repeat
from ..modulation import bits_per_symbol
from ..phy import BurstTx, copy_id
from ..profiles import DEFAULT_OTA_PROFILE, link_profile
from .pdu import PORT_OUT, PduBlock, PduError, to_pdu


class burst_modulator(PduBlock):  # noqa: N801
    def __init__(self, sps: int | None = None, rolloff: float | None = None, modulation: str | None = None,
                 amplitude: float | None = None, guard: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default ota-16qam)."""
        PduBlock.__init__(self, "ncsc_burst_modulator")
        prof = link_profile(profile, DEFAULT_OTA_PROFILE)
        b = prof.burst
        sps, modulation = sps or b.sps, modulation or prof.modulation
        rolloff = b.rolloff if rolloff is None else rolloff
        amplitude = b.amplitude if amplitude is None else amplitude
        guard = b.guard if guard is None else guard
        if int(sps) < 2:
            raise ValueError("sps must be at least 2")
        self.tx = BurstTx(int(sps), float(rolloff), modulation)
        self.bps = bits_per_symbol(modulation)
        self.amplitude = float(amplitude)
        self.guard = max(0, int(guard))

    def set_amplitude(self, amplitude: float | None) -> None:
        if amplitude is not None:  # None: the profile's, set at construction
            self.amplitude = float(amplitude)

    def process(self, meta, data):
        if data.size == 0 or data.size % self.bps:
            raise PduError(f"expected a multiple of {self.bps} code bits, got {data.size}")
        if data.max() > 1:
            raise PduError("code bits must be 0 or 1")
        try:
            r = check_repeat(meta.pop("ldpc_repeat", 1))
        except ValueError as exc:
            raise PduError(str(exc)) from exc
        if data.size % (r * self.bps):
            raise PduError(f"{data.size} code bits are not {r} copies of a codeword")
        for j, copy in enumerate(data.reshape(r, -1)):
            samples = np.concatenate([self.tx.burst(copy, copy_id(r, j)) * self.amplitude,
                                      np.zeros(self.guard, np.complex64)])
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(dict(meta, burst_samples=int(samples.size)),
                                                               samples.astype(np.complex64)))
        return None
