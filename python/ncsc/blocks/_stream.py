"""Stream helpers shared by the burst hier blocks (not blocks of their own in GRC)."""

from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr


class sob_eob_tagger(gr.sync_block):  # noqa: N801
    """Adds UHD's tx_sob / tx_eob tags around each packet_len-tagged burst."""

    def __init__(self, len_tag: str = "packet_len"):
        gr.sync_block.__init__(self, name="ncsc_sob_eob_tagger", in_sig=[np.complex64], out_sig=[np.complex64])
        self.len_tag = pmt.intern(len_tag)
        self.set_tag_propagation_policy(gr.TPP_ONE_TO_ONE)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        for tag in self.get_tags_in_window(0, 0, n, self.len_tag):
            length = pmt.to_long(tag.value)
            self.add_item_tag(0, tag.offset, pmt.intern("tx_sob"), pmt.PMT_T)
            self.add_item_tag(0, tag.offset + length - 1, pmt.intern("tx_eob"), pmt.PMT_T)
        return n


class Ticker:
    """Calls ``fn`` every ``period`` seconds on a daemon thread between start() and stop()."""

    def __init__(self, fn, period: float, name: str):
        self.fn, self.period, self.name = fn, period, name
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.fn()


class WarmUp:
    """Runs ``fn`` once on a daemon thread when a flowgraph starts: what a block's first packet
    would otherwise wait for (numba kernels read from their cache, tables, the codec) is loaded
    while the flowgraph starts up and the blocks before it work. A warm-up that fails only
    logs: the first packet then loads what it needs itself."""

    def __init__(self, fn, name: str, logger):
        self.fn, self.name, self.logger = fn, name, logger
        self._thread = None

    def start(self) -> None:
        if self._thread is None:  # once per block: what it loads stays loaded
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def join(self, timeout: float = 60.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.fn()
        except Exception as exc:  # noqa: BLE001 - only a head start; the packet path loads it too
            self.logger.warn(f"warm-up failed (the first packet will load what it needs): {exc}")
