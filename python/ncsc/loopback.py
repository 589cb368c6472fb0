"""The loopback flowgraph, written by hand: image source -> framer -> LDPC -> 16-QAM -> AWGN ->
soft demapper -> LDPC decoder -> deframer -> decoder sink, all over PDUs.

Used by ``examples/loopback_awgn.py``, the tests and the Table I benchmark.
"""

from __future__ import annotations

import time

from gnuradio import gr

from .blocks.awgn_channel import awgn_channel
from .blocks.decoder_sink import decoder_sink
from .blocks.deframer import deframer
from .blocks.framer import framer
from .blocks.image_source import image_source
from .blocks.ldpc_decoder import ldpc_decoder
from .blocks.ldpc_encoder import ldpc_encoder
from .blocks.qam_mapper import qam_mapper
from .blocks.soft_demapper import soft_demapper
from .modulation import bits_per_symbol
from .samples import default_image

__all__ = ["LoopbackAwgn", "default_image"]

K, N = 1536, 4608


class LoopbackAwgn(gr.top_block):
    def __init__(self, images: str, snr_db: float = 3.0, snr_type: str = "ebn0", model: str = "mse",
                 seed: int = 0, out_dir: str = "", modulation: str = "16qam", max_iter: int = 50,
                 repeat: bool = False, codec=None, deframe_timeout: float = 5.0):
        gr.top_block.__init__(self, "NCSC loopback over AWGN")
        bps = bits_per_symbol(modulation)
        self.source = image_source(images, model, repeat, 0.0, 0, codec=codec)
        self.framer = framer(K)
        self.encoder = ldpc_encoder(K, N)
        self.mapper = qam_mapper(modulation)
        self.channel = awgn_channel(snr_db, snr_type, bps, K / N, seed)
        self.demapper = soft_demapper(modulation, self.channel.channel.noise_var)
        self.decoder = ldpc_decoder(K, N, "", "sum-product", max_iter)
        self.deframer = deframer(K, deframe_timeout)
        self.sink = decoder_sink(out_dir, bps, K / N, codec=codec)
        chain = [self.source, self.framer, self.encoder, self.mapper, self.channel, self.demapper, self.decoder,
                 self.deframer, self.sink]
        for a, b in zip(chain, chain[1:], strict=False):
            self.msg_connect(a, "out", b, "in")

    def run_until_done(self, timeout: float = 600.0) -> list[dict]:
        """Start, wait until every encoded image has a record (or timeout), stop; return the records."""
        self.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.source.finished.is_set() and len(self.sink.records) >= self.source.sent:
                break
            self.sink.record_event.wait(0.05)
            self.sink.record_event.clear()
        self.stop()
        self.wait()
        return list(self.sink.records)
