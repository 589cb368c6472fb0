"""Burst TX / RX blocks in real flowgraphs: tags, streaming across windows, impaired channel."""

from __future__ import annotations

import time

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr, ncsc

from gnuradio.ncsc.blocks.pdu import from_pdu, to_pdu
from gnuradio.ncsc.channel.impairments import Impairments


def _tx_samples(bits_list, gap=500):
    """Run NCSC Burst TX on information blocks; return the samples and the tags."""
    tb = gr.top_block()
    tx = ncsc.burst_tx()
    snk = blocks.vector_sink_c()
    tb.connect(tx, snk)
    tb.start()
    for b in bits_list:
        tx.to_basic_block()  # hier blocks have no _post: feed the encoder inside
        tx.encoder.to_basic_block()._post(pmt.intern("in"), to_pdu({}, b))
    deadline = time.time() + 30
    while len(snk.data()) < len(bits_list) * 5000 and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    tb.stop()
    tb.wait()
    data = np.array(snk.data(), np.complex64)
    tags = [(t.offset, pmt.symbol_to_string(t.key)) for t in snk.tags()]
    return data, tags


@pytest.fixture(autouse=True, scope="module")
def _compiled_receiver():
    """The receiver's and decoder's kernels compiled (or read from numba's cache) before any
    test times a flowgraph: in a fresh clone the first use compiles them, 30-70 s on a loaded
    2-core machine, which the waits below are not about."""
    from gnuradio.ncsc.fec import LdpcDecoder, make_code
    from gnuradio.ncsc.phy import BurstRx

    BurstRx(4, 0.35, 0.5, 4608).warm_up()
    LdpcDecoder(make_code(1536, 4608)).warm_up()


def _rx_pdus(rx_in: np.ndarray, n_expected: int, timeout: float = 60.0, **rx_kw):
    """Samples through NCSC Burst RX in a top block; (the PDUs it handed on, the block)."""
    tb = gr.top_block()
    rx = ncsc.burst_rx(samp_rate=1e6, **rx_kw)
    sink = blocks.message_debug()
    tb.connect(blocks.vector_source_c(rx_in.tolist()), rx)
    tb.msg_connect(rx, "out", sink, "store")
    tb.start()  # when the samples stop coming, the receiver searches its buffer to the end
    deadline = time.time() + timeout
    while sink.num_messages() < n_expected and time.time() < deadline:
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    return [from_pdu(sink.get_message(i), np.uint8) for i in range(sink.num_messages())], rx


def test_burst_tx_tags_each_burst():
    rng = np.random.default_rng(0)
    bits = [rng.integers(0, 2, 1536).astype(np.uint8) for _ in range(3)]
    data, tags = _tx_samples(bits)
    sob = [o for o, k in tags if k == "tx_sob"]
    eob = [o for o, k in tags if k == "tx_eob"]
    assert len(sob) == 3 and len(eob) == 3 and sob[0] == 0 and eob[-1] == data.size - 1
    assert all(e > s for s, e in zip(sob, eob, strict=True))


def test_burst_rx_streams_through_an_impaired_channel():
    rng = np.random.default_rng(1)
    bits = [rng.integers(0, 2, 1536).astype(np.uint8) for _ in range(6)]
    data, tags = _tx_samples(bits)
    sob = [o for o, k in tags if k == "tx_sob"] + [data.size]
    parts = [np.zeros(777, np.complex64)]
    for a, b in zip(sob, sob[1:], strict=False):
        parts += [data[a:b], np.zeros(int(rng.integers(300, 3000)), np.complex64)]
    rx_in = Impairments(esn0_db=9.0, cfo=0.01, phase=0.7, sco_ppm=50, dc=0.05, seed=5)(np.concatenate(parts) * 2)
    got, rx = _rx_pdus(rx_in, 6)
    assert len(got) == 6
    for (meta, dec), b in zip(got, bits, strict=True):
        assert meta["ldpc_ok"] == [True] and abs(meta["cfo_hz"] - 0.01 * 1e6 / 4) < 500
        np.testing.assert_array_equal(dec, b)
    assert rx.receiver.stats["bad_header"] == 0



