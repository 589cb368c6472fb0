"""GNU Radio Companion: every block file is complete, every .grc compiles with grcc, the loopback
runs headless, and `make install` puts everything where GNU Radio and GRC find it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gnuradio.ncsc.bench.gui import START_GUI

ROOT = Path(__file__).resolve().parents[1]
GRC_FILES = sorted(ROOT.rglob("*.grc"))
BLOCK_FILES = sorted((ROOT / "grc").glob("*.block.yml"))
GRCC = shutil.which("grcc")
needs_grcc = pytest.mark.skipif(GRCC is None, reason="grcc (GNU Radio Companion) is not installed")


def _grcc(grc: Path, out: Path, blocks_path: Path, env_extra=None):
    env = dict(os.environ, GRC_BLOCKS_PATH=str(blocks_path), **(env_extra or {}))
    # grcc runs under this venv's Python so that the generated code's imports resolve.
    return subprocess.run([sys.executable, GRCC, "-o", str(out), str(grc)], capture_output=True, text=True,
                          env=env, timeout=300)


def _run_until_record(cmd: list[str], out: Path, timeout: float = 240) -> str:
    """Run a generated flowgraph (it never ends by itself) until its sink writes a JSON record."""
    proc = subprocess.Popen(cmd + ["-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=out.parent)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and not list(out.glob("*.json")):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    records = list(out.glob("*.json"))
    assert records, "no record written"
    return records[0].read_text()


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.name)
def test_block_yml_is_complete(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["id"] == path.name.split(".")[0]
    assert spec["category"].startswith("[NCSC]/")
    assert len(spec.get("documentation", "")) > 80
    assert "ncsc." in spec["templates"]["make"]
    for p in spec.get("parameters", []):
        assert {"id", "label", "dtype"} <= set(p)
    tree = yaml.safe_load((ROOT / "grc" / "ncsc.tree.yml").read_text())
    listed = [b for cat in tree["[NCSC]"] for blocks in cat.values() for b in blocks]
    assert spec["id"] in listed


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.name)
def test_make_template_binds_to_the_block_signature(path):
    """make: templates pass keyword arguments that the block's constructor has, every
    parameter of the .yml once: a reordered or renamed argument fails here, not silently."""
    import inspect
    import re

    from gnuradio import ncsc

    spec = yaml.safe_load(path.read_text())
    make = spec["templates"]["make"]
    call = re.search(r"ncsc\.(\w+)\((.*?)\)\s*(?:\n|$)", make, re.S)
    assert call, make
    args = [a.strip() for a in call.group(2).split(",") if a.strip()]
    assert all(re.fullmatch(r"\w+=\$\{\w+\}", a) for a in args), f"positional argument in {make!r}"
    kwargs = {a.split("=")[0]: None for a in args}
    inspect.signature(getattr(ncsc, call.group(1))).bind(**kwargs)  # raises TypeError on a mismatch
    ids = {p["id"] for p in spec.get("parameters", [])}
    used = set(re.findall(r"\$\{(\w+)\}", call.group(2)))
    assert used <= ids


def test_every_block_has_a_yml_and_a_module():
    ids = {p.name.split(".")[0] for p in BLOCK_FILES}
    modules = {p.stem for p in (ROOT / "python" / "ncsc" / "blocks").glob("*.py")
               if not p.stem.startswith("_") and p.stem != "pdu"}
    assert ids == {f"ncsc_{m}" for m in modules}


@needs_grcc
@pytest.mark.parametrize("grc", GRC_FILES, ids=lambda p: p.name)
def test_grc_compiles(grc, tmp_path):
    res = _grcc(grc, tmp_path, ROOT / "grc")
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(tmp_path.glob("*.py"))


@needs_grcc
@pytest.mark.slow
def test_generated_loopback_runs_headless(tmp_path, small_image):
    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (the generated flowgraph loads them)")
    res = _grcc(ROOT / "examples" / "loopback_awgn.grc", tmp_path, ROOT / "grc")
    assert res.returncode == 0, res.stderr
    script = next(tmp_path.glob("*.py"))
    record = _run_until_record([sys.executable, str(script), "-i", str(small_image), "-s", "8"], tmp_path / "out")
    assert '"status": "ok"' in record


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cmake") is None or not Path("/usr/lib/x86_64-linux-gnu/cmake/gnuradio").exists(),
                    reason="cmake and gnuradio-dev are needed for the install test")
def test_cmake_install_tree(tmp_path):
    build, dest = tmp_path / "build", tmp_path / "dest"
    for cmd in (["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_INSTALL_PREFIX=/usr/local"],
                ["cmake", "--build", str(build)], ["cmake", "--install", str(build)]):
        res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, DESTDIR=str(dest)))
        assert res.returncode == 0, res.stdout + res.stderr
    pkg = next(dest.rglob("gnuradio/ncsc/__init__.py")).parent
    blocks = dest / "usr/local/share/gnuradio/grc/blocks"
    assert (blocks / "ncsc_ldpc_decoder.block.yml").exists() and (blocks / "ncsc.tree.yml").exists()
    assert (pkg / "fec" / "data" / "5G_bg2.csv").exists()
    assert (pkg / "weights" / "manifest.json").exists() == (ROOT / "weights" / "manifest.json").exists()
    assert "dist-packages" in str(pkg) and "python3" in str(pkg)
    assert (pkg / "fec" / "_ldpc_qc.so").exists()  # the LDPC kernel, built by CMake
    code = ("import gnuradio.ncsc as m, sys; from gnuradio.ncsc.codec.registry import weights_dir; "
            "from gnuradio.ncsc.fec import decoder as d; "
            "print(m.__file__); print(weights_dir()); print(d.c_kernel_available())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(pkg.parent.parent)))
    lines = res.stdout.splitlines()
    assert lines[0].startswith(str(dest)) and str(dest) in lines[1]
    from gnuradio.ncsc.fec import decoder

    assert lines[2] == str(decoder.c_kernel_available())  # same CPU: the installed kernel loads as the dev one
    if GRCC:
        out = tmp_path / "gen"
        res = _grcc(ROOT / "examples" / "loopback_awgn.grc", out, blocks,
                    {"PYTHONPATH": str(pkg.parent.parent)})
        assert res.returncode == 0, res.stderr


def _generate(name: str, out: Path) -> Path:
    res = _grcc(ROOT / "examples" / f"{name}.grc", out, ROOT / "grc")
    assert res.returncode == 0, res.stderr
    return next(out.glob("*.py"))


HARDWARE = {"usrp_rx": "No devices found", "usrp_tx": "No devices found", "hackrf_rx": "HackRF",
            "hackrf_tx": "HackRF", "usrp_rx_gui": "No devices found", "usrp_tx_gui": "No devices found",
            "hackrf_rx_gui": "HackRF", "hackrf_tx_gui": "HackRF"}


@needs_grcc
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HARDWARE))
def test_hardware_flowgraphs_fail_with_the_driver_message(name, tmp_path):
    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (the flowgraphs load them)")
    script = _generate(name, tmp_path)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")  # the GUI variants build their Qt window first
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, stdin=subprocess.DEVNULL, env=env)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and HARDWARE[name] in out, out[-2000:]
    tb = out[out.rfind("Traceback"):]
    assert "gnuradio/ncsc/" not in tb, "the failure must come from the driver, not from gr-ncsc"


@needs_grcc
@pytest.mark.slow
def test_impaired_loopback_delivers_an_image(tmp_path, small_image):
    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (the generated flowgraph loads them)")
    script = _generate("impaired_loopback", tmp_path)
    record = _run_until_record([sys.executable, str(script), "-i", str(small_image), "-r", "0"], tmp_path / "out")
    assert '"status": "ok"' in record


def test_flowgraph_imports_stay_light():
    """GRC evaluates a flowgraph's imports in its GTK process, where importing CompressAI crashes it:
    the .grc files may only import gnuradio.ncsc.samples, which must not pull torch in."""
    for grc in GRC_FILES:
        for block in yaml.safe_load(grc.read_text())["blocks"]:
            if block["id"] == "import":
                assert block["parameters"]["imports"] == "from gnuradio.ncsc.samples import default_image"
    code = "import sys, gnuradio.ncsc.samples as s; s.default_image(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


GUI_DRIVER = START_GUI + r"""
deadline = time.time() + 120
while viewer.shown < 2 and time.time() < deadline:
    app.processEvents()
    time.sleep(0.02)
