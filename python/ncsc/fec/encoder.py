"""LDPC encoding: structured for 5G NR codes, generic (systematic via GF(2) reduction) for alist codes."""

from __future__ import annotations

import numpy as np

from . import nr
from .code import LdpcCode


def check_bits(bits, k: int) -> np.ndarray:
    """Validate information bits: shape (k,) or (batch, k), values 0/1; returns uint8 (batch, k)."""
    arr = np.asarray(bits)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != k:
        raise ValueError(f"expected information bits of shape (k,) or (batch, k) with k={k}, got {np.shape(bits)}")
    if arr.dtype.kind not in "biu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"bits must be integers 0 or 1, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError("bits must be 0 or 1 (non-binary value found)")
    return arr.astype(np.uint8, copy=False)


def _roll(x: np.ndarray, s: int) -> np.ndarray:
    """Apply P^s: output lane i reads input lane (i + s) mod Z."""
    return np.roll(x, -s, axis=-1) if s else x


def _encode_nr(code: LdpcCode, info: np.ndarray) -> np.ndarray:
    p = code.nr
    z, sc = p.z, p.sys_cols
    n_rows = code.m // z
    table = nr.base_graph(p.bg)[:n_rows, : sc + n_rows, p.i_ls]
    batch = info.shape[0]
    x = np.zeros((batch, sc + n_rows, z), dtype=np.uint8)
    x.reshape(batch, -1)[:, : code.k] = info  # filler bits stay 0

    def row_sum(r: int, cols) -> np.ndarray:
        acc = np.zeros((batch, z), dtype=np.uint8)
        for c in cols:
            if table[r, c] >= 0:
                acc ^= _roll(x[:, c], table[r, c] % z)
        return acc

    lam = [row_sum(r, range(sc)) for r in range(4)]
    # Summing the 4 core rows cancels the double-diagonal columns and leaves P^x p0.
    shifts = [table[r, sc] % z for r in range(4) if table[r, sc] >= 0]
    odd = [s for s in set(shifts) if shifts.count(s) % 2]
    if len(odd) != 1:
        raise RuntimeError("unexpected core structure in the base graph")
    total = lam[0] ^ lam[1] ^ lam[2] ^ lam[3]
    x[:, sc] = np.roll(total, odd[0], axis=-1)
    known = {sc}
    while len(known) < 4:
        progress = False
        for r in range(4):
            cols = [c for c in range(sc, sc + 4) if table[r, c] >= 0]
            unknown = [c for c in cols if c not in known]
            if len(unknown) != 1:
                continue
            u = unknown[0]
            acc = lam[r] ^ row_sum(r, [c for c in cols if c != u])
            x[:, u] = np.roll(acc, table[r, u] % z, axis=-1)
            known.add(u)
            progress = True
        if not progress:
            raise RuntimeError("cannot solve the core parity bits")
    for r in range(4, n_rows):
        x[:, sc + r] = row_sum(r, range(sc + 4))
    return x.reshape(batch, -1)


def encode_vars(code: LdpcCode, bits) -> np.ndarray:
    """All variable-node values (batch, n_var) of the codewords for ``bits``."""
    info = check_bits(bits, code.k)
    if code.nr is not None:
        return _encode_nr(code, info)
    pivots, parity = code._encoder
    out = np.zeros((info.shape[0], code.n_var), dtype=np.uint8)
    out[:, code.info_map] = info
    out[:, pivots] = (info.astype(np.int32) @ parity.T.astype(np.int32)) & 1
    return out


def encode(code: LdpcCode, bits) -> np.ndarray:
    """Sent codeword bits (batch, n) for information bits (batch, k) or (k,)."""
    return encode_vars(code, bits)[:, code.tx_map]
