"""5G NR LDPC: construction, encoder against independent vectors, decoder behaviour, alist codes."""

from __future__ import annotations

import glob

import numpy as np
import pytest
from conftest import LDPC_DATA, need

from gnuradio.ncsc.channel import AwgnChannel
from gnuradio.ncsc.fec import ALGORITHMS, AlistError, LdpcDecoder, alist_code, encode, encode_vars, nr_code
from gnuradio.ncsc.fec import decoder as decmod
from gnuradio.ncsc.fec import nr as nrp
from gnuradio.ncsc.modulation import demodulate, modulate


def test_default_parameters_match_the_standard():
    p = nrp.nr_params(1536, 4608)
    assert (p.bg, p.z, p.i_ls, p.k_b, p.n_filler, p.n_cb) == (2, 160, 2, 10, 64, 8000)


def test_lifting_sizes_table():
    sizes = nrp.lifting_sizes()
    assert len(sizes) == 51 and min(sizes) == 2 and max(sizes) == 384
    assert sizes[384] == 1 and sizes[160] == 2 and sizes[208] == 6


def test_encoder_is_bit_exact_with_vectors(vectors):
    code = nr_code(1536, 4608)
    np.testing.assert_array_equal(encode(code, vectors["info_bits"]), vectors["codewords"])


def test_rate_matching_layout_matches_reference_alist_columns():
    info = need(LDPC_DATA / "nr_1536_4608_info.json", "LDPC info json")
    assert info.exists()
    idx = nrp.rate_match_indices(nrp.nr_params(1536, 4608))
    np.testing.assert_array_equal(idx, np.r_[320:1536, 1600:4992])


@pytest.mark.parametrize("k,n", [(40, 120), (500, 1000), (1536, 4608), (3840, 4000), (8448, 10000), (100, 2000)])
def test_any_allowed_size_gives_valid_codewords(k, n):
    code = nr_code(k, n)
    bits = np.random.default_rng(k).integers(0, 2, (3, k))
    assert code.syndrome_ok(encode_vars(code, bits)).all()
    assert encode(code, bits).shape == (3, n)


def test_redundancy_versions_start_where_the_standard_says():
    assert nrp.nr_params(1536, 4608, rv=2).k0 == (25 * 8000 // (50 * 160)) * 160
    code = nr_code(1536, 4608, rv=1)
    bits = np.zeros((1, 1536), dtype=np.uint8)
    assert code.syndrome_ok(encode_vars(code, bits)).all()


def test_repetition_beyond_the_circular_buffer_combines_llrs():
    code = nr_code(100, 3000)  # BG2 with Z small: n exceeds the circular buffer
    assert np.unique(code.tx_map).size < code.n
    bits = np.random.default_rng(0).integers(0, 2, (4, 100))
    cw = encode(code, bits)
    res = LdpcDecoder(code).decode(4.0 * (2.0 * cw - 1))
    assert res.ok.all() and (res.bits == bits).all()


def test_vector_llrs_decode_to_vector_bits(vectors):
    from gnuradio.ncsc.modulation import demodulate

    code = nr_code()
    llr = demodulate(vectors["received"], float(vectors["noise_var"]))
    res = LdpcDecoder(code, max_iter=50).decode(llr)
    # Es/N0 = 3 dB is below the waterfall: only some of the 4 vectors decode, and those exactly.
    good = res.ok
    np.testing.assert_array_equal(res.bits[good], vectors["info_bits"][:4][good])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_round_trip_exact_at_high_snr(algorithm):
    code = nr_code()
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (40, code.k), dtype=np.uint8)
    ch = AwgnChannel(8.0, "esn0", seed=2)
    llr = demodulate(ch(modulate(encode(code, bits))), ch.noise_var)
    res = LdpcDecoder(code, algorithm=algorithm).decode(llr)
    assert res.ok.all()
    np.testing.assert_array_equal(res.bits, bits)
    assert res.iterations.max() <= 5  # early stop on a zero syndrome


def test_sum_product_fer_near_reference_at_3p5db():
    """Layered sum-product with 20 iterations: reference 0.0078 at Es/N0 3.5 dB (ANCHORS.md)."""
    code = nr_code()
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, (300, code.k), dtype=np.uint8)
    ch = AwgnChannel(3.5, "esn0", seed=8)
    llr = demodulate(ch(modulate(encode(code, bits))), ch.noise_var)
    res = LdpcDecoder(code, max_iter=20).decode(llr)
    fer = np.mean(np.any(res.bits != bits, axis=1))
    assert fer <= 0.03
    assert np.array_equal(~res.ok, np.any(res.bits != bits, axis=1)) or fer < 0.03


need_c = pytest.mark.skipif(not decmod.c_kernel_available(),
                            reason="LDPC C kernel not built (make setup) or no AVX-512BW on this CPU")


@need_c
@pytest.mark.parametrize("k,n,esn0", [(1536, 4608, 3.25), (40, 120, 5.0), (100, 300, 4.0), (500, 1000, 7.5),
                                      (3000, 4500, 11.0), (8448, 12672, 6.0)])
