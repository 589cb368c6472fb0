"""LDPC code objects: one sparse description shared by the encoder and the decoder.

A code is a parity-check matrix in CSR form over ``n_var`` variable nodes, plus maps
from the k information bits and the n sent bits to variable nodes, and the
variables known to be zero (5G NR filler bits). Punctured variables are simply
never sent, so the decoder starts them at LLR 0.

LLR convention everywhere in ncsc: ``log(P(b=1) / P(b=0))``, positive favours 1
(the convention of the reference vectors in ``shared/data/ldpc``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import nr


@dataclass(eq=False)
class LdpcCode:
    """A binary LDPC code ready for the layered decoder and the encoder."""

    name: str
    k: int
    n: int
    n_var: int
    row_ptr: np.ndarray  # int32 (m + 1,)
    col_idx: np.ndarray  # int32 (nnz,)
    info_map: np.ndarray  # int64 (k,): variable index of each information bit
    tx_map: np.ndarray  # int64 (n,): variable index of each sent bit (may repeat)
    zero_vars: np.ndarray  # int64: variables known to be 0 (filler)
    nr: nr.NrParams | None = None
    #: Quasi-cyclic form (z, layer_ptr, entry_col, entry_shift) when the code has one.
    qc: tuple | None = None
    _encoder: object = field(default=None, repr=False)

    @property
    def m(self) -> int:
        return self.row_ptr.size - 1

    @property
    def nnz(self) -> int:
        return self.col_idx.size

    @property
    def rate(self) -> float:
        return self.k / self.n

    def dense_h(self) -> np.ndarray:
        """The parity-check matrix as a dense uint8 array (for tests and small codes)."""
        h = np.zeros((self.m, self.n_var), dtype=np.uint8)
        rows = np.repeat(np.arange(self.m), np.diff(self.row_ptr))
        h[rows, self.col_idx] = 1
        return h

    def syndrome_ok(self, var_bits: np.ndarray) -> np.ndarray:
        """True per word (rows of ``var_bits``) whose syndrome is zero."""
        var_bits = np.atleast_2d(var_bits).astype(np.uint8)
        rows = np.repeat(np.arange(self.m), np.diff(self.row_ptr))
        par = np.zeros((var_bits.shape[0], self.m), dtype=np.uint8)
        np.add.at(par.T, rows, var_bits[:, self.col_idx].T)
        return ~np.any(par & 1, axis=1)


def _csr(rows: np.ndarray, cols: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    row_ptr = np.zeros(m + 1, dtype=np.int32)
    np.add.at(row_ptr, rows + 1, 1)
    return np.cumsum(row_ptr).astype(np.int32), cols.astype(np.int32)


def nr_code(k: int = 1536, n: int = 4608, bg: int | None = None, rv: int = 0) -> LdpcCode:
    """The 5G NR LDPC code for k information bits sent as n bits (TS 38.212)."""
    p = nr.nr_params(k, n, bg=bg, rv=rv)
    table = nr.base_graph(p.bg)[:, :, p.i_ls]
    n_rows = nr.lifted_rows(p)
    n_cols = p.sys_cols + n_rows
    sub = table[:n_rows, :n_cols]
    br, bc = np.nonzero(sub >= 0)
    shifts = sub[br, bc] % p.z
    lane = np.arange(p.z)
    # Block (r, c) with shift s links check r*Z + i to variable c*Z + (i + s) mod Z.
    rows = (br[:, None] * p.z + lane[None, :]).ravel()
    cols = (bc[:, None] * p.z + (lane[None, :] + shifts[:, None]) % p.z).ravel()
    row_ptr, col_idx = _csr(rows, cols, n_rows * p.z)
    layer_ptr = np.zeros(n_rows + 1, dtype=np.int32)
    np.add.at(layer_ptr, br + 1, 1)
    qc = (p.z, np.cumsum(layer_ptr).astype(np.int32), bc.astype(np.int32), shifts.astype(np.int32))
    return LdpcCode(
        name=f"nr-bg{p.bg}-k{k}-n{n}" + (f"-rv{rv}" if rv else ""),
        k=k,
        n=n,
        n_var=n_cols * p.z,
        row_ptr=row_ptr,
        col_idx=col_idx,
        info_map=np.arange(k, dtype=np.int64),
        tx_map=nr.rate_match_indices(p),
        zero_vars=np.arange(k, p.k_ldpc, dtype=np.int64),
        nr=p,
        qc=qc,
    )


class AlistError(ValueError):
    """An alist file that cannot be read as a parity-check matrix."""


def read_alist(path: str | os.PathLike) -> np.ndarray:
    """Read a parity-check matrix in MacKay's alist format (as used by GNU Radio gr-fec).

    Column and row lists are read line by line, so both zero-padded and unpadded
    files load. The row lists must agree with the column lists.
    """
    where = repr(os.fspath(path))
    try:
        with open(path, encoding="ascii") as fh:
            lines = [[int(t) for t in line.split()] for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AlistError(f"cannot read alist file {where}: {exc}") from exc
    try:
        (n, m), _, col_deg, row_deg = lines[0], lines[1], lines[2], lines[3]
    except (IndexError, ValueError):
        raise AlistError(f"{where}: not an alist file (bad header)") from None
    if not (0 < n <= 10**6 and 0 < m <= 10**6) or len(col_deg) != n or len(row_deg) != m:
        raise AlistError(f"{where}: inconsistent header (n={n}, m={m})")
    if len(lines) < 4 + n:
        raise AlistError(f"{where}: file ends early (truncated alist)")
    h = np.zeros((m, n), dtype=np.uint8)
    for c in range(n):
        entries = [r for r in lines[4 + c] if r]
        if len(entries) != col_deg[c]:
            raise AlistError(f"{where}: column {c} lists {len(entries)} rows, header says {col_deg[c]}")
        for r in entries:
            if not 1 <= r <= m:
                raise AlistError(f"{where}: row index {r} out of range in column {c}")
            h[r - 1, c] = 1
    empty = np.flatnonzero(h.sum(axis=1) == 0)
    if empty.size:  # a check on no bit: the decoders' check-node loops assume degree >= 1
        raise AlistError(f"{where}: check row {int(empty[0])} has no entries ({empty.size} empty rows)")
    if any(d <= 0 for d in row_deg):
        raise AlistError(f"{where}: the header gives a check row degree 0")
    for r, line in enumerate(lines[4 + n : 4 + n + m]):
        for c in line:
            if c and (not 1 <= c <= n or not h[r, c - 1]):
                raise AlistError(f"{where}: row {r} lists column {c}, which the column lists do not")
    return h


def _gf2_systematic(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce H over GF(2); return (info columns, pivot columns, P) with parity = P @ info mod 2.

    Rows are bit-packed into uint64 words so that codes with thousands of columns
    reduce in about a second.
    """
    m, n = h.shape
    words = -(-n // 64)
    padded = np.zeros((m, words * 64), dtype=np.uint8)
    padded[:, :n] = h
    a = np.packbits(padded, axis=1, bitorder="little").view(np.uint64).copy()
    pivots = []
    r = 0
    for c in range(n - 1, -1, -1):  # pivots from the end: information bits come first
        if r == m:
            break
        w, b = divmod(c, 64)
        col = (a[:, w] >> np.uint64(b)) & np.uint64(1)
        hits = np.flatnonzero(col[r:]) + r
        if hits.size == 0:
            continue
        p = hits[0]
        if p != r:
            a[[r, p]] = a[[p, r]]
            col[[r, p]] = col[[p, r]]
        others = np.flatnonzero(col)
        others = others[others != r]
        a[others] ^= a[r]
        pivots.append(c)
        r += 1
    pivots = np.array(pivots, dtype=np.int64)
    info = np.setdiff1d(np.arange(n), pivots)
    dense = np.unpackbits(a[: pivots.size].view(np.uint8), axis=1, bitorder="little")[:, :n]
    # Row i of the reduced matrix: x[pivots[i]] = sum(dense[i, info] * x[info]) mod 2.
    return info, pivots, dense[:, info]


def alist_code(path: str | os.PathLike, name: str | None = None) -> LdpcCode:
    """A code from an alist file; every column is sent, information bits are the non-pivot columns."""
    h = read_alist(path)
    m, n = h.shape
    info, pivots, p = _gf2_systematic(h)
    rows, cols = np.nonzero(h)
    row_ptr, col_idx = _csr(rows, cols, m)
    code = LdpcCode(
        name=name or os.path.basename(os.fspath(path)),
        k=info.size,
        n=n,
        n_var=n,
        row_ptr=row_ptr,
        col_idx=col_idx,
        info_map=info,
        tx_map=np.arange(n, dtype=np.int64),
        zero_vars=np.zeros(0, dtype=np.int64),
    )
    code._encoder = (pivots, p)
    return code


def make_code(k: int = 1536, n: int = 4608, alist: str = ""):
    """The 5G NR (k, n) code, or the code of an alist file when ``alist`` is given."""
    return alist_code(alist) if alist else nr_code(int(k), int(n))
