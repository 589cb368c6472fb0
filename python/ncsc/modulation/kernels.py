"""Compiled soft demapper (numba): the receiver demaps every burst, and the numpy form's
per-point temporaries were a sixth of the receiver's time."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def pam_llr(y, levels, labels, inv_nv, out, stride, offset, exact):
    """Bit LLRs log(P(1)/P(0)) of one axis (real parts or imaginary parts ``y``) of a Gray QAM:
    the square constellations of TS 38.211 are two Gray PAMs, so the exact demapper factors
    into per-axis sums (same values as the 2-D sum over all points). ``levels``/``labels``:
    the PAM's amplitudes and their bit labels (rows); written to out[i*stride + offset + b*2]."""
    nb_bits = labels.shape[1]
    n_lev = levels.size
    metric = np.empty(n_lev)
    weight = np.empty(n_lev)
    for i in range(y.size):
        top = -np.inf
        for q in range(n_lev):
            dlt = y[i] - levels[q]
            metric[q] = -dlt * dlt * inv_nv
            top = max(top, metric[q])
        if exact:  # one exp per amplitude, shared by the bits (the common max cancels)
            for q in range(n_lev):
                weight[q] = np.exp(metric[q] - top)
        for b in range(nb_bits):
            m1 = -np.inf
            m0 = -np.inf
            s1 = 0.0
            s0 = 0.0
            for q in range(n_lev):
                if labels[q, b]:
                    m1 = max(m1, metric[q])
                    s1 += weight[q] if exact else 0.0
                else:
                    m0 = max(m0, metric[q])
                    s0 += weight[q] if exact else 0.0
            if exact and s1 > 1e-300 and s0 > 1e-300:
                out[i * stride + offset + 2 * b] = np.log(s1 / s0)
            else:  # max-log, or one side's terms all below exp's range (the max-log value then)
                out[i * stride + offset + 2 * b] = m1 - m0
    return out
