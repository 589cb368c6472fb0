"""Codec benchmark: bpp, PSNR, MS-SSIM, encode/decode seconds per image, and an RD plot.

``python -m gnuradio.ncsc.bench.codec --images DIR [--quick]``. Writes
``results/codec.json`` and ``results/codec_rd.png``; the last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..codec.coder import PRECISIONS
from ..codec.image import load_image, ms_ssim, psnr, to_array
from ..codec.registry import METRICS, load_codec
from . import add_image_args, pick_images

ANCHORS = {  # CompressAI cheng2020-anchor quality 1 on Kodak (ANCHORS.md)
    "mse": {"bpp": 0.1196, "psnr": 28.58, "ms_ssim": 0.9236},
    "ms-ssim": {"bpp": 0.0981, "psnr": 25.79, "ms_ssim": 0.9415},
}
JPEG_Q1 = {"bpp": 0.1731, "psnr": 21.48, "ms_ssim": 0.715}


def measure(codec, files, serial_on: int = 0, progress=True) -> list[dict]:
    """Code each file; the first ``serial_on`` images are also coded with the serial (raster) loop."""
    from tqdm import tqdm

    rows = []
    for i, f in enumerate(tqdm(files, desc="codec", disable=not progress)):
        x = load_image(f)
        h, w = x.shape[-2:]
        t0 = time.perf_counter()
        enc = codec.compress(x)
        t1 = time.perf_counter()
        dec = codec.decompress(enc["bitstream"])
        t2 = time.perf_counter()
        ref, got = to_array(x), to_array(dec["x_hat"])
        row = {"image": Path(f).name, "width": w, "height": h, "bytes": len(enc["bitstream"]),
               "bpp": 8 * len(enc["bitstream"]) / (w * h), "psnr": psnr(ref, got), "ms_ssim": ms_ssim(ref, got),
               "encode_s": t1 - t0, "decode_s": t2 - t1, "z_bpp": 8 * len(enc["strings"][1][0]) / (w * h),
               "z_constant": z_is_constant(enc["z_hat"])}
        row.update(entropy_ablation(codec.model, x))
        if i < serial_on:
            t0 = time.perf_counter()
            enc_s = codec.compress(x, order="raster")
            t1 = time.perf_counter()
            dec_s = codec.decompress(enc_s["bitstream"])
            t2 = time.perf_counter()
            row.update(serial_encode_s=t1 - t0, serial_decode_s=t2 - t1,
                       serial_same_latents=bool(torch.equal(dec_s["y_hat"], dec["y_hat"])))
        rows.append(row)
    return rows


@torch.no_grad()
def entropy_ablation(model, x: torch.Tensor, slice_rows: int = 4) -> dict:
    """How much the entropy model leans on each of its inputs, from model likelihoods (fp32):
    the rate of y with the context model zeroed, with the hyperprior zeroed, and with the
    context restricted to bands of ``slice_rows`` latent rows (what independently decodable
    slices would cost), each as an overhead over the full rate; and z's share of all bits."""
    import torch.nn.functional as F

    from ..codec.model import LIKELIHOOD_MIN, mixture_likelihood

    h, w = x.shape[-2:]
    xp = F.pad(x.float(), (0, -w % 64, 0, -h % 64), mode="replicate")
    y = model.g_a(xp).float()
    z = model.h_a(y).float()
    z_hat, z_lik = model.entropy_bottleneck(z, training=False)
    y_hat = torch.round(y)
    params = model.h_s(z_hat).float()
    ctx = model.context_prediction(y_hat).float()

    def bits(p, c):
        wts, means, scales = model.mixture_params(model.entropy_parameters(torch.cat((p, c), dim=1)))
        return float(-torch.log2(mixture_likelihood(y_hat, wts, means, scales).clamp_min(LIKELIHOOD_MIN)).sum())

    full = bits(params, ctx)
    z_bits = float(-torch.log2(z_lik.clamp_min(LIKELIHOOD_MIN)).sum())
    sliced = bits(params, model.sliced_context(y_hat, slice_rows, y_hat.shape[-1]).float())
    return {"y_bpp_model": full / (h * w), "z_share": z_bits / (z_bits + full),
            "ctx_zero_overhead": bits(params, torch.zeros_like(ctx)) / full - 1,
            "hyper_zero_overhead": bits(torch.zeros_like(params), ctx) / full - 1,
            f"slice{slice_rows}_overhead": sliced / full - 1}


def checkpoint_codec(path: str, precision: str = "auto"):
    """A codec from a training checkpoint (entropy tables rebuilt, as an export would)."""
    from ..codec.registry import codec_from_state

    ck = torch.load(path, map_location="cpu", weights_only=False)
    return codec_from_state(ck["model"], ck.get("metric", "mse"), N=ck.get("N"), precision=precision)


def z_is_constant(z_hat: torch.Tensor) -> bool:
    """True when every channel of the coded hyper-latent holds one value: the hyperprior tells
    the context model nothing about this image (a sign of an under-trained hyperprior)."""
    flat = z_hat.flatten(2)
    return bool((flat == flat[..., :1]).all())


