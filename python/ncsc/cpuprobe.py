"""What this CPU is proven to run for training: channels_last, bf16 autocast.

On AMD EPYC without AMX (torch 2.14.1) a backward pass through channels_last
convolutions has aborted the process ("double free or corruption"), in fp32 and bf16
alike, and not on every run: heap corruption need not show at once. On Intel with AMX
channels_last is the fast path (~1.8 s against ~5 s per step). So channels_last is used
only where it was measured to pay, CPUs with AMX, and only after a child process has run
it cleanly on a tiny model; the verdict is cached per CPU model, CPU flags and torch
version (``~/.cache/gr-ncsc/cpuprobe.json``). Everywhere else training runs contiguous,
which works on both kinds. ``NCSC_CHANNELS_LAST=0|1`` overrides both rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gr-ncsc" / "cpuprobe.json"
PROBE_TIMEOUT_S = 180

# One forward + backward of the real model's layers, tiny: the crash needs no more.
_CHILD = r"""
import sys, torch
torch.set_num_threads(1)
from gnuradio.ncsc.codec.model import NcscModel
fmt, bf16 = sys.argv[1], sys.argv[2] == "1"
torch.manual_seed(0)
m = NcscModel(N=8)
m.train_quant = "mixed"
x = torch.rand(2, 3, 128, 128)
if fmt == "channels_last":
    m = m.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
for _ in range(2):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = m(x)
    loss = out["x_hat"].float().square().mean() + sum(v.float().log().mean() for v in out["likelihoods"].values())
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())
print("ok")
"""


def _cpuinfo(field: str, default: str) -> str:
    """A field of the first CPU in /proc/cpuinfo (``default`` where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return default
    return next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith(field)), default)


def cpu_model() -> str:
    return _cpuinfo("model name", platform.processor())


def cpu_key() -> str:
    """CPU model + flags + torch version: a verdict holds only for the same of all three."""
    import torch

    model, flags = cpu_model(), _cpuinfo("flags", "")
    digest = hashlib.sha256(f"{model}|{flags}|{torch.__version__}".encode()).hexdigest()[:16]
    return f"{model} / torch {torch.__version__} / {digest}"


def run_probe(fmt: str, bf16: bool, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether one configuration survives forward + backward in a child process."""
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, fmt, "1" if bf16 else "0"], capture_output=True,
                           text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and r.stdout.strip().endswith("ok")


def _load_cache() -> dict:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def has_amx() -> bool:
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the probe
        return False


def channels_last_ok(bf16: bool) -> bool:
    """Whether training may use channels_last here: AMX, and a clean probe (run once, then cached)."""
    env = os.environ.get("NCSC_CHANNELS_LAST")
    if env in ("0", "1"):
        return env == "1"
    if not has_amx():
        return False
    key, name = cpu_key(), f"channels_last/{'bf16' if bf16 else 'fp32'}"
    cache = _load_cache()
    verdicts = cache.get(key, {})
    if name not in verdicts:
        verdicts[name] = run_probe("channels_last", bf16)
        cache[key] = verdicts
        try:
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = CACHE.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, CACHE)
        except OSError:
            pass  # an unwritable cache only costs a probe next time
        print(f"cpu probe: channels_last with {'bf16' if bf16 else 'fp32'} "
              f"{'runs' if verdicts[name] else 'CRASHES'} on {key.split(' / ')[0]}", file=sys.stderr)
    return bool(verdicts[name])
