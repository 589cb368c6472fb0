"""Repetition rate matching: a codeword sent r times, its LLRs added before decoding.

5G NR's rate matching reads a codeword's circular buffer past its end when more bits are to be
sent than it has (TS 38.212 5.4.2.1), and the receiver adds the LLRs of the repeated bits: a
code rate of 1/(3r) here, r times the channel symbols and 10 log10(r) dB more SNR for the
blocks that need it most (a sliced image's head). A plain second copy of a block only gives
a second chance; adding the copies' LLRs gives the decoder the SNR of both.
"""

from __future__ import annotations

import numpy as np

MAX_REPEAT = 4


def check_repeat(value) -> int:
    """A repetition factor from metadata (untrusted): an int in 1..MAX_REPEAT, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= int(value) <= MAX_REPEAT:
        raise ValueError(f"repetition factor must be an integer in 1..{MAX_REPEAT}, got {value!r}")
    return int(value)


def repeat(codeword: np.ndarray, r: int) -> np.ndarray:
    """One codeword's bits (n,) as sent with repetition r: (r * n,)."""
    return np.tile(np.asarray(codeword).ravel(), check_repeat(r))


def codewords_sent(n_blocks: int, protected: int, r: int) -> int:
    """Codewords on the channel for ``n_blocks`` blocks whose first ``protected`` go r times."""
    return n_blocks + min(max(protected, 0), n_blocks) * (check_repeat(r) - 1)


def combine(llr: np.ndarray, n: int, r: int) -> np.ndarray:
    """The r received copies of one codeword's LLRs (r * n,) added: (n,)."""
    llr = np.asarray(llr, np.float32).ravel()
    if llr.size != check_repeat(r) * n:
        raise ValueError(f"expected {r} x {n} LLRs for a repeated codeword, got {llr.size}")
    return llr.reshape(r, n).sum(axis=0, dtype=np.float32)
