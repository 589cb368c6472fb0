"""Bad input ends in a clean error or a correct result, never a crash: the portability issue's findings.

Anything that once crashed the interpreter runs in a subprocess, so a regression fails
one test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gnuradio.ncsc.codec import bitstream as bs


def _stream(h, w, z: bytes, y: bytes, quality=1) -> bytes:
    """A stream with any header fields and both CRCs right (the fuzz harness's forger)."""
    from gnuradio.ncsc.bench.fuzz import forge_stream

    zh, zw = bs.latent_shape_for(h, w)
    return forge_stream([b"NCSC", 1, 1, 0, quality, 0, 0, h, w, zh, zw, len(z), len(y)], z + y)


def _run(code: str, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


TINY = """
import torch
from gnuradio.ncsc.codec.coder import NcscCodec
from gnuradio.ncsc.codec.model import NcscModel
from gnuradio.ncsc.codec.bitstream import BitstreamError
torch.manual_seed(0)
m = NcscModel(N=8); m.update(force=True)
codec = NcscCodec(m.eval(), precision="fp32")
"""


def test_forged_big_image_with_empty_z_is_refused_not_a_segfault():
    data = _stream(8192, 8192, b"", b"\0" * 4)
    r = _run(TINY + f"""
try:
    codec.decompress({data!r})
    print("decoded")
except BitstreamError as e:
    print("refused:", e)
""")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused" in r.stdout and "pixels" in r.stdout  # stopped by the size limit, before any work


def test_z_string_is_decoded_within_its_bounds(tiny_codec):
    """Empty, short, 0xFF runs and random z strings: refused or decoded, never read past the end."""
    from gnuradio.ncsc.codec.entropy import decode_z

    eb = tiny_codec.model.entropy_bottleneck
    rng = np.random.default_rng(0)
    for data in (b"", b"\0" * 4, b"\xff" * 8, b"\xff" * 4096, rng.bytes(64), b"\xff" * (1 << 20)):
        try:
            z = decode_z(eb, data, (2, 3))
            assert torch_finite(z)
        except ValueError:
            pass


def torch_finite(t) -> bool:
    import torch

    return bool(torch.isfinite(t).all())


def test_own_z_decoder_matches_compressai(tiny_codec):
    """Our bounded z decoder reads CompressAI's format: the same values, bit for bit."""
    import torch

    from gnuradio.ncsc.codec.entropy import decode_z

    eb = tiny_codec.model.entropy_bottleneck
    torch.manual_seed(1)
    for scale in (1.0, 30.0, 3000.0):  # 3000: far outside the tables, through the bypass path
        z = torch.randn(1, eb.channels, 3, 5) * scale
        strings = eb.compress(z)
        ref = eb.decompress(strings, (3, 5))
        assert torch.equal(decode_z(eb, strings[0], (3, 5)), ref)
        with pytest.raises(ValueError):
            decode_z(eb, strings[0][:-4], (3, 5))  # one word short
        with pytest.raises(ValueError):
            decode_z(eb, strings[0] + b"\0\0\0\0", (3, 5))  # trailing word


def test_pixel_limit_refuses_before_work(tiny_codec, small_image):
    from gnuradio.ncsc.codec.image import load_image

    data = tiny_codec.compress(load_image(small_image))["bitstream"]  # 96x80
    assert tiny_codec.decompress(data, max_pixels=96 * 80)["x_hat"].shape[-2:] == (80, 96)
    with pytest.raises(bs.BitstreamError, match="limit"):
        tiny_codec.decompress(data, max_pixels=96 * 80 - 1)


def test_valid_z_with_huge_values_is_a_bitstream_error(tiny_codec, small_image):
    """A well-formed z that decodes to enormous values: BitstreamError, not OverflowError."""
    import torch

    eb = tiny_codec.model.entropy_bottleneck
    z = torch.full((1, eb.channels, 1, 1), 2.0**20)  # (CompressAI's encoder loops forever at 2**30)
    zs = eb.compress(z)[0]
    data = _stream(64, 64, zs, b"\0\0\0\x01" * 2)
    with pytest.raises(bs.BitstreamError):
        tiny_codec.decompress(data)


def test_other_quality_is_refused_by_the_decoder_and_the_cli(tiny_codec, tmp_path, capsys):
    from gnuradio.ncsc.codec.__main__ import main

    data = _stream(64, 64, b"\0" * 8, b"\0" * 4, quality=7)
    with pytest.raises(bs.BitstreamError, match="q7"):
        tiny_codec.decompress(data)
    f = tmp_path / "q7.ncsc"
    f.write_bytes(data)
    assert main(["decode", str(f), str(tmp_path / "out.png")]) == 1
    assert "q7" in capsys.readouterr().err


def test_cli_options_after_the_subcommand(tmp_path, capsys):
    """``codec decode IN OUT --threads 1`` (the README's form) parses, as does the form before it."""
    from gnuradio.ncsc.codec.__main__ import main

    f = tmp_path / "big.ncsc"
    f.write_bytes(_stream(8192, 8192, b"", b"\0" * 4))
    assert main(["decode", str(f), str(tmp_path / "o.png"), "--threads", "1"]) == 1
    assert main(["--threads", "1", "decode", str(f), str(tmp_path / "o.png"), "--max-pixels", "100"]) == 1
    assert "limit" in capsys.readouterr().err


def test_cli_decode_of_the_forged_stream_exits_cleanly(tmp_path):
    f = tmp_path / "forged.ncsc"
    f.write_bytes(_stream(8192, 8192, b"", b"\0" * 4))
    r = subprocess.run([sys.executable, "-m", "gnuradio.ncsc.codec", "decode", str(f), str(tmp_path / "o.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr


# -- burst headers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("code_id,n_sym", [(0, 65535), (0, 4000), (0, 0), (0, 1151),
                                           (0x01, 1152), (0x92, 1152)])  # unknown id; copy 2 of 2
def test_forged_burst_header_does_not_hide_the_next_bursts(code_id, n_sym):
    from gnuradio.ncsc.bench.fuzz import forge_header
    from gnuradio.ncsc.fec import nr_code
    from gnuradio.ncsc.fec.encoder import encode
    from gnuradio.ncsc.phy.burst import BurstRx, BurstTx

    code = nr_code(1536, 4608)
    rng = np.random.default_rng(3)
    tx = BurstTx(sps=4)
    bursts = []
    for i in range(6):
        word = encode(code, rng.integers(0, 2, code.k, dtype=np.uint8))[0]
        sym = tx.symbols(word)
        if i == 0:
            sym = forge_header(sym, "16qam", code_id, n_sym)
        bursts += [np.zeros(200, np.complex64), tx.shape(sym)]
    x = np.concatenate(bursts + [np.zeros(400, np.complex64)])
    x = (x + 0.03 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))).astype(np.complex64)
    rx = BurstRx(4, code_bits=code.n)
    reps = rx.receive(x)
    assert sum(r.llr is not None for r in reps) == 5  # all but the forged one
    assert rx.bad_length == 1


@pytest.mark.parametrize("mod,expected", [("qpsk", 2304), ("16qam", 1152), ("64qam", 768)])
def test_payload_length_follows_the_modulation(mod, expected):
    from gnuradio.ncsc.phy.burst import BurstRx, payload_symbols

    assert payload_symbols(4608, mod) == expected
    rx = BurstRx(4, code_bits=4608)
    assert rx.length_ok({"modulation": mod, "n_symbols": expected})
    assert not rx.length_ok({"modulation": mod, "n_symbols": expected + 1})


# -- deframer --------------------------------------------------------------------------------------
def test_restarted_image_ids_are_new_images_after_the_timeout(caplog):
    from gnuradio.ncsc.framing.frame import Framer, Reassembler

    fr, ra = Framer(1536), Reassembler(timeout=2.0)
    first = fr.frame(0, b"a" * 300)
    done = []
    for b in first:
        done += ra.add(b, now=0.0)
    assert [r["status"] for r in done] == ["complete"]
    assert ra.add(first[0], now=0.5) == [] and ra.duplicates == 1  # a late copy: a duplicate
    again = fr.frame(0, b"b" * 300)  # the transmitter restarted at id 0
    out = []
    for b in again:
        out += ra.add(b, now=10.0)
    assert [r["data"] for r in out] == [b"b" * 300]
    assert ra.reused_ids == 1 and "reused" in caplog.text
    # a different block count is a new image at once, even within the timeout
    third = fr.frame(0, b"c" * 700)
    out = []
    for b in third:
        out += ra.add(b, now=10.5)
    assert [r["data"] for r in out] == [b"c" * 700]


def test_failure_hints_are_validated():
    from gnuradio.ncsc.framing.frame import Framer, Reassembler

    fr, ra = Framer(1536), Reassembler(timeout=5.0)
    blocks = fr.frame(1, b"x" * 400)  # 3 blocks
    noise = np.zeros(1536, np.uint8)
    ra.add(blocks[0], now=0.0)
    ra.add(noise, {"image_id": 1, "block_index": 0, "block_count": 3}, now=0.1)  # block 0 is in already
    ra.add(noise, {"image_id": 1, "block_index": 7, "block_count": 3}, now=0.1)  # index >= count
    ra.add(noise, {"image_id": 1, "block_index": 1, "block_count": 10**9}, now=0.1)  # absurd count
    ra.add(noise, {"image_id": "1", "block_index": 1, "block_count": 3}, now=0.1)  # wrong type
    assert ra.pending[1].failed == set() and ra.bad_hints == 3 and ra.duplicates == 1
    out = ra.add(noise, {"image_id": 1, "block_index": 1, "block_count": 3}, now=0.2)
    out += ra.add(blocks[2], now=0.3)
    assert out and out[0]["status"] == "incomplete" and out[0]["failed"] == [1]


def test_short_block_arrays_are_block_errors():
    from gnuradio.ncsc.framing.frame import BlockError, parse_block

    for n in (0, 8, 64, 88):
        with pytest.raises(BlockError):
            parse_block(np.zeros(n, np.uint8))


@pytest.mark.parametrize("meta", [
    {},
    {"image_id": "7", "name": "a"},
    {"image_id": 3, "width": 0, "height": 10},
    {"image_id": 3, "name": "n" * 300},
    {"image_id": 3, "name": "bad\0name/../../etc"},
    {"image_id": 70000, "name": None, "path": "x\0y", "failed": "zz", "blocks": "many"},
])
def test_image_receiver_never_raises(tmp_path, meta, tiny_codec):
    from gnuradio.ncsc.imaging import ImageReceiver

    rx = ImageReceiver(lambda metric: tiny_codec, tmp_path)
    rec = rx.receive(meta, b"garbage")
    assert rec["status"] == "failed"
    for f in tmp_path.iterdir():
        assert f.parent == tmp_path and len(f.name) < 100 and "\0" not in f.name
        json.loads(f.read_text())


# -- FEC -------------------------------------------------------------------------------------------
def test_alist_with_an_empty_check_row_is_refused(tmp_path):
    from gnuradio.ncsc.fec import AlistError, read_alist

    # 4 bits, 3 checks, check 3 is on no bit
    text = "4 3\n2 2\n1 1 1 1\n2 2 0\n1\n1\n2\n2\n1 2\n3 4\n0 0\n"
    f = tmp_path / "empty_row.alist"
    f.write_text(text)
    with pytest.raises(AlistError, match="no entries"):
        read_alist(f)


def test_c_kernel_allocations_are_aligned_sizes():
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "python/ncsc/fec/ldpc_qc.c").read_text()
    calls = [ln for ln in src.splitlines() if "aligned_alloc(" in ln]
    assert calls and all("round_up64(" in ln for ln in calls)


