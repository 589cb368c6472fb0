"""Gray QAM (TS 38.211) and soft demapping against the independent vectors."""

from __future__ import annotations

import numpy as np
import pytest

from gnuradio.ncsc.channel import AwgnChannel, esn0_from_ebn0, noise_variance
from gnuradio.ncsc.modulation import ORDERS, constellation, demodulate, modulate


def test_16qam_matches_vectors(vectors):
    pts, labels = constellation("16qam")
    np.testing.assert_allclose(pts, vectors["qam16_points"], atol=1e-6)
    np.testing.assert_array_equal(labels, vectors["qam16_labels"])
    np.testing.assert_allclose(modulate(vectors["codewords"][:4]), vectors["symbols"], atol=1e-6)


@pytest.mark.parametrize("method,key", [("exact", "llr_app"), ("maxlog", "llr_maxlog")])
def test_llrs_match_vectors(vectors, method, key):
    llr = demodulate(vectors["received"], float(vectors["noise_var"]), method=method)
    np.testing.assert_allclose(llr, vectors[key], atol=1e-3)


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_unit_energy_gray_and_round_trip(name):
    pts, labels = constellation(name)
    assert abs(np.mean(np.abs(pts) ** 2) - 1) < 1e-6
    # Gray: nearest neighbours differ in exactly one bit.
    d = np.abs(pts[:, None] - pts[None, :])
    np.fill_diagonal(d, np.inf)
    for i in range(len(pts)):
        j = np.argmin(d[i])
        assert np.sum(labels[i] != labels[j]) == 1
    bits = np.random.default_rng(0).integers(0, 2, 6 * 200)
    llr = demodulate(modulate(bits, name), 1e-3, name)
    np.testing.assert_array_equal((llr > 0).astype(int), bits)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown modulation"):
        modulate([0, 1], "8psk")
    with pytest.raises(ValueError, match="multiple of 4"):
        modulate([0, 1, 1], "16qam")
    with pytest.raises(ValueError, match="non-binary"):
        modulate([0, 1, 2, 1], "16qam")
    with pytest.raises(ValueError, match="noise variance"):
        demodulate(np.ones(4, np.complex64), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        demodulate(np.array([np.nan + 0j]), 0.1)


def test_snr_conventions():
    assert abs(esn0_from_ebn0(3.0, 4, 1536 / 4608) - 4.249) < 1e-3
    assert abs(noise_variance(3.0, "esn0") - 10 ** -0.3) < 1e-12
    ch = AwgnChannel(4.0, "esn0", seed=1)
    x = np.ones(200000, np.complex64)
    assert abs(np.var(ch(x) - x) / ch.noise_var - 1) < 0.02
    same = AwgnChannel(4.0, "esn0", seed=1)
    np.testing.assert_array_equal(AwgnChannel(4.0, "esn0", seed=1)(x[:10]), same(x[:10]))
    with pytest.raises(ValueError, match="snr_type"):
        noise_variance(3.0, "snr")