setter, value, getter = sys.argv[4], float(sys.argv[5]), sys.argv[6]
getattr(tb, setter)(value)  # the slider's setter reaches the channel while it runs
print("after", eval(getter))
tb.stop()
tb.wait()
print("shown", viewer.shown, viewer.figures.text())
"""

GUIS = {  # flowgraph: (slider setter, a value, what the channel reports after it)
    "loopback_awgn_gui": ("set_snr_db", -1.0, "tb.ncsc_awgn_channel_0.channel.snr_db"),
    "impaired_loopback_gui": ("set_esn0", 20.0, "round(tb.get_noise_voltage(), 4)"),
}


@needs_grcc
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GUIS))
def test_gui_flowgraph_runs_offscreen_and_stops_cleanly(name, tmp_path, small_image):
    """The GUI starts offscreen, shows pictures, its slider moves the channel, and it stops."""
    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (the generated flowgraph loads them)")
    script = _generate(name, tmp_path)
    setter, value, getter = GUIS[name]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", GUI_DRIVER, str(script), name, str(small_image), setter, str(value),
                          getter], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "shown 2" in res.stdout or "shown 3" in res.stdout, res.stdout + res.stderr[-2000:]
    expected = {"loopback_awgn_gui": "after -1.0",
                "impaired_loopback_gui": f"after {round((4 * 0.5**2 * 10**(-value / 10))**0.5, 4)}"}[name]
    assert expected in res.stdout, res.stdout


@pytest.mark.parametrize("grc", GRC_FILES, ids=lambda p: p.stem)
def test_flowgraphs_take_their_link_from_a_profile(grc):
    """Each flowgraph has a ``profile`` parameter (its --profile option) that every NCSC block gets,
    and leaves the link settings to it: nothing of the link is restated in the flowgraph."""
    fg = yaml.safe_load(grc.read_text())
    params = {b["name"]: b for b in fg["blocks"] if b["id"] == "parameter"}
    assert "profile" in params
    for b in fg["blocks"]:
        if not b["id"].startswith("ncsc_") or "profile" not in yaml.safe_load(
                (ROOT / "grc" / f"{b['id']}.block.yml").read_text())["templates"]["make"]:
            continue
        assert b["parameters"].get("profile") == "profile", b["name"]
        for key in ("k", "n", "modulation", "sps", "rolloff", "code_rate", "bits_per_symbol", "snr_type"):
            assert b["parameters"].get(key, "None") == "None", f"{grc.name}: {b['name']}.{key} restates the link"


@needs_grcc
@pytest.mark.slow
def test_gui_benchmark_times_the_first_picture(tmp_path, capsys):
    """bench.gui compiles a GUI flowgraph, runs it offscreen and reports when the window and the
    first picture came (its last line one JSON object)."""
    import json

    from gnuradio.ncsc.bench import gui

    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (the generated flowgraph loads them)")
    assert gui.main(["--runs", "1", "--flowgraph", "loopback_awgn_gui", "--out", str(tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fig = res["loopback_awgn_gui"]
    assert 0 < fig["window_s"] < fig["first_picture_s"] < 300 and res["goal_s"] == 10.0
    assert 0 < res["import_s"] < fig["first_picture_s"]  # the machine's speed, to compare runs by
    assert json.loads((tmp_path / "gui.json").read_text()) == res
