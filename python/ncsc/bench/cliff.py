"""No cliff: Kodak through the real link below its threshold, sliced (graceful) and whole.

``python -m gnuradio.ncsc.bench.cliff [--quick] [--images DIR] [--checkpoint CKPT]``: each image is
coded twice, as one all-or-nothing stream (bitstream 1) and as slices (bitstream 2, the
``paper-awgn-graceful`` profile's tiles), and each stream goes through the plain link pipeline
(framing, LDPC 1536/4608, 16-QAM, AWGN, LDPC decoding, reassembly) at Eb/N0 1.0 to 3.0 dB.
Beside them, JPEG (optimised Huffman) and HEVC intra (x265 through pillow-heif), each rate-matched
per image to the whole NCSC stream, go through the same link as files: all or nothing, as in
Table I. An image that cannot be shown is scored against mid-gray, as Table I does. ``--seeds 0 1 2``
sends the same streams through several draws of the noise and reports their means. Writes
``results/cliff.json`` and ``results/cliff.png``; the last line is one JSON object with
``ebn0_db``, ``psnr`` (graceful), ``psnr_all_or_nothing``, ``shown`` (share of images with a
picture, graceful), ``shown_all_or_nothing``, ``rate_overhead`` (sliced bits over whole bits - 1)
and ``channel_overhead`` (codewords sent, the head's repetitions included, over whole - 1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from ..codec.image import load_image, psnr, to_array
from ..imaging import ImageReceiver, ImageSender, expand_paths
from ..link import PlainLink
from ..profiles import load_profile
from . import DEFAULT_IMAGES

GRACEFUL = "paper-awgn-graceful"


def load_codec(checkpoint: str | None, metric: str = "mse"):
    from ..codec.registry import codec_from_state, load_named_codec

    if not checkpoint:
        return load_named_codec(metric)
    import torch

    return codec_from_state(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"], metric)


CLASSICAL = {"jpeg": "JPEG", "hevc": "HEVC intra"}


def classical_streams(files, refs, whole_streams, methods=tuple(CLASSICAL)) -> dict:
    """{method: [bytes per image]}: each image rate-matched to its whole NCSC stream's bpp."""
    from .table1 import rate_match

    out = {}
    for method in methods:
        out[method] = []
        for ref, (meta, _) in zip(refs, whole_streams, strict=True):
            data, _ = rate_match(ref, method, meta["bpp"])
            out[method].append(data)
    return out


