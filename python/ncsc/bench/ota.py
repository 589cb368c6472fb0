"""Over-the-air readiness benchmark: detection rate and FER of the burst PHY under impairments.

``python -m gnuradio.ncsc.bench.ota [--quick]``. For each impairment set and Es/N0,
bursts (one LDPC codeword each, random gaps and start times) go through the impaired
channel into the burst receiver and the LDPC decoder; the ideal link (symbols straight
into AWGN, perfect synchronisation) is measured beside it. Writes ``results/ota.json``
and ``results/ota_fer.png``; the last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..channel.impairments import Impairments
from ..fec import LdpcDecoder, encode, nr_code
from ..phy import BurstRx, BurstTx
from ..profiles import DEFAULT_OTA_PROFILE, load_profile
from .link import simulate, use_profile

SETS = {
    "carrier 2% + clock 100 ppm + phase": dict(cfo=0.02, sco_ppm=100, random_phase=True),
    "carrier -2% + clock -100 ppm + phase": dict(cfo=-0.02, sco_ppm=-100, random_phase=True),
    "3-tap multipath": dict(taps=(1.0, 0.4j, -0.2), random_phase=True),
    "IQ imbalance + DC": dict(iq_gain=0.1, iq_phase=0.1, dc=0.2 + 0.1j, random_phase=True),
    "all of the above": dict(cfo=0.015, sco_ppm=-100, taps=(1.0, 0.3, 0.1j), iq_gain=0.05, iq_phase=0.05,
                             dc=0.05, random_phase=True),
    "phase noise 0.03 rad/symbol + carrier 1%": dict(cfo=0.01, phase_noise=0.03, random_phase=True),
}


def run_point(esn0, spec, n_bursts, seed, code, dec, per_signal=10, profile=None):
    prof = load_profile(profile or DEFAULT_OTA_PROFILE)
    bs = prof.burst
    rng = np.random.default_rng(seed)
    tx = BurstTx(bs.sps, bs.rolloff, prof.modulation)
    detected = frame_err = 0
    cfos = []
    for start in range(0, n_bursts, per_signal):
        n = min(per_signal, n_bursts - start)
        bits = rng.integers(0, 2, (n, code.k)).astype(np.uint8)
        parts = [np.zeros(int(rng.integers(50, 2000)), np.complex64)]
        for cw in encode(code, bits):
            parts += [tx.burst(cw), np.zeros(int(rng.integers(200, 2000)), np.complex64)]
        kw = {k: v for k, v in spec.items() if k != "random_phase"}
        imp = Impairments(esn0_db=esn0, phase=float(rng.uniform(0, 2 * np.pi)) if spec.get("random_phase") else 0.0,
                          seed=int(rng.integers(1 << 31)), **kw)
        reports = BurstRx(bs.sps, bs.rolloff, bs.threshold, code_bits=code.n).receive(imp(np.concatenate(parts)))
        found = [r for r in reports if r.llr is not None]
        detected += min(len(reports), n)
        got = set()
        for r in found:
            res = dec.decode(r.llr)
            if res.ok[0]:
                for i, b in enumerate(bits):
                    if i not in got and np.array_equal(res.bits[0], b):
                        got.add(i)
                        break
            cfos.append(r.cfo)
        frame_err += n - len(got)
    return {"esn0_db": esn0, "bursts": n_bursts, "detect_rate": detected / n_bursts, "fer": frame_err / n_bursts,
            "cfo_est": float(np.mean(cfos)) if cfos else None}


def crossing(points, target=1e-2):
    """Es/N0 where the FER curve crosses ``target`` (log-linear interpolation), or None."""
    pts = sorted(points, key=lambda p: p["esn0_db"])
    for a, b in zip(pts, pts[1:], strict=False):
        if a["fer"] > target >= b["fer"]:
            fa, fb = np.log10(max(a["fer"], 1e-4)), np.log10(max(b["fer"], 1e-4))
            return a["esn0_db"] + (np.log10(target) - fa) / (fb - fa) * (b["esn0_db"] - a["esn0_db"])
    return None


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ideal = result["ideal"]
    ax.semilogy([p["esn0_db"] for p in ideal], [max(p["fer"], 1e-3) for p in ideal], "k-o", label="ideal link")
    for name, pts in result["sets"].items():
        ax.semilogy([p["esn0_db"] for p in pts], [max(p["fer"], 1e-3) for p in pts], "o--", ms=3, label=name)
    ax.axhline(1e-2, color="gray", lw=0.5, ls=":")
    ax.set_xlabel("Es/N0 (dB)")
    ax.set_ylabel("FER (floored at 1e-3 for display)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Burst PHY under front-end impairments (16-QAM, LDPC 1536/4608)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.ota", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one impairment set at one Es/N0 (under a minute)")
    p.add_argument("--bursts", type=int, default=400, help="bursts per point")
    p.add_argument("--samp-rate", type=float, default=1e6, help="sample rate for reporting CFO in Hz")
    p.add_argument("--out", default="results")
    p.add_argument("--profile", default=DEFAULT_OTA_PROFILE, help="link profile: a shipped name or a .yml path")
    args = p.parse_args(argv)
    from tqdm import tqdm

    prof = load_profile(args.profile)
    use_profile(prof)  # the ideal link beside it: the same code and modulation
    code = nr_code(prof.k, prof.n)
    dec = LdpcDecoder(code)
    sps = prof.burst.sps
    if args.quick:
        name = "carrier 2% + clock 100 ppm + phase"
        pt = run_point(5.0, SETS[name], 40, 1, code, dec, profile=prof)
        cfo_hz = SETS[name]["cfo"] * args.samp_rate / sps
        summary = {"set": name, "esn0_db": 5.0, "bursts": pt["bursts"], "detect_rate": pt["detect_rate"],
                   "fer": pt["fer"], "cfo_hz": cfo_hz,
                   "cfo_est_hz": pt["cfo_est"] * args.samp_rate / sps if pt["cfo_est"] is not None else None}
        print(json.dumps(summary))
        return 0
    grid = [3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5, 5.0, 5.5, 6.0, 7.0]
    result = {"bursts_per_point": args.bursts, "sets": {}, "ideal": []}
    for es in tqdm(grid, desc="ideal link"):
        r = simulate(dec, es, 100, max(args.bursts, 2000), 200, seed=int(es * 10))
        result["ideal"].append({"esn0_db": es, "fer": r["fer"], "bursts": r["codewords"], "detect_rate": 1.0})
    for name, spec in SETS.items():
        pts = []
        for es in tqdm(grid, desc=name):
            pts.append(run_point(es, spec, args.bursts, int(es * 100) + len(name), code, dec, profile=prof))
        result["sets"][name] = pts
    ideal_x = crossing(result["ideal"])
    result["fer_1e-2_esn0_db"] = {"ideal": ideal_x, **{n: crossing(p) for n, p in result["sets"].items()}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ota.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "ota_fer.png")
    for n, x in result["fer_1e-2_esn0_db"].items():
        if x is None:
            print(f"{n:40s} FER 1e-2 not reached on the grid")
        else:
            gap = f" ({x - ideal_x:+.2f} dB vs ideal)" if ideal_x is not None and n != "ideal" else ""
            print(f"{n:40s} FER 1e-2 at Es/N0 {x:.2f} dB{gap}")
    worst = max((x for x in result["fer_1e-2_esn0_db"].values() if x is not None), default=None)
    pt5 = next(p for p in result["sets"]["carrier 2% + clock 100 ppm + phase"] if p["esn0_db"] == 5.0)
    print(json.dumps({"detect_rate": pt5["detect_rate"], "fer": pt5["fer"], "esn0_db": 5.0,
                      "cfo_hz": 0.02 * args.samp_rate / sps, "ideal_fer_1e-2_esn0_db": ideal_x,
                      "worst_fer_1e-2_esn0_db": worst}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
