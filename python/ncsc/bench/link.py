"""Link benchmark: FER/BER of the default LDPC code with 16-QAM over AWGN, decoder throughput, gr-fec.

``python -m gnuradio.ncsc.bench.link [--quick]``. Writes ``results/link.json`` and
``results/link_fer.png``. The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..channel import AwgnChannel
from ..fec import LdpcDecoder, encode_vars, nr_code
from ..fec.decoder import KERNELS
from ..link import PlainLink
from ..modulation import demodulate, modulate
from ..profiles import DEFAULT_PROFILE, load_profile

_PROFILE = load_profile(DEFAULT_PROFILE)  # the paper's link, unless --profile says otherwise
K, N = _PROFILE.k, _PROFILE.n
EBN0_OFFSET = 10 * np.log10(_PROFILE.bits_per_symbol * _PROFILE.code_rate)  # Es/N0 - Eb/N0


def use_profile(profile) -> None:
    """Measure another link (``--profile``): its code, modulation and demapper."""
    global _PROFILE, K, N, EBN0_OFFSET
    _PROFILE = load_profile(profile)
    K, N = _PROFILE.k, _PROFILE.n
    EBN0_OFFSET = 10 * np.log10(_PROFILE.bits_per_symbol * _PROFILE.code_rate)


def simulate(decoder, esn0_db, min_errors, max_cw, batch, seed):
    """Monte-Carlo FER/BER at one Es/N0; returns a dict of counts and decoder time."""
    code = decoder.code
    rng = np.random.default_rng(seed)
    link = PlainLink(esn0_db, _PROFILE, snr_type="esn0", seed=seed + 1)
    cw = fe = be = 0
    iters = 0
    t_dec = 0.0
    while fe < min_errors and cw < max_cw:
        bits = rng.integers(0, 2, (batch, code.k), dtype=np.uint8)
        llr = link.llrs(bits)
        t0 = time.perf_counter()
        res = decoder.decode(llr)
        t_dec += time.perf_counter() - t0
        err = res.bits != bits
        fe += int(np.any(err, axis=1).sum())
        be += int(err.sum())
        cw += batch
        iters += int(res.iterations.sum())
    return {"esn0_db": esn0_db, "ebn0_db": round(esn0_db - EBN0_OFFSET, 3), "codewords": cw, "frame_errors": fe,
            "fer": fe / cw, "ber": be / (cw * code.k), "avg_iterations": iters / cw,
            "throughput_mbps": cw * code.k / t_dec / 1e6}


def throughput(decoder, esn0_db, n_cw, seed=11, repeats=3):
    code = decoder.code
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n_cw, code.k), dtype=np.uint8)
    llr = PlainLink(esn0_db, _PROFILE, snr_type="esn0", seed=seed).llrs(bits)
    decoder.decode(llr[:2])  # compile / warm up
    dt = float("inf")
    for _ in range(repeats):  # best of a few: other processes only ever slow a run down
        t0 = time.perf_counter()
        res = decoder.decode(llr)
        dt = min(dt, time.perf_counter() - t0)
    return {"esn0_db": esn0_db, "codewords": n_cw, "seconds": dt, "repeats": repeats,
            "throughput_mbps": n_cw * code.k / dt / 1e6,
            "avg_iterations": float(res.iterations.mean()),
            "fer": float(np.mean(np.any(res.bits != bits, axis=1)))}


def grfec_reference(esn0_db, n_cw, max_iter, seed=21):
    """GNU Radio's gr-fec ldpc_decoder on the same code (its alist), same channel; None if unavailable."""
    try:
        from gnuradio import blocks, fec, gr
    except ImportError:
        return None
    code = nr_code(K, N)
    alist = _write_alist(code)
    rng = np.random.default_rng(seed)
    ch = AwgnChannel(esn0_db, "esn0", seed=seed)
    bits = rng.integers(0, 2, (n_cw, K), dtype=np.uint8)
    full = encode_vars(code, bits)[:, :4992]
    llr = demodulate(ch(modulate(full[:, code.tx_map])), ch.noise_var)
    soft = np.zeros((n_cw, 4992), np.float32)
    soft[:, code.tx_map] = llr
    soft[:, K:1600] = -30.0  # filler: known zero
    sigma = 1.0
    # gr-fec takes BPSK-like soft values, positive for bit 1, and forms LLR = 2 x / sigma^2.
    soft *= sigma**2 / 2
    dec = fec.ldpc_decoder.make(alist, sigma, max_iter)
    tb = gr.top_block()
    src = blocks.vector_source_f(soft.ravel().tolist())
    blk = fec.decoder(dec, gr.sizeof_float, gr.sizeof_char)
    snk = blocks.vector_sink_b()
    tb.connect(src, blk, snk)
    t0 = time.perf_counter()
    tb.run()
    dt = time.perf_counter() - t0
    out = np.array(snk.data(), dtype=np.uint8).reshape(n_cw, -1)
    ref = full[:, -out.shape[1]:]  # gr-fec returns the last N - M columns of the word
    fer = float(np.mean(np.any(out != ref, axis=1)))
    return {"decoder": "gr-fec ldpc_decoder", "esn0_db": esn0_db, "codewords": n_cw, "max_iter": max_iter,
            "fer": fer, "throughput_mbps": n_cw * K / dt / 1e6}