def test_finite_stream_delivers_its_last_burst_to_the_end_of_the_chain():
    """Run to completion with almost no silence after the last burst: the receiver hands each
    burst on with its last sample, because messages sent after the end of the stream (from
    stop() or an idle timer) never reach message blocks downstream (GNU Radio issue #1735)."""
    rng = np.random.default_rng(2)
    bits = [rng.integers(0, 2, 1536).astype(np.uint8) for _ in range(3)]
    data, _ = _tx_samples(bits)
    rx_in = Impairments(esn0_db=12.0, cfo=0.005, seed=9)(np.concatenate([np.zeros(400, np.complex64), data,
                                                                      np.zeros(40, np.complex64)]) * 2)
    tb = gr.top_block()
    rx = ncsc.burst_rx(samp_rate=1e6)
    sink = blocks.message_debug()
    tb.connect(blocks.vector_source_c(rx_in.tolist()), rx)
    tb.msg_connect(rx, "out", sink, "store")
    tb.run()  # returns when the stream has ended and every block is done
    got = [from_pdu(sink.get_message(i), np.uint8)[1] for i in range(sink.num_messages())]
    assert len(got) == 3
    for dec, b in zip(got, bits, strict=True):
        np.testing.assert_array_equal(dec, b)

def test_burst_rx_survives_noise_only():
    rng = np.random.default_rng(2)
    noise = (rng.standard_normal(60000) + 1j * rng.standard_normal(60000)).astype(np.complex64)
    tb = gr.top_block()
    rx = ncsc.burst_rx()
    sink = blocks.message_debug()
    tb.connect(blocks.vector_source_c(noise.tolist()), rx)
    tb.msg_connect(rx, "out", sink, "store")
    tb.run()
    assert sink.num_messages() == 0


def test_mixed_modulations_decode_through_burst_rx():
    """QPSK, 16-QAM and 64-QAM bursts in one stream: the modulation comes from each header, the
    receiver needs no configuration (it once sized its buffers for 16-QAM and dropped QPSK)."""
    from gnuradio.ncsc.fec import nr_code
    from gnuradio.ncsc.fec.encoder import encode
    from gnuradio.ncsc.phy.burst import BurstTx

    rng = np.random.default_rng(4)
    code = nr_code(1536, 4608)
    mods = ["qpsk", "16qam", "64qam", "qpsk", "16qam", "64qam"]  # the short 64-QAM burst last, 200 samples
    # of silence after it: a finite stream must deliver it too
    bits = [rng.integers(0, 2, 1536).astype(np.uint8) for _ in mods]
    parts = [np.zeros(600, np.complex64)]
    for m, b in zip(mods, bits, strict=True):
        parts += [BurstTx(sps=4, modulation=m).burst(encode(code, b)[0]), np.zeros(200, np.complex64)]
    rx_in = Impairments(esn0_db=15.0, cfo=0.004, seed=3)(np.concatenate(parts) * 2)
    tb = gr.top_block()
    rx = ncsc.burst_rx(samp_rate=1e6)
    sink = blocks.message_debug()
    tb.connect(blocks.vector_source_c(rx_in.tolist()), rx)
    tb.msg_connect(rx, "out", sink, "store")
    tb.run()
    got = [from_pdu(sink.get_message(i), np.uint8) for i in range(sink.num_messages())]
    assert [meta["modulation"] for meta, _ in got] == mods
    for (_, dec), b in zip(got, bits, strict=True):
        np.testing.assert_array_equal(dec, b)