def summarize(rows: list[dict]) -> dict:
    keys = ["bpp", "psnr", "ms_ssim", "encode_s", "decode_s", "z_bpp"]
    keys += [k for k in ("z_share", "ctx_zero_overhead", "hyper_zero_overhead", "slice4_overhead") if k in rows[0]]
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["z_constant_images"] = sum(r["z_constant"] for r in rows)
    serial = [r for r in rows if "serial_decode_s" in r]
    if serial:
        out["serial_encode_s"] = float(np.mean([r["serial_encode_s"] for r in serial]))
        out["serial_decode_s"] = float(np.mean([r["serial_decode_s"] for r in serial]))
    out["images"] = len(rows)
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ms_ssim", "MS-SSIM")):
        for metric, a in ANCHORS.items():
            ax.plot(a["bpp"], a[key], "k*", ms=10)
            ax.annotate(f"cheng2020-anchor q1 {metric}\n(CompressAI, fully trained)", (a["bpp"], a[key]),
                        fontsize=7, xytext=(4, -14), textcoords="offset points")
        ax.plot(JPEG_Q1["bpp"], JPEG_Q1[key], "rs")
        ax.annotate("JPEG q1 (Pillow)", (JPEG_Q1["bpp"], JPEG_Q1[key]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
        for name, res in results.items():
            s = res["summary"]
            ax.plot(s["bpp"], s[key], "o", ms=8, label=f"{name} (ours)")
        ax.set_xlabel("bpp")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center right")
    fig.suptitle("NCSC on Kodak", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.codec", description=__doc__.splitlines()[0])
    add_image_args(p)
    p.add_argument("--model", choices=(*METRICS, "both"), default="both")
    p.add_argument("--quick", action="store_true",
                   help="4 images of one model (mse unless --model ms-ssim), under a minute")
    p.add_argument("--serial", type=int, default=1, help="also time the serial loop on this many images")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="transforms in fp32 or bf16 (auto: bf16 where the CPU runs it natively)")
    p.add_argument("--checkpoint", default=None,
                   help="measure a training checkpoint (its metric) instead of the shipped weights")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from an existing codec.json")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads((Path(args.out) / "codec.json").read_text())["results"], Path(args.out) / "codec_rd.png")
        return 0
    torch.set_num_threads(args.threads)
    try:
        files, label = pick_images(args)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    models = ["mse", "ms-ssim"] if args.model == "both" else [args.model]
    if args.quick:
        models = models[:1]
    if args.checkpoint:
        models = ["checkpoint"]
    if args.quick:
        files = files[:4]
    results = {}
    for m in models:
        if args.checkpoint:
            codec = checkpoint_codec(args.checkpoint, args.precision)
            m = codec.metric
        else:
            codec = load_codec(m, directory=args.weights_dir, precision=args.precision)
        codec.compress(load_image(files[0])[..., :64, :64])  # warm-up: numba compile, tables
        rows = measure(codec, files, serial_on=0 if args.quick else args.serial)
        results[m] = {"per_image": rows, "summary": summarize(rows), "precision": codec.precision}
        s = results[m]["summary"]
        print(f"{m} ({codec.precision}): {s['bpp']:.4f} bpp, {s['psnr']:.2f} dB, MS-SSIM {s['ms_ssim']:.4f}, "
              f"encode {s['encode_s']:.2f} s, decode {s['decode_s']:.2f} s ({len(rows)} images); "
              f"hyper-latent {s['z_bpp']:.4f} bpp, the same value in every channel for "
              f"{s['z_constant_images']}/{len(rows)} images")
        if "z_share" in s:
            print(f"  entropy model (model rates): z {100 * s['z_share']:.2f} % of the bits; y rate "
                  f"+{100 * s['ctx_zero_overhead']:.0f} % with the context zeroed, "
                  f"+{100 * s['hyper_zero_overhead']:.0f} % with the hyperprior zeroed, "
                  f"+{100 * s['slice4_overhead']:.0f} % with the context in 4-row slices")
        if "serial_decode_s" in s:
            print(f"  serial loop, same weights: encode {s['serial_encode_s']:.2f} s, "
                  f"decode {s['serial_decode_s']:.2f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "codec_quick" if args.quick else "codec_checkpoint" if args.checkpoint else "codec"
    images = label if args.held_out else args.images
    (out / f"{name}.json").write_text(json.dumps({"threads": args.threads, "images": images, "results": results},
                                                 indent=1))
    if not args.quick and not args.checkpoint:
        plot(results, out / "codec_rd.png")
    first = next(iter(results))
    s = results[first]["summary"]
    print(json.dumps({"model": first, "bpp": round(s["bpp"], 4), "psnr": round(s["psnr"], 3),
                      "ms_ssim": round(s["ms_ssim"], 4), "encode_s": round(s["encode_s"], 3),
                      "decode_s": round(s["decode_s"], 3), "images": s["images"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
