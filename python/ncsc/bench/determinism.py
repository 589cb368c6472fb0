"""Cross-process determinism: encode with 1 thread in one process, decode with 2 threads in another.

``python -m gnuradio.ncsc.bench.determinism --images DIR [--model mse]``: for every image
the decoder's output must be bit-identical to the encoder's own reconstruction. Writes
``results/determinism.json``; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..codec.coder import PRECISIONS, resolve_precision


def _worker(mode: str, folder: Path, work: Path, model: str, threads: int) -> None:
    import torch
    from tqdm import tqdm

    from ..codec.image import IMAGE_SUFFIXES, load_image, to_array
    from ..codec.registry import load_codec

    torch.set_num_threads(threads)
    codec = load_codec(model)
    if mode == "encode":
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for f in tqdm(files, desc=f"encode ({threads} thread)"):
            out = codec.compress(load_image(f), reconstruct=True)
            (work / f"{f.stem}.ncsc").write_bytes(out["bitstream"])
            np.save(work / f"{f.stem}.enc.npy", to_array(out["x_hat"]))
    else:
        for f in tqdm(sorted(work.glob("*.ncsc")), desc=f"decode ({threads} threads)"):
            np.save(work / f"{f.stem}.dec.npy", to_array(codec.decompress(f.read_bytes())["x_hat"]))


def main(argv: list[str] | None = None) -> int:
    from ..codec.registry import METRICS  # the one list of metrics

    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.determinism", description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True)
    p.add_argument("--model", choices=METRICS, default="mse")
    p.add_argument("--out", default="results")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="transforms in fp32 or bf16 for both processes (auto: bf16 where native)")
    p.add_argument("--_worker", choices=["encode", "decode"], help=argparse.SUPPRESS)
    p.add_argument("--_work", help=argparse.SUPPRESS)
    p.add_argument("--_threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        _worker(args._worker, Path(args.images), Path(args._work), args.model, args._threads)
        return 0
    if args.precision != "auto":
        os.environ["NCSC_PRECISION"] = args.precision  # the worker processes inherit it
    precision = resolve_precision()
    with tempfile.TemporaryDirectory(prefix="ncsc_det_") as work:
        base = [sys.executable, "-m", "gnuradio.ncsc.bench.determinism", "--images", args.images, "--model",
                args.model, "--_work", work]
        subprocess.run(base + ["--_worker", "encode", "--_threads", "1"], check=True)
        subprocess.run(base + ["--_worker", "decode", "--_threads", "2"], check=True)
        rows = []
        for enc in sorted(Path(work).glob("*.enc.npy")):
            stem = enc.name[: -len(".enc.npy")]
            a, b = np.load(enc), np.load(Path(work) / f"{stem}.dec.npy")
            rows.append({"image": stem, "identical": bool(np.array_equal(a, b)),
                         "differing_pixels": int(np.count_nonzero(np.any(a != b, axis=-1)))})
    same = sum(r["identical"] for r in rows)
    result = {"model": args.model, "images": len(rows), "identical": same, "precision": precision,
              "encode_threads": 1, "decode_threads": 2, "per_image": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"determinism_{args.model}.json").write_text(json.dumps(result, indent=1))
    print(f"{same}/{len(rows)} images decoded bit-identical to the encoder's reconstruction")
    print(json.dumps({k: result[k] for k in ("model", "images", "identical", "precision", "encode_threads",
                                                    "decode_threads")}))
    return 0 if same == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