def test_ten_images_through_the_burst_link_at_a_throttled_2_msps(tiny_codec, small_image, tmp_path):
    """Image Source -> Framer -> Burst TX -> Throttle (2 MS/s, HackRF's lowest rate) -> channel
    (noise, carrier offset) -> Burst RX -> Deframer -> Decoder Sink: every image arrives, and
    the receiver keeps up: its buffer stays within one search chunk, and every burst is through
    the PHY soon after the source has sent the last image, however long the codec then takes
    (the Decoder Sink decodes on its own thread; its queue is the codec's backlog, not the PHY's).
    """
    from gnuradio import channels

    n_images = 10
    tb = gr.top_block()
    src = ncsc.image_source(";".join([str(small_image)] * n_images), codec=tiny_codec, interval=0.02)
    tx = ncsc.burst_tx()
    throttle = blocks.throttle(gr.sizeof_gr_complex, 2e6)
    chan = channels.channel_model(noise_voltage=0.02, frequency_offset=2e-4, epsilon=1.0, taps=[1.0],
                                  noise_seed=7)
    rx = ncsc.burst_rx(samp_rate=2e6)
    dfr = ncsc.deframer()
    sink = ncsc.decoder_sink(str(tmp_path / "out"), codec=tiny_codec)
    frm = ncsc.framer()
    tb.msg_connect(src, "out", frm, "in")
    tb.msg_connect(frm, "out", tx, "in")
    tb.connect(tx, throttle, chan, rx)
    tb.msg_connect(rx, "out", dfr, "in")
    tb.msg_connect(dfr, "out", sink, "in")
    tb.start()
    max_buf, sent_at, phy_done_at = 0, None, None
    deadline = time.time() + 120
    while len(sink.records) < n_images and time.time() < deadline:
        max_buf = max(max_buf, rx.receiver.buf.size)
        if sent_at is None and src.finished.is_set():
            sent_at = time.time()
        if phy_done_at is None and dfr.n_in >= n_images:
            phy_done_at = time.time()
        time.sleep(0.005)
    tb.stop()
    tb.wait()
    assert [r["status"] for r in sink.records] == ["ok"] * n_images
    assert rx.receiver.stats["bad_header"] == 0
    assert max_buf <= rx.receiver.chunk + 8192  # never more than one search's worth waiting
    assert sent_at is not None and phy_done_at is not None
    assert phy_done_at - sent_at < 1.0  # the last bursts are through the PHY within a second


def test_repeated_codewords_are_added_over_the_air():
    """A codeword repeated by the LDPC encoder (ldpc_repeat 2) leaves the Burst Modulator as two
    ordinary bursts whose headers say "copy j of 2"; Burst RX adds their LLRs (at Es/N0 3 dB,
    where single bursts fail about half the time, the pairs decode). Plain bursts pass as ever."""
    from conftest import run_pdus

    from gnuradio.ncsc.fec import encode, nr_code, repeat
    from gnuradio.ncsc.phy import parse_copy

    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2, (3, 1536)).astype(np.uint8)
    cws = encode(nr_code(), bits)
    pdus = [to_pdu({"ldpc_repeat": 2}, repeat(cws[0], 2)), to_pdu({}, cws[1]),
            to_pdu({"ldpc_repeat": 2}, repeat(cws[2], 2))]
    msgs = run_pdus(ncsc.burst_modulator(), pdus, 5)
    assert len(msgs) == 5
    parts = [np.zeros(600, np.complex64)]
    for msg in msgs:
        meta, samples = from_pdu(msg, np.complex64)
        assert "ldpc_repeat" not in meta
        parts += [samples * 2, np.zeros(int(rng.integers(300, 900)), np.complex64)]
    rx_in = Impairments(esn0_db=3.0, cfo=0.005, phase=0.3, seed=8)(np.concatenate(parts))
    got, _ = _rx_pdus(rx_in, 3)
    assert [m.get("copies", 1) for m, _ in got] == [2, 1, 2]
    assert [parse_copy(m["code_id"]) for m, _ in got] == [(2, 0), (1, 0), (2, 0)]
    for (meta, dec), b in zip([got[0], got[2]], [bits[0], bits[2]], strict=True):
        assert meta["ldpc_ok"] == [True]
        np.testing.assert_array_equal(dec, b)


