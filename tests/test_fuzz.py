"""The fuzz harness in the suite: mutated streams, forged blocks and bursts, each case in a child process
(a segfault fails this test instead of killing pytest)."""

from __future__ import annotations

import pytest

from gnuradio.ncsc.bench import fuzz


def test_mutations_cover_the_stream_fields():
    import numpy as np

    base = fuzz.forge_stream([b"NCSC", 1, 1, 0, 1, 0, 0, 64, 64, 1, 1, 8, 4], b"\0" * 12)
    kinds = {fuzz.mutate_stream(base, np.random.default_rng([0, i]))[0].split()[0] for i in range(200)}
    assert {"bitflip", "truncate", "lengths", "size", "8192x8192"} <= kinds


@pytest.mark.slow
def test_fuzz_cases_end_cleanly():
    """200 cases of all three kinds: no crash, no hang, nothing uncaught, bounded time and memory."""
    res = fuzz.run(200, seed=1, timeout=60.0, progress=False)
    assert res["cases"] == 200, res
    assert (res["crashes"], res["hangs"], res["uncaught"]) == (0, 0, 0), res["findings"]
    # memory: what the cases add to the child's start-up (imports, weights, kernels) is bounded;
    # the start-up itself varies with the machine (a fresh clone compiled kernels there once)
    assert 0 < res["baseline_rss_mb"] <= res["max_rss_mb"], res
    assert res["max_rss_mb"] - res["baseline_rss_mb"] <= 600 and res["max_rss_mb"] <= 2048, res
    assert res["max_decode_s"] <= 30, res
