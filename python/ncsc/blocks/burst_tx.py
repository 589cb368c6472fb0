"""NCSC Burst TX (hier block): information blocks (PDUs) -> LDPC -> bursts -> tagged sample stream.

Output: complex samples at ``sps`` per symbol, one burst per codeword, each tagged with
``packet_len`` (its length) and UHD's ``tx_sob`` / ``tx_eob``. UHD sinks send each
burst as one packet (set the sink's TSB tag name to packet_len, or rely on sob/eob);
osmocom / Soapy sinks ignore the tags and send zeros between bursts.
"""

from __future__ import annotations

from gnuradio import gr, pdu

from ._stream import sob_eob_tagger
from .burst_modulator import burst_modulator
from .ldpc_encoder import ldpc_encoder
from .pdu import PORT_IN


class burst_tx(gr.hier_block2):  # noqa: N801
    def __init__(self, k: int = 1536, n: int = 4608, sps: int = 4, rolloff: float = 0.35,
                 modulation: str = "16qam", amplitude: float = 0.5, guard: int = 256):
        gr.hier_block2.__init__(self, "ncsc_burst_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.message_port_register_hier_in(PORT_IN)
        self.encoder = ldpc_encoder(k, n)
        self.modulator = burst_modulator(sps, rolloff, modulation, amplitude, guard)
        self.to_stream = pdu.pdu_to_tagged_stream(gr.types.complex_t, "packet_len")
        self.to_stream.set_min_output_buffer(1 << 16)  # a whole burst must fit: it is emitted at once
        self.tagger = sob_eob_tagger("packet_len")
        self.msg_connect(self, PORT_IN, self.encoder, "in")
        self.msg_connect(self.encoder, "out", self.modulator, "in")
        self.msg_connect(self.modulator, "out", self.to_stream, "pdus")
        self.connect(self.to_stream, self.tagger, self)

    def set_amplitude(self, amplitude: float) -> None:
        self.modulator.set_amplitude(amplitude)