def test_c_kernel_decodes_like_the_numba_kernel(k, n, esn0):
    """Z = 160, 7, 18, 64, 320 and BG1 with Z = 384: rotations that straddle the 32-lane chunks."""
    code = nr_code(k, n)
    rng = np.random.default_rng(k)
    n_cw = max(8, 60000 // n)
    bits = rng.integers(0, 2, (n_cw, k), dtype=np.uint8)
    ch = AwgnChannel(esn0, "esn0", seed=k + 1)
    llr = demodulate(ch(modulate(encode(code, bits))), ch.noise_var)
    c = LdpcDecoder(code, kernel="c")
    nb_ = LdpcDecoder(code, kernel="numba")
    assert (c.kernel, nb_.kernel) == ("c", "numba")
    rc, rn = c.decode(llr), nb_.decode(llr)
    err_c = np.any(rc.bits != bits, axis=1)
    err_n = np.any(rn.bits != bits, axis=1)
    # Fixed point against float: the same codewords decode, within a codeword or two near the cliff.
    assert abs(int(err_c.sum()) - int(err_n.sum())) <= max(2, n_cw // 50)
    # Undetected errors (a wrong codeword) happen with short codes, as often in both kernels.
    assert np.sum(rc.ok != ~err_c) <= np.sum(rn.ok != ~err_n) + 2
    assert abs(rc.iterations.mean() - rn.iterations.mean()) < 0.5


@need_c
def test_c_kernel_exact_at_high_snr_and_fails_honestly_on_noise():
    code = nr_code()
    bits = np.random.default_rng(1).integers(0, 2, (5, code.k), dtype=np.uint8)
    res = LdpcDecoder(code, kernel="c").decode(8.0 * (2.0 * encode(code, bits) - 1))
    assert res.ok.all() and np.array_equal(res.bits, bits) and (res.iterations == 1).all()
    res = LdpcDecoder(code, kernel="c", max_iter=7).decode(np.random.default_rng(0).normal(0, 0.5, (3, code.n)))
    assert not res.ok.any() and (res.iterations == 7).all()


def test_kernel_choice(monkeypatch):
    assert LdpcDecoder(nr_code(), algorithm="min-sum").kernel == "numba"
    with pytest.raises(ValueError, match="quasi-cyclic"):
        if decmod.c_kernel_available():
            LdpcDecoder(nr_code(), algorithm="min-sum", kernel="c")
        else:
            raise ValueError("quasi-cyclic (skipped: no C kernel)")
    monkeypatch.setattr(decmod, "_C_LIB", None)
    assert LdpcDecoder(nr_code()).kernel == "numba"
    with pytest.raises(ValueError, match="not built"):
        LdpcDecoder(nr_code(), kernel="c")
    with pytest.raises(ValueError, match="unknown kernel"):
        LdpcDecoder(nr_code(), kernel="gpu")


def test_failure_is_reported_not_hidden():
    code = nr_code()
    res = LdpcDecoder(code, max_iter=5).decode(np.random.default_rng(0).normal(0, 0.5, (3, code.n)))
    assert not res.ok.any() and (res.iterations == 5).all()


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((2, 100)), "shape"),
    (np.full((1, 4608), np.nan), "NaN"),
    (np.full((1, 4608), np.inf), "NaN or infinite"),
    (np.array(["a"] * 4608), "real"),
])
def test_decoder_rejects_bad_llrs(bad, msg):
    with pytest.raises(ValueError, match=msg):
        LdpcDecoder(nr_code()).decode(bad)


@pytest.mark.parametrize("bad,msg", [
    (np.full((1, 1536), 2), "non-binary"),
    (np.zeros((1, 100)), "shape"),
    (np.full((1, 1536), 0.5), "integers"),
])
def test_encoder_rejects_bad_bits(bad, msg):
    with pytest.raises(ValueError, match=msg):
        encode(nr_code(), bad)


def test_bad_decoder_settings():
    with pytest.raises(ValueError, match="unknown algorithm"):
        LdpcDecoder(nr_code(), algorithm="magic")
    with pytest.raises(ValueError, match="max_iter"):
        LdpcDecoder(nr_code(), max_iter=0)


def test_reference_alist_loads_and_matches_the_nr_code(vectors):
    code = alist_code(need(LDPC_DATA / "nr_1536_4608.alist", "reference alist"))
    assert (code.n, code.m) == (4992, 3392)
    # The NR codeword laid out as the alist's columns satisfies its parity checks.
    nr = nr_code()
    full = encode_vars(nr, vectors["info_bits"][:8])[:, :4992]
    assert code.syndrome_ok(full).all()


GR_ALISTS = sorted(glob.glob("/usr/share/gnuradio/fec/ldpc/*.alist"))


@pytest.mark.skipif(not GR_ALISTS, reason="GNU Radio's alist files are not installed")
@pytest.mark.parametrize("path", GR_ALISTS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_gnuradio_alist_files_load_and_round_trip(path):
    code = alist_code(path)
    bits = np.random.default_rng(3).integers(0, 2, (5, code.k))
    cw = encode(code, bits)
    assert code.syndrome_ok(encode_vars(code, bits)).all()
    res = LdpcDecoder(code).decode(6.0 * (2.0 * cw - 1))
    assert res.ok.all() and (res.bits == bits).all()


def test_unreadable_alist_files(tmp_path):
    missing = tmp_path / "missing.alist"
    with pytest.raises(AlistError, match="cannot read"):
        alist_code(missing)
    bad = tmp_path / "text.alist"
    bad.write_text("hello world\n")
    with pytest.raises(AlistError):
        alist_code(bad)
    trunc = tmp_path / "trunc.alist"
    trunc.write_text("4 2\n1 2\n1 1 1 1\n2 2\n1\n2\n")
    with pytest.raises(AlistError, match="truncated"):
        alist_code(trunc)
    outside = tmp_path / "range.alist"
    outside.write_text("2 1\n1 2\n1 1\n2\n1\n5\n1 2\n")
    with pytest.raises(AlistError, match="out of range"):
        alist_code(outside)
