"""Command-line codec: ``python -m gnuradio.ncsc.codec encode IMAGE OUT.ncsc`` / ``decode IN.ncsc OUT.png``."""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from .bitstream import BitstreamError, check_pixels, unpack
from .coder import DEFAULT_MAX_PIXELS
from .image import ImageError, load_image, save_png
from .registry import METRICS, MODEL_IDS, WeightsError, load_codec


def _common(parser: argparse.ArgumentParser, default) -> None:
    """Options accepted before or after the subcommand (the sub-parser's copy must not reset
    what was given before it, hence SUPPRESS there)."""
    parser.add_argument("--threads", type=int, default=default(None), help="torch CPU threads")
    parser.add_argument("--weights-dir", default=default(None),
                        help="folder with manifest.json (default: shipped weights)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.codec", description="NCSC learned image codec")
    _common(p, lambda v: v)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="image file -> .ncsc bitstream")
    e.add_argument("image")
    e.add_argument("output")
    e.add_argument("--model", choices=METRICS, default="mse")
    e.add_argument("--quality", type=int, default=1)
    d = sub.add_parser("decode", help=".ncsc bitstream -> PNG")
    d.add_argument("input")
    d.add_argument("output")
    d.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse streams declaring more pixels than this (default {DEFAULT_MAX_PIXELS})")
    for sp in (e, d):
        _common(sp, lambda v: argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.cmd == "encode":
            x = load_image(args.image)
            try:
                codec = load_codec(args.model, args.quality, directory=args.weights_dir)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
            t0 = time.perf_counter()
            out = codec.compress(x)
            dt = time.perf_counter() - t0
            data = out["bitstream"]
            with open(args.output, "wb") as fh:
                fh.write(data)
            h, w = x.shape[-2:]
            print(f"{args.image}: {w}x{h} -> {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp, "
                  f"{dt:.2f} s ({args.model} q{args.quality})")
        else:
            with open(args.input, "rb") as fh:
                data = fh.read()
            header, _, _ = unpack(data)
            if header.model_id not in MODEL_IDS:
                raise BitstreamError(f"unknown model id {header.model_id}")
            check_pixels(header, args.max_pixels)  # before the weights are loaded
            try:
                codec = load_codec(header.metric, header.quality, MODEL_IDS[header.model_id], args.weights_dir)
            except KeyError as exc:
                raise BitstreamError(f"stream needs a model this installation lacks: {exc.args[0]}") from None
            t0 = time.perf_counter()
            out = codec.decompress(data, max_pixels=args.max_pixels)
            dt = time.perf_counter() - t0
            save_png(out["x_hat"], args.output)
            print(f"{args.input}: {header.width}x{header.height} decoded in {dt:.2f} s -> {args.output}")
    except (OSError, ImageError, BitstreamError, WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
