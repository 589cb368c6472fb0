"""NCSC LDPC Decoder: LLRs (f32 PDU, log P(1)/P(0), a multiple of n) to information bits.

Adds per-codeword results to the metadata: ``ldpc_ok``, ``ldpc_iterations`` and
``codeword_errors`` (codewords whose syndrome is not zero after the last iteration). A PDU
whose metadata says ``ldpc_repeat: r`` holds r copies of one codeword: their LLRs are added
before decoding.
"""

from __future__ import annotations

from ..fec import LdpcDecoder, check_repeat, combine, make_code
from ..profiles import link_profile
from .pdu import PduBlock, PduError


def decode_pdu(decoder: LdpcDecoder, meta: dict, data):
    """One LLR PDU's (meta, information bits): copies of a repeated codeword (``ldpc_repeat``)
    added, the decoder's results in the metadata. Shared by this block and Burst RX, which
    decodes on its own thread (no PDU hop, no thread hand-over per burst)."""
    n = decoder.code.n
    if data.size == 0 or data.size % n:
        raise PduError(f"expected a multiple of n={n} LLRs, got {data.size}")
    try:
        r = check_repeat(meta.get("ldpc_repeat", 1))
        if r > 1:
            data = combine(data, n, r)
        res = decoder.decode(data.reshape(-1, n))
    except ValueError as exc:
        raise PduError(str(exc)) from exc
    meta.update(ldpc_ok=[bool(v) for v in res.ok], ldpc_iterations=[int(v) for v in res.iterations],
                codeword_errors=res.n_failed, codewords=int(res.ok.size))
    return meta, res.bits.ravel()


class ldpc_decoder(PduBlock):  # noqa: N801
    in_dtype = "float32"

    def __init__(self, k: int | None = None, n: int | None = None, alist: str = "", algorithm: str | None = None,
                 max_iter: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_ldpc_decoder")
        prof = link_profile(profile)
        self.decoder = LdpcDecoder(make_code(k or prof.k, n or prof.n, alist), algorithm=algorithm or prof.algorithm,
                                   max_iter=max_iter or prof.max_iter)

    def warm_up(self) -> None:
        self.decoder.warm_up()

    def set_max_iter(self, max_iter: int | None) -> None:
        if max_iter is None:  # the profile's, set at construction
            return
        if int(max_iter) < 1:
            raise ValueError("max_iter must be >= 1")
        self.decoder.max_iter = int(max_iter)

    def process(self, meta, data):
        return decode_pdu(self.decoder, meta, data)
