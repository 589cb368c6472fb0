"""The NCSC codec with a tiny random model: exact round trips, wavefront == serial, bitstream checks."""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from conftest import KODAK, need
from PIL import Image

from gnuradio.ncsc.codec import bitstream as bs
from gnuradio.ncsc.codec.coder import coding_order
from gnuradio.ncsc.codec.fixed import FA, to_fixed
from gnuradio.ncsc.codec.image import ImageError, load_image, ms_ssim


def test_round_trip_is_exactly_the_encoder_reconstruction(tiny_codec, small_image):
    x = load_image(small_image)
    enc = tiny_codec.compress(x, reconstruct=True)
    dec = tiny_codec.decompress(enc["bitstream"])
    assert torch.equal(dec["y_hat"], enc["y_hat"])
    assert torch.equal(dec["x_hat"], enc["x_hat"]) and dec["x_hat"].shape == x.shape
    assert set(enc) >= {"strings", "shape", "bitstream"}


def test_one_codec_call_at_a_time(tiny_codec, small_image):
    """A codec shared by an Image Source and a Decoder Sink runs one compress or decompress at a
    time (side by side they only slowed each other down), and both give what they give alone."""
    import threading

    x = load_image(small_image)
    data = tiny_codec.compress(x)["bitstream"]
    ref = tiny_codec.decompress(data)["x_hat"]
    inside, most, results = [0], [0], {}
    transform = tiny_codec._transform

    def counting(net, t):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        try:
            return transform(net, t)
        finally:
            inside[0] -= 1

    tiny_codec._transform = counting
    try:
        threads = [threading.Thread(target=lambda: results.update(enc=tiny_codec.compress(x)["bitstream"])),
                   threading.Thread(target=lambda: results.update(dec=tiny_codec.decompress(data)["x_hat"]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        del tiny_codec._transform
    assert most[0] == 1
    assert results["enc"] == data and torch.equal(results["dec"], ref)


@pytest.mark.parametrize("size", [(1, 1), (65, 3), (64, 128), (130, 71)])
def test_any_size_pads_and_crops(tiny_codec, size):
    x = torch.rand(1, 3, *size)
    dec = tiny_codec.decompress(tiny_codec.compress(x)["bitstream"])
    assert dec["x_hat"].shape == x.shape


def test_wavefront_order_has_the_serial_probabilities(tiny_codec, small_image):
    x = load_image(small_image)
    enc = tiny_codec.compress(x)
    m = tiny_codec.model
    with torch.no_grad():
        z_hat = m.entropy_bottleneck.decompress(enc["strings"][1], enc["shape"])
        hs = tiny_codec.hs(to_fixed(z_hat))[0]
    y_hat = enc["y_hat"]
    h, w = y_hat.shape[-2:]
    y_pad = torch.zeros((tiny_codec.M, h + 4, w + 4), dtype=torch.float64)
    full = {}
    for order in ("wavefront", "raster"):
        y_pad.zero_()
        for rows, cols in coding_order(h, w, order):
            r, c = torch.from_numpy(rows), torch.from_numpy(cols)
            raw = tiny_codec.step_params(hs, y_pad, r, c)
            for i, (a, b) in enumerate(zip(rows, cols, strict=True)):
                full.setdefault(order, {})[(a, b)] = raw[i]
            y_pad[:, r + 2, c + 2] = y_hat[0][:, r, c].double() * 2.0**FA
    rows, cols = np.mgrid[0:h, 0:w]
    one_pass = tiny_codec.full_params(hs, y_hat, rows.ravel(), cols.ravel())
    for i, pos in enumerate(zip(rows.ravel(), cols.ravel(), strict=True)):
        np.testing.assert_array_equal(full["wavefront"][pos], full["raster"][pos])
        np.testing.assert_array_equal(full["wavefront"][pos], one_pass[i])
    # and a raster-coded stream decodes to the same latent
    dec = tiny_codec.decompress(tiny_codec.compress(x, order="raster")["bitstream"])
    assert torch.equal(dec["y_hat"], y_hat)


def test_wavefronts_are_few_and_causal():
    steps = coding_order(32, 48)
    assert len(steps) == 47 + 3 * 31 + 1
    seen = set()
    for rows, cols in steps:
        for r, c in zip(rows, cols, strict=True):
            for dr, dc in [(-1, -2), (-1, 2), (-2, 2), (0, -1), (0, -2), (-2, -2)]:
                if 0 <= r + dr < 32 and 0 <= c + dc < 48:
                    assert (r + dr, c + dc) in seen
        seen |= set(zip(rows, cols, strict=True))


def test_header_round_trip():
    h = bs.Header(1, "ms-ssim", 1, "wavefront", 512, 768, (8, 12), 3, 5)
    data = bs.pack(h, b"abc", b"defgh")
    assert bs.unpack(data) == (h, b"abc", b"defgh")


def _with_header(data: bytes, **changes) -> bytes:
    fields = list(bs._HDR.unpack_from(data))
    names = ["magic", "version", "model_id", "metric", "quality", "order", "flags", "h", "w", "zh", "zw",
             "len_z", "len_y"]
    for k, v in changes.items():
        fields[names.index(k)] = v
    head = bs._HDR.pack(*fields)
    return head + struct.pack(">I", zlib.crc32(head)) + data[bs.HEADER_SIZE:]


def test_bad_streams_fail_clearly(tiny_codec, small_image):
    good = tiny_codec.compress(load_image(small_image))["bitstream"]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    cases = {
        "too short": good[:10],
        "truncated": good[:-7],
        "payload CRC": bytes(flipped),
        "magic": b"JUNK" + good[4:],
        "version": _with_header(good, version=9),
        "absurd image size": _with_header(good, h=60000, w=60000),
        "latent shape": _with_header(good, zh=200),
        "promises": _with_header(good, len_y=10**9),
    }
    for what, data in cases.items():
        with pytest.raises(bs.BitstreamError) as info:
            tiny_codec.decompress(data)
        assert str(info.value), what
    hdr = bytearray(good)
    hdr[11] ^= 1
    with pytest.raises(bs.BitstreamError, match="header CRC"):
        tiny_codec.decompress(bytes(hdr))


def test_image_inputs(tmp_path, tiny_codec, caplog):
    gray = tmp_path / "g.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(gray)
    rgba = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 30, 4), np.uint8)).save(rgba)
    with caplog.at_level("INFO"):
        assert load_image(gray).shape == (1, 3, 20, 30)
        assert load_image(rgba).shape == (1, 3, 20, 30)
    assert "converting L image to RGB" in caplog.text and "converting RGBA" in caplog.text
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)
    with pytest.raises(ImageError, match="larger than"):
        load_image(huge)


