"""Repeated codewords over the air: which copy a burst is, and adding the copies' LLRs.

A codeword the link repeats (``fec.repetition``: a sliced image's head) goes out as one burst
per copy, each an ordinary burst of the code's length, whose header's ``code_id`` says
"copy j of r". The receiver holds the copies of one codeword as they arrive and hands the
LDPC decoder their LLR sum once the last copy is in, or as soon as anything else arrives
(a copy was lost: what came is summed). Bursts of code_id 0 are plain codewords, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_COPIES = 4  # fec.repetition.MAX_REPEAT


def copy_id(r: int, j: int) -> int:
    """code_id of copy j (0-based) of a codeword sent r times (r = 1: 0, a plain burst)."""
    if not 1 <= r <= MAX_COPIES or not 0 <= j < r:
        raise ValueError(f"copy {j} of {r}: r must be 1..{MAX_COPIES} and 0 <= j < r")
    return 0 if r == 1 else 0x80 | (r - 1) << 4 | j


def parse_copy(code_id: int) -> tuple[int, int] | None:
    """(r, j) from a header's code_id; (1, 0) for a plain burst; None for an id this receiver
    does not know (the burst is then not trusted to be one of ours)."""
    if code_id == 0:
        return 1, 0
    r, j = ((code_id >> 4) & 0x7) + 1, code_id & 0xF
    if code_id & 0x80 and 2 <= r <= MAX_COPIES and j < r:
        return r, j
    return None


@dataclass
class CopyCombiner:
    """Collects the copies of one repeated codeword; ``add`` returns what is ready to decode,
    as (info of the first copy, summed LLRs, copies summed) tuples."""

    _r: int = 0
    _seen: set = field(default_factory=set)
    _info: dict | None = None
    _llr: np.ndarray | None = None

    def add(self, info: dict, llr: np.ndarray, code_id: int) -> list[tuple[dict, np.ndarray, int]]:
        parsed = parse_copy(code_id)
        r, j = parsed if parsed is not None else (1, 0)
        out = []
        if self._llr is not None and (r != self._r or j in self._seen or llr.size != self._llr.size):
            out += self.flush()  # another codeword began: the one held lost a copy
        if r == 1:
            return out + [(info, llr, 1)]
        if self._llr is None:
            self._r, self._info, self._llr = r, dict(info), np.array(llr, np.float32)
        else:
            self._llr += llr
        self._seen.add(j)
        if len(self._seen) == r:
            out += self.flush()
        return out

    def flush(self) -> list[tuple[dict, np.ndarray, int]]:
        """The codeword held, summed over the copies that came (none held: nothing)."""
        if self._llr is None:
            return []
        out = [(self._info, self._llr, len(self._seen))]
        self._r, self._seen, self._info, self._llr = 0, set(), None, None
        return out
