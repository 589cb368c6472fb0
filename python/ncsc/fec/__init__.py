"""Forward error correction: 5G NR LDPC (TS 38.212) and alist-defined LDPC codes."""

from .code import AlistError, LdpcCode, alist_code, make_code, nr_code, read_alist
from .decoder import ALGORITHMS, DecodeResult, LdpcDecoder
from .encoder import encode, encode_vars

__all__ = ["ALGORITHMS", "AlistError", "DecodeResult", "LdpcCode", "LdpcDecoder", "alist_code", "encode",
           "encode_vars", "make_code", "nr_code", "read_alist"]
