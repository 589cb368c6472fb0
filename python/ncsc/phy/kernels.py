"""Compiled inner loops of the burst receiver (numba, as the LDPC and rANS kernels).

Each kernel computes what the numpy expression beside it in :mod:`.burst` computed, in one
pass and without temporaries: the receiver spends its time in a handful of loops over
samples or symbols, and numpy's per-call overhead (tens of calls per burst) was most of it.
``nogil``: the GNU Radio scheduler's other threads (LDPC decoder, codec) run meanwhile.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, fastmath=True)
def _fir_full(pr, pi, taps_rev, n):
    """'full' convolution of the zero-padded (pr, pi) (n samples, len(taps)-1 zeros each side)."""
    t_len = taps_rev.size
    m = n + t_len - 1
    xr = np.empty(m, np.float32)
    xi = np.empty(m, np.float32)
    for u in range(m):
        ar = np.float32(0.0)
        ai = np.float32(0.0)
        for j in range(t_len):
            ar += taps_rev[j] * pr[u + j]
            ai += taps_rev[j] * pi[u + j]
        xr[u] = ar
        xi[u] = ai
    return xr, xi


@nb.njit(cache=True, nogil=True)
def detection_metric(s, taps, lag, win, dc_window):
    """Schmidl-Cox metric of ``s`` after a centred DC blocker (``dc_window`` samples) and the
    matched filter ``taps`` ('full' convolution): (normalised correlation, correlation) per
    start position t over windows of ``win + lag`` samples, each window's own mean removed
    (see ``BurstRx._metric``)."""
    n = s.size
    t_len = taps.size
    m = n + t_len - 1
    span = win + lag
    # DC blocker: subtract the centred moving average (edges: the samples there are)
    pad = t_len - 1
    dr = np.zeros(n + 2 * pad, np.float32)  # zero-padded on both sides for the filter
    di = np.zeros(n + 2 * pad, np.float32)
    cr = 0.0
    ci = 0.0
    csr = np.empty(n + 1)
    csi = np.empty(n + 1)
    csr[0] = 0.0
    csi[0] = 0.0
    for i in range(n):
        cr += s[i].real
        ci += s[i].imag
        csr[i + 1] = cr
        csi[i + 1] = ci
    w = min(dc_window, n)
    inner_lo = w // 2
    inner_hi = n - (w - w // 2)
    inv_w = 1.0 / max(w, 1)
    for i in range(n):
        lo = i - w // 2
        hi = i + w - w // 2
        if inner_lo <= i <= inner_hi:
            dr[pad + i] = s[i].real - (csr[hi] - csr[lo]) * inv_w
            di[pad + i] = s[i].imag - (csi[hi] - csi[lo]) * inv_w
        else:
            lo = min(max(lo, 0), n)
            hi = min(max(hi, 0), n)
            c = max(hi - lo, 1)
            dr[pad + i] = s[i].real - (csr[hi] - csr[lo]) / c
            di[pad + i] = s[i].imag - (csi[hi] - csi[lo]) / c
    # matched filter, full convolution: a dot product per output over zero-padded input (the
    # form LLVM vectorises; fastmath only on this kernel's float32 sums)
    xr, xi = _fir_full(dr, di, taps.astype(np.float32)[::-1].copy(), n)
    n_out = m - span if m > span else 0
    norm = np.zeros(n_out, np.float64)
    corr = np.zeros(n_out, np.complex64)
    if n_out == 0:
        return norm, corr
    # running sums over the windows, in real arithmetic (re-seeded every 4096 positions so
    # rounding cannot drift): p = sum x[u+lag] conj(x[u]), energy, and the sums for the means
    scale = (win // lag) / (win // lag + 1.0)
    for t0 in range(0, n_out, 4096):
        t1 = min(n_out, t0 + 4096)
        pr = pi = e = sxr = sxi = ser = sei = slr = sli = 0.0
        for u in range(t0, t0 + win):
            ar, ai, br, bi = xr[u + lag], xi[u + lag], xr[u], xi[u]
            pr += ar * br + ai * bi
            pi += ai * br - ar * bi
            ser += br
            sei += bi
            slr += ar
            sli += ai
        for u in range(t0, t0 + span):
            e += xr[u] * xr[u] + xi[u] * xi[u]
            sxr += xr[u]
            sxi += xi[u]
        for t in range(t0, t1):
            if t > t0:
                a = t - 1
                ar, ai, br, bi = xr[a + win + lag], xi[a + win + lag], xr[a + win], xi[a + win]
                cr, ci, dr_, di_ = xr[a + lag], xi[a + lag], xr[a], xi[a]
                pr += (ar * br + ai * bi) - (cr * dr_ + ci * di_)
                pi += (ai * br - ar * bi) - (ci * dr_ - cr * di_)
                ser += br - dr_
                sei += bi - di_
                slr += ar - cr
                sli += ai - ci
                fr, fi = xr[a + span], xi[a + span]
                e += (fr * fr + fi * fi) - (dr_ * dr_ + di_ * di_)
                sxr += fr - dr_
                sxi += fi - di_
            mur = sxr / span
            mui = sxi / span
            mu2 = mur * mur + mui * mui
            # p - conj(mu) * s_late - mu * conj(s_early) + win * |mu|^2
            qr = pr - (mur * slr + mui * sli) - (mur * ser + mui * sei) + win * mu2
            qi = pi - (mur * sli - mui * slr) - (mui * ser - mur * sei)
            ec = max(e - span * mu2, 0.0)
            corr[t] = complex(qr, qi)
            norm[t] = np.sqrt(qr * qr + qi * qi) / max(ec * scale, 1e-12)
    return norm, corr


@nb.njit(cache=True, nogil=True)
def pilot_windows(body, pp, pv, window):
    """Pilot tracking's figures for one window length (see ``burst.track_pilots``): the pilots
    against their sequence c = body[pp] conj(pv), their centred window means (truncated at the
    edges) and the leave-one-out noise variance. Returns (smooth, min count, nv)."""
    n = pp.size
    c = np.empty(n, np.complex128)
    for q in range(n):
        c[q] = body[pp[q]] * np.conj(pv[q])
    cs = np.empty(n + 1, np.complex128)
    cs[0] = 0
    for q in range(n):
        cs[q + 1] = cs[q] + c[q]
    smooth = np.empty(n, np.complex128)
    min_count = n
    acc = 0.0
    used = 0
    for q in range(n):
        lo = min(max(q - window // 2, 0), n)
        hi = min(max(q - window // 2 + window, 0), n)
        count = hi - lo
        total = cs[hi] - cs[lo]
        smooth[q] = total / count
        min_count = min(min_count, count)
        if count > 1:
            loo = (total - c[q]) / (count - 1)
            if abs(loo) > 1e-9:
                e = c[q] / loo - 1
                acc += e.real * e.real + e.imag * e.imag
                used += 1
    nv = acc / used if used else 1.0
    return smooth, min_count, nv


@nb.njit(cache=True, nogil=True)
def symbol_rate_lines(x, starts, stops, sps):
    """Per segment [start, stop): sum |x[n]|^2 exp(-2j pi n / sps), the symbol-rate spectral line
    of the clock-drift estimator (see ``BurstRx._clock_drift``)."""
    ph = np.empty(sps, np.complex128)
    for r in range(sps):
        ph[r] = np.exp(-2j * np.pi * r / sps)
    out = np.empty(starts.size, np.complex128)
    for k in range(starts.size):
        acc = 0j
        for n in range(starts[k], stops[k]):
            acc += (x[n].real * x[n].real + x[n].imag * x[n].imag) * ph[n % sps]
        out[k] = acc
    return out
