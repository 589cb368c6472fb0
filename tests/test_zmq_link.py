"""Two radios in separate processes: TX and RX flowgraphs joined through a channel process by ZMQ."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", 0))
                port = a.getsockname()[1]
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair")


@pytest.mark.slow
def test_image_crosses_three_processes(small_image, tmp_path):
    if not (ROOT / "weights" / "manifest.json").exists():
        pytest.skip("no shipped weights in weights/ (TX and RX load them)")
    port = _free_port_pair()
    out = tmp_path / "rx"
    script = str(ROOT / "examples" / "zmq_link.py")
    common = ["--port", str(port)]
    procs = [subprocess.Popen([sys.executable, script, "rx", "--out", str(out)] + common,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen([sys.executable, script, "channel", "--esn0", "12", "--cfo", "0.01", "--ppm", "50"]
                              + common, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen([sys.executable, script, "tx", "--image", str(small_image)] + common,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("*.json")):
            for p in procs:
                assert p.poll() is None, p.stdout.read()
            time.sleep(0.5)
        records = list(out.glob("*.json"))
        assert records, "no image arrived"
        rec = json.loads(records[0].read_text())
        assert rec["status"] == "ok" and rec["codeword_errors"] == 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
