"""NCSC LDPC Encoder: information bits (u8 PDU, one bit per byte, a multiple of k) to codeword bits."""

from __future__ import annotations

from ..fec import encode, make_code
from .pdu import PduBlock, PduError


class ldpc_encoder(PduBlock):  # noqa: N801 - GNU Radio block naming
    def __init__(self, k: int = 1536, n: int = 4608, alist: str = ""):
        PduBlock.__init__(self, "ncsc_ldpc_encoder")
        self.code = make_code(k, n, alist)

    def process(self, meta, data):
        k = self.code.k
        if data.size == 0 or data.size % k:
            raise PduError(f"expected a multiple of k={k} bits, got {data.size}")
        try:
            cw = encode(self.code, data.reshape(-1, k))
        except ValueError as exc:
            raise PduError(str(exc)) from exc
        meta.update(codewords=int(cw.shape[0]), ldpc_k=k, ldpc_n=self.code.n)
        return meta, cw.ravel()
