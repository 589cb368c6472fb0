"""Imports run one way: the core packages never import blocks, benchmarks or tools; light modules
load without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "python" / "ncsc"
CORE = ("codec", "fec", "modulation", "framing", "phy", "channel", "profiles")
CORE_FILES = ("dsp.py", "imaging.py", "cpuprobe.py", "samples.py", "link.py")
UPPER = ("blocks", "bench", "train", "train_burst", "export", "loopback")


def _imports(path: Path) -> list[str]:
    """Every module a file imports, as a dotted path relative to the package (e.g. 'bench.codec')."""
    rel = path.relative_to(PKG).with_suffix("").parts
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level])
                mod = ".".join(base + ([node.module] if node.module else []))
                out += [mod] if node.module else [f"{mod}.{a.name}".lstrip(".") for a in node.names]
            elif node.module and node.module.startswith("gnuradio.ncsc"):
                out.append(node.module.removeprefix("gnuradio.ncsc").lstrip("."))
        elif isinstance(node, ast.Import):
            out += [a.name.removeprefix("gnuradio.ncsc").lstrip(".") for a in node.names
                    if a.name.startswith("gnuradio.ncsc")]
    return out


def _core_files():
    files = [p for pkg in CORE for p in (PKG / pkg).rglob("*.py")]
    return files + [PKG / f for f in CORE_FILES if (PKG / f).exists()]


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_core_modules_never_import_upward(path):
    bad = [m for m in _imports(path) if m.split(".")[0] in UPPER]
    assert not bad, f"{path.relative_to(PKG)} imports {bad}"


def test_light_modules_load_without_torch():
    code = ("import sys; import gnuradio.ncsc.codec.bitstream, gnuradio.ncsc.framing, gnuradio.ncsc.profiles, "
            "gnuradio.ncsc.dsp; print(sorted(m for m in ('torch', 'compressai') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def _fresh(code: str, env: dict | None = None) -> str:
    import os

    run_env = dict(os.environ)
    run_env.pop("NCSC_FULL_IMPORT", None)
    run_env.update(env or {})
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300,
                         env=run_env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_codec_imports_compressai_without_pyg_torchvision_or_dynamo():
    """The codec's import (what a GUI flowgraph waits for) leaves out PyTorch Geometric and
    torchvision, and with them torch._dynamo; nothing of the placeholders stays behind, so the
    real packages still import afterwards, and CompressAI's point-cloud transforms refuse to run
    with a clear message instead of misbehaving."""
    code = """
import sys
from gnuradio.ncsc.codec import model
print(sorted(m for m in ("torch_geometric", "torchvision", "torch._dynamo") if m in sys.modules))
print(any(getattr(m, "__ncsc_placeholder__", False) is True for m in list(sys.modules.values())))
from compressai.transforms.point import RandomSample
try:
    RandomSample(8)
except RuntimeError as exc:
    print("refused:", "NCSC_FULL_IMPORT" in str(exc))
import torchvision.transforms
print(hasattr(torchvision.transforms, "ToTensor"))
"""
    assert _fresh(code).splitlines() == ["[]", "False", "refused: True", "True"]


def test_full_import_on_request_or_when_already_loaded():
    code = """
import sys
{pre}
from gnuradio.ncsc.codec import model
from compressai.registry import TRANSFORMS
print("torchvision" in sys.modules, "RandomCrop" in TRANSFORMS)
"""
    assert _fresh(code.format(pre=""), {"NCSC_FULL_IMPORT": "1"}) == "True True"
    assert _fresh(code.format(pre="import torchvision")) == "True True"
