"""Registry of NCSC architectures and qualities, and verified loading of shipped weights.

(architecture, metric, quality) -> config, as CompressAI's zoo does. Weights live in
``weights/`` with ``manifest.json`` (sha256, training record, measured Kodak
figures); a file whose hash differs from the manifest is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
from pathlib import Path

import torch

from .coder import DEFAULT_MAX_PIXELS, NcscCodec
from .model import NcscModel

ARCHITECTURES = {"ncsc-cheng2020-gmm": {"id": 1, "cls": NcscModel}}
DEFAULT_ARCH = "ncsc-cheng2020-gmm"
METRICS = ("mse", "ms-ssim")
# "lmbda" is CompressAI's lambda for the quality level: the training default. The lambda the
# shipped weights were actually trained at is recorded in weights/manifest.json.
CONFIGS = {
    ("ncsc-cheng2020-gmm", "mse", 1): {"N": 128, "K": 3, "lmbda": 0.0018, "weights": "ncsc-mse-q1"},
    ("ncsc-cheng2020-gmm", "ms-ssim", 1): {"N": 128, "K": 3, "lmbda": 2.40, "weights": "ncsc-msssim-q1"},
}
MODEL_IDS = {spec["id"]: name for name, spec in ARCHITECTURES.items()}


class WeightsError(RuntimeError):
    """Missing, unlisted or corrupted weight file."""


def weights_dir() -> Path:
    """$NCSC_WEIGHTS_DIR, else the installed package's weights/, else the source tree's weights/."""
    env = os.environ.get("NCSC_WEIGHTS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "weights", here.parent.parent / "weights"):
        if (cand / "manifest.json").exists():
            return cand
    return here.parent.parent / "weights"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(directory: Path | None = None) -> dict:
    directory = Path(directory) if directory else weights_dir()
    path = directory / "manifest.json"
    if not path.exists():
        raise WeightsError(f"no weights manifest at {path}")
    return json.loads(path.read_text())


def config(metric: str = "mse", quality: int = 1, arch: str = DEFAULT_ARCH) -> dict:
    key = (arch, metric, int(quality))
    if key not in CONFIGS:
        known = ", ".join(f"{a}/{m}/q{q}" for a, m, q in CONFIGS)
        raise KeyError(f"no NCSC model {arch}/{metric}/q{quality}; known: {known}")
    return CONFIGS[key]


def build_model(metric: str = "mse", quality: int = 1, arch: str = DEFAULT_ARCH) -> NcscModel:
    cfg = config(metric, quality, arch)
    return ARCHITECTURES[arch]["cls"](N=cfg["N"], K=cfg["K"])


def load_state(path: Path, expected_sha256: str | None) -> dict:
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weight file not found: {path}")
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise WeightsError(f"weight file {path} has sha256 {actual}, but the manifest expects "
                               f"{expected_sha256}: refusing to load a changed or corrupted file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                state = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"cannot read weight file {path}: {exc}") from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _load_into(model: NcscModel, state: dict) -> None:
    state = dict(state)
    state.setdefault("context_prediction.mask", model.context_prediction.mask)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"weights do not fit the {type(model).__name__} architecture: {exc}") from exc


def load_codec(metric: str = "mse", quality: int = 1, arch: str = DEFAULT_ARCH,
               directory: str | os.PathLike | None = None, precision: str = "auto",
               max_pixels: int | None = None) -> NcscCodec:
    """The shipped, hash-verified weights of (arch, metric, quality) as a ready codec (eval mode)."""
    cfg = config(metric, quality, arch)
    directory = Path(directory) if directory else weights_dir()
    entry = manifest(directory).get(cfg["weights"])
    if entry is None:
        raise WeightsError(f"{cfg['weights']} is not listed in {directory / 'manifest.json'}")
    model = build_model(metric, quality, arch)
    _load_into(model, load_state(directory / entry["file"], entry["sha256"]))
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    return NcscCodec(model.eval(), ARCHITECTURES[arch]["id"], metric, quality, precision, limit)


def codec_from_state(state: dict, metric: str = "mse", quality: int = 1, arch: str = DEFAULT_ARCH,
                     N: int | None = None, precision: str = "auto") -> NcscCodec:
    """A codec from an in-memory state dict (tests with tiny models, training checkpoints); the
    entropy bottleneck's tables are rebuilt from its parameters, as an export does."""
    model = build_model(metric, quality, arch) if N is None else NcscModel(N=N)
    _load_into(model, state)
    model.update(force=True)
    return NcscCodec(model.eval(), ARCHITECTURES[arch]["id"], metric, quality, precision)


def export_weights(model: NcscModel, path: Path) -> str:
    """Save a trained model for shipping: update() the entropy tables, store fp16; returns sha256."""
    model = model.eval()
    model.update(force=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    # The entropy bottleneck's CDF tables are integers already; keep its float params in fp32 so
    # the z-coding tables stay what update() made of them.
    for k, v in model.state_dict().items():
        if k.startswith("entropy_bottleneck"):
            state[k] = v
    state.pop("context_prediction.mask", None)  # a constant of the architecture, rebuilt at load
    buf = io.BytesIO()
    torch.save(state, buf)
    # gzip (mtime 0: same bytes for the same weights) keeps the file under the 25 MB budget.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(buf.getvalue())
    return sha256(path)


_NAMED: dict = {}
_NAMED_LOCK = threading.Lock()


def load_named_codec(model: str, weights_dir: str = "") -> NcscCodec:
    """The shipped codec of a metric, from ``weights_dir`` when given (what the blocks take).

    Loaded once per process and shared: an Image Source and a Decoder Sink in one flowgraph
    then verify and load the 22 MB of weights once, not twice (the encoder and the decoder use
    different parts of the model, read-only)."""
    key = (model, str(Path(weights_dir).resolve()) if weights_dir else "")
    with _NAMED_LOCK:
        if key not in _NAMED:
            _NAMED[key] = load_codec(model, directory=weights_dir or None)
        return _NAMED[key]