def _write_alist(code) -> str:
    """The alist of the NR code's first 4992 columns (as the reference alist in shared/ lays them out)."""
    h = code.dense_h()
    keep_rows = np.flatnonzero(h[:, 4992:].sum(1) == 0)
    h = h[keep_rows, :4992]
    m, n = h.shape
    cols = [np.flatnonzero(h[:, c]) + 1 for c in range(n)]
    rows = [np.flatnonzero(h[r]) + 1 for r in range(m)]
    lines = [f"{n} {m}", f"{max(map(len, cols))} {max(map(len, rows))}",
             " ".join(str(len(c)) for c in cols), " ".join(str(len(r)) for r in rows)]
    lines += [" ".join(map(str, c)) for c in cols] + [" ".join(map(str, r)) for r in rows]
    path = Path(tempfile.gettempdir()) / "ncsc_nr_1536_4608.alist"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def plot(points, path, max_iter=50):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    hit = [p for p in points if p["frame_errors"]]
    ax.semilogy([p["esn0_db"] for p in hit], [p["fer"] for p in hit], "o-",
                label=f"ncsc layered sum-product, {max_iter} it. max")
    zero = [p for p in points if not p["frame_errors"]]
    if zero:
        ax.semilogy([p["esn0_db"] for p in zero], [1.2e-4] * len(zero), "v", color="C0", alpha=0.6,
                    label=f"no frame error in {zero[0]['codewords']} codewords")
    ax.semilogy([3.0, 3.5], [0.42, 0.0078], "x--", color="gray", label="reference: layered SP 20 it. (ANCHORS.md)")
    ax.axhline(1e-2, color="k", lw=0.5, ls=":")
    ax.set_xlabel("Es/N0 (dB)")
    ax.set_ylabel("FER")
    ax.set_ylim(1e-4, 1.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    top = ax.secondary_xaxis("top", functions=(lambda x: x - EBN0_OFFSET, lambda x: x + EBN0_OFFSET))
    top.set_xlabel("Eb/N0 (dB)")
    ax.set_title("5G NR LDPC k=1536 n=4608, Gray 16-QAM, AWGN", fontsize=10, pad=28)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.link", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3.5 dB point and throughput only (under a minute)")
    p.add_argument("--out", default="results", help="folder for link.json and link_fer.png")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help="link profile: a shipped name or a .yml path")
    p.add_argument("--algorithm", default="sum-product")
    p.add_argument("--max-iter", type=int, default=50)
    p.add_argument("--kernel", default="auto", choices=KERNELS,
                   help="decoder kernel for the FER sweep and the main throughput figure")
    p.add_argument("--esn0", type=float, nargs="+", default=None,
                   help="Es/N0 points (dB) instead of the 2.0..5.0 sweep (needs 3.5 among them)")
    p.add_argument("--min-errors", type=int, default=100)
    p.add_argument("--max-codewords", type=int, default=2000)
    p.add_argument("--no-grfec", action="store_true", help="skip the gr-fec comparison")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from an existing link.json")
    args = p.parse_args(argv)
    use_profile(args.profile)
    if args.replot:
        saved = json.loads((Path(args.out) / "link.json").read_text())
        plot(saved["points"], Path(args.out) / "link_fer.png", saved.get("max_iter", 50))
        return 0
    from tqdm import tqdm

    code = nr_code(K, N)
    dec = LdpcDecoder(code, algorithm=args.algorithm, max_iter=args.max_iter, kernel=args.kernel)
    dec.decode(np.zeros((1, N), np.float32))  # compile before timing
    result = {"code": code.name, "modulation": "16qam", "demapper": "exact", "algorithm": args.algorithm,
              "max_iter": args.max_iter, "kernel": dec.kernel, "threads": 1,
              "ebn0_offset_db": round(float(EBN0_OFFSET), 3)}
    grid = [3.5] if args.quick else list(np.round(np.arange(2.0, 5.001, 0.25), 2))
    if args.esn0:
        grid = sorted(set(args.esn0) | {3.5})
    points = []
    for es in tqdm(grid, desc="FER sweep"):
        max_cw = 1000 if args.quick else args.max_codewords
        points.append(simulate(dec, float(es), args.min_errors if not args.quick else 10**9, max_cw, 200,
                               seed=int(es * 100)))
        tqdm.write(f"Es/N0 {es:.2f} dB: FER {points[-1]['fer']:.4g} BER {points[-1]['ber']:.3g} "
                   f"({points[-1]['codewords']} codewords, {points[-1]['avg_iterations']:.1f} it.)")
    result["points"] = points
    tp_points = [3.5] if args.quick else [3.5, 5.0]
    result["throughput"] = [throughput(dec, es, 400 if args.quick else 2000) for es in tp_points]
    if dec.kernel == "c":  # the numba kernel on the same codewords, for comparison
        slow = LdpcDecoder(code, algorithm=args.algorithm, max_iter=args.max_iter, kernel="numba")
        result["throughput_numba"] = [throughput(slow, es, 100 if args.quick else 400) for es in tp_points]
    if not args.no_grfec and (K, N) == (1536, 4608) and _PROFILE.modulation == "16qam":  # its alist layout
        ref = grfec_reference(3.5, 40 if args.quick else 200, args.max_iter)
        if ref:
            result["grfec"] = ref
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    p35 = next(pt for pt in points if abs(pt["esn0_db"] - 3.5) < 1e-9)
    summary = {"fer_3p5db": p35["fer"], "codewords": p35["codewords"],
               "throughput_mbps": round(result["throughput"][0]["throughput_mbps"], 3), "kernel": dec.kernel,
               "avg_iterations_3p5db": round(p35["avg_iterations"], 2)}
    if "grfec" in result:
        summary["grfec_fer_3p5db"] = result["grfec"]["fer"]
        summary["grfec_throughput_mbps"] = round(result["grfec"]["throughput_mbps"], 4)
    result["summary"] = summary
    name = "link_quick" if args.quick else "link"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    if not args.quick:
        plot(points, out / "link_fer.png", args.max_iter)
    for tp in result["throughput"]:
        print(f"decoder throughput ({dec.kernel} kernel) at Es/N0 {tp['esn0_db']} dB: "
              f"{tp['throughput_mbps']:.2f} Mbit/s (1 core)")
    for tp in result.get("throughput_numba", []):
        print(f"numba kernel at Es/N0 {tp['esn0_db']} dB: {tp['throughput_mbps']:.2f} Mbit/s (1 core)")
    if "grfec" in result:
        g = result["grfec"]
        print(f"gr-fec ldpc_decoder at Es/N0 3.5 dB: FER {g['fer']:.3g}, {g['throughput_mbps']:.3f} Mbit/s")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
