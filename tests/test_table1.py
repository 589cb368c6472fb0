"""Table I machinery: rate matching of classical codecs and the plain-module link."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gnuradio.ncsc.bench.table1 import ENCODERS, classical_decode, rate_match, send
from gnuradio.ncsc.link import PlainLink


@pytest.fixture
def photo(small_image):
    return np.asarray(Image.open(small_image).convert("RGB").resize((192, 160)))


@pytest.mark.parametrize("method", ["jpeg", "webp", "hevc", "avif"])
def test_rate_match_stays_under_target_and_decodes(photo, method):
    target = 1.0
    data, q = rate_match(photo, method, target)
    assert 8 * len(data) / (192 * 160) <= target or q == 1
    if q < 100:  # the next quality step would exceed the target
        assert 8 * len(ENCODERS[method](photo, q + 1)) / (192 * 160) > target or q == 1
    assert classical_decode(data).shape == photo.shape


def test_link_delivers_bytes_or_reports_failure():
    data = bytes(np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8))
    got, cws, failed = send(PlainLink(8.0, snr_type="ebn0"), data)
    assert got == data and cws == 4 and failed == 0
    got, cws, failed = send(PlainLink(-3.0, snr_type="ebn0"), data)
    assert got is None and failed > 0
