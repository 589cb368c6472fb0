#!/usr/bin/env python3
"""Retake the README's screenshots of the Qt GUI flowgraphs: ``python docs/screenshots.py``.

Compiles each GUI flowgraph with grcc, runs it for ``--seconds`` under the current display
(run it under ``xvfb-run -s "-screen 0 1600x1000x24"`` on a machine without one), then
grabs the top-level window with Qt and saves ``docs/<name>.png``. The flowgraph is imported
in this process, so the window is grabbed by Qt itself: no X screenshot tool is needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIS = {"loopback_awgn_gui": "grc_loopback_gui.png", "impaired_loopback_gui": "grc_impaired_loopback_gui.png"}


def compile_grc(grc: Path, out: Path) -> Path:
    env = dict(os.environ, GRC_BLOCKS_PATH=str(ROOT / "grc"))
    subprocess.run([sys.executable, "/usr/bin/grcc", "-o", str(out), str(grc)], check=True, env=env,
                   capture_output=True)
    return out / f"{grc.stem}.py"


def shoot(script: Path, png: Path, seconds: float, argv: list[str]) -> None:
    from PyQt5 import Qt

    spec = importlib.util.spec_from_file_location(script.stem, script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    app = Qt.QApplication.instance() or Qt.QApplication([script.stem])
    cls = getattr(mod, script.stem)
    parser = mod.argument_parser() if hasattr(mod, "argument_parser") else None
    options = parser.parse_args(argv) if parser else None
    tb = cls(**{k: v for k, v in vars(options).items()}) if options else cls()
    tb.start()
    tb.show()
    tb.resize(1500, 900)
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)
    tb.grab().save(str(png))
    tb.stop()
    tb.wait()
    print(f"saved {png}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=25.0, help="how long each flowgraph runs before the grab")
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("flowgraph_args", nargs="*", help="arguments for the flowgraph (e.g. -i FOLDER)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        for name, png in GUIS.items():
            script = compile_grc(ROOT / "examples" / f"{name}.grc", Path(work))
            os.chdir(work)
            shoot(script, Path(args.out) / png, args.seconds, args.flowgraph_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
