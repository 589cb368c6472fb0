"""Burst RX throughput through the GNU Radio blocks: can the receiver keep up with the air?

``python -m gnuradio.ncsc.bench.rx [--quick] [--bursts N]``: ``vector_source_c -> NCSC Burst RX
-> message_debug`` on one core (the process is pinned to one CPU), fed

- back-to-back 16-QAM bursts (200-sample gaps, Es/N0 12 dB, 4 samples per symbol): ``msps_bursts``;
- noise only, 4x as many samples: ``msps_noise`` (the detector alone);
- a mixed QPSK / 16-QAM / 64-QAM stream at Es/N0 15 dB: ``modulations``, the set decoded.

Samples per second of wall time, decoding included (LDPC in the hier block), the median of
``--repeat`` runs (3). The last line is
one JSON object: msps_bursts, msps_noise, bursts_sent, bursts_decoded, modulations,
mixed_sent, mixed_decoded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def burst_stream(n: int, modulations, esn0_db: float, seed: int = 0, gap: int = 200, profile=None):
    """(samples, sent info blocks, modulations) for n bursts, modulations cycled."""
    from ..channel.impairments import Impairments
    from ..fec import nr_code
    from ..fec.encoder import encode
    from ..phy.burst import BurstTx
    from ..profiles import DEFAULT_OTA_PROFILE, load_profile

    prof = load_profile(profile or DEFAULT_OTA_PROFILE)
    rng = np.random.default_rng(seed)
    code = nr_code(prof.k, prof.n)
    txs = {m: BurstTx(sps=prof.burst.sps, beta=prof.burst.rolloff, modulation=m) for m in set(modulations)}
    parts, sent, mods = [np.zeros(gap, np.complex64)], [], []
    for i in range(n):
        m = modulations[i % len(modulations)]
        bits = rng.integers(0, 2, code.k, dtype=np.uint8)
        parts += [txs[m].burst(encode(code, bits)[0]), np.zeros(gap, np.complex64)]
        sent.append(bits)
        mods.append(m)
    x = Impairments(esn0_db=esn0_db, seed=seed + 1)(np.concatenate(parts) * 2)
    return np.asarray(x, np.complex64), sent, mods


def run_blocks(x: np.ndarray, profile=None) -> tuple[float, list]:
    """Wall seconds for Burst RX to take the whole stream, and the PDUs it emitted."""
    from gnuradio import blocks, gr

    from ..blocks.burst_rx import burst_rx
    from ..blocks.pdu import from_pdu

    tb = gr.top_block()
    src = blocks.vector_source_c(x.tolist())
    rx = burst_rx(samp_rate=1e6, profile=profile)
    sink = blocks.message_debug()
    tb.connect(src, rx)
    tb.msg_connect(rx, "out", sink, "store")
    t0 = time.perf_counter()
    tb.run()
    dt = time.perf_counter() - t0
    return dt, [from_pdu(sink.get_message(i), np.uint8) for i in range(sink.num_messages())]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.rx", description=__doc__.splitlines()[0])
    p.add_argument("--bursts", type=int, default=400)
    p.add_argument("--quick", action="store_true", help="100 bursts, one run")
    p.add_argument("--out", default="results", help="where rx.json goes ('' for nowhere)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs (the median is reported)")
    p.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    p.add_argument("--profile", default=None, help="link profile (default ota-16qam): a shipped name or a .yml path")
    args = p.parse_args(argv)
    n = 100 if args.quick else args.bursts
    if args.quick:
        args.repeat = 1
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    # warm-up: numba kernels compile on first use
    x, _, _ = burst_stream(2, ["16qam"], 12.0, seed=99, profile=args.profile)
    run_blocks(x, args.profile)

    x, sent, _ = burst_stream(n, ["16qam"], 12.0, seed=1, profile=args.profile)
    # noise for 4x as long as the bursts: the steady rate, not the flowgraph's start and stop
    rng = np.random.default_rng(5)
    n_noise = 4 * x.size
    noise = (0.1 * (rng.standard_normal(n_noise) + 1j * rng.standard_normal(n_noise))).astype(np.complex64)
    # the median of --repeat runs: this machine's speed varies by a third from run to run
    burst_rates, noise_rates = [], []
    for _ in range(args.repeat):
        dt, got = run_blocks(x, args.profile)
        burst_rates.append(x.size / dt / 1e6)
        dt_noise, got_noise = run_blocks(noise, args.profile)
        noise_rates.append(noise.size / dt_noise / 1e6)
    ok = sum(bool(meta.get("ldpc_ok", [False])[0]) and np.array_equal(dec, sent_bits)
             for (meta, dec), sent_bits in zip(got, sent, strict=False))

    mixed, msent, mods = burst_stream(30 if args.quick else 60, ["qpsk", "16qam", "64qam"], 15.0, seed=2,
                                        profile=args.profile)
    _, mgot = run_blocks(mixed, args.profile)
    decoded_mods = sorted({meta["modulation"] for meta, _ in mgot if meta.get("ldpc_ok", [False])[0]})
    res = {"msps_bursts": round(float(np.median(burst_rates)), 3),
           "msps_noise": round(float(np.median(noise_rates)), 3),
           "runs_msps_bursts": [round(r, 3) for r in burst_rates],
           "runs_msps_noise": [round(r, 3) for r in noise_rates],
           "bursts_sent": n, "bursts_decoded": int(ok), "false_bursts_on_noise": len(got_noise),
           "modulations": decoded_mods, "mixed_sent": len(msent),
           "mixed_decoded": sum(bool(meta.get("ldpc_ok", [False])[0]) for meta, _ in mgot),
           "samples": int(x.size), "cores": 1 if not args.all_cores else os.cpu_count()}
    if args.out:
        from pathlib import Path

        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "rx.json").write_text(json.dumps(res) + "\n")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
