"""Link profiles: every shipped file loads and validates; bad files fail with the field named."""

from __future__ import annotations

import pytest

from gnuradio.ncsc.profiles import ProfileError, list_profiles, load_profile, parse


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_loads(name):
    prof = load_profile(name)
    assert prof.name == name and prof.n > prof.k
    assert prof.symbols_per_codeword * prof.bits_per_symbol >= prof.n


def test_shipped_profiles_exist():
    assert {"paper-awgn", "ota-16qam", "ota-qpsk-robust", "ota-64qam-fast"} <= set(list_profiles())


def test_allowed_values_are_the_modules_own():
    from gnuradio.ncsc import profiles
    from gnuradio.ncsc.channel.awgn import SNR_TYPES
    from gnuradio.ncsc.codec.registry import METRICS
    from gnuradio.ncsc.fec.decoder import ALGORITHMS
    from gnuradio.ncsc.modulation import DEMAPPERS, ORDERS

    assert set(profiles._MODULATIONS) == set(ORDERS) and set(profiles._DEMAPPERS) == set(DEMAPPERS)
    assert set(profiles._SNR_TYPES) == set(SNR_TYPES) and set(profiles._METRICS) == set(METRICS)
    assert set(profiles._ALGORITHMS) == set(ALGORITHMS)


GOOD = {"name": "x", "code": {"k": 1536, "n": 4608}, "modulation": "qpsk"}


@pytest.mark.parametrize("change,match", [
    ({"modulation": "8psk"}, "modulation"),
    ({"code": {"k": 1537, "n": 4608}}, "multiple of 8"),
    ({"code": {"k": 1536}}, "k and n"),
    ({"colour": "red"}, "unknown field"),
    ({"burst": {"sps": 1}}, "burst settings"),
    ({"burst": {"spss": 4}}, "burst.spss"),
    ({"ldpc": {"max_iter": "many"}}, "ldpc.max_iter must be int"),
    ({"codec": {"model": "psnr"}}, "codec.model"),
    ({"codec": {"slice_rows": 4}}, "go together"),
    ({"codec": {"slice_rows": 0, "slice_cols": 24}}, "1..255"),
    ({"ldpc": {"head_repeat": 2}}, "needs codec.slice_rows"),
    ({"ldpc": {"head_repeat": 5}, "codec": {"slice_rows": 4, "slice_cols": 24}}, "head_repeat must be within"),
])
def test_bad_profiles_name_the_field(change, match):
    with pytest.raises(ProfileError, match=match):
        parse({**GOOD, **change}, "test.yml")


def test_missing_and_unknown_profiles(tmp_path):
    with pytest.raises(ProfileError, match="no link profile"):
        load_profile("no-such-profile")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(bad)
    ok = tmp_path / "mine.yml"
    ok.write_text("name: mine\ncode: {k: 1024, n: 2048}\nmodulation: 64qam\n")
    prof = load_profile(ok)
    assert prof.code_rate == 0.5 and prof.symbols_per_codeword == 342


def test_blocks_take_their_settings_from_a_profile():
    """Blocks given only a profile derive every link setting from it; explicit values override."""
    from gnuradio import ncsc

    assert ncsc.qam_mapper(profile="ota-qpsk-robust").modulation == "qpsk"
    assert ncsc.qam_mapper("64qam", profile="ota-qpsk-robust").modulation == "64qam"
    dem = ncsc.soft_demapper(profile="ota-64qam-fast")
    assert dem.modulation == "64qam"
    mod = ncsc.burst_modulator(profile="ota-qpsk-robust")
    assert mod.tx.modulation == "qpsk" and mod.bps == 2
    ch = ncsc.awgn_channel(profile="paper-awgn")
    prof = ncsc.load_profile("paper-awgn")
    assert ch.channel.bits_per_symbol == prof.bits_per_symbol
    assert ncsc.framer(profile="paper-awgn").framer.k == prof.k
    assert ncsc.deframer(profile="paper-awgn").k == prof.k
    dec = ncsc.ldpc_decoder(profile="ota-16qam", max_iter=7)
    assert dec.decoder.max_iter == 7 and dec.decoder.code.n == prof.n


def test_graceful_profile_slices():
    prof = load_profile("paper-awgn-graceful")
    assert prof.slices == (4, 24) and load_profile("paper-awgn").slices is None
