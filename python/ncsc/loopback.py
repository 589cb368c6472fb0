"""The loopback flowgraph, written by hand: image source -> framer -> LDPC -> 16-QAM -> AWGN ->
soft demapper -> LDPC decoder -> deframer -> decoder sink, all over PDUs.

Used by ``examples/loopback_awgn.py`` and the tests; ``ncsc.link.PlainLink`` is the same chain as
plain modules (the benchmarks use it; a test checks both give the same records).
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
from .profiles import load_profile
from .samples import default_image

__all__ = ["LoopbackAwgn", "default_image"]

class LoopbackAwgn(gr.top_block):
    """The link of ``profile`` (default: the paper's); ``snr_type``, ``model``, ``modulation`` and
    ``max_iter`` override the profile's when given."""

    def __init__(self, images: str, snr_db: float = 3.0, snr_type: str | None = None, model: str | None = None,
                 seed: int = 0, out_dir: str = "", modulation: str | None = None, max_iter: int | None = None,
                 repeat: bool = False, codec=None, deframe_timeout: float = 5.0, profile=None):
        gr.top_block.__init__(self, "NCSC loopback over AWGN")
        self.profile = prof = load_profile(profile)
        k, n = prof.k, prof.n
        modulation = modulation or prof.modulation
        snr_type = snr_type or prof.snr_type
        model = model or prof.model
        bps = bits_per_symbol(modulation)
        self.source = image_source(images, model, repeat, 0.0, 0, codec=codec, profile=prof)
        self.framer = framer(k, profile=prof)
        self.encoder = ldpc_encoder(k, n, profile=prof)
        self.mapper = qam_mapper(modulation, profile=prof)
        self.channel = awgn_channel(snr_db, snr_type, bps, k / n, seed, profile=prof)
        self.demapper = soft_demapper(modulation, self.channel.channel.noise_var, prof.demapper, profile=prof)
        self.decoder = ldpc_decoder(k, n, "", prof.algorithm, max_iter or prof.max_iter, profile=prof)
        self.deframer = deframer(k, deframe_timeout, profile=prof)
        self.sink = decoder_sink(out_dir, bps, k / n, codec=codec, profile=prof)
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
