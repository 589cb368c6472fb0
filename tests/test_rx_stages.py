"""The burst receiver's stages, one by one (as gr-digital's ofdm_rx chains single-purpose blocks):
timing, carrier, header, resampling, residual carrier, equaliser and tracking."""

from __future__ import annotations

import numpy as np
import pytest

from gnuradio.ncsc.channel.impairments import Impairments
from gnuradio.ncsc.fec import nr_code
from gnuradio.ncsc.fec.encoder import encode
from gnuradio.ncsc.phy import kernels
from gnuradio.ncsc.phy.burst import (
    EQ_TAPS,
    HDR_ROT,
    PILOT_SEQ,
    BurstRx,
    BurstTx,
    pilot_positions,
    track_pilots,
)

LEAD = 400


@pytest.fixture(scope="module")
def burst():
    rng = np.random.default_rng(11)
    code = nr_code(1536, 4608)
    bits = encode(code, rng.integers(0, 2, code.k, dtype=np.uint8))[0]
    tx = BurstTx(sps=4)
    samples = np.concatenate([np.zeros(LEAD, np.complex64), tx.burst(bits), np.zeros(400, np.complex64)])
    return tx, samples


def _mf(rx, samples):
    """What the stages see: the block minus its mean, through the matched filter."""
    return np.convolve(samples - samples.mean(), rx.taps)


def test_stage_timing_finds_the_start_and_refuses_noise(burst):
    _, samples = burst
    rx = BurstRx(4, code_bits=4608)
    x = _mf(rx, Impairments(esn0_db=20, seed=1)(samples * 2))
    true = LEAD + rx.taps.size - 1  # TX pulse and matched filter delays
    assert rx.stage_timing(x, true + 37, 0.0) == true
    noise = np.random.default_rng(2).standard_normal(x.size) + 0j
    assert rx.stage_timing(noise, 3000, 0.0) is None


def test_stage_carrier_estimates_the_offset(burst):
    _, samples = burst
    rx = BurstRx(4, code_bits=4608)
    x = _mf(rx, Impairments(esn0_db=15, cfo=0.012, phase=1.0, seed=3)(samples * 2))
    t0 = rx.stage_timing(x, LEAD + rx.taps.size - 1, 0.0115)
    t0f, cfo, pre, g, hdr = rx.stage_carrier(x, t0, 0.0115)
    assert abs(cfo - 0.012) < 2e-4 and abs(t0f - t0) <= 0.5 and hdr.size == rx.hdr_len


def test_stage_header_reads_checks_and_refuses(burst):
    tx, samples = burst
    rx = BurstRx(4, code_bits=4608)
    x = _mf(rx, Impairments(esn0_db=15, seed=4)(samples * 2))
    t0 = rx.stage_timing(x, LEAD + rx.taps.size - 1, 0.0)
    _, _, pre, g, hdr = rx.stage_carrier(x, t0, 0.0)
    assert rx.stage_header(hdr, 0.05) == {"modulation": "16qam", "code_id": 0, "n_symbols": 1152}
    assert rx.stage_header(hdr[:-1], 0.05) is None  # cut off
    other = BurstRx(4, code_bits=2304)
    assert other.stage_header(hdr, 0.05) is None and other.bad_length == 1  # a length this code cannot have


def test_equalised_header_undoes_multipath(burst):
    """The second reading of the header (a 3-tap equaliser trained on the preamble) leaves less
    error under multipath than the first (one complex gain)."""
    from gnuradio.ncsc.phy.burst import header_symbols

    _, samples = burst
    rx = BurstRx(4, code_bits=4608)
    x = _mf(rx, Impairments(esn0_db=25, taps=(1.0, 0.7j, -0.5), seed=8)(samples * 2))
    t0 = rx.stage_timing(x, LEAD + rx.taps.size - 1, 0.0)
    t0f, cfo, _, _, hdr = rx.stage_carrier(x, t0, 0.0)
    truth = (header_symbols("16qam", 0, 1152) * np.conj(HDR_ROT)).real
    single = np.mean(np.abs(hdr - truth) ** 2)
    equalised = np.mean(np.abs(rx.equalised_header(x, t0f, cfo) - truth) ** 2)
    assert equalised < 0.5 * single


def test_stage_resample_and_truncation(burst):
    _, samples = burst
    rx = BurstRx(4, code_bits=4608)
    x = _mf(rx, Impairments(esn0_db=20, sco_ppm=80, seed=5)(samples * 2))
    t0 = rx.stage_timing(x, LEAD + rx.taps.size - 1, 0.0)
    t0f, cfo, *_ = rx.stage_carrier(x, t0, 0.0)
    header = {"modulation": "16qam", "code_id": 0, "n_symbols": 1152}
    s, known, pp, k = rx.stage_resample(x, t0f, cfo, header)
    total = rx.pre_len + rx.hdr_len + 1152 + pp.size
    assert s.size == k.size == total + 2 * (EQ_TAPS // 2) and known.size == rx.pre_len + rx.hdr_len
    # the preamble read back lines up with the known symbols (timing and drift right)
    g = np.vdot(known[:64], s[1:65]) / np.vdot(known[:64], known[:64])
    assert np.mean(np.abs(s[1:65] / g - known[:64]) ** 2) < 0.05
    assert rx.stage_resample(x[: int(t0f) + 2000], t0f, cfo, header) is None


def test_stage_residual_carrier_removes_a_slow_rotation():
    rx = BurstRx(4, code_bits=4608)
    rng = np.random.default_rng(6)
    pp = pilot_positions(1152)
    known = np.exp(0.5j * np.pi * rng.integers(0, 4, 256)).astype(np.complex128)
    total = 256 + 1152 + pp.size
    k = np.arange(-1, total + 1)
    clean = np.exp(0.5j * np.pi * rng.integers(0, 4, k.size))
    clean[k[(k >= 0) & (k < 256)] + 1] = known
    clean[256 + pp + 1] = PILOT_SEQ[: pp.size]
    s = clean * np.exp(1j * (0.3 + 4e-3 * k))
    out, slope = rx.stage_residual_carrier(s, known, pp, k)
    assert abs(slope - 4e-3) < 2e-4
    assert np.max(np.abs(np.angle(out[1:257] / known))) < 0.02


def test_stage_equalise_and_pilot_tracking():
    rx = BurstRx(4, code_bits=4608)
    rng = np.random.default_rng(7)
    pp = pilot_positions(1152)
    known = np.exp(0.5j * np.pi * (rng.integers(0, 4, 256) + 0.5)).astype(np.complex128)
    body = np.exp(0.5j * np.pi * (rng.integers(0, 4, 1152 + pp.size) + 0.5))
    body[pp] = PILOT_SEQ[: pp.size]
    clean = np.concatenate([[0], known, body, [0]])
    s = (0.8 * np.exp(0.4j) * clean + 0.01 * (rng.standard_normal(clean.size) + 1j * rng.standard_normal(clean.size)))
    out, nv = rx.stage_equalise(s, known, pp)
    assert nv < 5e-3 and np.mean(np.abs(out - body) ** 2) < 5e-3
    # tracking alone: a slow phase walk over the body is followed by the pilots
    walk = body * np.exp(1j * np.linspace(0, 1.5, body.size))
    nv_t, corrected, smooth = track_pilots(walk, pp, PILOT_SEQ[: pp.size], 9)
    corrected = kernels.apply_tracking(walk, pp.astype(np.int64), smooth) if corrected is None else corrected
    assert np.max(np.abs(np.angle(corrected[pp[0]:pp[-1]] / body[pp[0]:pp[-1]]))) < 0.05