@pytest.mark.slow
def test_sliced_image_over_the_burst_link_arrives_in_part(tiny_codec, tmp_path):
    """Profile ota-16qam-graceful end to end through the blocks: Image Source -> Framer -> Burst
    TX, one burst of the slice area lost on the air, -> Burst RX -> Deframer -> Decoder Sink.
    The head's codewords went as two bursts each (added by Burst RX) and the picture arrives
    with status partial and the share concealed."""
    from PIL import Image

    prof = "ota-16qam-graceful"
    rng = np.random.default_rng(4)
    path = tmp_path / "noisy.png"
    # the tiny untrained model codes noise mostly in its hyperprior: a large picture leaves
    # room for more than one block of slices after the head
    Image.fromarray(rng.integers(0, 256, (1024, 1536, 3), dtype=np.uint8)).save(path)
    tb = gr.top_block()
    src = ncsc.image_source(str(path), codec=tiny_codec, profile=prof)
    frm = ncsc.framer(profile=prof)
    tx = ncsc.burst_tx(profile=prof)
    snk = blocks.vector_sink_c()
    tb.msg_connect(src, "out", frm, "in")
    tb.msg_connect(frm, "out", tx, "in")
    tb.connect(tx, snk)
    tb.start()
    deadline = time.time() + 60
    while not src.finished.is_set() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    tb.stop()
    tb.wait()
    data = np.array(snk.data(), np.complex64)
    sob = [t.offset for t in snk.tags() if pmt.symbol_to_string(t.key) == "tx_sob"] + [data.size]
    bursts = [data[a:b] for a, b in zip(sob, sob[1:], strict=False)]
    assert len(bursts) >= 6
    lost = len(bursts) - 1  # the last burst: a block of the slice area
    parts = [np.zeros(500, np.complex64)]
    for i, b in enumerate(bursts):
        parts += [b * 0 if i == lost else b, np.zeros(400, np.complex64)]
    rx_in = Impairments(esn0_db=14.0, cfo=0.004, seed=2)(np.concatenate(parts) * 2)

    # then quiet air for 2 s (throttled): a finite stream's end would stop the Deframer's
    # timeout timer with the flowgraph, as GNU Radio stops every block when its sources end
    rx_in = np.concatenate([rx_in, np.zeros(4_000_000, np.complex64)])
    tb = gr.top_block()
    rx = ncsc.burst_rx(samp_rate=2e6, profile=prof)
    dfr = ncsc.deframer(profile=prof, timeout=0.5)
    sink = ncsc.decoder_sink(str(tmp_path / "out"), codec=tiny_codec, profile=prof)
    tb.connect(blocks.vector_source_c(rx_in.tolist()), blocks.throttle(gr.sizeof_gr_complex, 2e6), rx)
    tb.msg_connect(rx, "out", dfr, "in")
    tb.msg_connect(dfr, "out", sink, "in")
    tb.start()
    deadline = time.time() + 60
    while not sink.records and time.time() < deadline:
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    (rec,) = sink.records
    assert rec["status"] == "partial", rec
    assert 0 < rec["concealed"] < 1 and rec["codeword_errors"] == 1
    head = len(bursts) - rec["codewords"]  # bursts beyond the blocks: the head's second copies
    assert head > 0 and rx.receiver.stats["emitted"] == rec["codewords"] - 1  # copies added: one PDU each
    assert rec["symbols"] == len(bursts) * 1152  # the record counts every burst sent, copies too


def test_burst_receiver_keeps_only_recent_reports():
    """A receiver runs for hours at hundreds of bursts a second: it keeps the most recent
    reports, not all of them."""
    from gnuradio.ncsc.blocks._receiver import REPORTS_KEPT, burst_receiver
    from gnuradio.ncsc.phy.burst import BurstReport

    b = burst_receiver(4, 0.35, 1e6, 0.5, 4608)
    header = {"modulation": "16qam", "code_id": 0, "n_symbols": 1152}
    for i in range(REPORTS_KEPT + 200):
        b._emit(BurstReport(i, 0.0, 12.0, 0.06, header, np.zeros(4608, np.float32)), 1000 * i)
    assert len(b.reports) == REPORTS_KEPT and b.reports[-1]["burst_start"] == 1000 * (REPORTS_KEPT + 199)
    assert b.stats["emitted"] == REPORTS_KEPT + 200
