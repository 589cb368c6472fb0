"""Golden streams decode the same on every CPU: identical latents, pixels within a stated tolerance.

Made by ``python -m gnuradio.ncsc.bench.golden --images KODAK`` with the shipped weights;
remade whenever the weights change (the test says so when they do not match).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def _doc():
    return json.loads((GOLDEN / "golden.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("entry", _doc()["streams"], ids=lambda e: e["stream"])
def test_golden_stream_decodes_identically(entry):
    from PIL import Image

    from gnuradio.ncsc.bench.golden import latent_sha256
    from gnuradio.ncsc.codec.image import to_array
    from gnuradio.ncsc.codec.registry import load_codec, manifest

    doc = _doc()
    shipped = {k: v["sha256"] for k, v in manifest().items()}
    if shipped != doc["weights"]:
        pytest.fail("the shipped weights changed: rerun python -m gnuradio.ncsc.bench.golden --images KODAK")
    data = (GOLDEN / entry["stream"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256_stream"]
    dec = load_codec(entry["model"]).decompress(data)
    assert latent_sha256(dec["y_hat"]) == entry["sha256_latents"]
    got = to_array(dec["x_hat"]).astype(int)
    ref = np.asarray(Image.open(GOLDEN / entry["png"]).convert("RGB")).astype(int)
    diff = int(np.abs(got - ref).max())
    print(f"{entry['stream']}: latents identical, largest pixel difference {diff} levels "
          f"(made with {doc['precision_made']})")
    assert diff <= doc["pixel_tolerance"]
