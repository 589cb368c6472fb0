"""QA of the link's GNU Radio blocks, each in a real top block, and the chain end to end."""

from __future__ import annotations

import numpy as np
import pmt
import pytest
from conftest import run_pdus
from gnuradio import gr, ncsc

from gnuradio.ncsc.blocks.pdu import PduError, from_pdu, meta_to_pmt, to_pdu
from gnuradio.ncsc.fec import encode, nr_code
from gnuradio.ncsc.modulation import modulate

RNG = np.random.default_rng(5)


def test_ldpc_encoder_block():
    bits = RNG.integers(0, 2, 2 * 1536).astype(np.uint8)
    out = run_pdus(ncsc.ldpc_encoder(), [to_pdu({"image_id": 3}, bits)], 1)
    meta, cw = from_pdu(out[0], np.uint8)
    assert meta["image_id"] == 3 and meta["codewords"] == 2
    np.testing.assert_array_equal(cw, encode(nr_code(), bits.reshape(2, -1)).ravel())


def test_ldpc_decoder_block_reports_per_codeword():
    bits = RNG.integers(0, 2, (2, 1536)).astype(np.uint8)
    llr = 5.0 * (2.0 * encode(nr_code(), bits) - 1)
    llr[1] = RNG.normal(0, 0.3, 4608)  # hopeless codeword
    out = run_pdus(ncsc.ldpc_decoder(max_iter=10), [to_pdu({}, llr.astype(np.float32).ravel())], 1)
    meta, dec = from_pdu(out[0], np.uint8)
    assert meta["ldpc_ok"] == [True, False] and meta["codeword_errors"] == 1
    np.testing.assert_array_equal(dec[:1536], bits[0])


def test_repeated_codewords_through_the_ldpc_blocks():
    """ldpc_repeat r: the encoder sends the codeword r times, the decoder adds the copies' LLRs
    (two copies each too noisy alone decode together); a bad factor drops the PDU."""
    from gnuradio.ncsc.fec import combine

    bits = RNG.integers(0, 2, 1536).astype(np.uint8)
    (msg,) = run_pdus(ncsc.ldpc_encoder(), [to_pdu({"ldpc_repeat": 2}, bits)], 1)
    meta, cw = from_pdu(msg, np.uint8)
    assert cw.size == 2 * 4608 and meta["ldpc_repeat"] == 2
    np.testing.assert_array_equal(cw[:4608], cw[4608:])
    rng = np.random.default_rng(9)
    sigma = 1.25  # BPSK at Es/N0 about -2 dB: one copy fails, two added decode
    llr = (2 * (2 * cw.astype(np.float32) - 1) / sigma**2
           + rng.normal(0, 2 / sigma, cw.size)).astype(np.float32)
    (alone,) = run_pdus(ncsc.ldpc_decoder(max_iter=30), [to_pdu({}, llr[:4608])], 1)
    (both,) = run_pdus(ncsc.ldpc_decoder(max_iter=30), [to_pdu({"ldpc_repeat": 2}, llr)], 1)
    assert from_pdu(alone, np.uint8)[0]["ldpc_ok"] == [False]
    meta, dec = from_pdu(both, np.uint8)
    assert meta["ldpc_ok"] == [True] and meta["codewords"] == 1
    np.testing.assert_array_equal(dec, bits)
    np.testing.assert_allclose(combine(llr, 4608, 2), llr[:4608] + llr[4608:], rtol=1e-6)
    dec_block = ncsc.ldpc_decoder(max_iter=5)
    out = run_pdus(dec_block, [to_pdu({"ldpc_repeat": 9}, llr), to_pdu({}, llr[:4608])], 1)
    assert len(out) == 1 and dec_block.n_dropped == 1


def test_framer_marks_the_head_blocks_for_repetition():
    data = np.arange(1000, dtype=np.uint32).astype(np.uint8)  # 6 blocks of 180 bytes
    msgs = run_pdus(ncsc.framer(profile="paper-awgn-graceful"), [to_pdu({"image_id": 1, "head_blocks": 2}, data)],
                    6)
    reps = [from_pdu(m, np.uint8)[0].get("ldpc_repeat") for m in msgs]
    assert reps == [2, 2, None, None, None, None]
    plain = run_pdus(ncsc.framer(), [to_pdu({"image_id": 1, "head_blocks": 2, "ldpc_repeat": 3}, data)], 6)
    assert all("ldpc_repeat" not in from_pdu(m, np.uint8)[0] for m in plain)


def test_qam_mapper_and_soft_demapper_blocks():
    bits = RNG.integers(0, 2, 400).astype(np.uint8)
    (sym_msg,) = run_pdus(ncsc.qam_mapper("16qam"), [to_pdu({}, bits)], 1)
    _, sym = from_pdu(sym_msg, np.complex64)
    np.testing.assert_allclose(sym, modulate(bits), atol=1e-6)
    (llr_msg,) = run_pdus(ncsc.soft_demapper("16qam", noise_var=0.01), [sym_msg], 1)
    _, llr = from_pdu(llr_msg, np.float32)
    np.testing.assert_array_equal((llr > 0).astype(np.uint8), bits)


