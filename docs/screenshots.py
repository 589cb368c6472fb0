#!/usr/bin/env python3
"""Retake the README's screenshots: ``python docs/screenshots.py``.

Run it under a display (``xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots.py`` on
a machine without one). Two kinds:

- the Qt GUI flowgraphs: each is compiled with grcc, run for ``--seconds`` and its top-level
  window grabbed by Qt itself (the flowgraph is imported in this process);
- the GNU Radio Companion canvas of the loopback flowgraph, as a user opens it: GRC runs in a
  child process on a 1600x1000 window and GDK saves the screen (no X screenshot tool needed).

``--only canvas`` or ``--only gui`` takes one kind.
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
CANVASES = {"loopback_awgn": "grc_loopback.png"}

# Runs GNU Radio Companion on one flowgraph, sizes its window to the screen, saves the screen.
CANVAS_DRIVER = r"""
import sys
import gi
gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk

out, grc, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def place():
    for w in Gtk.Window.list_toplevels():
        if w.get_visible() and w.get_title():
            w.move(0, 0)
            w.resize(width, height)
    GLib.timeout_add_seconds(3, save)
    return False

def save():
    shot = Gdk.pixbuf_get_from_window(Gdk.get_default_root_window(), 0, 0, width, height)
    shot.savev(out, "png", [], [])
    Gtk.Application.get_default().quit()
    return False

GLib.timeout_add_seconds(10, place)
sys.argv = ["gnuradio-companion", grc]
from gnuradio.grc.main import main
main()
"""


def shoot_canvas(grc: Path, png: Path, size=(1600, 1000)) -> None:
    env = dict(os.environ, GRC_BLOCKS_PATH=str(ROOT / "grc"))
    for _attempt in range(3):  # GRC under Xvfb crashed at start-up once in a few runs
        res = subprocess.run([sys.executable, "-c", CANVAS_DRIVER, str(png), str(grc), *map(str, size)], env=env,
                             capture_output=True, timeout=180)
        if res.returncode == 0:
            print(f"saved {png}")
            return
    raise RuntimeError(f"GNU Radio Companion did not run: {res.stderr.decode(errors='replace')[-2000:]}")


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
    p.add_argument("--only", choices=("canvas", "gui"), help="take one kind of screenshot only")
    p.add_argument("flowgraph_args", nargs="*", help="arguments for the flowgraph (e.g. -i FOLDER)")
    args = p.parse_args(argv)
    if args.only != "gui":
        for name, png in CANVASES.items():
            shoot_canvas(ROOT / "examples" / f"{name}.grc", Path(args.out) / png)
    if args.only == "canvas":
        return 0
    with tempfile.TemporaryDirectory() as work:
        for name, png in GUIS.items():
            script = compile_grc(ROOT / "examples" / f"{name}.grc", Path(work))
            os.chdir(work)
            shoot(script, Path(args.out) / png, args.seconds, args.flowgraph_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