def test_weight_hash_is_checked(tmp_path):
    from gnuradio.ncsc.codec.model import NcscModel
    from gnuradio.ncsc.codec.registry import WeightsError, export_weights, load_state

    torch.manual_seed(0)
    path = tmp_path / "w.pth.gz"
    digest = export_weights(NcscModel(N=8), path)
    assert load_state(path, digest)
    with pytest.raises(WeightsError, match="sha256") as info:
        load_state(path, "0" * 64)
    assert str(path) in str(info.value) and digest in str(info.value)
    with pytest.raises(WeightsError, match="not found"):
        load_state(tmp_path / "nope.pth.gz", digest)


def test_cli_round_trip(tmp_path, small_image, monkeypatch, tiny_codec):
    from gnuradio.ncsc.codec import __main__ as cli

    monkeypatch.setattr(cli, "load_codec", lambda *a, **k: tiny_codec)
    out = tmp_path / "x.ncsc"
    assert cli.main(["--threads", "1", "encode", str(small_image), str(out)]) == 0
    assert cli.main(["decode", str(out), str(tmp_path / "x.png")]) == 0
    assert Image.open(tmp_path / "x.png").size == (96, 80)
    out.write_bytes(b"NCSC" + bytes(40))
    assert cli.main(["decode", str(out), str(tmp_path / "y.png")]) == 1