def run(files, snrs, codec, profile, seeds=(0,), progress: bool = True, classical=tuple(CLASSICAL),
        align: bool = False) -> dict:
    """Per SNR: mean PSNR and share shown, graceful and all-or-nothing (and for the ``classical``
    codecs through the same link); plus the rate overhead. Each of ``seeds`` is another draw of
    the channel's noise for the same streams; the figures are means over them (``*_per_seed``
    beside them when there are several). ``align``: slices aligned to pages (the layout before
    FLAG_UNALIGNED), for comparison."""
    from tqdm import tqdm

    from .table1 import classical_decode, send

    seeds = [int(s) for s in np.atleast_1d(seeds)]
    prof = load_profile(profile)
    plain = PlainLink(0.0, prof)  # the link's page size and codeword counts
    page = plain.framer.capacity
    senders = {"graceful": ImageSender.for_profile(codec, prof, page, align=align), "whole": ImageSender(codec)}
    receiver = ImageReceiver(lambda metric: codec, None, prof.bits_per_symbol, prof.code_rate,
                             head_repeat=prof.head_repeat)
    streams = {mode: [s.encode(f) for f in files] for mode, s in senders.items()}
    refs = [to_array(load_image(f)) for f in files]
    gray = [psnr(r, np.full_like(r, 128)) for r in refs]
    others = classical_streams(files, refs, streams["whole"], classical)
    bits = {mode: sum(m["bits"] for m, _ in st) for mode, st in streams.items()}
    sent = {mode: sum(plain.codewords_sent(plain.framer.blocks_for(len(d)), m.get("head_blocks", 0))
                      for m, d in st) for mode, st in streams.items()}
    cache = {}

    def decoded(mode, k, meta, data):
        """The receiver's record; what arrived the same way before (every draw above the
        threshold, say) is decoded once."""
        key = (mode, k, hashlib.sha1(bytes(data)).digest(), json.dumps(meta, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = receiver.receive(meta, data)
        return cache[key]

    out = {"ebn0_db": [], "seeds": seeds, "per_image": []}
    series = {"psnr": ("graceful", 0), "psnr_all_or_nothing": ("whole", 0), "shown": ("graceful", 1),
              "shown_all_or_nothing": ("whole", 1), "concealed": ("graceful", 2)}
    per_seed = {key: [] for key in series}
    for method in others:
        per_seed[f"psnr_{method}"], per_seed[f"shown_{method}"] = [], []
    for snr in tqdm(snrs, desc="cliff", disable=not progress):
        draws = {key: [] for key in per_seed}
        for seed in seeds:
            row = {}
            for mode, st in streams.items():
                link = PlainLink(snr, prof, seed=1000 * seed + int(100 * snr))
                scores, shown, concealed = [], 0, []
                for k, ((meta, data), g) in enumerate(zip(st, gray, strict=True)):
                    rec = decoded(mode, k, *link.send(meta, data))
                    ok = rec["status"] in ("ok", "partial")
                    shown += ok
                    scores.append(rec["psnr"] if ok and "psnr" in rec else g)
                    concealed.append(rec.get("concealed", 0.0) if ok else 1.0)
                    out["per_image"].append({"ebn0_db": snr, "seed": seed, "mode": mode, "name": meta["name"],
                                             "status": rec["status"], "psnr": scores[-1],
                                             "codewords": rec.get("codewords"),
                                             "codeword_errors": rec.get("codeword_errors"),
                                             "concealed": concealed[-1]})
                row[mode] = (float(np.mean(scores)), shown / len(files), float(np.mean(concealed)))
            for key, (mode, i) in series.items():
                draws[key].append(row[mode][i])
            for method, datas in others.items():
                link = PlainLink(snr, prof, seed=1000 * seed + int(100 * snr) + 1)
                scores, shown = [], 0
                for i, (data, ref, g) in enumerate(zip(datas, refs, gray, strict=True)):
                    got, _, _ = send(link, data, i)
                    img = None
                    if got is not None:
                        try:
                            img = classical_decode(got)
                        except Exception:  # noqa: BLE001 - an undecodable file is a lost image
                            img = None
                    ok = img is not None and img.shape == ref.shape
                    shown += ok
                    scores.append(psnr(ref, img) if ok else g)
                draws[f"psnr_{method}"].append(float(np.mean(scores)))
                draws[f"shown_{method}"].append(shown / len(files))
        out["ebn0_db"].append(snr)
        for key, vals in draws.items():
            per_seed[key].append([round(v, 4) for v in vals])
    for key, rows in per_seed.items():
        out[key] = [round(float(np.mean(v)), 3 if key.startswith("psnr") else 4) for v in rows]
        if len(seeds) > 1:
            out[f"{key}_per_seed"] = rows
    out["rate_overhead"] = round(bits["graceful"] / bits["whole"] - 1, 4)
    # what the channel carries: codewords (head repetitions included) per image, either way
    out["codewords_per_image"] = {mode: round(n / len(files), 2) for mode, n in sent.items()}
    out["channel_overhead"] = round(sent["graceful"] / sent["whole"] - 1, 4)
    out["bpp"] = {mode: sum(m["bpp"] for m, _ in st) / len(st) for mode, st in streams.items()}
    for method, datas in others.items():
        out["bpp"][method] = float(np.mean([8 * len(d) / (r.shape[0] * r.shape[1]) for d, r in zip(datas, refs,
                                                                                                     strict=True)]))
    out["images"] = [Path(f).name for f in files]
    return out


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(res["ebn0_db"], res["psnr"], "o-", label=f"NCSC sliced (graceful), +{res['rate_overhead']:.0%} bits")
    ax.plot(res["ebn0_db"], res["psnr_all_or_nothing"], "s--", label="NCSC whole stream (all or nothing)")
    for method, label in CLASSICAL.items():
        if f"psnr_{method}" in res:
            ax.plot(res["ebn0_db"], res[f"psnr_{method}"], "^:", ms=4,
                    label=f"{label} at NCSC's rate ({res['bpp'][method]:.3f} bpp, all or nothing)")
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("mean PSNR (dB), lost images at mid-gray")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    draws = len(res.get("seeds", [0]))
    ax.set_title(f"Below the LDPC threshold: {len(res['images'])} Kodak images"
                 + (f", mean of {draws} draws of the noise" if draws > 1 else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.cliff", description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES))
    p.add_argument("--quick", action="store_true", help="4 images at 1.5, 2.0 and 3.0 dB")
    p.add_argument("--ebn0", type=float, nargs="+", default=None, help="Eb/N0 points (default 1.0 to 3.0 by 0.25)")
    p.add_argument("--every", type=int, default=1, help="every n-th image of the folder (a faster, smaller run)")
    p.add_argument("--checkpoint", default=None, help="a training checkpoint instead of the shipped weights")
    p.add_argument("--profile", default=GRACEFUL, help="the sliced link (its slices; the whole stream beside it)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="draws of the channel's noise (figures are their means; default 0)")
    p.add_argument("--no-classical", action="store_true", help="NCSC only: no JPEG / HEVC intra beside it")
    p.add_argument("--aligned", action="store_true", help="slices aligned to pages (the layout before, to compare)")
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    files = expand_paths(args.images)
    if not files:
        p.error(f"no images in {args.images}")
    snrs = args.ebn0 or ([1.5, 2.0, 3.0] if args.quick else [1.0 + 0.25 * i for i in range(9)])
    files = files[:4] if args.quick else files[:: max(1, args.every)]
    if load_profile(args.profile).slices is None:
        p.error(f"profile {args.profile} does not slice (codec.slice_rows / slice_cols)")
    res = run(files, snrs, load_codec(args.checkpoint), args.profile, seeds=args.seeds,
              classical=() if args.no_classical else tuple(CLASSICAL), align=args.aligned)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "cliff_quick" if args.quick else "cliff"
    (out / f"{name}.json").write_text(json.dumps(res, indent=1))
    plot(res, out / f"{name}.png")
    keys = ("ebn0_db", "psnr", "psnr_all_or_nothing", "shown", "shown_all_or_nothing", "rate_overhead",
            "channel_overhead") + tuple(f"{p}_{m}" for m in CLASSICAL for p in ("psnr", "shown"))
    print(json.dumps({k: res[k] for k in keys if k in res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
