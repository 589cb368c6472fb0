"""The soak harness on a few images: every image gets a record and no thread is left behind."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_soak_few_images():
    from gnuradio.ncsc.bench import soak

    res = soak.run(6, ebn0=2.5, seed=1, timeout=600)
    assert res["records"] == res["images"] == 6
    assert res["threads_end"] == 0 and res["python_threads_left"] == []
