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