def test_image_module_leaves_pil_limits_alone():
    r = _run("from PIL import Image; v = Image.MAX_IMAGE_PIXELS\n"
             "import gnuradio.ncsc.codec.image\nprint(Image.MAX_IMAGE_PIXELS == v and v is not None)")
    assert r.stdout.strip() == "True", r.stderr


# -- the CPU probe ---------------------------------------------------------------------------------
def test_cpu_probe_is_cached_and_overridable(tmp_path, monkeypatch):
    from gnuradio.ncsc import cpuprobe

    monkeypatch.setattr(cpuprobe, "CACHE", tmp_path / "probe.json")
    calls = []
    monkeypatch.setattr(cpuprobe, "run_probe", lambda fmt, bf16: calls.append((fmt, bf16)) or False)
    monkeypatch.delenv("NCSC_CHANNELS_LAST", raising=False)
    monkeypatch.setattr(cpuprobe, "has_amx", lambda: False)
    assert cpuprobe.channels_last_ok(True) is False
    assert calls == []  # without AMX: contiguous, no probe needed
    monkeypatch.setattr(cpuprobe, "has_amx", lambda: True)
    assert cpuprobe.channels_last_ok(True) is False
    assert cpuprobe.channels_last_ok(True) is False
    assert calls == [("channels_last", True)]  # probed once, then cached
    assert json.loads((tmp_path / "probe.json").read_text())
    monkeypatch.setenv("NCSC_CHANNELS_LAST", "1")
    assert cpuprobe.channels_last_ok(True) is True


@pytest.mark.slow
def test_cpu_probe_child_runs_the_safe_configuration():
    """The probe's child itself: contiguous bf16 forward + backward runs on every CPU kind."""
    from gnuradio.ncsc import cpuprobe

    assert cpuprobe.run_probe("contiguous", True)
