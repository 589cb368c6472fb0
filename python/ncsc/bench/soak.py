"""Soak run: many images through the loopback flowgraph near the LDPC threshold; leaks and leftovers.

``python -m gnuradio.ncsc.bench.soak [--images N] [--ebn0 2.5]`` sends N small synthetic
pictures (128x128, so a run takes minutes) through the whole loopback at an Eb/N0 where
some codewords fail, and reports the records emitted, the resident memory growth after a
warm-up (the first 10 % of the images) and the threads left alive after the flowgraph
stopped. The last line is one JSON object: images, records, rss_growth_mb, threads_end.
Goal at N = 200: records == images, RSS growth <= 50 MB, no thread left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def os_threads() -> int:
    """Threads of this process as the kernel sees them (GNU Radio's C++ threads included)."""
    return len(os.listdir("/proc/self/task"))


def make_images(folder: Path, n: int, size: int = 128, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"soak{i:04d}.png")


def _loopback(folder: Path, out: Path, n_images: int, ebn0: float, seed: int, timeout: float,
              bar=None) -> tuple[list, float | None, float]:
    """One loopback run over ``folder``; (records, RSS at the warm-up point, RSS at the end)."""
    from ..loopback import LoopbackAwgn

    tb = LoopbackAwgn(str(folder), ebn0, "ebn0", "mse", seed, str(out))
    warm = max(1, n_images // 10)
    rss_warm = None
    tb.start()
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = len(tb.sink.records)
        if bar is not None:
            bar.n = done
            bar.refresh()
        if rss_warm is None and done >= warm:
            rss_warm = rss_mb()
        if tb.source.finished.is_set() and done >= tb.source.sent:
            break
        tb.sink.record_event.wait(0.2)
        tb.sink.record_event.clear()
    rss_end = rss_mb()
    tb.stop()
    tb.wait()
    records = list(tb.sink.records)
    del tb
    return records, rss_warm, rss_end


def run(n_images: int, ebn0: float, seed: int = 0, timeout: float = 3600.0) -> dict:
    """A 2-image warm-up flowgraph first (thread pools of torch and numba start lazily), then the
    soak; threads are counted after the warm-up's flowgraph stopped and after the soak's."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread of tqdm's own in the count
    before = set(threading.enumerate())
    with tempfile.TemporaryDirectory(prefix="ncsc-soak-") as work:
        warm_dir, src, out = Path(work) / "warm", Path(work) / "in", Path(work) / "out"
        warm_dir.mkdir()
        src.mkdir()
        make_images(warm_dir, 2, seed=seed + 1)
        make_images(src, n_images, seed=seed)
        _loopback(warm_dir, out, 2, ebn0, seed, timeout)
        time.sleep(0.5)
        threads_before = os_threads()
        bar = tqdm(total=n_images, desc="soak", file=sys.stderr)
        records, rss_warm, rss_end = _loopback(src, out, n_images, ebn0, seed, timeout, bar)
        bar.close()
    time.sleep(0.5)
    left = [t.name for t in threading.enumerate() if t not in before
            and not isinstance(t, threading._DummyThread) and t.is_alive()]
    statuses = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"images": n_images, "records": len(records), "statuses": statuses,
            "rss_growth_mb": round(rss_end - (rss_warm or rss_end), 1), "rss_end_mb": round(rss_end, 1),
            "threads_end": os_threads() - threads_before, "python_threads_left": left, "ebn0_db": ebn0}


def main(argv: list[str] | None = None) -> int:
    from gnuradio import gr

    gr.logging().set_default_level(gr.log_levels.warn)  # 2 info lines per image otherwise
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--ebn0", type=float, default=2.5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    res = run(args.images, args.ebn0, args.seed)
    print(json.dumps(res))
    return 0 if res["records"] == res["images"] and res["threads_end"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
