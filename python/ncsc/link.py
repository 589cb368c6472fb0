"""The plain link pipeline: frame -> LDPC encode -> map -> AWGN -> demap -> LDPC decode -> reassemble.

The loopback flowgraph's chain as plain modules, built from a link profile: the benchmarks
(``bench.link``, ``bench.table1``) run it for many streams and SNRs, and the tests check that
it gives the flowgraph's records for the same seed (each block through the channel in turn,
as the flowgraph's PDUs go, so the noise draws are the same).
"""

from __future__ import annotations

import numpy as np

from .channel import AwgnChannel
from .fec import LdpcDecoder, codewords_sent, combine, encode, make_code, repeat
from .framing import Framer, Reassembler, checked_int, handoff
from .modulation import bits_per_symbol, demodulate, modulate
from .profiles import link_profile

__all__ = ["PlainLink"]


class PlainLink:
    """The link of ``profile`` (default: the paper's) at ``snr_db``; ``snr_type``, ``modulation``
    and ``max_iter`` override the profile's when given."""

    def __init__(self, snr_db: float = 3.0, profile=None, snr_type: str | None = None,
                 modulation: str | None = None, max_iter: int | None = None, seed: int | None = 0):
        prof = self.profile = link_profile(profile)
        self.k, self.n = prof.k, prof.n
        self.modulation = modulation or prof.modulation
        self.demapper = prof.demapper
        self.code = make_code(self.k, self.n)
        self.framer = Framer(self.k)
        self.channel = AwgnChannel(snr_db, snr_type or prof.snr_type, bits_per_symbol(self.modulation),
                                   self.k / self.n, seed=seed)
        self.decoder = LdpcDecoder(self.code, algorithm=prof.algorithm, max_iter=max_iter or prof.max_iter)

    def llrs(self, info_bits: np.ndarray, protect: int = 0) -> np.ndarray:
        """Information blocks (rows of k bits) -> channel LLRs (rows of n), one block after the other
        through the channel and the demapper, as the flowgraph's PDUs go. The first ``protect``
        blocks go ``profile.head_repeat`` times, their copies' LLRs added (as the LDPC blocks do)."""
        rows = []
        r = self.profile.head_repeat
        for i, cw in enumerate(encode(self.code, np.atleast_2d(info_bits))):
            reps = r if i < protect and r > 1 else 1
            rx = self.channel(modulate(repeat(cw, reps), self.modulation))
            llr = demodulate(rx, self.channel.noise_var, self.modulation, self.demapper)
            rows.append(combine(llr, self.n, reps) if reps > 1 else llr)
        return np.stack(rows)

    def transmit(self, info_bits: np.ndarray, protect: int = 0):
        """Information blocks -> the LDPC decoder's result (bits, ok, iterations)."""
        return self.decoder.decode(self.llrs(info_bits, protect))

    def codewords_sent(self, n_blocks: int, protect: int = 0) -> int:
        """Codewords on the channel for an image of ``n_blocks`` blocks (repeated ones counted)."""
        return codewords_sent(n_blocks, protect, self.profile.head_repeat)

    def send(self, meta: dict, data: bytes) -> tuple[dict, bytes]:
        """One image's bitstream (and its metadata) across the link: what the deframer hands the
        decoder sink, i.e. the reassembled bytes (empty when a block failed) and the image's
        metadata with its status and the failed and missing block indices."""
        image_id = int(meta["image_id"]) & 0xFFFF
        blocks = self.framer.frame(image_id, bytes(data))
        res = self.transmit(blocks, checked_int(meta.get("head_blocks"), 0, 0xFFFF) or 0)
        hint = dict(meta, block_count=int(blocks.shape[0]), ldpc_k=self.k, codewords=1, ldpc_n=self.n)
        reasm = Reassembler()
        events = []
        for i, bits in enumerate(res.bits):
            events += reasm.add(bits, dict(hint, block_index=i))
        events += reasm.flush()
        return handoff(events[0], self.framer.capacity)  # as the Deframer hands it on
