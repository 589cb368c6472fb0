"""Shared test fixtures: paths to the optional shared data, and a PDU top-block runner."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NCSC_SHARED", ROOT.parent / "shared"))
LDPC_DATA = SHARED / "data" / "ldpc"
KODAK = SHARED / "data" / "kodak"


def need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set NCSC_SHARED to the shared data folder)")
    return path


@pytest.fixture
def vectors():
    import numpy as np

    return np.load(need(LDPC_DATA / "nr_k1536_n4608_vectors.npz", "5G NR test vectors"))


def run_pdus(block, pdus, n_expected, timeout=30.0, port="in"):
    """Run ``block`` in a real top block, feed it ``pdus``, return what reached a message_debug."""
    import pmt
    from gnuradio import blocks, gr

    tb = gr.top_block()
    sink = blocks.message_debug()
    tb.msg_connect(block, "out", sink, "store")
    tb.start()
    for msg in pdus:
        block.to_basic_block()._post(pmt.intern(port), msg)
    deadline = time.time() + timeout
    while sink.num_messages() < n_expected and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    tb.stop()
    tb.wait()
    return [sink.get_message(i) for i in range(sink.num_messages())]


@pytest.fixture(scope="session")
def tiny_codec():
    """A tiny randomly initialised NCSC model (N=8): real coding path, no trained weights needed."""
    import torch

    from gnuradio.ncsc.codec.coder import NcscCodec
    from gnuradio.ncsc.codec.model import NcscModel

    torch.manual_seed(0)
    model = NcscModel(N=8)
    model.update(force=True)
    return NcscCodec(model.eval())


@pytest.fixture
def small_image(tmp_path):
    """A 96x80 RGB test picture with structure (gradients and a square)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:80, 0:96]
    img = np.stack([x * 2, y * 3, (x + y) % 256], axis=-1).astype(np.uint8)
    img[20:50, 30:60] = [200, 40, 90]
    path = tmp_path / "small.png"
    Image.fromarray(img).save(path)
    return path
