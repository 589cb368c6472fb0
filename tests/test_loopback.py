"""The whole chain in a top block with a tiny model: exact at high SNR, honest failures at low SNR."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from gnuradio.ncsc.codec.image import load_image, to_array
from gnuradio.ncsc.loopback import LoopbackAwgn


def test_exact_reconstruction_at_high_snr(tiny_codec, small_image, tmp_path):
    tb = LoopbackAwgn(str(small_image), snr_db=12.0, out_dir=str(tmp_path / "out"), codec=tiny_codec)
    (rec,) = tb.run_until_done(timeout=120)
    assert rec["status"] == "ok" and rec["codeword_errors"] == 0
    expected = to_array(tiny_codec.compress(load_image(small_image), reconstruct=True)["x_hat"])
    got = np.asarray(Image.open(rec["png"]))
    np.testing.assert_array_equal(got, expected)
    saved = json.loads((tmp_path / "out" / "00000_small.json").read_text())
    assert saved["status"] == "ok" and saved["symbols"] == rec["codewords"] * 1152
    assert rec["bcr"] == pytest.approx(rec["symbols"] / (3 * 96 * 80))


def test_low_snr_records_failures_without_hanging(tiny_codec, small_image, tmp_path):
    tb = LoopbackAwgn(str(small_image), snr_db=-4.0, out_dir=str(tmp_path), codec=tiny_codec)
    (rec,) = tb.run_until_done(timeout=120)
    assert rec["status"] == "failed" and rec["codeword_errors"] > 0 and rec["reason"]


def test_twenty_images_give_twenty_records(tiny_codec, small_image, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(20):
        shutil.copy(small_image, folder / f"img{i:02d}.png")
    (folder / "broken.png").write_text("not an image")  # skipped with a message, not a crash
    tb = LoopbackAwgn(str(folder), snr_db=10.0, codec=tiny_codec)
    recs = tb.run_until_done(timeout=300)
    assert len(recs) == 20 and all(r["status"] == "ok" for r in recs)
    assert sorted(r["image_id"] for r in recs) == list(range(20))
    assert tb.source.skipped == 1


@pytest.mark.parametrize("snr_db,profile", [(1.9, "paper-awgn"), (12.0, "paper-awgn"),
                                            (1.5, "paper-awgn-graceful")])
def test_flowgraph_and_plain_pipeline_give_identical_records(tiny_codec, tmp_path, snr_db, profile):
    """The loopback flowgraph and the plain link pipeline (``ncsc.link``) are the same link: for the
    same seed they give the same record for every image, failed codewords included (and, sliced,
    with the head's blocks repeated and combined)."""
    import numpy as np
    from PIL import Image

    from gnuradio.ncsc.imaging import ImageReceiver, ImageSender, expand_paths
    from gnuradio.ncsc.link import PlainLink

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    # noisy pictures: several codewords each (sliced, more than the repeated head's pages hold)
    side = 768 if "graceful" in profile else 512
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"n{i}.png")
    records = LoopbackAwgn(str(folder), snr_db=snr_db, seed=5, codec=tiny_codec,
                           profile=profile).run_until_done(timeout=300)
    link = PlainLink(snr_db, profile, seed=5)
    sender = ImageSender.for_profile(tiny_codec, link.profile, link.framer.capacity)
    receiver = ImageReceiver(lambda metric: tiny_codec, None, link.channel.bits_per_symbol, link.k / link.n,
                             head_repeat=link.profile.head_repeat)
    plain = [receiver.receive(*link.send(*sender.encode(path))) for path in expand_paths(str(folder))]

    def stable(rec):
        return {k: v for k, v in rec.items() if k not in ("decode_s", "png")}

    for a, b in zip(records, plain, strict=True):
        diff = {k: (a.get(k), b.get(k)) for k in set(stable(a)) | set(stable(b)) if a.get(k) != b.get(k)}
        assert not diff, diff
    assert sum(r["codewords"] for r in plain) >= 8
    if snr_db < 3:
        assert any(r["codeword_errors"] for r in plain)  # the comparison covers failures too
