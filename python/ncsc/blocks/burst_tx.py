"""NCSC Burst TX (hier block): information blocks (PDUs) -> LDPC -> bursts -> tagged sample stream.

Output: complex samples at ``sps`` per symbol, one burst per codeword, each tagged with
``packet_len`` (its length) and UHD's ``tx_sob`` / ``tx_eob``. UHD sinks send each
burst as one packet (set the sink's TSB tag name to packet_len, or rely on sob/eob);
osmocom / Soapy sinks ignore the tags and send zeros between bursts.
"""

from __future__ import annotations

from gnuradio import gr, pdu

from ..profiles import DEFAULT_OTA_PROFILE, load_profile
from ._stream import sob_eob_tagger
from .burst_modulator import burst_modulator
from .ldpc_encoder import ldpc_encoder
from .pdu import PORT_IN


class burst_tx(gr.hier_block2):  # noqa: N801
    def __init__(self, k: int | None = None, n: int | None = None, sps: int | None = None,
                 rolloff: float | None = None, modulation: str | None = None, amplitude: float | None = None,
                 guard: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default ota-16qam)."""
        gr.hier_block2.__init__(self, "ncsc_burst_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        prof = self.profile = load_profile(profile or DEFAULT_OTA_PROFILE)
        self.message_port_register_hier_in(PORT_IN)
        self.encoder = ldpc_encoder(k or prof.k, n or prof.n)
        self.modulator = burst_modulator(sps, rolloff, modulation, amplitude, guard, profile=prof)
        self.to_stream = pdu.pdu_to_tagged_stream(gr.types.complex_t, "packet_len")
        self.to_stream.set_min_output_buffer(1 << 16)  # a whole burst must fit: it is emitted at once
        self.tagger = sob_eob_tagger("packet_len")
        self.msg_connect(self, PORT_IN, self.encoder, "in")
        self.msg_connect(self.encoder, "out", self.modulator, "in")
        self.msg_connect(self.modulator, "out", self.to_stream, "pdus")
        self.connect(self.to_stream, self.tagger, self)

    def set_amplitude(self, amplitude: float | None) -> None:
        self.modulator.set_amplitude(amplitude)