def test_awgn_block_sets_noise_metadata():
    sym = np.ones(1000, np.complex64)
    (msg,) = run_pdus(ncsc.awgn_channel(3.0, "ebn0", seed=1), [to_pdu({}, sym)], 1)
    meta, noisy = from_pdu(msg, np.complex64)
    assert abs(meta["esn0_db"] - 4.249) < 1e-2 and meta["snr_type"] == "ebn0"
    assert 0.5 < np.var(noisy - sym) / meta["noise_var"] < 1.5


def test_blocks_drop_malformed_pdus_and_keep_running():
    enc = ncsc.ldpc_encoder()
    good = to_pdu({"ok": True}, np.zeros(1536, np.uint8))
    bad = [
        pmt.intern("not a pdu"),
        to_pdu({}, np.zeros(100, np.uint8)),  # wrong length
        to_pdu({}, np.full(1536, 7, np.uint8)),  # non-binary
        pmt.cons(pmt.make_dict(), pmt.init_f32vector(1536, [0.0] * 1536)),  # wrong type
    ]
    out = run_pdus(enc, bad + [good], 1)
    assert len(out) == 1 and enc.n_dropped == 4
    dec = ncsc.ldpc_decoder()
    nan = to_pdu({}, np.full(4608, np.nan, np.float32))
    out = run_pdus(dec, [nan, to_pdu({}, np.ones(4608, np.float32))], 1)
    assert len(out) == 1 and dec.n_dropped == 1


def test_chain_in_one_flowgraph_exact_at_high_snr():
    from gnuradio import blocks

    tb = gr.top_block()
    chain = [ncsc.ldpc_encoder(), ncsc.qam_mapper(), ncsc.awgn_channel(10.0, "ebn0", seed=3),
             ncsc.soft_demapper(), ncsc.ldpc_decoder()]
    sink = blocks.message_debug()
    for a, b in zip(chain, chain[1:], strict=False):
        tb.msg_connect(a, "out", b, "in")
    tb.msg_connect(chain[-1], "out", sink, "store")
    bits = RNG.integers(0, 2, 3 * 1536).astype(np.uint8)
    tb.start()
    chain[0].to_basic_block()._post(pmt.intern("in"), to_pdu({"image_id": 1}, bits))
    import time

    t0 = time.time()
    while sink.num_messages() < 1 and time.time() - t0 < 30:
        time.sleep(0.01)
    tb.stop()
    tb.wait()
    meta, out = from_pdu(sink.get_message(0), np.uint8)
    assert meta["codeword_errors"] == 0 and meta["image_id"] == 1
    np.testing.assert_array_equal(out, bits)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.complex64])
def test_pdu_payloads_cross_pmt_unchanged(dtype):
    """to_pdu / from_pdu go through pmt's serialised form: the same vector as pmt's own element
    accessors see, for every payload type, empty ones too."""
    rng = np.random.default_rng(3)
    for n in (0, 1, 4608):
        if dtype is np.complex64:
            a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
        else:
            a = (rng.standard_normal(n) * 100).astype(dtype)
        msg = to_pdu({"n": n}, a)
        cdr = pmt.cdr(msg)
        seen = {np.uint8: pmt.u8vector_elements, np.float32: pmt.f32vector_elements,
                np.complex64: pmt.c32vector_elements}[dtype](cdr)
        assert np.array_equal(np.array(seen, dtype).reshape(-1), a)
        meta, b = from_pdu(msg, dtype)
        assert meta == {"n": n} and b.dtype == dtype and np.array_equal(a, b)
    with pytest.raises(PduError):  # the wrong payload type is refused, not reinterpreted
        from_pdu(to_pdu({}, np.zeros(4, np.uint8)), np.float32)


@pytest.mark.parametrize("meta", [
    {},
    {"burst_start": 123456789012, "cfo": -1.5e-3, "detected": True, "modulation": "16qam", "n": -5,
     "ldpc_ok": [True, False], "ldpc_iterations": [3, 50], "flt": [1.5, -2.0], "none": [], "big": -(2**40),
     "name": "\u00e9t\u00e9", "nan": float("nan")},
    {"nested": {"a": 1}}, {1: 2}, {"t": (1, 2)}, {"x": np.float64(2.5)},
])
def test_metadata_to_pmt_is_pmt_to_pmt(meta):
    """The receiver's fast path for flat metadata builds what pmt.to_pmt builds (anything else
    goes through pmt.to_pmt itself)."""
    assert pmt.serialize_str(meta_to_pmt(meta)) == pmt.serialize_str(pmt.to_pmt(meta))


def test_metadata_to_pmt_refuses_what_pmt_refuses():
    for meta in ({"huge": 2**70}, {"y": np.int64(3)}):
        with pytest.raises((TypeError, ValueError)):
            pmt.to_pmt(meta)
        with pytest.raises((TypeError, ValueError)):
            meta_to_pmt(meta)
