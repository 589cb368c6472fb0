"""QA of the image-path blocks, each in a real top block."""

from __future__ import annotations

import time

import numpy as np
import pmt
from conftest import run_pdus
from gnuradio import blocks, gr, ncsc

from gnuradio.ncsc.blocks.pdu import from_pdu, to_pdu
from gnuradio.ncsc.framing import Framer


def _run_source(src):
    """Run an Image Source in a top block until it has sent every image; its messages."""
    tb = gr.top_block()
    sink = blocks.message_debug()
    tb.msg_connect(src, "out", sink, "store")
    tb.start()
    src.finished.wait(60)
    time.sleep(0.1)
    tb.stop()
    tb.wait()
    return sink


def test_image_source_emits_bitstreams_and_skips_bad_files(tiny_codec, small_image, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    src = ncsc.image_source(f"{small_image};{bad};{tmp_path / 'missing.png'};{small_image}", codec=tiny_codec)
    sink = _run_source(src)
    assert sink.num_messages() == 2 and src.skipped == 2
    meta, data = from_pdu(sink.get_message(1), np.uint8)
    assert meta["image_id"] == 1 and meta["bits"] == 8 * data.size and data[:4].tobytes() == b"NCSC"


def test_framer_block_emits_one_pdu_per_block():
    data = np.arange(500, dtype=np.uint16).astype(np.uint8)
    out = run_pdus(ncsc.framer(), [to_pdu({"image_id": 4}, data)], 3)
    assert len(out) == 3
    metas = [from_pdu(m, np.uint8)[0] for m in out]
    assert [m["block_index"] for m in metas] == [0, 1, 2] and {m["block_count"] for m in metas} == {3}
    bad = run_pdus(ncsc.framer(), [to_pdu({}, data)], 0, timeout=0.5)  # no image_id: dropped
    assert bad == []


def test_deframer_block_reassembles_and_times_out():
    f = Framer()
    blocks_a = f.frame(1, bytes(range(200)) * 2)
    blocks_b = f.frame(2, bytes(300))
    pdus = [to_pdu({"block_index": i}, b) for i, b in enumerate(blocks_a[::-1])]  # reversed order
    pdus.append(to_pdu({}, blocks_b[0]))  # image 2 never completes
    dfr = ncsc.deframer(timeout=0.5)
    out = run_pdus(dfr, pdus, 2, timeout=10)
    metas = [from_pdu(m, np.uint8) for m in out]
    (m1, d1), (m2, d2) = metas
    assert m1["status"] == "complete" and d1.tobytes() == bytes(range(200)) * 2
    assert m2["image_id"] == 2 and m2["status"] == "incomplete" and "timed out" in m2["reason"]
    assert m2["missing"] == [1] and not dfr.reasm.pending
    # what arrived is handed on in place, the lost block as zeros, with the loss map
    assert m2["lost"] == [1] and m2["block_bytes"] == f.capacity and d2.size == 2 * f.capacity
    assert d2[: f.capacity].tobytes() == bytes(f.capacity) and not d2[f.capacity :].any()


def test_decoder_sink_records_good_and_bad_images(tiny_codec, small_image, tmp_path):
    from gnuradio.ncsc.imaging import ImageSender

    meta, data = ImageSender(tiny_codec).encode(small_image)
    meta.update(status="complete", blocks=3, failed=[], missing=[])
    corrupt = bytearray(data)
    corrupt[-9] ^= 0xFF
    sink = ncsc.decoder_sink(str(tmp_path), codec=tiny_codec)
    pdus = [to_pdu(meta, np.frombuffer(data, np.uint8)),
            to_pdu(dict(meta, image_id=1), np.frombuffer(bytes(corrupt), np.uint8)),
            to_pdu(dict(meta, image_id=2, status="incomplete", reason="1 failed", failed=[0]), np.zeros(0, np.uint8)),
            pmt.intern("garbage")]
    out = run_pdus(sink, pdus, 3, timeout=60)
    recs = [from_pdu(m, np.uint8)[0] for m in out]
    assert [r["status"] for r in recs] == ["ok", "failed", "failed"]
    assert "CRC" in recs[1]["reason"] and recs[2]["reason"] == "1 failed"
    assert recs[0]["psnr"] > 5 and 0 < recs[0]["ms_ssim"] <= 1 and recs[0]["symbols"] == 3 * 1152
    assert (tmp_path / "00000_small.png").exists() and (tmp_path / "00001_small.json").exists()
    assert sink.n_dropped == 1


def test_decoder_sink_decodes_off_the_message_thread(tiny_codec, small_image, tmp_path):
    """A slow codec: the handler returns at once, images queue in order, none is dropped, and
    stop() finishes the queue."""
    from gnuradio.ncsc.imaging import ImageSender

    class Slow:
        metric = tiny_codec.metric

        def decompress(self, data, max_pixels=None):
            time.sleep(0.3)
            return tiny_codec.decompress(data, max_pixels=max_pixels)

    sender = ImageSender(tiny_codec)
    sink = ncsc.decoder_sink(str(tmp_path), codec=Slow())
    t0 = time.perf_counter()
    for _ in range(4):
        meta, data = sender.encode(small_image)
        meta.update(status="complete", blocks=1)
        sink.process(meta, np.frombuffer(data, np.uint8))
    assert time.perf_counter() - t0 < 1.0  # four encodes, no decode waited for
    assert sink.backlog >= 2
    sink.stop()
    assert [r["image_id"] for r in sink.records] == [0, 1, 2, 3]
    assert all(r["status"] == "ok" for r in sink.records) and sink.backlog == 0


def test_image_viewer_shows_decoded_images(tiny_codec, small_image, tmp_path, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from PyQt5 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    viewer = ncsc.image_viewer("test")
    png = np.frombuffer(small_image.read_bytes(), np.uint8)
    pdus = [to_pdu({"name": "a", "status": "ok", "bpp": 0.1, "psnr": 30.0}, png),
            to_pdu({"name": "b", "status": "failed", "reason": "CRC"}, np.zeros(0, np.uint8)),
            pmt.intern("junk")]
    tb = gr.top_block()
    from gnuradio import pdu

    feeder = pdu.pdu_filter(pmt.intern("never"), pmt.PMT_T)  # a quiet upstream: the viewer needs a peer
    tb.msg_connect(feeder, "pdus", viewer, "in")
    tb.start()
    for p in pdus:
        viewer.to_basic_block()._post(pmt.intern("in"), p)
    deadline = time.time() + 10
    while viewer.shown < 2 and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    tb.stop()
    tb.wait()
    assert viewer.shown == 2 and "CRC" in viewer._caption.text()


def test_viewer_figures_count_images_and_bursts():
    """The viewer's running figures and burst report line (plain Python, no Qt event loop)."""
    from gnuradio.ncsc.blocks.image_viewer import BurstFigures, LinkFigures

    figs = LinkFigures()
    figs.add({"status": "ok", "codewords": 3, "codeword_errors": 0, "psnr": 30.0})
    figs.add({"status": "failed", "codewords": 2, "codeword_errors": 1})
    assert figs.text() == ("images 2: 1 decoded, 1 failed; codewords 5, 1 failed (FER 0.2), mean PSNR 30.00 dB")
    bursts = BurstFigures()
    assert bursts.text() == "no burst yet"
    bursts.add({"snr_db": 12.34, "cfo_hz": -1234.0, "modulation": "16qam", "ldpc_ok": [True],
                "ldpc_iterations": [3]})
    bursts.add({"snr_db": 2.0, "cfo": 0.001, "modulation": "qpsk", "ldpc_ok": [False], "ldpc_iterations": [50]})
    assert bursts.failed == 1 and bursts.bursts == 2
    assert bursts.text().startswith("burst 2: SNR 2.0 dB, CFO +0.0010 cyc/sym, qpsk, LDPC failed (50 iterations)")
    assert bursts.text().endswith("bursts 2, 1 failed LDPC")


def test_image_source_encodes_its_first_image_before_start(tiny_codec, small_image, tmp_path):
    # a bad first file: skipped as before, after its encode failed on the prefetch thread
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    src = ncsc.image_source(f"{bad};{small_image}", codec=tiny_codec, first_id=7)
    sink = _run_source(src)
    assert src.skipped == 1 and sink.num_messages() == 1
    assert from_pdu(sink.get_message(0), np.uint8)[0]["image_id"] == 7

    # a good first file: encoded at construction, sent at start with the first id
    src = ncsc.image_source(f"{small_image};{small_image}", codec=tiny_codec, first_id=3)
    meta, data = src._setup.take_first()  # done without the flowgraph running
    assert meta["image_id"] == 3 and data[:4] == b"NCSC"
    assert src._setup.take_first() is None  # sent once


def test_image_source_without_weights_logs_and_sends_nothing(small_image, tmp_path):
    """The named codec loads on the source's setup thread: weights that are not there stop the
    source with a logged error when the flowgraph starts, and the flowgraph runs on."""
    src = ncsc.image_source(str(small_image), weights_dir=str(tmp_path / "no-weights"))
    sink = _run_source(src)
    assert sink.num_messages() == 0 and src._setup.error is not None and src.sent == 0
