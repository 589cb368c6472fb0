"""Warm-ups load what the first packet needs: after one, the real path compiles or loads nothing new.

Each check runs in a fresh interpreter, so that kernels loaded by other tests cannot hide a
signature the warm-up misses (numba loads a kernel per argument signature)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from gnuradio import gr

from gnuradio.ncsc.blocks._stream import WarmUp

SIGNATURES = """
import numba, sys
def signatures(*modules):
    return {(m.__name__, name, str(sig)) for m in modules for name, f in vars(m).items()
            if isinstance(f, numba.core.registry.CPUDispatcher) for sig in f.signatures}
"""


def _run(body: str) -> str:
    code = SIGNATURES + textwrap.dedent(body)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_coder_warm_up_loads_every_kernel_an_image_needs():
    out = _run("""
        import numpy as np, torch
        from gnuradio.ncsc.codec import entropy
        from gnuradio.ncsc.codec.registry import load_codec
        assert not signatures(entropy)
        codec = load_codec("mse")
        codec.warm_up()
        warm = signatures(entropy)
        torch.manual_seed(0)
        x = torch.rand(1, 3, 64, 96)
        codec.decompress(codec.compress(x)["bitstream"])
        codec.decompress(codec.compress(x, slices=(2, 2))["bitstream"])
        print(len(warm), sorted(signatures(entropy) - warm))
    """)
    n, missing = out.split(" ", 1)
    assert int(n) >= 4 and missing.strip() == "[]", out


def test_ldpc_and_burst_warm_ups_load_every_kernel_a_burst_needs():
    out = _run("""
        import numpy as np
        from gnuradio.ncsc import dsp, fec
        from gnuradio.ncsc.fec import LdpcDecoder, make_code, encode
        from gnuradio.ncsc.fec import decoder as fec_decoder
        from gnuradio.ncsc.phy import kernels
        from gnuradio.ncsc.phy.burst import BurstRx, BurstTx
        from gnuradio.ncsc.modulation import kernels as mod_kernels
        mods = (fec_decoder, kernels, dsp, mod_kernels)
        code = make_code(1536, 4608)
        dec = LdpcDecoder(code, kernel="numba")
        rx = BurstRx(4, 0.35, 0.5, code_bits=4608)
        dec.warm_up()
        rx.warm_up()
        warm = signatures(*mods)
        rng = np.random.default_rng(1)
        bits = encode(code, rng.integers(0, 2, 1536, dtype=np.uint8)).ravel()
        x = np.concatenate([np.zeros(500, np.complex64), BurstTx(4, 0.35, "16qam").burst(bits),
                            np.zeros(500, np.complex64)])
        x = x + (0.1 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))).astype(np.complex64)
        reps = rx.receive(x)
        assert len(reps) == 1 and reps[0].llr is not None
        assert dec.decode(reps[0].llr[None, :]).ok.all()
        print(len(warm), sorted(signatures(*mods) - warm))
    """)
    n, missing = out.split(" ", 1)
    assert int(n) >= 10 and missing.strip() == "[]", out


def test_warm_up_runs_once_and_a_failure_only_logs():
    calls = []
    logger = gr.logger("ncsc_test_warm_up")
    w = WarmUp(lambda: calls.append(1), "t", logger)
    w.start()
    w.start()
    w.join()
    assert calls == [1]

    def boom():
        raise RuntimeError("no kernels today")

    bad = WarmUp(boom, "t2", logger)
    bad.start()
    bad.join()  # the exception stayed in its thread, logged


def test_decoder_sink_warms_the_codec_it_was_given(tiny_codec):
    from gnuradio import ncsc

    class Counting:
        metric = tiny_codec.metric

        def __init__(self):
            self.warmed = 0

        def warm_up(self):
            self.warmed += 1

    codec = Counting()
    sink = ncsc.decoder_sink(codec=codec)
    tb = gr.top_block()
    tb.msg_connect(ncsc.framer(), "out", sink, "in")
    tb.start()
    tb.stop()
    tb.wait()
    assert codec.warmed == 1


def test_precompile_loads_every_receiver_and_demapper_kernel():
    """``make setup``'s precompile step: in a fresh interpreter it leaves every kernel of the
    receiver, demapper and LDPC decoder with a compiled signature (so a flowgraph compiles
    none), and ends in one JSON line."""
    out = _run("""
        import io, contextlib, json
        from gnuradio.ncsc import precompile
        from gnuradio.ncsc.phy import kernels as rk
        from gnuradio.ncsc.modulation import kernels as mk
        from gnuradio.ncsc import dsp
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            precompile.main([])
        print(json.loads(buf.getvalue().splitlines()[-1])["seconds"] >= 0)
        used = {"detection_metric", "preamble_search", "resample", "carrier_sync", "equalise",
                "residual_carrier", "timing_offset", "clock_drift", "first_above"}
        have = {name for _, name, _ in signatures(rk, mk, dsp)}
        print(sorted(used - have), {"pam_llr_exact", "pam_llr_maxlog", "fir_into", "complex_mean"} <= have)
    """)
    assert out.split() == ["True", "[]", "True"]
