"""Forward error correction: 5G NR LDPC (TS 38.212) and alist-defined LDPC codes."""

from .code import AlistError, LdpcCode, alist_code, make_code, nr_code, read_alist
from .decoder import ALGORITHMS, DecodeResult, LdpcDecoder
from .encoder import encode, encode_vars
from .repetition import MAX_REPEAT, check_repeat, codewords_sent, combine, repeat

__all__ = ["ALGORITHMS", "MAX_REPEAT", "AlistError", "DecodeResult", "LdpcCode", "LdpcDecoder", "alist_code",
           "check_repeat", "codewords_sent", "combine", "encode", "encode_vars", "make_code", "nr_code", "read_alist",
           "repeat"]
