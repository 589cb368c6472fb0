"""Compiled inner loops of the burst receiver (numba, as the LDPC and rANS kernels).

Each kernel computes what the numpy expression beside it in :mod:`.burst` computed, in one
pass and without temporaries: the receiver spends its time in a handful of loops over
samples or symbols, and numpy's per-call overhead (tens of calls per burst) was most of it.
``nogil``: the GNU Radio scheduler's other threads (LDPC decoder, codec) run meanwhile.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..dsp import cubic_at


@nb.njit(cache=True, nogil=True, fastmath=True)
def _fir_full(pr, pi, taps_rev, n, step, j0, j1, q0=0):
    """Every ``step``-th output of the 'full' convolution of the zero-padded (pr, pi) (n samples,
    len(taps)-1 zeros each side), with the reversed taps outside [j0, j1) taken as zero; outputs
    before ``q0`` are left zero."""
    t_len = taps_rev.size
    m = (n + t_len - 1 + step - 1) // step
    xr = np.zeros(m, np.float32)
    xi = np.zeros(m, np.float32)
    if q0 >= m:
        return xr, xi
    # the input split into its step phases, so that each tap's pass over the outputs reads
    # contiguous samples; tap by tap over all outputs, each output still adds its products in
    # tap order. The passes index slices from 0: an index that numba cannot prove non-negative
    # gets a wraparound check per element, which stops LLVM vectorising (9x slower here).
    n_out = m - q0
    reach = (j1 - 1) // step + 1
    n_ph = n_out + reach
    ph_r = np.zeros((step, n_ph), np.float32)
    ph_i = np.zeros((step, n_ph), np.float32)
    for r in range(step):
        base = q0 * step + r
        cnt = min(n_ph, max(0, (pr.size - 1 - base) // step + 1))
        src_r = pr[base:]
        src_i = pi[base:]
        dst_r = ph_r[r]
        dst_i = ph_i[r]
        for k in range(cnt):
            dst_r[k] = src_r[k * step]
            dst_i[k] = src_i[k * step]
    o_r = xr[q0:]
    o_i = xi[q0:]
    for j in range(j0, j1):
        t = taps_rev[j]
        d = j // step
        a_r = ph_r[j % step, d : d + n_out]
        a_i = ph_i[j % step, d : d + n_out]
        for k in range(n_out):
            o_r[k] += t * a_r[k]
            o_i[k] += t * a_i[k]
    return xr, xi


@nb.njit(cache=True, nogil=True)
def detection_metric(s, taps, lag, win, dc_window, step=1, half=-1, out_from=0):
    """Schmidl-Cox metric of ``s`` after a centred DC blocker (``dc_window`` samples) and the
    matched filter ``taps`` ('full' convolution): (normalised correlation, correlation) per
    start position t over windows of ``win + lag`` samples, each window's own mean removed
    (see ``BurstRx._metric``).

    ``step`` > 1 (dividing lag and win) computes it from every step-th filter output and
    holds each value for step positions: the filtered signal is oversampled (sps 4, its band
    a third of the rate), so every second output carries nearly all of its information, at
    half the work. ``half`` >= 0 keeps only the 2 half + 1 central taps of the (symmetric)
    filter on the same time axis (the RRC's central 13 of 33 hold 99.5 % of its energy).

    ``out_from``: positions before it are left zero and cost nothing: a stream search passes
    the samples before its start as history only (the DC blocker's and filter's reach), which
    was a fifth to a third of the detector's work."""
    n = s.size
    t_len = taps.size
    m_full = n + t_len - 1
    span_full = win + lag
    lag //= step
    win //= step
    span = win + lag
    # DC blocker: subtract the centred moving average (edges: the samples there are)
    pad = t_len - 1
    dr = np.zeros(n + 2 * pad, np.float32)  # zero-padded on both sides for the filter
    di = np.zeros(n + 2 * pad, np.float32)
    w = min(dc_window, n)
    # only the DC-blocked samples that the filter outputs from out_from on read, and the
    # running sums those need (from c0 on: differences of them are all that is used)
    q_first = max(out_from, 0) // step
    i_first = min(max(q_first * step - pad, 0), n)
    c0 = max(i_first - w // 2, 0)
    csr = np.zeros(n + 1)
    csi = np.zeros(n + 1)
    cr = 0.0
    ci = 0.0
    for i in range(c0, n):
        cr += s[i].real
        ci += s[i].imag
        csr[i + 1] = cr
        csi[i + 1] = ci
    inner_lo = w // 2
    inner_hi = n - (w - w // 2)
    inv_w = 1.0 / max(w, 1)
    # the edges (a window cut by the block's ends: the samples there are), then the inside
    # as one loop over slices (vectorises; see _fir_full)
    for e0, e1 in ((i_first, min(inner_lo, n)), (max(inner_hi + 1, i_first), n)):
        for i in range(e0, e1):
            lo = min(max(i - w // 2, 0), n)
            hi = min(max(i + w - w // 2, 0), n)
            c = max(hi - lo, 1)
            dr[pad + i] = s[i].real - (csr[hi] - csr[lo]) / c
            di[pad + i] = s[i].imag - (csi[hi] - csi[lo]) / c
    a = max(i_first, inner_lo)
    cnt = inner_hi + 1 - a
    if cnt > 0:
        o_r = dr[pad + a : pad + a + cnt]
        o_i = di[pad + a : pad + a + cnt]
        x_in = s[a : a + cnt]
        h_r = csr[a + w - w // 2 :]
        h_i = csi[a + w - w // 2 :]
        l_r = csr[a - w // 2 :]
        l_i = csi[a - w // 2 :]
        for k in range(cnt):
            o_r[k] = x_in[k].real - (h_r[k] - l_r[k]) * inv_w
            o_i[k] = x_in[k].imag - (h_i[k] - l_i[k]) * inv_w
    # matched filter, full convolution, every step-th output from q_first on (_fir_full:
    # polyphase passes that vectorise; fastmath only on its float32 sums)
    j0, j1 = 0, t_len
    if 0 <= half < t_len // 2:
        j0, j1 = t_len // 2 - half, t_len // 2 + half + 1
    xr, xi = _fir_full(dr, di, taps.astype(np.float32)[::-1].copy(), n, step, j0, j1, q_first)
    m = xr.size
    n_full = m_full - span_full if m_full > span_full else 0
    n_out = m - span if m > span else 0
    norm_full = np.zeros(n_full, np.float64)
    corr_full = np.zeros(n_full, np.complex64)
    if n_out == 0:
        return norm_full, corr_full
    norm = np.zeros(n_out, np.float64)
    corr = np.zeros(n_out, np.complex64)
    # window sums as differences of prefix sums, per block of 4096 positions (re-seeded per
    # block, so rounding cannot grow with the stream): p = sum x[u+lag] conj(x[u]), energy,
    # and the sums for the means. The prefix loop is the only serial one; the per-position
    # arithmetic then vectorises (slices indexed from 0: see _fir_full)
    scale = (win // lag) / (win // lag + 1.0)
    for t0 in range(min(q_first, n_out), n_out, 4096):
        t1 = min(n_out, t0 + 4096)
        nb_t = t1 - t0
        ln = nb_t + span  # samples the block's windows reach
        x_r = xr[t0 : t0 + ln]
        x_i = xi[t0 : t0 + ln]
        l_r = xr[t0 + lag : t0 + lag + ln]
        l_i = xi[t0 + lag : t0 + lag + ln]
        cxr = np.empty(ln + 1)
        cxi = np.empty(ln + 1)
        ce = np.empty(ln + 1)
        cpr = np.empty(ln + 1)
        cpi = np.empty(ln + 1)
        axr = axi = ae = apr = api = 0.0
        cxr[0] = cxi[0] = ce[0] = cpr[0] = cpi[0] = 0.0
        n_p = nb_t - 1 + win  # products x[u+lag] conj(x[u]) the block's windows use
        for k in range(ln):
            br, bi = np.float64(x_r[k]), np.float64(x_i[k])
            axr += br
            axi += bi
            ae += br * br + bi * bi
            if k < n_p:
                ar, ai = np.float64(l_r[k]), np.float64(l_i[k])
                apr += ar * br + ai * bi
                api += ai * br - ar * bi
            cxr[k + 1] = axr
            cxi[k + 1] = axi
            ce[k + 1] = ae
            cpr[k + 1] = apr
            cpi[k + 1] = api
        cxr_w, cxi_w, cpr_w, cpi_w = cxr[win:], cxi[win:], cpr[win:], cpi[win:]
        cxr_l, cxi_l = cxr[lag:], cxi[lag:]
        cxr_s, cxi_s, ce_s = cxr[span:], cxi[span:], ce[span:]
        # below this, a window's energy is the prefix sums' rounding (a silent stretch next to
        # a strong burst): the metric there is 0/0, not a preamble
        floor = max(1e-12, 1e-12 * ce[ln])
        o_n = norm[t0:t1]
        o_r = np.empty(nb_t)
        o_i = np.empty(nb_t)
        for k in range(nb_t):
            pr = cpr_w[k] - cpr[k]
            pi = cpi_w[k] - cpi[k]
            ser = cxr_w[k] - cxr[k]  # early: x[u], u in the window
            sei = cxi_w[k] - cxi[k]
            slr = cxr_s[k] - cxr_l[k]  # late: x[u + lag]
            sli = cxi_s[k] - cxi_l[k]
            sxr = cxr_s[k] - cxr[k]
            sxi = cxi_s[k] - cxi[k]
            e = ce_s[k] - ce[k]
            mur = sxr / span
            mui = sxi / span
            mu2 = mur * mur + mui * mui
            # p - conj(mu) * s_late - mu * conj(s_early) + win * |mu|^2
            qr = pr - (mur * slr + mui * sli) - (mur * ser + mui * sei) + win * mu2
            qi = pi - (mur * sli - mui * slr) - (mui * ser - mur * sei)
            ec = max(e - span * mu2, 0.0)
            o_r[k] = qr
            o_i[k] = qi
            o_n[k] = np.sqrt(qr * qr + qi * qi) / max(ec * scale, floor)
        o_c = corr[t0:t1]
        for k in range(nb_t):
            o_c[k] = complex(o_r[k], o_i[k])
    if step == 1:
        return norm, corr
    # held for step positions, on the full-rate axis (the last value to the end)
    q_from = min(max(out_from, 0), n_full) // step
    for q in range(q_from, n_out):
        for r in range(step):
            t = q * step + r
            if t < n_full:
                norm_full[t] = norm[q]
                corr_full[t] = corr[q]
    for t in range(n_out * step, n_full):
        norm_full[t] = norm[n_out - 1]
        corr_full[t] = corr[n_out - 1]
    if out_from > 0:  # the first positions of the held block, before out_from, stay zero
        for t in range(q_from * step, min(out_from, n_full)):
            norm_full[t] = 0.0
            corr_full[t] = 0.0
    return norm_full, corr_full


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
def first_above(metric, start, threshold):
    """The first index >= start where metric > threshold, or -1: the detector's next crossing
    without a comparison array over the rest of the block for every burst."""
    for i in range(start, metric.size):
        if metric[i] > threshold:
            return i
    return -1


@nb.njit(cache=True, nogil=True)
def pilot_windows_all(body, pp, pv, windows):
    """``pilot_windows`` for several window lengths in one call (one equaliser's candidates):
    (smooth per window, min count per window, nv per window)."""
    smooth = np.empty((windows.size, pp.size), np.complex128)
    counts = np.empty(windows.size, np.int64)
    nvs = np.empty(windows.size, np.float64)
    for i in range(windows.size):
        sm, cnt, nv = pilot_windows(body, pp, pv, windows[i])
        smooth[i] = sm
        counts[i] = cnt
        nvs[i] = nv
    return smooth, counts, nvs


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


@nb.njit(cache=True, nogil=True)
def preamble_search(x, lo, hi, sps, ref):
    """|sum_n x[t + n sps] ref[n]| for t in [lo, hi): the known-preamble correlation over the
    detector's uncertainty (``BurstRx.stage_timing``; ref is the conjugate preamble, derotated).
    Symbol by symbol over all positions (contiguous slices, which vectorise; each position
    still adds its products in symbol order, so the sums are the per-position loop's)."""
    m = max(hi - lo, 0)
    acc_r = np.zeros(m)
    acc_i = np.zeros(m)
    for n in range(ref.size):
        rr = ref[n].real
        ri = ref[n].imag
        seg = x[lo + n * sps : lo + n * sps + m]
        for t in range(m):
            a = seg[t]
            acc_r[t] += a.real * rr - a.imag * ri
            acc_i[t] += a.real * ri + a.imag * rr
    out = np.empty(m)
    for t in range(m):
        out[t] = abs(complex(acc_r[t], acc_i[t]))
    return out


@nb.njit(cache=True, nogil=True)
def resample(x, t0, sps, offset, drift, cfo, k0, count):
    """Symbols k0 .. k0+count-1 of a burst (``BurstRx.stage_resample``): x read at t0 + k sps +
    offset + drift k by cubic interpolation, the carrier cfo (cycles per symbol) removed, zero
    where the position leaves [1, len(x) - 3]. The rotation is a phasor stepped per symbol and
    set afresh every 64 (1e-15 from the exp per symbol, at a sixth of the cost)."""
    out = np.empty(count, np.complex128)
    step = np.exp(-2j * np.pi * cfo)
    ph = 1.0 + 0j
    hi = x.size - 3
    for q in range(count):
        k = k0 + q
        if q % 64 == 0:
            ph = np.exp(-2j * np.pi * cfo * k)
        pos = t0 + k * sps + offset + drift * k
        out[q] = 0j if (pos < 1 or pos > hi) else cubic_at(x, pos) * ph
        ph *= step
    return out


@nb.njit(cache=True, nogil=True)
def read_symbols(x, t, kk, sps, cfo):
    """Symbols kk read at fractional sample times t + kk sps (cubic interpolation), the carrier
    offset cfo (cycles per symbol) removed (``BurstRx._read``)."""
    out = np.empty(kk.size, np.complex128)
    for q in range(kk.size):
        k = kk[q]
        out[q] = cubic_at(x, t + k * sps) * np.exp(-2j * np.pi * cfo * k)
    return out


@nb.njit(cache=True, nogil=True)
def group_correlations(x, base, taus, rot, starts, ends):
    """Per tau and group g: sum over i in [starts[g], ends[g]) of x(base[i] + tau) rot[i], x read
    by cubic interpolation (``BurstRx._timing_offset``'s early/on-time/late correlations)."""
    out = np.empty((taus.size, starts.size), np.complex128)
    for j in range(taus.size):
        for g in range(starts.size):
            acc = 0j
            for i in range(starts[g], ends[g]):
                acc += cubic_at(x, base[i] + taus[j]) * rot[i]
            out[j, g] = acc
    return out


@nb.njit(cache=True, nogil=True)
def apply_equaliser(s, start, count, centre, half, wl, w):
    """Equalised symbols start..start+count of s: symbol j (at s[j + centre]) from its 2 half + 1
    neighbours, and with ``wl`` (widely linear) their conjugates and a constant, weighted by w in
    ``BurstRx.stage_equalise``'s column order (taps, conjugate taps, DC). complex64."""
    width = 2 * half + 1
    out = np.empty(count, np.complex64)
    for i in range(count):
        c = start + i + centre
        acc = 0j
        for d in range(width):
            acc += w[d] * s[c - half + d]
        if wl:
            for d in range(width):
                acc += w[width + d] * np.conj(s[c - half + d])
            acc += w[2 * width]
        out[i] = acc
    return out


@nb.njit(cache=True, nogil=True)
def unwrap(p):
    """np.unwrap of a 1-D phase array (period 2 pi), without numpy's generic machinery (the
    receiver unwraps three short arrays per burst)."""
    out = np.empty(p.size)
    if p.size == 0:
        return out
    out[0] = p[0]
    shift = 0.0
    for i in range(1, p.size):
        d = p[i] - p[i - 1]
        dm = (d + np.pi) % (2 * np.pi) - np.pi
        if dm == -np.pi and d > 0:
            dm = np.pi
        if abs(d) >= np.pi:
            shift += dm - d
        out[i] = p[i] + shift
    return out


@nb.njit(cache=True, nogil=True)
def apply_tracking(body, pp, smooth):
    """body corrected by the pilots' smoothed phase and gain, both interpolated linearly between
    the pilot positions pp (held beyond the ends), the phase unwrapped first: what np.unwrap
    and two np.interp compute (``test_apply_tracking_matches_numpy``)."""
    ph = unwrap(np.arctan2(smooth.imag, smooth.real))
    amp = np.abs(smooth)
    out = np.empty(body.size, np.complex128)
    last = pp.size - 1
    n = body.size
    # held before the first pilot and from the last one on
    head = np.exp(-1j * ph[0]) / max(amp[0], 1e-9)
    tail = np.exp(-1j * ph[last]) / max(amp[last], 1e-9)
    for i in range(min(pp[0] + 1, n)):
        out[i] = body[i] * head
    for i in range(max(pp[last], 0), n):
        out[i] = body[i] * tail
    # between pilots q and q+1 (i in (pp[q], pp[q+1]]): the phase is linear in i, so its
    # rotation is a phasor stepped per symbol (two exps per gap instead of one per symbol)
    for q in range(last):
        lo = max(pp[q] + 1, pp[0] + 1)
        hi = min(pp[q + 1], pp[last] - 1, n - 1)
        if hi < lo:
            continue
        span = pp[q + 1] - pp[q]
        f = (lo - pp[q]) / span
        rot = np.exp(-1j * (ph[q] + f * (ph[q + 1] - ph[q])))
        step = np.exp(-1j * (ph[q + 1] - ph[q]) / span)
        for i in range(lo, hi + 1):
            f = (i - pp[q]) / span
            a = amp[q] + f * (amp[q + 1] - amp[q])
            out[i] = body[i] * rot / max(a, 1e-9)
            rot *= step
    return out


@nb.njit(cache=True, nogil=True)
def timing_offset(x, t0, cfo, drift, known_k, known_v, sps, group):
    """``BurstRx._timing_offset`` in one call: per group of known symbols the correlations at
    -d, 0, +d samples (``group_correlations``), a parabola's vertex per group, averaged by
    energy; twice, the second pass at the corrected times."""
    d = max(1, sps // 2)
    offset = 0.0
    n_known = known_k.size
    n_groups = (max(n_known - group // 2, 0) + group - 1) // group
    if n_groups == 0:
        return offset
    starts = np.arange(n_groups) * group
    ends = np.minimum(starts + group, n_known)
    rot = np.empty(n_known, np.complex128)
    for i in range(n_known):
        rot[i] = np.exp(-2j * np.pi * cfo * known_k[i]) * np.conj(known_v[i])
    taus = np.array([-float(d), 0.0, float(d)])
    base = np.empty(n_known)
    for _ in range(2):
        for i in range(n_known):
            base[i] = t0 + known_k[i] * sps + offset + drift * known_k[i]
        c = group_correlations(x, base, taus, rot, starts, ends)
        num = 0.0
        wsum = 0.0
        for g in range(n_groups):
            mag = abs(c[1, g])
            if mag < 1e-12:
                continue
            ref = np.conj(c[1, g]) / mag
            y0 = (c[0, g] * ref).real
            y1 = (c[1, g] * ref).real
            y2 = (c[2, g] * ref).real
            den = y0 - 2 * y1 + y2
            if den >= 0:
                continue
            err = min(max(0.5 * (y0 - y2) / den, -1.0), 1.0) * d
            num += mag * mag * err
            wsum += mag * mag
        if wsum == 0.0:
            break
        offset += min(max(num / wsum, -sps / 2), sps / 2)
    return offset


@nb.njit(cache=True, nogil=True)
def clock_drift(x, t0, n_sym, sps, seg):
    """``BurstRx._clock_drift`` in one call: the symbol-rate line (``symbol_rate_lines``) over
    segments of ``seg`` symbols, its unwrapped phase's slope (least squares weighted by the
    line's magnitude), as samples per symbol, clipped to +-1e-3 sps."""
    n_a = (max(n_sym - seg // 2, 0) + seg - 1) // seg
    lo = np.empty(n_a, np.int64)
    hi = np.empty(n_a, np.int64)
    n = 0
    for i in range(n_a):
        a = i * seg
        l_ = int(max(0.0, t0 + a * sps))
        h_ = int(min(t0 + (a + seg) * sps, float(x.size)))
        if h_ - l_ >= seg * sps // 2:
            lo[n] = l_
            hi[n] = h_
            n += 1
    if n < 3:
        return 0.0
    lines = symbol_rate_lines(x, lo[:n], hi[:n], sps)
    ph = unwrap(np.arctan2(lines.imag, lines.real))
    sw = sx = sy = 0.0
    ks = np.empty(n)
    for q in range(n):
        ks[q] = (lo[q] + hi[q]) / 2 / sps
        w = abs(lines[q])
        sw += w
        sx += w * ks[q]
        sy += w * ph[q]
    if sw <= 0.0:
        return 0.0
    mx, my = sx / sw, sy / sw
    num = den = 0.0
    for q in range(n):
        w = abs(lines[q])
        num += w * (ks[q] - mx) * (ph[q] - my)
        den += w * (ks[q] - mx) ** 2
    slope = num / den if den > 0 else 0.0
    return min(max(-slope * sps / (2 * np.pi), -1e-3 * sps), 1e-3 * sps)


@nb.njit(cache=True, nogil=True)
def _moving_mean(v, k):
    """Centred moving average in the complex plane over k values, the edges held."""
    k = min(k, v.size)
    n = v.size
    out = np.empty(n, np.complex128)
    front = k // 2
    for i in range(n):
        acc = 0j
        for j in range(i - front, i - front + k):
            acc += v[min(max(j, 0), n - 1)]
        out[i] = acc / k
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _dot_conj(a, b):
    """sum conj(a) b (np.vdot)."""
    acc = 0j
    for k in range(a.size):
        acc += np.conj(a[k]) * b[k]
    return acc


@nb.njit(cache=True, nogil=True, inline="always")
def _gain_and_header(x, t0f, cfo, sps, preamble, hdr_rot, kh):
    """The preamble read at (t0f, cfo), its complex gain, and the header symbols read there,
    divided by the gain and derotated."""
    pre = read_symbols(x, t0f, np.arange(preamble.size), sps, cfo)
    g = _dot_conj(preamble, pre) / preamble.size
    hdr = read_symbols(x, t0f, kh, sps, cfo)
    if g != 0:  # (a gain this small ends the first pass before its header is used)
        for k in range(kh.size):
            hdr[k] = hdr[k] / g * np.conj(hdr_rot[k])
    return pre, g, hdr


@nb.njit(cache=True, nogil=True)
def carrier_sync(x, t0, cfo, sps, preamble, hdr_rot, hdr_len):
    """``BurstRx.stage_carrier`` in one call: fractional timing from a parabola through the
    preamble correlation at t0-1, t0, t0+1; the carrier offset from the preamble's halves;
    gain; the header read; with a whole header, the carrier refined by a line through the
    squared, smoothed phase over preamble and header and everything read again.
    Returns (ok, t0f, cfo, preamble symbols, gain, header symbols)."""
    pre_len = preamble.size
    n = np.arange(pre_len)
    c = np.empty(3)
    for m in range(3):
        c[m] = abs(_dot_conj(preamble, read_symbols(x, t0 + m - 1.0, n, sps, cfo)))
    den = c[0] - 2 * c[1] + c[2]
    t0f = t0 + (min(max(0.5 * (c[0] - c[2]) / den, -0.5), 0.5) if den < 0 else 0.0)
    v = read_symbols(x, t0f, n, sps, cfo)
    half = pre_len // 2
    s1 = 0j
    s2 = 0j
    for k in range(pre_len):
        z = v[k] * np.conj(preamble[k])
        if k < half:
            s1 += z
        else:
            s2 += z
    w = s2 * np.conj(s1)
    cfo += np.arctan2(w.imag, w.real) / (2 * np.pi * half)
    n_hdr = int(max(0.0, min(float(hdr_len), (x.size - 1 - t0f) // sps - pre_len)))
    kh = pre_len + np.arange(n_hdr)
    pre, g, hdr = _gain_and_header(x, t0f, cfo, sps, preamble, hdr_rot, kh)
    if abs(g) < 1e-9:
        return False, t0f, cfo, pre, g, np.zeros(0, np.complex128)
    if n_hdr == hdr_len:
        m_all = pre_len + n_hdr
        z = np.empty(m_all, np.complex128)
        for k in range(pre_len):
            q = pre[k] / g * np.conj(preamble[k])
            z[k] = q * q
        for k in range(n_hdr):
            z[pre_len + k] = hdr[k] * hdr[k]
        sm = _moving_mean(z, 16)
        ph = unwrap(np.arctan2(sm.imag, sm.real))
        mx = (m_all - 1) / 2.0
        my = 0.0
        for k in range(m_all):
            my += ph[k]
        my /= m_all
        num = 0.0
        dd = 0.0
        for k in range(m_all):
            num += (k - mx) * (ph[k] - my)
            dd += (k - mx) ** 2
        slope = num / dd if dd > 0 else 0.0
        cfo += slope / (4 * np.pi)
        pre, g, hdr = _gain_and_header(x, t0f, cfo, sps, preamble, hdr_rot, kh)
    return True, t0f, cfo, pre, g, hdr


@nb.njit(cache=True, nogil=True)
def window_error(body, pp, pv, smooth, count, nv):
    """One tracking window's noise variance (``burst.track_pilots``): the leave-one-out figure
    ``nv``, or with fewer than 3 pilots in a window the corrected body's own pilot error, and
    then that corrected body (else an empty one: corrected only when needed). Floor 1e-4."""
    if count >= 3:
        return max(nv, 1e-4), np.empty(0, np.complex128)
    corrected = apply_tracking(body, pp, smooth)
    acc = 0.0
    for q in range(pp.size):
        e = corrected[pp[q]] - pv[q]
        acc += e.real * e.real + e.imag * e.imag
    return max(acc / pp.size, 1e-4), corrected


@nb.njit(cache=True, nogil=True)
def equalise(s, known, pp, pv, windows, half_taps, margin):
    """``BurstRx.stage_equalise`` in one call: least-squares equalisers trained on the known
    symbols (a complex gain; widely linear with a DC term, 1 and 2 half_taps + 1 taps), each
    tracked with every pilot window, the best kept by the leave-one-out pilot error with a
    margin for the more complex choices. Returns (body, noise variance, found)."""
    body0 = known.size
    body_len = s.size - 2 * half_taps - body0
    width = 2 * half_taps + 1
    ncol = 2 * width + 1
    a = np.empty((body0, ncol), np.complex128)  # taps, conjugate taps, DC: every candidate's columns
    for j in range(body0):
        for d in range(width):
            v = s[j + d]
            a[j, d] = v
            a[j, width + d] = np.conj(v)
        a[j, 2 * width] = 1.0
    ah = np.ascontiguousarray(np.conj(a.T))
    gram = ah @ a  # every candidate's normal equations are a block of these
    rhs = ah @ known
    best_nv = np.inf
    best_eq = np.empty(0, np.complex64)
    best_smooth = np.empty(0, np.complex128)
    best_body = np.empty(0, np.complex128)
    found = False
    for cand in range(3):
        half = 0 if cand < 2 else half_taps
        wl = cand > 0
        if cand == 2 and half_taps == 0:
            break
        taps = np.arange(half_taps - half, half_taps + half + 1)
        cols = np.concatenate((taps, width + taps, np.array([2 * width]))) if wl else taps
        g = np.empty((cols.size, cols.size), np.complex128)
        r = np.empty(cols.size, np.complex128)
        for i in range(cols.size):
            r[i] = rhs[cols[i]]
            for k in range(cols.size):
                g[i, k] = gram[cols[i], cols[k]]
        w = np.zeros(cols.size, np.complex128)
        ok = True
        try:
            w = np.linalg.solve(g, r)
        except Exception:  # noqa: BLE001 - singular: the least-squares solution of the columns
            ok = False
        if not ok:
            w = np.linalg.lstsq(np.ascontiguousarray(a[:, cols]), known)[0]
        if not np.all(np.isfinite(w.real)) or not np.all(np.isfinite(w.imag)):
            continue
        eq = apply_equaliser(s, body0, body_len, half_taps, half, wl, w)
        smooths, counts, nvs = pilot_windows_all(eq, pp, pv, windows)
        for i in range(windows.size):  # the longest window first
            nv, body = window_error(eq, pp, pv, smooths[i], counts[i], nvs[i])
            if not found or nv < best_nv * (1 - margin):
                found = True
                best_nv, best_eq, best_smooth = nv, eq, smooths[i].copy()
                best_body = body
    if not found:
        return np.empty(0, np.complex128), 1.0, False
    if best_body.size == 0:
        best_body = apply_tracking(best_eq, pp, best_smooth)
    return best_body, best_nv, True


@nb.njit(cache=True, nogil=True)
def residual_carrier(s, ref, kk, half_taps, steer, max_rad, dw):
    """``BurstRx.stage_residual_carrier`` in one call: z = the known symbols' samples against
    their references ``ref`` at symbol indices kk, the peak of |steer @ z| (the periodogram on
    the grid -max_rad + i dw) refined by a parabola, the intercept, and s with the line
    removed (s[j] is symbol j - half_taps). Returns (corrected s, slope in rad per symbol)."""
    n = kk.size
    z = np.empty(n, np.complex128)
    for i in range(n):
        z[i] = s[kk[i] + half_taps] * np.conj(ref[i])
    mag = np.abs(steer @ z)
    steps = mag.size
    i = int(np.argmax(mag))
    pos = float(i)
    if 0 < i < steps - 1:
        den = mag[i - 1] - 2 * mag[i] + mag[i + 1]
        if den < 0:
            pos = i + min(max(0.5 * (mag[i - 1] - mag[i + 1]) / den, -0.5), 0.5)
    slope = -max_rad + pos * dw
    acc = 0j
    for q in range(n):
        acc += z[q] * np.exp(-1j * slope * kk[q])
    icpt = np.arctan2(acc.imag, acc.real)
    out = np.empty(s.size, np.complex128)
    step = np.exp(-1j * slope)
    ph = 1.0 + 0j
    for j in range(s.size):
        if j % 64 == 0:  # a phasor stepped per symbol, set afresh every 64 (see ``resample``)
            ph = np.exp(-1j * (icpt + slope * (j - half_taps)))
        out[j] = s[j] * ph
        ph *= step
    return out, slope
