#!/usr/bin/env python3
"""Send an image through the whole gr-ncsc link over a simulated AWGN channel.

    python examples/loopback_awgn.py [--image FILE] [--snr 3] [--snr-type ebn0|esn0]
                                     [--model mse|ms-ssim] [--seed 0] [--out DIR] [--json]
                                     [--profile paper-awgn|FILE.yml]

Chain: NCSC encoder -> framer -> 5G NR LDPC (1536, 4608) -> Gray 16-QAM -> AWGN ->
soft demapper -> LDPC decoder -> deframer -> NCSC decoder sink. With no --image it sends
a photo that matplotlib ships. Prints a short summary; with --json the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile


def main(argv=None) -> int:
    from gnuradio.ncsc.channel.awgn import SNR_TYPES
    from gnuradio.ncsc.codec.registry import METRICS  # the one list of metrics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default=None, help="image file, folder or ';'-separated list (default: a sample photo)")
    p.add_argument("--snr", type=float, default=3.0, help="SNR in dB (default 3)")
    p.add_argument("--snr-type", choices=SNR_TYPES, default="ebn0",
                   help="what --snr means: Eb/N0 per information bit (default) or Es/N0 per symbol")
    p.add_argument("--model", choices=METRICS, default="mse")
    p.add_argument("--seed", type=int, default=0, help="channel noise seed")
    p.add_argument("--out", default=None, help="folder for the decoded PNG and JSON records")
    p.add_argument("--profile", default="paper-awgn",
                   help="link profile: a name (python/ncsc/profiles/*.yml) or a .yml path (default paper-awgn; "
                        "paper-awgn-graceful sends sliced images, shown in part below the threshold)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from gnuradio.ncsc.loopback import LoopbackAwgn, default_image

    out = args.out or tempfile.mkdtemp(prefix="ncsc_loopback_")
    tb = LoopbackAwgn(args.image or default_image(), args.snr, args.snr_type, args.model, args.seed, out,
                      profile=args.profile)
    prof = tb.profile
    recs = tb.run_until_done()
    if not recs:
        print("no image was sent (see the log above)", file=sys.stderr)
        return 1
    snr_name = "Eb/N0" if args.snr_type == "ebn0" else "Es/N0"
    keys = ("status", "bits", "bpp", "symbols", "bcr", "psnr", "ms_ssim", "codewords", "codeword_errors",
            "concealed")
    for r in recs:
        line = f"{r.get('name')}: {r['status']}"
        if r["status"] in ("ok", "partial"):
            if r["status"] == "partial":
                line += f" ({r.get('concealed', 0):.0%} of the latent concealed)"
            line += (f", {r['bits']} bits ({r['bpp']:.4f} bpp), {r['symbols']} symbols, "
                     f"{r['codewords']} codewords ({r['codeword_errors']} failed), "
                     f"PSNR {r.get('psnr', float('nan')):.2f} dB, MS-SSIM {r.get('ms_ssim', float('nan')):.4f}")
        else:
            line += f" ({r.get('reason')}), {r['codeword_errors']} of {r['codewords']} codewords failed"
        print(line)
    print(f"{args.model} model, {snr_name} {args.snr} dB, {prof.modulation}, LDPC {prof.k}/{prof.n} "
          f"(profile {prof.name}); output in {out}")
    if args.json:
        summary = {k: recs[0].get(k) for k in keys} if len(recs) == 1 else {
            "images": len(recs), "ok": sum(r["status"] == "ok" for r in recs), "records": recs}
        summary.update(snr_db=args.snr, snr_type=args.snr_type, model=args.model, out=out)
        print(json.dumps(summary, default=str))
    return 0 if all(r["status"] == "ok" for r in recs) else 3


if __name__ == "__main__":
    sys.exit(main())