@pytest.mark.slow
def test_shipped_weights_on_a_kodak_image():
    from gnuradio.ncsc.codec.registry import load_codec, manifest, weights_dir

    img = need(KODAK / "kodim07.png", "Kodak")
    need(weights_dir() / "manifest.json", "shipped weights")
    codec = load_codec("mse")
    enc = codec.compress(load_image(img), reconstruct=True)
    dec = codec.decompress(enc["bitstream"])
    assert torch.equal(dec["x_hat"], enc["x_hat"])
    bpp = 8 * len(enc["bitstream"]) / (768 * 512)
    assert 0.01 < bpp < 1.0
    assert json.dumps(manifest()["ncsc-mse-q1"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mse", "ms-ssim"])
def test_quick_codec_benchmark_measures_the_model_asked_for(tmp_path, model):
    """``bench.codec --quick --model ms-ssim`` measures the MS-SSIM weights (it measured the MSE
    ones whatever --model said), on the first 4 images only."""
    from gnuradio.ncsc.bench import codec as bench_codec
    from gnuradio.ncsc.codec.registry import weights_dir

    need(weights_dir() / "manifest.json", "shipped weights")
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (192, 192, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    out = tmp_path / "out"
    assert bench_codec.main(["--images", str(tmp_path), "--quick", "--model", model, "--threads", "1",
                             "--out", str(out)]) == 0
    res = json.loads((out / "codec_quick.json").read_text())["results"]
    assert list(res) == [model] and res[model]["summary"]["images"] == 4


def test_codec_benchmark_rows(tiny_codec, small_image):
    from gnuradio.ncsc.bench.codec import measure, summarize, z_is_constant

    rows = measure(tiny_codec, [small_image, small_image], serial_on=1, progress=False)
    assert rows[0]["serial_same_latents"] and "serial_decode_s" not in rows[1]
    s = summarize(rows)
    assert s["images"] == 2 and s["bpp"] == pytest.approx(rows[0]["bpp"])
    assert 0 < s["z_bpp"] < s["bpp"] and s["z_constant_images"] in (0, 2)
    assert s["psnr"] > 0 and 0 < s["ms_ssim"] <= 1 and s["encode_s"] > 0
    z = torch.zeros(1, 4, 3, 5)
    z[0, 2] = 1.0
    assert z_is_constant(z)
    z[0, 1, 2, 4] = -1.0
    assert not z_is_constant(z)


def test_precision_changes_pixels_never_bits(tiny_codec, small_image, monkeypatch):
    """bf16 transforms: a bf16 decoder reproduces a bf16 encoder exactly, and an fp32 decoder
    reads the same latents from the same stream (the probability path is integer arithmetic)."""
    import copy

    from gnuradio.ncsc.codec.coder import NcscCodec, resolve_precision

    fp32 = NcscCodec(copy.deepcopy(tiny_codec.model), precision="fp32")
    bf16 = NcscCodec(copy.deepcopy(tiny_codec.model), precision="bf16")
    x = load_image(small_image)
    enc = bf16.compress(x, reconstruct=True)
    same = bf16.decompress(enc["bitstream"])
    assert torch.equal(same["x_hat"], enc["x_hat"])
    other = fp32.decompress(enc["bitstream"])
    assert torch.equal(other["y_hat"], enc["y_hat"])
    assert torch.allclose(other["x_hat"], enc["x_hat"], atol=0.02)

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    monkeypatch.setenv("NCSC_PRECISION", "fp32")
    assert resolve_precision() == "fp32"
    monkeypatch.setenv("NCSC_PRECISION", "fp64")
    with pytest.raises(ValueError, match="fp64"):
        resolve_precision()


def test_ms_ssim_scores_read_only_images_without_a_warning():
    """Decoded images can be read-only views; scoring them must neither warn nor copy wrongly."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (192, 200, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    a.flags.writeable = False
    b.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same, noisy = ms_ssim(a, a), ms_ssim(a, b)
    assert same == pytest.approx(1.0, abs=1e-6) and 0 < noisy < 0.99
    assert not a.flags.writeable and not b.flags.writeable
