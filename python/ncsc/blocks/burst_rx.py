"""NCSC Burst RX (hier block): sample stream -> bursts -> LLRs -> LDPC decoder -> information blocks.

Inside: burst detection by Schmidl-Cox correlation on a repeated preamble, fine timing
on the known preamble, coarse and fine carrier-offset correction, a widely linear
equaliser trained on preamble and header (gain, phase, multipath, IQ imbalance, DC),
pilot-based phase tracking over the burst, a per-burst noise-variance estimate that
scales the LLRs, header decoding, soft demapping and layered LDPC decoding. Each output
PDU carries the burst report (burst_start, cfo, cfo_hz, snr_db, noise_var) and the
decoder's (ldpc_ok, ldpc_iterations). The receiver decodes each burst on its own thread,
as the LDPC Decoder block would (the same function), without a PDU hop in between.
"""

from __future__ import annotations

from gnuradio import gr

from ..fec import LdpcDecoder, make_code
from ..profiles import DEFAULT_OTA_PROFILE, load_profile
from ._receiver import PORT_SYMBOLS, burst_receiver
from .pdu import PORT_OUT


class burst_rx(gr.hier_block2):  # noqa: N801
    def __init__(self, k: int | None = None, n: int | None = None, sps: int | None = None,
                 rolloff: float | None = None, samp_rate: float = 0.0, threshold: float | None = None,
                 max_iter: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default ota-16qam).
        The modulation of each burst comes from its header, so it is not a setting here."""
        gr.hier_block2.__init__(self, "ncsc_burst_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        prof = self.profile = load_profile(profile or DEFAULT_OTA_PROFILE)
        k, n = k or prof.k, n or prof.n
        b = prof.burst
        self.message_port_register_hier_out(PORT_OUT)
        self.message_port_register_hier_out(PORT_SYMBOLS)
        self.decoder = LdpcDecoder(make_code(k, n), algorithm=prof.algorithm, max_iter=max_iter or prof.max_iter)
        self.receiver = burst_receiver(sps or b.sps, b.rolloff if rolloff is None else rolloff, samp_rate,
                                       threshold or b.threshold, code_bits=n, decoder=self.decoder)
        self.connect(self, self.receiver)
        self.msg_connect(self.receiver, PORT_OUT, self, PORT_OUT)
        self.msg_connect(self.receiver, PORT_SYMBOLS, self, PORT_SYMBOLS)

    @property
    def reports(self):
        return self.receiver.reports

    def flush(self) -> None:
        self.receiver.flush()
