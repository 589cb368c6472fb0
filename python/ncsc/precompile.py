"""Compile the numba kernels into their cache now: ``python -m gnuradio.ncsc.precompile``.

numba compiles a kernel at its first call and caches it beside its source. In a fresh checkout
the first flowgraph, test or benchmark would otherwise wait for the burst receiver's, the
demapper's, the LDPC decoder's and the entropy coder's kernels: 30-70 s on a 2-core machine,
inside a burst or an image that a user is waiting for. ``make setup`` runs this whenever a
kernel's source changed. The last line is one JSON object: ``{"seconds": ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m gnuradio.ncsc.precompile", description=__doc__.splitlines()[0]).parse_args(
        argv)
    t0 = time.perf_counter()
    from .codec.entropy import warm_up as entropy_warm_up
    from .fec import LdpcDecoder, make_code
    from .modulation import DEMAPPERS, ORDERS, demodulate, modulate
    from .phy import BurstRx

    BurstRx(4, 0.35, 0.5, 4608).warm_up()  # every stage, the exact demapper, all three modulations
    LdpcDecoder(make_code(1536, 4608)).warm_up()
    for name in ORDERS:  # the Soft Demapper block's paths, max-log included
        symbols = modulate(np.zeros(12, np.uint8), name)
        for method in DEMAPPERS:
            demodulate(symbols, 0.1, name, method)
    entropy_warm_up()
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
