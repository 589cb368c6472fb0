"""Burst PHY: detection, synchronisation and decoding under front-end impairments; bad input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from gnuradio.ncsc.channel.impairments import Impairments
from gnuradio.ncsc.fec import LdpcDecoder, encode, nr_code
from gnuradio.ncsc.phy import BurstRx, BurstTx
from gnuradio.ncsc.phy.burst import burst_symbols

CODE = nr_code()
DEC = LdpcDecoder(CODE)


def _bursts(n, seed, gap=(200, 900)):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, CODE.k)).astype(np.uint8)
    tx = BurstTx()
    parts = [np.zeros(int(rng.integers(*gap)), np.complex64)]
    for cw in encode(CODE, bits):
        parts += [tx.burst(cw), np.zeros(int(rng.integers(*gap)), np.complex64)]
    return bits, np.concatenate(parts)


def _decoded(reports, bits):
    got = [DEC.decode(r.llr) for r in reports if r.llr is not None]
    return sum(bool(g.ok[0]) and any((g.bits[0] == b).all() for b in bits) for g in got)


IMPAIRMENTS = {
    "awgn": {},
    "carrier 2% + phase": dict(cfo=0.02, phase=2.5),
    "carrier -2%": dict(cfo=-0.02, phase=-1.0),
    "clock 100 ppm": dict(sco_ppm=100),
    "clock -100 ppm": dict(sco_ppm=-100),
    "3-tap multipath": dict(taps=(1.0, 0.4j, -0.2)),
    "IQ imbalance + DC": dict(iq_gain=0.1, iq_phase=0.1, dc=0.2 + 0.1j),
    "phase noise": dict(cfo=0.01, phase_noise=0.03),  # ~1 rad of random walk over a burst
    "everything": dict(cfo=0.015, phase=1.0, sco_ppm=-100, taps=(1.0, 0.3, 0.1j), iq_gain=0.05, dc=0.05),
}


@pytest.mark.parametrize("name", list(IMPAIRMENTS))
def test_bursts_survive_impairments(name):
    bits, sig = _bursts(4, seed=zlib.crc32(name.encode()) % 1000)
    rx = BurstRx()
    reports = rx.receive(Impairments(esn0_db=8.0, seed=1, **IMPAIRMENTS[name])(sig))
    assert len(reports) == 4
    assert _decoded(reports, bits) == 4
    cfo = IMPAIRMENTS[name].get("cfo", 0.0)
    assert all(abs(r.cfo - cfo) < 2e-3 for r in reports)
    assert all(2.0 < r.snr_db < 12.0 for r in reports)


def test_clean_burst_llr_signs_are_the_codeword():
    bits, sig = _bursts(1, seed=3)
    (rep,) = BurstRx().receive(Impairments(esn0_db=30, seed=0)(sig))
    np.testing.assert_array_equal((rep.llr > 0).astype(np.uint8), encode(CODE, bits)[0])
    assert rep.header == {"modulation": "16qam", "code_id": 0, "n_symbols": 1152}


def test_noise_only_finds_nothing():
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(50000) + 1j * rng.standard_normal(50000)).astype(np.complex64)
    assert BurstRx().receive(noise) == []
    assert BurstRx().receive(noise * 0 + (0.3 + 0.2j)) == []  # pure DC is no burst either


def test_truncated_and_corrupted_bursts_are_reported_not_decoded():
    bits, sig = _bursts(1, seed=5, gap=(300, 301))
    cut = sig[: 300 + 4 * burst_symbols(1152) // 2]
    reps = BurstRx().receive(Impairments(esn0_db=20, seed=2)(cut))
    assert len(reps) == 1 and reps[0].llr is None and reps[0].header is not None
    bad = sig.copy()
    hdr0 = 300 + 4 * 64 + 16  # inside the header
    rng = np.random.default_rng(9)
    bad[hdr0 : hdr0 + 4 * 200] = (rng.standard_normal(800) + 1j * rng.standard_normal(800)) * 0.7  # header lost
    reps = BurstRx().receive(Impairments(esn0_db=20, seed=3)(bad))
    assert all(r.llr is None and r.header is None for r in reps)


def test_overlapping_bursts_do_not_crash():
    bits, a = _bursts(1, seed=6, gap=(100, 101))
    _, b = _bursts(1, seed=7, gap=(100, 101))
    mix = a.copy()
    mix[2000 : 2000 + b.size] += b[: mix.size - 2000]
    reps = BurstRx().receive(Impairments(esn0_db=15, seed=4)(mix))
    assert isinstance(reps, list)


def test_strong_bursts_after_silence_are_all_found():
    """At high SNR the DC blocker's leftover in the silence before a burst is a perfect
    repetition; the detector takes each window's mean out, so it does not fire there and cut
    the preamble search short (which once lost 1 burst in 20 at 25 dB)."""
    bits, sig = _bursts(12, seed=13, gap=(300, 900))
    reports = BurstRx().receive(Impairments(esn0_db=28.0, seed=2, phase=0.4)(sig))
    assert len(reports) == 12 and _decoded(reports, bits) == 12


def test_equalised_symbols_are_unbiased_and_the_noise_estimate_honest():
    """QPSK pilots (a constant pilot would let the widely linear equaliser's conjugate and DC
    terms bias the gain by several percent) and a leave-one-out noise estimate."""
    from gnuradio.ncsc.modulation import modulate
    from gnuradio.ncsc.phy import burst as burst_mod

    rng = np.random.default_rng(4)
    captured = []
    real = burst_mod.demodulate

    def spy(data, nv, mod):
        captured.append((np.array(data), nv))
        return real(data, nv, mod)

    cws = encode(CODE, rng.integers(0, 2, (8, CODE.k)).astype(np.uint8))
    tx = BurstTx()
    sig = np.concatenate([np.concatenate([np.zeros(500, np.complex64), tx.burst(c)]) for c in cws] +
                         [np.zeros(500, np.complex64)])
    es = 3.5
    burst_mod.demodulate = spy
    try:
        BurstRx().receive(Impairments(esn0_db=es, seed=3, cfo=0.02, sco_ppm=100, phase=1.0)(sig))
    finally:
        burst_mod.demodulate = real
    assert len(captured) == 8
    gains, ratios = [], []
    for (data, nv), cw in zip(captured, cws, strict=True):
        x = modulate(cw)
        g = np.vdot(x, data) / np.vdot(x, x)
        gains.append(abs(g))
        ratios.append(nv / np.mean(np.abs(data - g * x) ** 2))
    assert abs(np.mean(gains) - 1) < 0.02 and np.std(gains) < 0.1  # all-ones pilots: mean 0.96
    assert 0.85 < np.mean(ratios) < 1.15
    # and the symbols are within 0.3 dB of the channel's noise
    noise = np.mean([np.mean(np.abs(d / (np.vdot(modulate(c), d) / np.vdot(modulate(c), modulate(c)))
                                    - modulate(c)) ** 2) for (d, _), c in zip(captured, cws, strict=True)])
    assert 10 * np.log10(noise / 10 ** (-es / 10)) < 0.3


@pytest.mark.parametrize("ppm", [100, -100, 0])
def test_blind_clock_drift_estimate(ppm):
    bits, sig = _bursts(1, seed=5, gap=(400, 401))
    x = Impairments(esn0_db=20.0, seed=1, sco_ppm=ppm)(sig)
    rx = BurstRx()
    mf = np.convolve(x - x.mean(), rx.taps)
    drift = rx._clock_drift(mf, 400 + rx.taps.size - 1, burst_symbols(CODE.n // 4))
    assert abs(drift - (-ppm * 1e-6 * rx.sps)) < 3e-5  # samples per symbol; 1400 symbols: < 0.04 sample


def test_clock_offset_model_keeps_the_signal():
    """The impairment model resamples with cubic interpolation: no loss of its own."""
    _, sig = _bursts(1, seed=6)
    out = Impairments(esn0_db=200.0, sco_ppm=100)(sig)
    assert abs(np.sum(np.abs(out) ** 2) / np.sum(np.abs(sig) ** 2) - 1) < 0.01


def test_copy_ids_and_the_combiner():
    """Copy j of r in a header's code_id, and the receiver's sum over a codeword's copies: all
    copies in, a copy lost (the next codeword flushes what came), plain bursts untouched."""
    from gnuradio.ncsc.phy import CopyCombiner, copy_id, parse_copy

    assert copy_id(1, 0) == 0 and parse_copy(0) == (1, 0)
    for r in (2, 3, 4):
        for j in range(r):
            assert parse_copy(copy_id(r, j)) == (r, j)
    assert parse_copy(0x01) is None and parse_copy(0x80 | 0x12) is None  # unknown, copy 2 of 2
    with pytest.raises(ValueError):
        copy_id(2, 2)
    a, b, c = (np.full(4, v, np.float32) for v in (1.0, 2.0, 4.0))
    comb = CopyCombiner()
    assert comb.add({"n": 0}, a, copy_id(2, 0)) == []
    ((info, llr, n),) = comb.add({"n": 1}, b, copy_id(2, 1))
    assert info == {"n": 0} and n == 2 and np.all(llr == 3.0)
    assert comb.add({"n": 2}, a, copy_id(2, 0)) == []  # its copy 1 is lost ...
    out = comb.add({"n": 3}, c, 0)  # ... a plain burst flushes it first
    assert [(i["n"], float(v[0]), k) for i, v, k in out] == [(2, 1.0, 1), (3, 4.0, 1)]
    assert comb.add({"n": 4}, a, copy_id(2, 1)) == [] and len(comb.flush()) == 1 and comb.flush() == []
