"""Golden streams: small .ncsc files made with the shipped weights, for decoding on any machine.

``python -m gnuradio.ncsc.bench.golden --images DIR [--out tests/golden]`` encodes a 256x256
crop of a few images with each shipped model and writes, per stream, the ``.ncsc`` file,
the decoded PNG and ``golden.json`` (sha256 of the stream, of the decoded latent symbols,
and of the PNG). ``tests/test_golden.py`` decodes them on whatever CPU runs the tests:
the latents must be identical (the probability path is exact integer arithmetic); the
pixels may differ by a few levels (float synthesis, fp32 or bf16). Rerun when the
weights change. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "tests" / "golden"
IMAGES = ("kodim04.png", "kodim23.png")
CROP = 256


def latent_sha256(y_hat) -> str:
    """sha256 of the decoded latent symbols as int32, C order."""
    return hashlib.sha256(np.ascontiguousarray(y_hat.numpy().round().astype(np.int32)).tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.golden", description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="folder holding the source images (Kodak)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    from PIL import Image

    from ..codec.coder import resolve_precision
    from ..codec.image import from_array, to_array
    from ..codec.registry import load_codec, manifest

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for metric in ("mse", "ms-ssim"):
        codec = load_codec(metric)
        for name in IMAGES:
            arr = np.asarray(Image.open(Path(args.images) / name).convert("RGB"))
            h0, w0 = (arr.shape[0] - CROP) // 2, (arr.shape[1] - CROP) // 2
            x = from_array(np.ascontiguousarray(arr[h0:h0 + CROP, w0:w0 + CROP]))
            stream = codec.compress(x)["bitstream"]
            dec = codec.decompress(stream)
            stem = f"{Path(name).stem}_{CROP}_{metric}"
            (out / f"{stem}.ncsc").write_bytes(stream)
            Image.fromarray(to_array(dec["x_hat"])).save(out / f"{stem}.png")
            entries.append({"stream": f"{stem}.ncsc", "png": f"{stem}.png", "model": metric,
                            "bytes": len(stream), "sha256_stream": hashlib.sha256(stream).hexdigest(),
                            "sha256_latents": latent_sha256(dec["y_hat"]),
                            "crop": f"{CROP}x{CROP} from the centre of {name}"})
    weights = {k: v["sha256"] for k, v in manifest().items()}
    doc = {"weights": weights, "precision_made": resolve_precision(), "pixel_tolerance": 4, "streams": entries}
    (out / "golden.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({"streams": len(entries), "out": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
