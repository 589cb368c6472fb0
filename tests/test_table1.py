"""Table I machinery: rate matching of classical codecs and the plain-module link."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gnuradio.ncsc.bench.table1 import ENCODERS, classical_decode, rate_match, send
from gnuradio.ncsc.link import PlainLink


@pytest.fixture
def photo(small_image):
    return np.asarray(Image.open(small_image).convert("RGB").resize((192, 160)))


@pytest.mark.parametrize("method", ["jpeg", "webp", "hevc", "avif"])
def test_rate_match_stays_under_target_and_decodes(photo, method):
    target = 1.0
    data, q = rate_match(photo, method, target)
    assert 8 * len(data) / (192 * 160) <= target or q == 1
    if q < 100:  # the next quality step would exceed the target
        assert 8 * len(ENCODERS[method](photo, q + 1)) / (192 * 160) > target or q == 1
    assert classical_decode(data).shape == photo.shape


def test_link_delivers_bytes_or_reports_failure():
    data = bytes(np.random.default_rng(0).integers(0, 256, 700, dtype=np.uint8))
    got, cws, failed = send(PlainLink(8.0, snr_type="ebn0"), data)
    assert got == data and cws == 4 and failed == 0
    got, cws, failed = send(PlainLink(-3.0, snr_type="ebn0"), data)
    assert got is None and failed > 0


def _photos(folder, n):
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"p{i:02d}.png")
    (folder / "SOURCES.tsv").write_text("licences, not a photo\n")


def test_benchmarks_score_the_trainers_held_out_photos(tmp_path):
    """``--held-out DIR...`` scores exactly the photos the trainer holds out of those folders."""
    import argparse

    from gnuradio.ncsc.bench import add_image_args, pick_images
    from gnuradio.ncsc.train import split_folders

    _photos(tmp_path / "train", 7)
    _photos(tmp_path / "train2", 5)
    p = argparse.ArgumentParser()
    add_image_args(p)
    dirs = [str(tmp_path / "train"), str(tmp_path / "train2")]
    files, label = pick_images(p.parse_args(["--held-out", *dirs]))
    assert files == split_folders(dirs)[1]
    assert [f.name for f in files] == ["p03.png", "p04.png", "p05.png", "p06.png",
                                       "p01.png", "p02.png", "p03.png", "p04.png"]
    assert label == "held-out photos of train, train2"
    files, label = pick_images(p.parse_args(["--images", str(tmp_path / "train")]))
    assert len(files) == 7 and label == "images of train"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pick_images(p.parse_args(["--images", str(tmp_path / "nowhere")]))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pick_images(p.parse_args(["--held-out", str(tmp_path / "nowhere")]))
    _photos(tmp_path / "tiny", 4)  # the trainer trains on all of a folder this small
    with pytest.raises(FileNotFoundError, match="none of them is held out"):
        pick_images(p.parse_args(["--held-out", dirs[0], str(tmp_path / "tiny")]))
    with pytest.raises(SystemExit):  # one set or the other
        p.parse_args(["--images", dirs[0], "--held-out", dirs[1]])


def test_table1_markdown_names_the_image_set(tmp_path):
    from gnuradio.ncsc.bench.table1 import write_markdown

    s = {"to_symbols": 1.0, "symbols": 2.0, "bpp": 0.1, "psnr": 25.0, "ms_ssim": 0.9, "decoded": 1.0}
    write_markdown({"MSE-NCSC": s}, 3.0, "ebn0", tmp_path / "t.md", "8 held-out photos of train, train2")
    title = (tmp_path / "t.md").read_text().splitlines()[0]
    assert title == "# Table I as measured (8 held-out photos of train, train2, Eb/N0 3 dB)"
