"""5G NR LDPC code construction per 3GPP TS 38.212 (sections 5.2.2, 5.3.2, 5.4.2).

The base graphs are read from the CSV tables shipped in ``data/`` (copies of
TS 38.212 Tables 5.3.2-2 and 5.3.2-3). Everything else (base-graph choice,
lifting size, filler bits, puncturing of the first 2Z systematic bits, circular
buffer rate matching with redundancy versions) follows the standard's text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: TS 38.212 Table 5.3.2-1: lifting sizes Z = a * 2**j, grouped by set index i_LS.
_LS_BASE = (2, 3, 5, 7, 9, 11, 13, 15)
Z_MAX = 384
DATA_DIR = Path(__file__).resolve().parent / "data"


def lifting_sizes() -> dict[int, int]:
    """Map each allowed lifting size Z to its set index i_LS."""
    out = {}
    for i_ls, a in enumerate(_LS_BASE):
        z = a
        while z <= Z_MAX:
            out[z] = i_ls
            z *= 2
    return dict(sorted(out.items()))


@functools.lru_cache(maxsize=2)
def base_graph(bg: int) -> np.ndarray:
    """Return the base graph as an int array (rows, cols, 8) of shifts, -1 where empty."""
    if bg not in (1, 2):
        raise ValueError(f"base graph must be 1 or 2, got {bg!r}")
    shape = (46, 68) if bg == 1 else (42, 52)
    table = np.full(shape + (8,), -1, dtype=np.int32)
    text = (DATA_DIR / f"5G_bg{bg}.csv").read_text()
    row = -1
    for line in text.splitlines()[2:]:
        fields = line.split(";")
        if len(fields) < 10 or not fields[1].strip():
            continue
        if fields[0].strip():
            row = int(fields[0])
        col = int(fields[1])
        table[row, col] = [int(v) for v in fields[2:10]]
    return table


def select_base_graph(k: int, n: int) -> int:
    """TS 38.212 5.2.2 / 7.2.2 base-graph choice, with k standing in for the payload size A."""
    rate = k / n
    if k <= 292 or (k <= 3824 and rate <= 0.67) or rate <= 0.25:
        return 2
    return 1


@dataclass(frozen=True)
class NrParams:
    """Derived parameters of one 5G NR LDPC configuration."""

    k: int
    n: int
    bg: int
    z: int
    i_ls: int
    k_b: int
    rv: int = 0

    @property
    def sys_cols(self) -> int:
        """Systematic base columns (22 for BG1, 10 for BG2)."""
        return 22 if self.bg == 1 else 10

    @property
    def k_ldpc(self) -> int:
        return self.sys_cols * self.z

    @property
    def n_filler(self) -> int:
        return self.k_ldpc - self.k

    @property
    def n_cb(self) -> int:
        """Circular buffer length N (no limited-buffer rate matching)."""
        return (66 if self.bg == 1 else 50) * self.z

    @property
    def k0(self) -> int:
        """Start of redundancy version rv in the circular buffer (TS 38.212 Table 5.4.2.1-2)."""
        num = {1: (0, 17, 33, 56), 2: (0, 13, 25, 43)}[self.bg][self.rv]
        den = 66 if self.bg == 1 else 50
        return (num * self.n_cb // (den * self.z)) * self.z


def nr_params(k: int, n: int, bg: int | None = None, rv: int = 0) -> NrParams:
    """Derive (BG, Z, i_LS, K_b) for a code block of k bits sent as n bits."""
    if k <= 0 or n <= 0:
        raise ValueError(f"k and n must be positive, got k={k}, n={n}")
    bg = select_base_graph(k, n) if bg is None else bg
    if bg == 1:
        if k > 8448:
            raise ValueError(f"k={k} exceeds the BG1 maximum code block size 8448")
        k_b = 22
    else:
        if k > 3840:
            raise ValueError(f"k={k} exceeds the BG2 maximum code block size 3840")
        k_b = 10 if k > 640 else 9 if k > 560 else 8 if k > 192 else 6
    sizes = lifting_sizes()
    z = min(zz for zz in sizes if k_b * zz >= k)
    if rv not in (0, 1, 2, 3):
        raise ValueError(f"redundancy version must be 0..3, got {rv}")
    p = NrParams(k=k, n=n, bg=bg, z=z, i_ls=sizes[z], k_b=k_b, rv=rv)
    if n < k - 2 * z:
        raise ValueError(f"n={n} is too short for k={k} (BG{bg}, Z={z})")
    return p


def rate_match_indices(p: NrParams) -> np.ndarray:
    """Positions in the full lifted codeword of each of the n sent bits (bit selection, 5.4.2.1).

    Bits wrap around the circular buffer when n exceeds it, so a position can repeat;
    filler positions are skipped. The first 2Z columns are punctured (never in the buffer).
    """
    two_z = 2 * p.z
    filler = np.zeros(p.n_cb, dtype=bool)
    filler[p.k - two_z : p.k_ldpc - two_z] = True
    valid = np.flatnonzero(~filler)
    start = np.searchsorted(valid, p.k0)
    order = np.concatenate([valid[start:], valid[:start]])
    reps = -(-p.n // order.size)
    return np.tile(order, reps)[: p.n].astype(np.int64) + two_z


def lifted_rows(p: NrParams) -> int:
    """Base rows needed: the 4 core rows plus one per extension column that carries sent bits."""
    idx = rate_match_indices(p)
    last_col = int(idx.max()) // p.z
    return max(4, last_col - p.sys_cols + 1)
