"""The receiver's compiled kernels against the numpy expressions they replace, and the streaming
search (each sample searched once) against a search of the whole stream at once."""

from __future__ import annotations

import numpy as np
import pytest

from gnuradio.ncsc.channel.impairments import Impairments
from gnuradio.ncsc.fec import nr_code
from gnuradio.ncsc.fec.encoder import encode
from gnuradio.ncsc.modulation import demodulate
from gnuradio.ncsc.phy import kernels
from gnuradio.ncsc.phy.burst import DC_WINDOW, N_SEG, SEG, BurstRx, BurstTx, rrc_taps


def _dc_block_numpy(x: np.ndarray, window: int = DC_WINDOW) -> np.ndarray:
    """The detector's DC blocker as numpy expressions: minus a centred moving average."""
    w = min(window, x.size)
    c = np.concatenate([[0], np.cumsum(x.astype(np.complex128))])
    lo = np.clip(np.arange(x.size) - w // 2, 0, x.size)
    hi = np.clip(np.arange(x.size) + w - w // 2, 0, x.size)
    return (x - (c[hi] - c[lo]) / np.maximum(hi - lo, 1)).astype(np.complex64)


def _metric_numpy(x: np.ndarray, lag: int, win: int):
    """The detection metric as numpy expressions (the receiver's before it was compiled)."""
    span = win + lag
    prod = x[lag:] * np.conj(x[:-lag])
    c = np.concatenate([[0], np.cumsum(prod)])
    p = c[win:] - c[:-win]
    e = np.concatenate([[0], np.cumsum(np.abs(x) ** 2)])
    energy = e[span:] - e[:-span]
    n = min(p.size, energy.size)
    cx = np.concatenate([[0], np.cumsum(x.astype(np.complex128))])
    t = np.arange(n)
    mu = (cx[t + span] - cx[t]) / span
    s_early = cx[t + win] - cx[t]
    s_late = cx[t + win + lag] - cx[t + lag]
    p = p[:n] - np.conj(mu) * s_late - mu * np.conj(s_early) + win * np.abs(mu) ** 2
    energy = np.maximum(energy[:n] - span * np.abs(mu) ** 2, 0.0)
    return np.abs(p) / np.maximum(energy * (N_SEG - 1) / N_SEG, 1e-12), p


def test_detection_metric_matches_numpy():
    rng = np.random.default_rng(0)
    s = (rng.standard_normal(20000) + 1j * rng.standard_normal(20000) + 0.3).astype(np.complex64)
    taps = rrc_taps(4, 0.35)
    lag = SEG * 4
    norm, corr = kernels.detection_metric(s, taps.astype(np.float64), lag, (N_SEG - 1) * lag, DC_WINDOW)
    ref_norm, ref_p = _metric_numpy(np.convolve(_dc_block_numpy(s), taps), lag, (N_SEG - 1) * lag)
    n = min(norm.size, ref_norm.size)
    assert n > 19000
    np.testing.assert_allclose(norm[:n], ref_norm[:n], atol=2e-4)
    np.testing.assert_allclose(corr[:n], ref_p[:n], rtol=1e-3, atol=1e-2)


def test_detection_metric_at_step_two_is_the_metric_of_every_second_output():
    """step=2 computes the metric from every second matched-filter output (lag and window
    halved) and holds each value for two positions of the full-rate time axis."""
    rng = np.random.default_rng(1)
    s = (rng.standard_normal(20000) + 1j * rng.standard_normal(20000)).astype(np.complex64)
    taps = rrc_taps(4, 0.35)
    lag = SEG * 4
    full, _ = kernels.detection_metric(s, taps.astype(np.float64), lag, (N_SEG - 1) * lag, DC_WINDOW)
    norm, corr = kernels.detection_metric(s, taps.astype(np.float64), lag, (N_SEG - 1) * lag, DC_WINDOW, 2)
    assert norm.size == full.size  # the same time axis as step 1
    ref_norm, ref_p = _metric_numpy(np.convolve(_dc_block_numpy(s), taps)[::2], lag // 2, (N_SEG - 1) * lag // 2)
    n = min(norm.size // 2, ref_norm.size)
    assert n > 9000
    np.testing.assert_allclose(norm[0 : 2 * n : 2], ref_norm[:n], atol=2e-4)
    np.testing.assert_allclose(norm[1 : 2 * n : 2], ref_norm[:n], atol=2e-4)
    np.testing.assert_allclose(corr[0 : 2 * n : 2], ref_p[:n], rtol=1e-3, atol=1e-2)


def test_detection_metric_with_central_taps_is_the_metric_of_the_trimmed_filter():
    """half=h uses the filter's 2h+1 central taps on the full filter's time axis: the same as the
    full filter with its outer taps set to zero."""
    rng = np.random.default_rng(2)
    s = (rng.standard_normal(12000) + 1j * rng.standard_normal(12000)).astype(np.complex64)
    taps = rrc_taps(4, 0.35).astype(np.float64)
    c = taps.size // 2
    zeroed = np.zeros_like(taps)
    zeroed[c - 6 : c + 7] = taps[c - 6 : c + 7]
    lag = SEG * 4
    for step in (1, 2):
        got = kernels.detection_metric(s, taps, lag, (N_SEG - 1) * lag, DC_WINDOW, step, 6)
        ref = kernels.detection_metric(s, zeroed, lag, (N_SEG - 1) * lag, DC_WINDOW, step)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-5)
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("step", [1, 2])
@pytest.mark.parametrize("start", [0, 1, 1057, 4999])
def test_detection_metric_from_a_start_is_the_whole_metric_there(step, start):
    """A stream search passes the samples before its start as history: the metric from
    ``out_from`` on is the metric of the whole block there, and zero before it."""
    rng = np.random.default_rng(4)
    s = (rng.standard_normal(9000) + 1j * rng.standard_normal(9000) + 0.2).astype(np.complex64)
    taps = rrc_taps(4, 0.35).astype(np.float64)
    lag = SEG * 4
    whole = kernels.detection_metric(s, taps, lag, (N_SEG - 1) * lag, DC_WINDOW, step, 6)
    part = kernels.detection_metric(s, taps, lag, (N_SEG - 1) * lag, DC_WINDOW, step, 6, start)
    for w, p in zip(whole, part, strict=True):
        assert p.size == w.size
        assert not np.any(p[:start])
        np.testing.assert_allclose(p[start:], w[start:], rtol=1e-9, atol=1e-9)


def test_fir_into_is_np_convolve_in_parts():
    """The burst window's matched filter: np.convolve of the window minus its mean, bit for bit,
    whether computed whole or in parts (to the header first, then on), each part exactly."""
    from gnuradio.ncsc.dsp import complex_mean, fir_into

    rng = np.random.default_rng(9)
    x = (rng.standard_normal(700) + 1j * rng.standard_normal(700) + 0.3).astype(np.complex64)
    taps = rrc_taps(4, 0.35).astype(np.float64)
    mean = complex_mean(x)
    assert abs(mean - np.mean(x.astype(np.complex128))) < 1e-12
    want = np.convolve(x.astype(np.complex128) - mean, taps)
    whole = fir_into(x, taps, mean, np.empty(want.size, np.complex128), 0, want.size)
    np.testing.assert_allclose(whole, want, rtol=0, atol=1e-12)
    parts = np.full(want.size, np.nan, np.complex128)
    for u0, u1 in ((0, 5), (5, 333), (333, want.size + 10)):
        fir_into(x, taps, mean, parts, u0, u1)
    np.testing.assert_array_equal(parts, whole)


def test_preamble_search_matches_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(3000) + 1j * rng.standard_normal(3000)
    ref = rng.standard_normal(64) + 1j * rng.standard_normal(64)
    lo, hi, sps = 37, 549, 4
    got = kernels.preamble_search(x, lo, hi, sps, ref)
    want = np.abs([np.sum(x[t : t + 64 * sps : sps] * ref) for t in range(lo, hi)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_resample_matches_numpy():
    """The burst at symbol rate: cubic interpolation at drifting positions, the carrier removed
    (a stepped phasor: within 1e-12 of an exp per symbol), zero outside the samples."""
    from gnuradio.ncsc.dsp import interp_cubic

    rng = np.random.default_rng(6)
    x = rng.standard_normal(5000) + 1j * rng.standard_normal(5000)
    t0, sps, offset, drift, cfo = 7.3, 4, -0.4, 2e-4, 3e-3
    k = np.arange(-3, 1300)
    pos = t0 + k * sps + offset + drift * k
    want = interp_cubic(x, pos) * np.exp(-2j * np.pi * cfo * k)
    want[(pos < 1) | (pos > x.size - 3)] = 0
    got = kernels.resample(x, t0, sps, offset, drift, cfo, -3, k.size)
    assert np.count_nonzero(want == 0) > 0 and np.count_nonzero(want) > 1000
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("a0", [0, 1, 2000])
def test_lazy_metric_segments_are_the_whole_blocks_metric(a0):
    """The search computes the metric segment by segment from where it stands (skipping the
    bursts' samples): every segment, wherever it starts, holds the whole block's values."""
    from gnuradio.ncsc.phy.burst import _LazyMetric

    rng = np.random.default_rng(8)
    s = (rng.standard_normal(40000) + 1j * rng.standard_normal(40000) + 0.1).astype(np.complex64)
    rx = BurstRx(4, 0.35, 0.5, 4608)
    start = 1057
    whole_norm, whole_corr = rx.metric(s[a0:], start)
    lazy = _LazyMetric(rx, s, a0, start)
    assert lazy.size == whole_norm.size
    for i, stop in [(start, start + 10), (start + 5000, start + 5300), (start + 9001, start + 20000),
                    (start + 20000, lazy.size)]:
        norm, corr = lazy.upto(i, stop)
        np.testing.assert_allclose(norm[i:stop], whole_norm[i:stop], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(corr[i:stop], whole_corr[i:stop], rtol=1e-5, atol=1e-6)
    # a search over segments finds the first crossing the whole block has
    t = float(np.quantile(whole_norm[start:], 0.999))
    want = start + int(np.argmax(whole_norm[start:] > t))
    assert _LazyMetric(rx, s, a0, start).first_above(start, t) == want


def test_detection_at_step_two_finds_what_step_one_finds():
    """The receiver detects with step 2 and the filter's central taps: every burst of a low-SNR
    stream is found, as with every output of the whole filter."""
    tx = BurstTx(4, 0.35, "16qam")
    code = nr_code(1536, 4608)
    rng = np.random.default_rng(3)
    parts = [np.zeros(500, np.complex64)]
    for cw in encode(code, rng.integers(0, 2, (8, code.k)).astype(np.uint8)):
        parts += [tx.burst(cw), np.zeros(int(rng.integers(300, 900)), np.complex64)]
    x = Impairments(esn0_db=3.0, cfo=0.01, seed=4)(np.concatenate(parts))
    found = {}
    for step in (1, 2):
        rx = BurstRx(4, 0.35, 0.5, code_bits=code.n)
        rx.detect_step = step
        if step == 1:
            rx.detect_half = -1  # the whole filter
        found[step] = sum(r.llr is not None for r in rx.receive(x))
    assert found[1] == found[2] == 8


def test_interp_cubic_matches_the_lagrange_formula():
    from gnuradio.ncsc.dsp import interp_cubic

    rng = np.random.default_rng(1)
    x = rng.standard_normal(500) + 1j * rng.standard_normal(500)
    p = rng.uniform(-3, 505, 2000)
    q = np.clip(p, 1, x.size - 3)
    i = np.floor(q).astype(np.int64)
    m = q - i
    ref = (-m * (m - 1) * (m - 2) / 6 * x[i - 1] + (m + 1) * (m - 1) * (m - 2) / 2 * x[i]
           - (m + 1) * m * (m - 2) / 2 * x[i + 1] + (m + 1) * m * (m - 1) / 6 * x[i + 2])
    np.testing.assert_allclose(interp_cubic(x, p), ref, rtol=1e-12, atol=1e-12)
    assert interp_cubic(x, np.full(3, 7.0)).shape == (3,) and np.allclose(interp_cubic(x, np.array([7.0])), x[7])


@pytest.mark.parametrize("method", ["exact", "maxlog"])
@pytest.mark.parametrize("name", ["qpsk", "16qam", "64qam"])
def test_per_axis_demapper_equals_the_2d_sum(name, method):
    rng = np.random.default_rng(2)
    y = (rng.standard_normal(300) + 1j * rng.standard_normal(300)) * 0.8
    fast = demodulate(y, 0.2, name, method)  # 1-D: the per-axis kernel
    ref = demodulate(y[None, :], 0.2, name, method)[0]  # 2-D: the sum over every point
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-4)


def test_polynomial_exp_and_log_match_libm():
    from gnuradio.ncsc.modulation.kernels import _exp_nonpos, _log_pos

    x = -np.concatenate([np.linspace(0, 800, 20001), [0.0, 1e-12, 707.9, 708.0, 745.0, 1e308]])
    got, ref = _exp_nonpos(x, np.empty_like(x)), np.exp(x)
    big = ref > 1e-300
    assert np.all(np.abs(got - ref)[big] <= 1e-9 * ref[big])
    assert np.all(got[~big] <= 1e-300) and np.all(got >= 0)
    v = np.concatenate([np.exp(np.linspace(-690, 690, 20001)), [1.0, 1 + 1e-12, 1 - 1e-12, 2.0, 0.5, 1e-300]])
    np.testing.assert_allclose(_log_pos(v, np.empty_like(v)), np.log(v), rtol=1e-12, atol=1e-14)


def _exact_axis_llrs(y, levels, labels, nv):
    """The exact per-axis LLRs in numpy, float64 (log-sum-exp about each side's maximum)."""
    metric = -((y[:, None] - levels[None, :]) ** 2) / nv
    out = np.empty((y.size, labels.shape[1]))
    for b in range(labels.shape[1]):
        one, zero = metric[:, labels[:, b] == 1], metric[:, labels[:, b] == 0]
        a1, a0 = one.max(1), zero.max(1)
        out[:, b] = (a1 + np.log(np.exp(one - a1[:, None]).sum(1))) - (a0 + np.log(np.exp(zero - a0[:, None]).sum(1)))
    return out


@pytest.mark.parametrize("name", ["qpsk", "16qam", "64qam"])
def test_fast_exact_demapper_matches_the_libm_one(name):
    """pam_llr_exact (array-wise polynomial exp and log) against log-sum-exp with libm's, from
    high SNR (one side under exp's range: max-log values) to very low; pam_llr_maxlog against
    the sides' maxima."""
    from gnuradio.ncsc.modulation.kernels import pam_llr_exact, pam_llr_maxlog
    from gnuradio.ncsc.modulation.qam import pam_axes

    levels, labels = pam_axes(name)
    rng = np.random.default_rng(7)
    for nv in (1e-6, 1e-3, 0.05, 0.5, 3.0):
        y = rng.choice(levels, 2000) + rng.standard_normal(2000) * np.sqrt(nv / 2)
        y[:6] = [0.0, 1e3, -1e3, levels[0], 1e-300, -5.0]
        stride = 2 * labels.shape[1]
        got = pam_llr_exact(y, levels, labels, 1 / nv, np.zeros(y.size * stride), stride, 0)
        np.testing.assert_allclose(got.reshape(-1, labels.shape[1], 2)[:, :, 0],
                                   _exact_axis_llrs(y, levels, labels, nv), rtol=1e-8, atol=1e-8)
        metric = -((y[:, None] - levels[None, :]) ** 2) / nv
        maxlog = np.stack([metric[:, labels[:, b] == 1].max(1) - metric[:, labels[:, b] == 0].max(1)
                           for b in range(labels.shape[1])], axis=1)
        got = pam_llr_maxlog(y, levels, labels, 1 / nv, np.zeros(y.size * stride), stride, 0)
        np.testing.assert_allclose(got.reshape(-1, labels.shape[1], 2)[:, :, 0], maxlog, rtol=1e-12, atol=1e-9)


def test_pilot_windows_match_numpy():
    rng = np.random.default_rng(3)
    pp = np.arange(0, 1200, 17)
    body = (rng.standard_normal(1200) + 1j * rng.standard_normal(1200)).astype(np.complex64)
    pv = np.exp(0.5j * np.pi * (rng.integers(0, 4, pp.size) + 0.5))
    for window in (9, 33, 1 << 16):
        smooth, min_count, nv = kernels.pilot_windows(body, pp, pv, window)
        c = body[pp] * np.conj(pv)
        cs = np.concatenate([[0], np.cumsum(c)])
        i = np.arange(c.size)
        lo, hi = np.clip(i - window // 2, 0, c.size), np.clip(i - window // 2 + window, 0, c.size)
        total, count = cs[hi] - cs[lo], hi - lo
        np.testing.assert_allclose(smooth, total / count, rtol=1e-6)
        assert min_count == count.min()
        loo = (total - c) / (count - 1)
        assert nv == pytest.approx(np.mean(np.abs(c / loo - 1) ** 2), rel=1e-6)


def _stream(n_bursts: int, seed: int):
    rng = np.random.default_rng(seed)
    code = nr_code(1536, 4608)
    mods = ["16qam", "qpsk", "64qam"]
    parts, sent = [np.zeros(500, np.complex64)], []
    for i in range(n_bursts):
        bits = encode(code, rng.integers(0, 2, code.k, dtype=np.uint8))[0]
        parts += [BurstTx(sps=4, modulation=mods[i % 3]).burst(bits), np.zeros(int(rng.integers(50, 900)),
                                                                              np.complex64)]
        sent.append(bits)
    return Impairments(esn0_db=14, cfo=0.003, seed=seed)(np.concatenate(parts) * 2), sent


def test_streaming_search_finds_every_burst_once():
    """Fed in pieces, searching only what is new each time (as the block does), the receiver finds
    each burst exactly once, with the LLRs of a search over the whole stream."""
    x, sent = _stream(9, seed=5)
    whole = BurstRx(4, code_bits=4608).receive(x)
    assert len(whole) == 9
    rx = BurstRx(4, code_bits=4608)
    got, base, buf, search = [], 0, np.zeros(0, np.complex64), 0
    for piece in np.array_split(x, 37):
        buf = np.concatenate([buf, piece])
        reps = rx.receive(buf, start=search - base, final=False)
        got += [(r.start + base, r) for r in reps]
        search = base + rx.resume_at
        drop = max(0, min(rx.resume_at - rx.lookback, buf.size))
        buf, base = buf[drop:], base + drop
    got += [(r.start + base, r) for r in rx.receive(buf, start=search - base, final=True)]
    assert [s for s, _ in got] == [r.start for r in whole]
    for (_, r), w, bits in zip(got, whole, sent, strict=True):
        assert r.header == w.header
        hard = (r.llr > 0).astype(np.uint8)
        assert np.mean(hard != bits) < 0.03  # Es/N0 14 dB: raw bit errors of 64-QAM ~1 %
        assert np.corrcoef(r.llr, w.llr)[0, 1] > 0.999  # the same burst, the same estimates


@pytest.mark.parametrize("half,wl", [(0, False), (0, True), (1, True)])
def test_apply_equaliser_matches_the_tap_matrix_product(half, wl):
    rng = np.random.default_rng(4)
    s = rng.standard_normal(300) + 1j * rng.standard_normal(300)
    start, count, centre = 40, 250, 1
    rows = start + np.arange(count) + centre
    a = np.stack([s[rows + d] for d in range(-half, half + 1)], axis=1)
    if wl:
        a = np.concatenate([a, np.conj(a), np.ones((count, 1))], axis=1)
    w = rng.standard_normal(a.shape[1]) + 1j * rng.standard_normal(a.shape[1])
    got = kernels.apply_equaliser(s, start, count, centre, half, wl, w)
    np.testing.assert_allclose(got, (a @ w).astype(np.complex64), rtol=1e-5, atol=1e-5)


def test_unwrap_matches_numpy():
    rng = np.random.default_rng(6)
    for p in (np.cumsum(rng.normal(0, 1.5, 500)), np.angle(np.exp(1j * np.cumsum(rng.normal(0, 2.5, 300)))),
              np.array([0.0, np.pi, 0.0, -np.pi, 3 * np.pi]), np.zeros(0), np.array([2.0])):
        np.testing.assert_allclose(kernels.unwrap(np.asarray(p, np.float64)), np.unwrap(p), atol=1e-12)


def test_apply_tracking_matches_numpy():
    from gnuradio.ncsc.phy.burst import pilot_positions

    rng = np.random.default_rng(7)
    pp = pilot_positions(1152)
    n = 1152 + pp.size
    body = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    smooth = (1 + 0.1 * rng.standard_normal(pp.size)) * np.exp(1j * np.cumsum(rng.normal(0, 0.8, pp.size)))
    ph = np.unwrap(np.angle(smooth))
    k = np.arange(n)
    ref = body * np.exp(-1j * np.interp(k, pp, ph)) / np.maximum(np.interp(k, pp, np.abs(smooth)), 1e-9)
    np.testing.assert_allclose(kernels.apply_tracking(body, pp, smooth), ref, rtol=1e-6, atol=1e-6)


def _timing_offset_numpy(x, t0, cfo, drift, known_k, known_v, sps, group=16):
    """The timing estimate as numpy expressions (the receiver's before it was compiled)."""
    from gnuradio.ncsc.dsp import interp_cubic

    d = max(1, sps // 2)
    offset = 0.0
    starts = np.arange(0, known_k.size - group // 2, group)
    ends = np.minimum(starts + group, known_k.size)
    rot = np.exp(-2j * np.pi * cfo * known_k) * np.conj(known_v)
    for _ in range(2):
        base = t0 + known_k * sps + offset + drift * known_k
        c = np.empty((3, starts.size), np.complex128)
        for j, tau in enumerate((-d, 0, d)):
            cs = np.concatenate([[0], np.cumsum(interp_cubic(x, base + tau) * rot)])
            c[j] = cs[ends] - cs[starts]
        mag = np.abs(c[1])
        ok = mag >= 1e-12
        y = np.real(c * (np.conj(c[1]) / np.where(ok, mag, 1.0)))
        den = y[0] - 2 * y[1] + y[2]
        ok &= den < 0
        if not ok.any():
            break
        errs = np.clip(0.5 * (y[0] - y[2])[ok] / den[ok], -1.0, 1.0) * d
        offset += float(np.clip(np.average(errs, weights=mag[ok] ** 2), -sps / 2, sps / 2))
    return offset


@pytest.mark.parametrize("true_offset", [-0.9, 0.0, 0.6])
def test_timing_offset_matches_numpy(true_offset):
    from gnuradio.ncsc.phy.burst import PREAMBLE

    rng = np.random.default_rng(8)
    known = np.concatenate([PREAMBLE, np.exp(0.5j * np.pi * rng.integers(0, 4, 192))]).astype(np.complex128)
    tx = BurstTx(4, 0.35, "16qam")
    up = np.zeros(known.size * 4 + 200, np.complex128)
    up[100 : 100 + known.size * 4 : 4] = known
    x = np.convolve(np.convolve(up, tx.taps), tx.taps)
    x += 0.1 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))
    t0 = 100 + tx.taps.size - 1 + true_offset
    k = np.arange(known.size)
    got = kernels.timing_offset(x, t0, 0.001, 1e-4, k, known, 4, 16)
    ref = _timing_offset_numpy(x, t0, 0.001, 1e-4, k, known, 4)
    assert abs(got - ref) < 1e-9 and abs(t0 + got - (100 + tx.taps.size - 1)) < 0.2


def test_clock_drift_matches_numpy():
    """The compiled drift estimate against its numpy expressions, on a burst resampled with a
    known clock offset (and on one too short for three segments: 0)."""
    rng = np.random.default_rng(9)
    tx = BurstTx(4, 0.35, "16qam")
    code = nr_code(1536, 4608)
    burst = tx.burst(encode(code, rng.integers(0, 2, (1, code.k)).astype(np.uint8))[0])
    x = Impairments(esn0_db=15.0, sco_ppm=150, seed=3)(np.concatenate([np.zeros(300, np.complex64), burst]))
    x = np.convolve(x, rrc_taps(4, 0.35)).astype(np.complex128)
    t0, n_sym, sps, seg = 300.0 + 32, burst.size // 4 - 16, 4, 160
    a = np.arange(0, max(n_sym - seg // 2, 0), seg)
    lo = np.maximum(0, t0 + a * sps).astype(np.int64)
    hi = np.minimum(t0 + (a + seg) * sps, x.size).astype(np.int64)
    keep = hi - lo >= seg * sps // 2
    lo, hi = lo[keep], hi[keep]
    lines = kernels.symbol_rate_lines(x, lo, hi, sps)
    ks, ph, wt = (lo + hi) / 2 / sps, np.unwrap(np.angle(lines)), np.abs(lines)
    slope = np.polyfit(ks, ph, 1, w=np.sqrt(wt))[0]
    ref = float(np.clip(-slope * sps / (2 * np.pi), -1e-3 * sps, 1e-3 * sps))
    got = kernels.clock_drift(x, t0, n_sym, sps, seg)
    assert abs(got - ref) < 1e-9 and abs(got + 150e-6 * sps) < 1e-4  # 150 ppm fast: symbols come early
    assert kernels.clock_drift(x, t0, 300, sps, seg) == 0.0


def _stage_carrier_numpy(x, t0, cfo, sps=4):
    """BurstRx.stage_carrier as numpy expressions (the receiver's before it was compiled)."""
    from gnuradio.ncsc.dsp import interp_cubic
    from gnuradio.ncsc.phy.burst import HDR_ROT, PREAMBLE

    def read(t, kk, f):
        return interp_cubic(x, t + kk * sps) * np.exp(-2j * np.pi * f * kk)

    def smooth(v, k):
        k = min(k, v.size)
        padded = np.concatenate([np.full(k // 2, v[0]), v, np.full(k - 1 - k // 2, v[-1])])
        return np.convolve(padded, np.ones(k) / k, mode="valid")

    pre_len, hdr_len = PREAMBLE.size, HDR_ROT.size
    n = np.arange(pre_len)
    c = [abs(np.vdot(PREAMBLE, read(t0 + d, n, cfo))) for d in (-1, 0, 1)]
    den = c[0] - 2 * c[1] + c[2]
    t0f = t0 + (float(np.clip(0.5 * (c[0] - c[2]) / den, -0.5, 0.5)) if den < 0 else 0.0)
    z = read(t0f, n, cfo) * np.conj(PREAMBLE)
    half = pre_len // 2
    cfo += np.angle(np.sum(z[half:]) * np.conj(np.sum(z[:half]))) / (2 * np.pi * half)
    pre = read(t0f, n, cfo)
    g = np.vdot(PREAMBLE, pre) / pre_len
    n_hdr = int(max(0, min(hdr_len, (x.size - 1 - t0f) // sps - pre_len)))
    hdr = read(t0f, pre_len + np.arange(n_hdr), cfo) / g * np.conj(HDR_ROT[:n_hdr])
    if n_hdr == hdr_len:
        kk = np.arange(pre_len + n_hdr).astype(np.float64)
        ph = np.unwrap(np.angle(smooth(np.concatenate([pre / g * np.conj(PREAMBLE), hdr]) ** 2, 16)))
        cfo += np.polyfit(kk, ph, 1)[0] / (4 * np.pi)
        pre = read(t0f, n, cfo)
        g = np.vdot(PREAMBLE, pre) / pre_len
        hdr = read(t0f, pre_len + np.arange(n_hdr), cfo) / g * np.conj(HDR_ROT[:n_hdr])
    return t0f, cfo, pre, g, hdr


@pytest.mark.parametrize("esn0,cfo,cut", [(12.0, 0.01, False), (3.0, -0.02, False), (8.0, 0.004, True)])
def test_carrier_sync_matches_numpy(esn0, cfo, cut):
    """The compiled carrier stage against its numpy expressions: a burst with a carrier offset,
    whole, and cut off inside its header (no refinement then)."""
    rng = np.random.default_rng(10)
    tx = BurstTx(4, 0.35, "16qam")
    code = nr_code(1536, 4608)
    burst = tx.burst(encode(code, rng.integers(0, 2, (1, code.k)).astype(np.uint8))[0])
    y = Impairments(esn0_db=esn0, cfo=cfo, phase=1.0, seed=2)(np.concatenate([np.zeros(300, np.complex64), burst]))
    x = np.convolve(y, rrc_taps(4, 0.35)).astype(np.complex128)
    t0 = 300 + 32
    if cut:
        x = x[: t0 + (64 + 100) * 4]
    rx = BurstRx(4, 0.35, 0.5, code_bits=4608)
    got = rx.stage_carrier(x, t0, cfo * 0.9)
    ref = _stage_carrier_numpy(x, t0, cfo * 0.9)
    assert abs(got[0] - ref[0]) < 1e-9 and abs(got[1] - ref[1]) < 1e-9
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-9, atol=1e-9)
    assert abs(got[3] - ref[3]) < 1e-9
    np.testing.assert_allclose(got[4], ref[4], rtol=1e-8, atol=1e-8)
    assert (got[4].size < 192) if cut else (got[4].size == 192)


def _equalise_numpy(s, known, pp, half_taps=1, margin=0.03, windows=(9, 17, 33, 65, 1 << 16)):
    """stage_equalise as it was in numpy (least squares per candidate, track_pilots per window)."""
    from gnuradio.ncsc.phy.burst import PILOT_SEQ, track_pilots

    body0, width = known.size, 2 * half_taps + 1
    body_len = s.size - 2 * half_taps - body0
    pv = PILOT_SEQ[: pp.size]
    rows = np.arange(body0) + half_taps
    a = np.stack([s[rows + d] for d in range(-half_taps, half_taps + 1)], axis=1)
    train = np.concatenate([a, np.conj(a), np.ones((body0, 1))], axis=1)
    best = None
    for half, wl in [(0, False), (0, True), (half_taps, True)]:
        taps = list(range(half_taps - half, half_taps + half + 1))
        cols = taps + [width + t for t in taps] + [2 * width] if wl else taps
        w, *_ = np.linalg.lstsq(train[:, cols], known, rcond=None)
        eq = kernels.apply_equaliser(s, body0, body_len, half_taps, half, wl, w.astype(np.complex128))
        for window in sorted({min(wnd, pp.size) for wnd in windows}, reverse=True):
            nv, body, smooth = track_pilots(eq, pp, pv, window)
            if best is None or nv < best[0] * (1 - margin):
                best = (nv, body, smooth, eq)
    nv, body, smooth, eq = best
    return (kernels.apply_tracking(eq, pp.astype(np.int64), smooth) if body is None else body), nv


@pytest.mark.parametrize("taps", [(1.0,), (1.0, 0.4j, -0.2)])
def test_equalise_kernel_matches_numpy(taps):
    """The compiled equaliser picks what the numpy one picked and gives the same symbols, on
    a burst through AWGN alone and through multipath (where the widely linear taps win)."""
    from gnuradio.ncsc.phy.burst import EQ_TAPS, PILOT_SEQ, TRACK_WINDOWS, _training, pilot_positions

    rng = np.random.default_rng(8)
    n_data = 1152
    pp = pilot_positions(n_data)
    known = _training("16qam", 0, n_data).astype(np.complex128)
    body = (rng.integers(0, 2, n_data + pp.size) * 2 - 1 + 1j * (rng.integers(0, 2, n_data + pp.size) * 2 - 1)) / 2
    body[pp] = PILOT_SEQ[: pp.size]
    clean = np.concatenate([np.zeros(1), known, body, np.zeros(1)])
    s = np.convolve(clean, np.asarray(taps))[: clean.size] * np.exp(0.3j)
    s = s + 0.05 * (rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size))
    windows = np.array(sorted({min(w, pp.size) for w in TRACK_WINDOWS}, reverse=True), np.int64)
    got, nv, found = kernels.equalise(s, known, pp.astype(np.int64), PILOT_SEQ[: pp.size].astype(np.complex128),
                                      windows, EQ_TAPS // 2, 0.03)
    want, nv_want = _equalise_numpy(s, known, pp)
    assert found and nv == pytest.approx(nv_want, rel=1e-6)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_residual_carrier_kernel_matches_numpy():
    """The compiled residual-carrier stage against its numpy expressions: the periodogram peak
    on the grid, refined by a parabola, the intercept, and the line taken out of every symbol."""
    from gnuradio.ncsc.phy.burst import PILOT_SEQ, RESIDUAL_CFO_MAX, RESIDUAL_STEPS, _steering, pilot_positions

    rng = np.random.default_rng(4)
    body0, n_data, half = 256, 1152, 1
    pp = pilot_positions(n_data)
    total = body0 + n_data + pp.size
    known = np.exp(0.5j * np.pi * (rng.integers(0, 4, body0) + 0.5))
    k = np.arange(-half, total + half)
    slope_true = 0.0021
    s = np.exp(0.5j * np.pi * (rng.integers(0, 4, k.size) + 0.5))
    s[half : half + body0] = known
    s[half + body0 + pp] = PILOT_SEQ[: pp.size]
    s = s * np.exp(1j * (0.7 + slope_true * k)) + 0.1 * (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size))
    kk = np.concatenate([np.arange(body0), body0 + pp])
    ref = np.concatenate([known, PILOT_SEQ[: pp.size]]).astype(np.complex128)
    max_rad, steps = RESIDUAL_CFO_MAX * 2 * np.pi, RESIDUAL_STEPS
    w = np.linspace(-max_rad, max_rad, steps)
    got, slope = kernels.residual_carrier(s, ref, kk, half, _steering(kk, max_rad, steps), max_rad, w[1] - w[0])

    z = s[kk + half] * np.conj(ref)
    mag = np.abs(np.exp(-1j * np.outer(w, kk)) @ z)
    i = int(np.argmax(mag))
    den = mag[i - 1] - 2 * mag[i] + mag[i + 1]
    want_slope = -max_rad + (i + np.clip(0.5 * (mag[i - 1] - mag[i + 1]) / den, -0.5, 0.5)) * (w[1] - w[0])
    icpt = np.angle(np.sum(z * np.exp(-1j * want_slope * kk)))
    assert slope == pytest.approx(want_slope, rel=1e-9) and abs(slope - slope_true) < 3e-4
    np.testing.assert_allclose(got, s * np.exp(-1j * (icpt + want_slope * k)), atol=1e-9)
