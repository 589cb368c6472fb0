"""Small signal-processing helpers shared by the PHY and the channel models."""

from __future__ import annotations

import numpy as np

__all__ = ["interp_cubic"]


def interp_cubic(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """x at fractional positions p by cubic Lagrange interpolation (linear interpolation at 4
    samples per symbol loses over 1 dB on 16-QAM; cubic keeps the error near -35 dB)."""
    p = np.clip(np.asarray(p, np.float64), 1, x.size - 3)
    i = np.floor(p).astype(np.int64)
    m = p - i
    c0 = -m * (m - 1) * (m - 2) / 6
    c1 = (m + 1) * (m - 1) * (m - 2) / 2
    c2 = -(m + 1) * m * (m - 2) / 2
    c3 = (m + 1) * m * (m - 1) / 6
    return c0 * x[i - 1] + c1 * x[i] + c2 * x[i + 1] + c3 * x[i + 2]
