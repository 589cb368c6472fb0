"""Export a training checkpoint as shipped weights and record it in ``weights/manifest.json``.

``python -m gnuradio.ncsc.export CHECKPOINT --metric mse [--images KODAK]``: writes
``weights/ncsc-<metric>-q1.pth`` (fp16, entropy tables updated), measures it on the
image folder with the codec benchmark, and stores sha256, training record and the
measured figures with the command that measured them.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import sys
from pathlib import Path

import torch

from .bench import DEFAULT_IMAGES
from .bench.codec import measure, summarize
from .codec.model import NcscModel
from .codec.registry import config, export_weights, load_codec, weights_dir
from .train import checkpoint_quant


def describe_data(ck: dict) -> str:
    """What the checkpoint's last run trained on, as the manifest records it: its folders with
    their photo counts (the trainer holds the last 4 of each out), crop size and batch."""
    from .train import HELD_OUT, list_images

    try:
        folders = [Path(f) for f in ast.literal_eval(str(ck.get("data", "[]")))]
    except (ValueError, SyntaxError):
        folders = []
    parts = []
    for f in folders:
        try:
            n = len(list_images(f))
            parts.append(f"{'/'.join(f.resolve().parts[-3:])} ({n} photos, {n - HELD_OUT if n > HELD_OUT else n} "
                         f"for training, {min(n, HELD_OUT)} held out)")
        except (OSError, FileNotFoundError):
            parts.append("/".join(f.resolve().parts[-3:]))
    return (f"{' + '.join(parts) or 'folders not recorded'}, random {ck.get('patch', 256)}px crops, "
            f"batch {ck.get('batch', 8)}")


def main(argv: list[str] | None = None) -> int:
    from .codec.registry import METRICS  # the one list of metrics

    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.export", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--metric", choices=METRICS, required=True)
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="evaluation folder (Kodak)")
    p.add_argument("--out", default=None, help="weights folder (default: the source tree's weights/)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg = config(args.metric)
    model = NcscModel(N=ck.get("N", cfg["N"]))
    model.load_state_dict(ck["model"])
    out = Path(args.out) if args.out else weights_dir()
    out.mkdir(parents=True, exist_ok=True)
    fname = f"{cfg['weights']}.pth.gz"
    digest = export_weights(model, out / fname)
    man_path = out / "manifest.json"
    man = json.loads(man_path.read_text()) if man_path.exists() else {}
    entry = {"file": fname, "sha256": digest, "architecture": "ncsc-cheng2020-gmm", "metric": args.metric,
             "quality": 1, "N": model.N, "K": model.K, "lambda": ck.get("lmbda"), "training_steps": ck["step"],
             "final_quantization": checkpoint_quant(ck),
             "training_data": describe_data(ck),
             "exported": datetime.date.today().isoformat(), "size_bytes": (out / fname).stat().st_size}
    man[cfg["weights"]] = entry
    man_path.write_text(json.dumps(man, indent=1) + "\n")
    images = Path(args.images)
    if images.is_dir():
        codec = load_codec(args.metric, directory=out)
        files = sorted(f for f in images.iterdir() if f.suffix.lower() == ".png")
        s = summarize(measure(codec, files))
        entry["kodak"] = {k: round(v, 4) for k, v in s.items() if k in ("bpp", "psnr", "ms_ssim")}
        entry["kodak"]["images"] = s["images"]
        entry["kodak"]["precision"] = codec.precision
        entry["kodak"]["command"] = f"python -m gnuradio.ncsc.bench.codec --images {args.images} --model {args.metric}"
        man[cfg["weights"]] = entry
        man_path.write_text(json.dumps(man, indent=1) + "\n")
    print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
