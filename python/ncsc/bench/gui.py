"""Time to the first picture in the GUI flowgraphs: what a person waits for after opening them.

``python -m gnuradio.ncsc.bench.gui [--flowgraph NAME ...] [--image FILE] [--runs N]``
compiles each GUI flowgraph with ``grcc``, starts it in a fresh Python process under
``QT_QPA_PLATFORM=offscreen`` (as a user's ``python flowgraph.py`` would start, imports
included) and times, from the moment the process is launched: the window shown, the first
point in the constellation view's input (the link running) and the first picture in the
Image Viewer. The median of ``--runs`` runs is reported. The last line is one JSON object:
``{flowgraph: {window_s, first_picture_s}}`` plus ``goal_s`` (10 s), ``import_s``: the
median time of ``import torch, compressai`` in a fresh process, the figure to compare runs
by (this machine's speed varies from hour to hour), and ``codec_import_s``: the same for the
codec's own import (torch and CompressAI without what the codec does not use,
``codec/_lean.py``), the part of the wait that imports are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 10.0
FLOWGRAPHS = ("loopback_awgn_gui", "impaired_loopback_gui")

# The start of a child that runs a generated GUI flowgraph as its script would (argv: script,
# class name, image): the top block built, started and shown (tests drive GUIs with it too).
START_GUI = r"""
import importlib.util, json, sys, time
from PyQt5 import Qt
spec = importlib.util.spec_from_file_location("fg", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
app = Qt.QApplication([])
tb = getattr(mod, sys.argv[2])(image=sys.argv[3])
tb.start()
tb.show()
viewer = tb.ncsc_image_viewer_0
"""

# ... and this benchmark's: clocks read against the parent's launch time (argv[4]).
DRIVER = START_GUI + r"""
t_launch = float(sys.argv[4])
app.processEvents()
t_window = time.time()
deadline = time.time() + 180
while viewer.shown < 1 and time.time() < deadline:
    app.processEvents()
    time.sleep(0.01)
t_picture = time.time() if viewer.shown else None
tb.stop()
tb.wait()
print(json.dumps({"window_s": t_window - t_launch,
                  "first_picture_s": None if t_picture is None else t_picture - t_launch}))
"""


def examples_dir() -> Path:
    here = Path(__file__).resolve()
    for up in here.parents:
        if (up / "examples").is_dir() and (up / "grc").is_dir():
            return up
    raise FileNotFoundError("examples/ and grc/ not found above the package (run from a checkout)")


def compile_flowgraph(name: str, out: Path) -> Path:
    root = examples_dir()
    grcc = shutil.which("grcc")
    if grcc is None:
        raise FileNotFoundError("grcc (GNU Radio Companion's compiler) is not on PATH")
    env = dict(os.environ, GRC_BLOCKS_PATH=str(root / "grc"))
    # under this Python, so that the generated code's imports resolve as they will when it runs
    subprocess.run([sys.executable, grcc, "-o", str(out), str(root / "examples" / f"{name}.grc")], check=True,
                   capture_output=True, env=env)
    return out / f"{name}.py"


def time_once(script: Path, name: str, image: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t_launch = time.time()
    res = subprocess.run([sys.executable, "-c", DRIVER, str(script), name, image, repr(t_launch)],
                         capture_output=True, text=True, timeout=300, cwd=script.parent, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def import_seconds(runs: int = 3, code: str = "import torch, compressai") -> float:
    """Median wall time of a fresh interpreter running ``code`` (default: importing torch and
    CompressAI)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, capture_output=True, timeout=300)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.gui", description=__doc__.splitlines()[0])
    p.add_argument("--flowgraph", nargs="+", default=list(FLOWGRAPHS), choices=FLOWGRAPHS)
    p.add_argument("--image", default="grace_hopper.jpg", help="the flowgraphs' image parameter (their default)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", default="results", help="where gui.json goes ('' for nowhere)")
    args = p.parse_args(argv)

    result = {}
    with tempfile.TemporaryDirectory(prefix="ncsc-gui-") as tmp:
        for name in args.flowgraph:
            script = compile_flowgraph(name, Path(tmp))
            runs = [time_once(script, name, args.image) for _ in range(args.runs)]
            print(name, runs, file=sys.stderr)
            result[name] = {key: round(statistics.median(r[key] for r in runs), 2)
                            for key in ("window_s", "first_picture_s")}
    result.update(goal_s=GOAL_S, runs=args.runs, cores=os.cpu_count(), import_s=round(import_seconds(args.runs), 2),
                  codec_import_s=round(import_seconds(args.runs, "import torch\nfrom gnuradio.ncsc.codec import model"),
                                       2))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gui.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
