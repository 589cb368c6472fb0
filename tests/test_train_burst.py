"""The accelerator burst: pack here, train there (on a CPU here, as the device's Python would
see it: CompressAI's sources without its compiled coder), bring the model back in parts, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gnuradio.ncsc import train_burst as tb

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:400]
    for i in range(7):
        img = np.stack([(x * (i + 1)) % 256, (y * 2 + i * 30) % 256, ((x + y) * (i + 2)) % 256], -1)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"p{i}.png")
    return d


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from gnuradio.ncsc.codec.model import NcscModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "checkpoint.pth"
    torch.save({"model": NcscModel(N=8).state_dict(), "metric": "mse", "step": 40, "N": 8, "quant": "mixed",
                "slice_train": 0.7, "lmbda": 0.0018}, path)
    return path


@pytest.fixture(scope="module")
def packed(tmp_path_factory, photos, tiny_checkpoint):
    out = tmp_path_factory.mktemp("burst") / "pack"
    budget = 3_000_000
    m = tb.pack(out, [str(photos)], "mse", str(tiny_checkpoint), budget, crop=128, progress=False)
    return out, m, budget


def test_pack_fills_its_budget_and_nothing_more(packed):
    out, m, budget = packed
    files = [p for p in out.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert size - (out / "pack.json").stat().st_size <= budget and m["bytes"] <= budget
    assert m["crops"] == len(list((out / "crops").glob("*.jpg"))) > 10
    assert m["heldout"] == 4 == len(list((out / "heldout").glob("*.jpg")))  # the trainer's split
    assert m["start"]["step"] == 40 and (out / "start.pth.gz").is_file()
    with Image.open(next((out / "crops").glob("*.jpg"))) as im:
        assert im.size == (128, 128)
    site = out / "site" / "compressai"
    assert (site / "__init__.py").is_file() and not list(site.rglob("*.so"))  # sources only


def test_the_tree_counts_what_travels():
    """Tracked and untracked-but-not-ignored files: the shipped weights at least."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    weights = sum(p.stat().st_size for p in (ROOT / "weights").glob("*.gz"))
    assert tb.travelling_bytes(ROOT, ROOT / ".burst") >= weights


def test_parts_are_checked_and_joined(tmp_path, monkeypatch):
    from gnuradio.ncsc.codec.model import NcscModel

    monkeypatch.setattr(tb, "PART_LIMIT", 100_000)
    state = NcscModel(N=8).state_dict()
    m = tb.write_parts(state, {"metric": "mse", "step": 3}, tmp_path)
    assert 1 < len(m["parts"]) <= tb.FILES_BACK - 2
    assert all((tmp_path / p).stat().st_size <= 100_000 for p in m["parts"])
    _, back = tb.read_parts(tmp_path)
    assert all(torch.equal(back[k], state[k].float() if state[k].is_floating_point() else state[k]) for k in state)
    part = tmp_path / m["parts"][1]
    blob = bytearray(part.read_bytes())
    blob[100] ^= 1
    part.write_bytes(bytes(blob))
    with pytest.raises(SystemExit, match="do not match"):
        tb.read_parts(tmp_path)
    part.unlink()
    with pytest.raises(SystemExit, match="missing"):
        tb.read_parts(tmp_path)


def test_burst_runs_as_on_the_device_and_training_resumes_it(packed, tmp_path):
    """``run`` in a fresh interpreter that finds the pack's CompressAI first (no compiled coder,
    as on the device), two steps on this CPU; then ``unpack`` and the trainer resumes it."""
    pack_dir, _, _ = packed
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pack_dir / "site"), str(ROOT / "python")]))
    cmd = [sys.executable, "-m", "ncsc.train_burst", "run", "--pack", str(pack_dir), "--out", str(out), "--steps",
           "2", "--batch", "2", "--work", str(tmp_path / "work"), "--", "--patch", "64", "--threads", "1"]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "without its compiled coder" in res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["burst_steps"] == 2 and summary["step"] == 42 and summary["before"]["bpp"] > 0
    manifest = json.loads((out / "burst.json").read_text())
    assert len(list(out.iterdir())) <= tb.FILES_BACK
    assert all((out / p).stat().st_size <= tb.PART_LIMIT for p in manifest["parts"])

    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    (ckdir / "checkpoint.pth").write_bytes(b"an older checkpoint")
    ckpt = tb.unpack(out, ckdir)
    assert list(ckdir.glob("checkpoint.before-burst-*.pth"))  # the previous one is kept
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert ck["step"] == 42 and ck["N"] == 8 and ck["quant"] == "mixed"
    from gnuradio.ncsc import train

    assert train.main(["--out", str(ckdir), "--data", str(pack_dir / "crops"), "--eval-dir",
                       str(pack_dir / "heldout"), "--steps", "43", "--batch", "1", "--patch", "64", "--N", "8",
                       "--threads", "1"]) == 0
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["step"] == 43
