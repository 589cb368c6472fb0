"""Gray-mapped QPSK, 16-QAM and 64-QAM per 3GPP TS 38.211 section 5.1, with soft demapping.

Pure numpy builders, kept apart from the GNU Radio blocks (as gr-digital's ``qam.py``).
LLR convention: ``log(P(b=1)/P(b=0))`` (positive favours 1), labels MSB first.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .kernels import pam_llr_exact, pam_llr_maxlog

ORDERS = {"qpsk": 2, "16qam": 4, "64qam": 6}
DEMAPPERS = ("exact", "maxlog")


@cache
def constellation(name: str = "16qam") -> tuple[np.ndarray, np.ndarray]:
    """(points complex64 (M,), labels uint8 (M, bits)), unit average energy, index = label MSB first."""
    if name not in ORDERS:
        raise ValueError(f"unknown modulation {name!r}; choose one of {', '.join(ORDERS)}")
    m = ORDERS[name]
    labels = ((np.arange(2**m)[:, None] >> np.arange(m - 1, -1, -1)) & 1).astype(np.uint8)
    s = 1.0 - 2.0 * labels  # 0 -> +1, 1 -> -1
    if m == 2:
        pts = (s[:, 0] + 1j * s[:, 1]) / np.sqrt(2)
    elif m == 4:
        pts = (s[:, 0] * (2 - s[:, 2]) + 1j * s[:, 1] * (2 - s[:, 3])) / np.sqrt(10)
    else:
        pts = (s[:, 0] * (4 - s[:, 2] * (2 - s[:, 4])) + 1j * s[:, 1] * (4 - s[:, 3] * (2 - s[:, 5]))) / np.sqrt(42)
    pts = pts.astype(np.complex64)
    pts.setflags(write=False)
    labels.setflags(write=False)
    return pts, labels


def bits_per_symbol(name: str) -> int:
    if name not in ORDERS:
        raise ValueError(f"unknown modulation {name!r}; choose one of {', '.join(ORDERS)}")
    return ORDERS[name]


def modulate(bits, name: str = "16qam") -> np.ndarray:
    """Map bits (any shape whose last axis is a multiple of bits per symbol) to complex symbols."""
    m = bits_per_symbol(name)
    arr = np.asarray(bits)
    if arr.dtype.kind not in "biu":
        raise ValueError(f"bits must be integers 0 or 1, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError("bits must be 0 or 1 (non-binary value found)")
    if arr.shape[-1] % m:
        raise ValueError(f"{name} needs a multiple of {m} bits, got {arr.shape[-1]}")
    groups = arr.reshape(arr.shape[:-1] + (-1, m)).astype(np.int64)
    idx = groups @ (1 << np.arange(m - 1, -1, -1))
    return constellation(name)[0][idx]


def demodulate(symbols, noise_var: float, name: str = "16qam", method: str = "exact") -> np.ndarray:
    """Bit LLRs log(P(1)/P(0)) for received symbols under complex AWGN of total variance ``noise_var``.

    ``exact`` is the log-sum-exp APP demapper, ``maxlog`` its max-log approximation.
    Output shape: symbols' shape with the last axis times bits per symbol, float32.
    """
    if method not in DEMAPPERS:
        raise ValueError(f"unknown demapper {method!r}; choose one of {', '.join(DEMAPPERS)}")
    if not np.isfinite(noise_var) or noise_var <= 0:
        raise ValueError(f"noise variance must be a positive finite number, got {noise_var}")
    y = np.asarray(symbols)
    if y.dtype.kind not in "cf":
        raise ValueError(f"symbols must be complex, got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ValueError("symbols contain NaN or infinite values")
    if y.ndim == 1:
        return _demodulate_axes(y, float(noise_var), name, method == "exact")
    pts, labels = constellation(name)
    m = labels.shape[1]
    metric = -np.abs(y[..., None] - pts) ** 2 / noise_var  # (..., M)
    out = np.empty(y.shape + (m,), dtype=np.float64)
    for i in range(m):
        one = metric[..., labels[:, i] == 1]
        zero = metric[..., labels[:, i] == 0]
        if method == "maxlog":
            out[..., i] = one.max(-1) - zero.max(-1)
        else:
            a, b = one.max(-1), zero.max(-1)
            out[..., i] = (a + np.log(np.exp(one - a[..., None]).sum(-1))) - (
                b + np.log(np.exp(zero - b[..., None]).sum(-1)))
    return out.reshape(y.shape[:-1] + (-1,)).astype(np.float32)


@cache
def pam_axes(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The in-phase PAM of a square Gray QAM: (amplitudes, their bit labels); the quadrature
    PAM is the same with the odd label bits (TS 38.211: even bits set I, odd bits set Q)."""
    pts, labels = constellation(name)
    on_axis = np.all(labels[:, 1::2] == 0, axis=1)  # Q bits all 0: one point per I amplitude
    levels = pts[on_axis].real.astype(np.float64)
    return levels, np.ascontiguousarray(labels[on_axis][:, 0::2])


def _demodulate_axes(y: np.ndarray, noise_var: float, name: str, exact: bool) -> np.ndarray:
    """The same LLRs per axis: the exact sum over the 2-D points factors into a sum over the I
    amplitudes times one over the Q amplitudes, and the Q factor cancels for an I bit."""
    levels, labels = pam_axes(name)
    m = bits_per_symbol(name)
    out = np.empty(y.size * m, np.float64)
    yr = np.ascontiguousarray(y.real, np.float64)
    yi = np.ascontiguousarray(y.imag, np.float64)
    kernel = pam_llr_exact if exact else pam_llr_maxlog
    kernel(yr, levels, labels, 1.0 / noise_var, out, m, 0)
    kernel(yi, levels, labels, 1.0 / noise_var, out, m, 1)
    return out.astype(np.float32)
