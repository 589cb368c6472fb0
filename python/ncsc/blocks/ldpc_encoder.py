"""NCSC LDPC Encoder: information bits (u8 PDU, one bit per byte, a multiple of k) to codeword bits.

A block whose metadata says ``ldpc_repeat: r`` (one information block) goes out as its
codeword r times (repetition rate matching, see ``fec.repetition``).
"""

from __future__ import annotations

from ..fec import check_repeat, encode, make_code, repeat
from ..profiles import link_profile
from .pdu import PduBlock, PduError


class ldpc_encoder(PduBlock):  # noqa: N801 - GNU Radio block naming
    def __init__(self, k: int | None = None, n: int | None = None, alist: str = "", profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_ldpc_encoder")
        prof = link_profile(profile)
        self.code = make_code(k or prof.k, n or prof.n, alist)

    def process(self, meta, data):
        k = self.code.k
        if data.size == 0 or data.size % k:
            raise PduError(f"expected a multiple of k={k} bits, got {data.size}")
        try:
            r = check_repeat(meta.get("ldpc_repeat", 1))
            if r > 1 and data.size != k:
                raise ValueError(f"a repeated codeword is one information block of k={k} bits, got {data.size}")
            cw = encode(self.code, data.reshape(-1, k))
        except ValueError as exc:
            raise PduError(str(exc)) from exc
        meta.update(codewords=int(cw.shape[0]), ldpc_k=k, ldpc_n=self.code.n)
        return meta, repeat(cw, r) if r > 1 else cw.ravel()
